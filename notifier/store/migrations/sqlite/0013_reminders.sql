-- Reminders (issue 23): one row per first delivery of a remind_events event to a
-- callback with remind_every; next_at NULL once it ended (acked, re-registered,
-- unwatched, remind_max reached). Acks: the latest acknowledgement of a job or group.
CREATE TABLE reminders (
    delivery_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    first_sent_at REAL NOT NULL,
    sent INTEGER NOT NULL DEFAULT 0,
    next_at REAL
);
CREATE INDEX reminders_due ON reminders (next_at) WHERE next_at IS NOT NULL;
CREATE INDEX reminders_subject ON reminders (kind, subject) WHERE next_at IS NOT NULL;
CREATE TABLE acks (
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    author TEXT NOT NULL,
    at REAL NOT NULL,
    comment TEXT,
    PRIMARY KEY (kind, subject)
);
