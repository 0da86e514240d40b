-- Daemons' heartbeats, for the `instances` command (one row while the daemon runs).
CREATE TABLE IF NOT EXISTS instances (
    id TEXT PRIMARY KEY,          -- random per process
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    started_at REAL NOT NULL,
    last_seen_at REAL NOT NULL,
    lease REAL NOT NULL           -- alive while last seen within this many seconds
);
