-- Each callback's health: consecutive failed attempts across its deliveries, and whether
-- its lane is paused (then only one probe per delivery.max_backoff is sent, by whichever
-- instance claims it).
CREATE TABLE callback_health (
    callback text PRIMARY KEY,
    consecutive_failures integer NOT NULL DEFAULT 0,
    last_error text,
    paused_at double precision,
    last_probe_at double precision
);
