-- Stalled jobs (polling.stall_after): when a job's status or progress last changed (as
-- first observed; NULL until the next poll sets it), how many stalls were notified (the
-- job.stalled deliveries' occurrence), and whether the current stall already was.
ALTER TABLE jobs ADD COLUMN changed_at REAL;
ALTER TABLE jobs ADD COLUMN stalls INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN stalled INTEGER NOT NULL DEFAULT 0;
