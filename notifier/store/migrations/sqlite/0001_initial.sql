-- The watch list, the outbox and its attempts.
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    name TEXT,
    notify TEXT,                 -- JSON list of callback names; NULL = every callback
    on_status TEXT NOT NULL,     -- JSON list of statuses that fire an event
    source TEXT NOT NULL,        -- 'config' | 'cli'
    state TEXT NOT NULL,         -- 'watching' | 'done' | 'expired' | 'unwatched'
    unwatched_by TEXT,           -- 'config' | 'operator' while state = 'unwatched'
    status TEXT,
    progress INTEGER,
    job TEXT,                    -- JSON: the job as Datasaur last returned it
    registered_at REAL NOT NULL,
    last_polled_at REAL,
    next_poll_at REAL,
    poll_interval REAL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs(next_poll_at) WHERE state = 'watching';
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,         -- the webhook-id
    job_id TEXT NOT NULL,
    callback TEXT NOT NULL,
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,         -- 'pending' | 'delivered' | 'dead'
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at REAL NOT NULL,
    queued_at REAL NOT NULL,     -- start of the give_up_after window (reset by redeliver)
    next_attempt_at REAL,
    delivered_at REAL,
    UNIQUE (job_id, callback, event)
);
CREATE INDEX IF NOT EXISTS deliveries_due
    ON deliveries(callback, next_attempt_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries(state, created_at);
CREATE TABLE IF NOT EXISTS attempts (
    delivery_id TEXT NOT NULL REFERENCES deliveries(id),
    attempted_at REAL NOT NULL,
    duration REAL NOT NULL,
    ok INTEGER NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_delivery ON attempts(delivery_id);
