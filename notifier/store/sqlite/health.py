"""Callback health: failures counted per callback, lanes paused and probed."""

from __future__ import annotations

from notifier.store.columns import HEALTH_COLUMNS
from notifier.store.rows import CallbackHealth, HealthChange
from notifier.store.shared import change_between, health_after
from notifier.store.sqlite.connection import SqliteConnection


class SqliteHealth(SqliteConnection):
    """Each callback's record, updated with every attempt."""

    def note_attempt(
        self, callback: str, ok: bool, detail: str, pause_after: int, now: float
    ) -> HealthChange | None:
        """Count an attempt in its callback's health; pause or resume its lane.

        On resuming, the time spent paused is given back to the pending deliveries'
        ``give_up_after`` window.
        """
        with self._transaction() as conn:
            row = conn.execute(
                f"SELECT {HEALTH_COLUMNS} FROM callback_health WHERE callback = ?", (callback,)
            ).fetchone()
            before = CallbackHealth(*row) if row else CallbackHealth(callback, 0, None, None, None)
            after = health_after(before, ok, detail, pause_after, now)
            if after == before and row:
                return None
            conn.execute(
                f"INSERT OR REPLACE INTO callback_health ({HEALTH_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                after,
            )
            if before.paused_at is not None and after.paused_at is None:
                conn.execute(
                    "UPDATE deliveries SET queued_at = queued_at + ?"
                    " WHERE callback = ? AND state = 'pending'",
                    (now - before.paused_at, callback),
                )
            pending = conn.execute(
                "SELECT count(*) FROM deliveries WHERE callback = ? AND state = 'pending'",
                (callback,),
            ).fetchone()[0]
        return change_between(before, after, pending)

    def claim_probe(self, callback: str, now: float, every: float) -> bool:
        """Whether this caller sends the paused callback's one probe now."""
        with self._transaction() as conn:
            return bool(
                conn.execute(
                    "UPDATE callback_health SET last_probe_at = ? WHERE callback = ?"
                    " AND paused_at IS NOT NULL"
                    " AND coalesce(last_probe_at, paused_at) <= ?",
                    (now, callback, now - every),
                ).rowcount
            )
