"""Callback health, shared by every daemon: failures counted, lanes paused and probed."""

from __future__ import annotations

import logging

from notifier.store.columns import HEALTH_COLUMNS
from notifier.store.postgres.connection import PostgresConnection
from notifier.store.rows import CallbackHealth, HealthChange
from notifier.store.shared import change_between, health_after

log = logging.getLogger("notifier.store.postgres")


class PostgresHealth(PostgresConnection):
    """Each callback's record, updated with every attempt under a row lock."""

    def note_attempt(
        self, callback: str, ok: bool, detail: str, pause_after: int, now: float
    ) -> HealthChange | None:
        """Count an attempt in its callback's health (shared by every instance); pause or
        resume its lane, giving the time spent paused back to ``give_up_after``."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO callback_health (callback) VALUES (%s) ON CONFLICT DO NOTHING",
                (callback,),
            )
            row = conn.execute(
                f"SELECT {HEALTH_COLUMNS} FROM callback_health WHERE callback = %s FOR UPDATE",
                (callback,),
            ).fetchone()
            before = CallbackHealth(*row) if row else CallbackHealth(callback, 0, None, None, None)
            after = health_after(before, ok, detail, pause_after, now)
            if after == before:
                return None
            conn.execute(
                "UPDATE callback_health SET consecutive_failures = %s, last_error = %s,"
                " paused_at = %s, last_probe_at = %s WHERE callback = %s",
                (*after[1:], callback),
            )
            if before.paused_at is not None and after.paused_at is None:
                conn.execute(
                    "UPDATE deliveries SET queued_at = queued_at + %s"
                    " WHERE callback = %s AND state = 'pending'",
                    (now - before.paused_at, callback),
                )
            counted = conn.execute(
                "SELECT count(*) FROM deliveries WHERE callback = %s AND state = 'pending'",
                (callback,),
            ).fetchone()
        return change_between(before, after, counted[0] if counted else 0)

    def claim_probe(self, callback: str, now: float, every: float) -> bool:
        """Whether this instance sends the paused callback's one probe now."""
        with self._conn() as conn:
            return bool(
                conn.execute(
                    "UPDATE callback_health SET last_probe_at = %s WHERE callback = %s"
                    " AND paused_at IS NOT NULL AND coalesce(last_probe_at, paused_at) <= %s",
                    (now, callback, now - every),
                ).rowcount
            )
