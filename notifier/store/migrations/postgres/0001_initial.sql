-- The watch list, the outbox, attempts, daemons' heartbeats and the shared rate cap.
-- Times are Unix seconds (double precision) taken from the database's clock.
-- lease_owner is an instance id (random per process), lease_token grows on every claim,
-- and a write that follows a claim must show both.
CREATE TABLE jobs (
    id text PRIMARY KEY,
    name text,
    notify text,                  -- JSON list of callback names; NULL = every callback
    on_status text NOT NULL,      -- JSON list of statuses that fire an event
    source text NOT NULL,         -- 'config' | 'cli' | 'api'
    state text NOT NULL,          -- 'watching' | 'done' | 'expired' | 'unwatched'
    unwatched_by text,            -- 'config' | 'operator' while state = 'unwatched'
    status text,
    progress integer,
    job text,                     -- JSON: the job as Datasaur last returned it
    registered_at double precision NOT NULL,
    last_polled_at double precision,
    next_poll_at double precision,
    poll_interval double precision,
    last_error text,
    lease_owner text,
    lease_token bigint NOT NULL DEFAULT 0,
    lease_until double precision
);
-- Only watched rows are hot: finished jobs never enter these indexes.
CREATE INDEX jobs_due ON jobs (next_poll_at) WHERE state = 'watching';
CREATE INDEX jobs_leased ON jobs (lease_owner) WHERE lease_owner IS NOT NULL;
CREATE INDEX jobs_state ON jobs (state);

CREATE TABLE deliveries (
    id text PRIMARY KEY,          -- the webhook-id
    job_id text NOT NULL,
    callback text NOT NULL,
    event text NOT NULL,
    payload text NOT NULL,        -- the exact JSON body, as text
    state text NOT NULL,          -- 'pending' | 'delivered' | 'dead'
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    created_at double precision NOT NULL,
    queued_at double precision NOT NULL,
    next_attempt_at double precision,
    delivered_at double precision,
    lease_owner text,
    lease_token bigint NOT NULL DEFAULT 0,
    lease_until double precision,
    UNIQUE (job_id, callback, event)
);
CREATE INDEX deliveries_due ON deliveries (callback, next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_leased ON deliveries (lease_owner) WHERE lease_owner IS NOT NULL;
CREATE INDEX deliveries_state ON deliveries (state, created_at);

CREATE TABLE attempts (
    id bigserial PRIMARY KEY,
    delivery_id text NOT NULL REFERENCES deliveries (id),
    attempted_at double precision NOT NULL,
    duration double precision NOT NULL,
    ok boolean NOT NULL,
    detail text NOT NULL
);
CREATE INDEX attempts_delivery ON attempts (delivery_id);

CREATE TABLE instances (
    id text PRIMARY KEY,          -- random per process
    name text NOT NULL,
    version text NOT NULL,
    started_at double precision NOT NULL,
    last_seen_at double precision NOT NULL,
    lease double precision NOT NULL  -- alive while last seen within this many seconds
);

-- One row per shared request-rate cap: a virtual-scheduling (GCRA) clock.
CREATE TABLE rate_limits (
    name text PRIMARY KEY,
    next_free double precision NOT NULL
);
INSERT INTO rate_limits (name, next_free) VALUES ('datasaur', 0);
