-- Silences (issue 23): a matcher (callback, or labels as a JSON object), a span, who
-- and why. A held delivery is in state 'silenced' with the silence's id, and held_at:
-- the time it spent held does not count toward give_up_after.
CREATE TABLE silences (
    id text PRIMARY KEY,
    callback text,
    match_labels text,
    starts_at float8 NOT NULL,
    ends_at float8 NOT NULL,
    author text NOT NULL,
    comment text NOT NULL
);
CREATE INDEX silences_ends ON silences(ends_at);
ALTER TABLE deliveries ADD COLUMN silence_id text;
ALTER TABLE deliveries ADD COLUMN held_at float8;
