-- Issue 21: what every registration may carry. group_id (NULL: in no group), labels
-- (a JSON object, with the implicit queue label), metadata (the caller's JSON object,
-- as given), deadline (Unix seconds), the job's own expire_after/stall_after (NULL:
-- polling's), and when job.at_risk and job.late were recorded (each at most once).
ALTER TABLE jobs ADD COLUMN group_id TEXT;
ALTER TABLE jobs ADD COLUMN labels TEXT;
ALTER TABLE jobs ADD COLUMN metadata TEXT;
ALTER TABLE jobs ADD COLUMN deadline REAL;
ALTER TABLE jobs ADD COLUMN expire_after REAL;
ALTER TABLE jobs ADD COLUMN stall_after REAL;
ALTER TABLE jobs ADD COLUMN at_risk_at REAL;
ALTER TABLE jobs ADD COLUMN late_at REAL;
CREATE INDEX jobs_group ON jobs (group_id, registered_at) WHERE group_id IS NOT NULL;
-- The deadline sweep's probe: watched jobs whose job.late is not recorded yet.
CREATE INDEX jobs_deadline ON jobs (deadline)
    WHERE deadline IS NOT NULL AND late_at IS NULL AND state = 'watching';
