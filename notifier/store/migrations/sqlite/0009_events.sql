-- The event feed: every event recorded, once, in the order it was recorded.
-- cursor is the feed's position; SQLite has one writer at a time, so cursors become
-- visible in order. horizon remembers the highest cursor retention removed (410).
CREATE TABLE events (
    cursor INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    job_id TEXT,
    grp TEXT,
    labels TEXT,
    occurrence INTEGER NOT NULL DEFAULT 0,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE UNIQUE INDEX events_once ON events (job_id, type, occurrence) WHERE job_id IS NOT NULL;
CREATE INDEX events_created ON events (created_at);
CREATE TABLE event_horizon (
    only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
    pruned_through INTEGER NOT NULL
);
