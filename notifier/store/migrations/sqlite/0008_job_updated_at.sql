-- The stored job's updatedAt, so that a poll can tell "nothing changed" without
-- decoding the stored job (NULL: unknown; the next answer is stored).
ALTER TABLE jobs ADD COLUMN job_updated_at TEXT;
