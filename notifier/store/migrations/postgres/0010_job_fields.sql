-- Issue 21: what every registration may carry. group_id (NULL: in no group), labels
-- (with the implicit queue label; jsonb, so a label filter is one containment test),
-- metadata (the caller's JSON object as text: echoed as given), deadline (Unix seconds),
-- the job's own expire_after/stall_after (NULL: polling's), and when job.at_risk and
-- job.late were recorded (each at most once).
ALTER TABLE jobs ADD COLUMN group_id text;
ALTER TABLE jobs ADD COLUMN labels jsonb;
ALTER TABLE jobs ADD COLUMN metadata text;
ALTER TABLE jobs ADD COLUMN deadline double precision;
ALTER TABLE jobs ADD COLUMN expire_after double precision;
ALTER TABLE jobs ADD COLUMN stall_after double precision;
ALTER TABLE jobs ADD COLUMN at_risk_at double precision;
ALTER TABLE jobs ADD COLUMN late_at double precision;
CREATE INDEX jobs_group ON jobs (group_id, registered_at) WHERE group_id IS NOT NULL;
CREATE INDEX jobs_labels ON jobs USING gin (labels jsonb_path_ops);
-- The deadline sweep's probe: watched jobs whose job.late is not recorded yet.
CREATE INDEX jobs_deadline ON jobs (deadline)
    WHERE deadline IS NOT NULL AND late_at IS NULL AND state = 'watching';
