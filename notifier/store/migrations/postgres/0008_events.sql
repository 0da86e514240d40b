-- The event feed: every event recorded, once, in the order it was recorded.
-- Appends are serialised by an advisory lock held to commit (see store/postgres/feed.py),
-- so cursors become visible in order and a reader never passes one still committing.
CREATE TABLE events (
    cursor bigserial PRIMARY KEY,
    id text NOT NULL UNIQUE,
    type text NOT NULL,
    job_id text,
    grp text,
    labels jsonb,
    occurrence integer NOT NULL DEFAULT 0,
    payload text NOT NULL,
    created_at double precision NOT NULL
);
CREATE UNIQUE INDEX events_once ON events (job_id, type, occurrence) WHERE job_id IS NOT NULL;
CREATE INDEX events_created ON events (created_at);
CREATE TABLE event_horizon (
    only_row integer PRIMARY KEY CHECK (only_row = 1),
    pruned_through bigint NOT NULL
);
