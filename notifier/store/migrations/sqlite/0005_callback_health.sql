-- Each callback's health: consecutive failed attempts across its deliveries, and whether
-- its lane is paused (then only one probe per delivery.max_backoff is sent).
CREATE TABLE callback_health (
    callback TEXT PRIMARY KEY,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    paused_at REAL,
    last_probe_at REAL
);
