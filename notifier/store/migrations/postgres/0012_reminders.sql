-- Reminders (issue 23): one row per first delivery of a remind_events event to a
-- callback with remind_every; next_at NULL once it ended (acked, re-registered,
-- unwatched, remind_max reached). Acks: the latest acknowledgement of a job or group.
CREATE TABLE reminders (
    delivery_id text PRIMARY KEY,
    kind text NOT NULL,
    subject text NOT NULL,
    first_sent_at float8 NOT NULL,
    sent integer NOT NULL DEFAULT 0,
    next_at float8
);
CREATE INDEX reminders_due ON reminders (next_at) WHERE next_at IS NOT NULL;
CREATE INDEX reminders_subject ON reminders (kind, subject) WHERE next_at IS NOT NULL;
CREATE TABLE acks (
    kind text NOT NULL,
    subject text NOT NULL,
    author text NOT NULL,
    at float8 NOT NULL,
    comment text,
    PRIMARY KEY (kind, subject)
);
