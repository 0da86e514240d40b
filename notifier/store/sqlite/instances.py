"""One daemon per file: no leases, a heartbeat row for ``instances``."""

from __future__ import annotations

from collections.abc import Callable

from notifier.ratelimit import RateLimiter
from notifier.store.rows import InstanceRecord
from notifier.store.sqlite.connection import SqliteConnection


class SqliteInstances(SqliteConnection):
    """This daemon's heartbeat, its own rate limit, and no cross-process wake-ups."""

    def renew_leases(self) -> None:
        """Nothing to renew: claims take no lease here."""

    def heartbeat(self, now: float) -> None:
        """Record that this daemon is alive; the file lock means it is the only one."""
        instance = self.instance
        if instance is None:
            return
        with self._transaction() as conn:
            conn.execute("DELETE FROM instances WHERE id != ?", (instance.id,))
            conn.execute(
                """
                INSERT INTO instances (id, name, version, started_at, last_seen_at, lease)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at
                """,
                (instance.id, instance.name, instance.version, now, now, instance.lease),
            )

    def retire(self, timeout: float | None = None) -> None:
        """A clean stop: this daemon's heartbeat row goes (a local file: no ``timeout``)."""
        if self.instance is not None:
            with self._transaction() as conn:
                conn.execute("DELETE FROM instances WHERE id = ?", (self.instance.id,))

    def instances(self, now: float) -> list[InstanceRecord]:
        """The daemon that heartbeats into this file, if any; alive if seen within a lease."""
        rows = self._query(
            "SELECT name, started_at, last_seen_at, version, lease FROM instances"
            " ORDER BY started_at"
        )
        return [
            InstanceRecord(name, started, seen, version, now - seen <= lease)
            for name, started, seen, version, lease in rows
        ]

    def rate_limiter(self, rate: float) -> RateLimiter:
        """The cap is this process's own: no other daemon shares the file."""
        return RateLimiter(rate)

    def listen(self, wake: Callable[[], None]) -> None:
        """No notifications between processes here: the delivery tick finds new rows."""
