-- An event may happen more than once (a job stalls again; a callback pauses again):
-- `occurrence` numbers them, so each is its own delivery while a repeated poll still
-- adds nothing. Operational alerts belong to no job: job_id may be NULL.
CREATE TABLE deliveries_new (
    id TEXT PRIMARY KEY,
    job_id TEXT,
    callback TEXT NOT NULL,
    event TEXT NOT NULL,
    occurrence INTEGER NOT NULL DEFAULT 0,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at REAL NOT NULL,
    queued_at REAL NOT NULL,
    next_attempt_at REAL,
    delivered_at REAL,
    target_url TEXT,
    UNIQUE (job_id, callback, event, occurrence)
);
INSERT INTO deliveries_new (id, job_id, callback, event, payload, state, attempts, last_error,
                            created_at, queued_at, next_attempt_at, delivered_at, target_url)
SELECT id, job_id, callback, event, payload, state, attempts, last_error, created_at,
       queued_at, next_attempt_at, delivered_at, target_url
FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
CREATE INDEX deliveries_due ON deliveries(callback, next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_state ON deliveries(state, created_at);
