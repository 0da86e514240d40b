-- Predictive polling: when the job was first seen, where its rate of progress is
-- measured from (time and progress), and the estimated end (NULL while unknown).
ALTER TABLE jobs ADD COLUMN started_at double precision;
ALTER TABLE jobs ADD COLUMN baseline_at double precision;
ALTER TABLE jobs ADD COLUMN baseline_progress integer;
ALTER TABLE jobs ADD COLUMN eta double precision;
