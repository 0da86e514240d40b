-- Digests (issue 23): a digest is an outbox row of event 'digest' (no job); each event
-- it gathered stays as its own row in state 'digested' with the digest's id, set in the
-- transaction that closes the digest, so every event is in exactly one digest.
ALTER TABLE deliveries ADD COLUMN digest_id TEXT;
CREATE INDEX deliveries_digest ON deliveries(digest_id) WHERE digest_id IS NOT NULL;
