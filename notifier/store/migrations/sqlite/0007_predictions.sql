-- Predictive polling: when the job was first seen, where its rate of progress is
-- measured from (time and progress), and the estimated end (NULL while unknown).
ALTER TABLE jobs ADD COLUMN started_at REAL;
ALTER TABLE jobs ADD COLUMN baseline_at REAL;
ALTER TABLE jobs ADD COLUMN baseline_progress INTEGER;
ALTER TABLE jobs ADD COLUMN eta REAL;
