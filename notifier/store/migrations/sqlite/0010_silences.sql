-- Silences (issue 23): a matcher (callback, or labels as a JSON object), a span, who
-- and why. A held delivery is in state 'silenced' with the silence's id, and held_at:
-- the time it spent held does not count toward give_up_after.
CREATE TABLE silences (
    id TEXT PRIMARY KEY,
    callback TEXT,
    match_labels TEXT,
    starts_at REAL NOT NULL,
    ends_at REAL NOT NULL,
    author TEXT NOT NULL,
    comment TEXT NOT NULL
);
CREATE INDEX silences_ends ON silences(ends_at);
ALTER TABLE deliveries ADD COLUMN silence_id TEXT;
ALTER TABLE deliveries ADD COLUMN held_at REAL;
