"""Daemons' heartbeats and the leases they hold."""

from __future__ import annotations

import logging

from notifier.store.postgres.connection import AT, NOW, PostgresConnection, at
from notifier.store.rows import InstanceRecord

log = logging.getLogger("notifier.store.postgres")


# Renewal locks in id order and skips rows another thread is writing, so that it never
# deadlocks with the multi-row writes that follow a poll (also in id order). Jobs are
# found by the ids this daemon claimed and has not written yet (no index on lease_owner:
# see migration 0014), deliveries by their owner.
_RENEW = """
    WITH mine AS (
        SELECT id FROM {table} WHERE {which} lease_owner = %s AND lease_until >= {now}
        ORDER BY id FOR UPDATE SKIP LOCKED
    )
    UPDATE {table} SET lease_until = {now} + %s FROM mine WHERE {table}.id = mine.id
    RETURNING {table}.id
"""
_RENEW_JOBS = _RENEW.format(table="jobs", which="id = ANY(%s) AND", now=NOW).encode()
_RENEW_DELIVERIES = _RENEW.format(table="deliveries", which="", now=NOW).encode()


class PostgresLeases(PostgresConnection):
    """This daemon's heartbeat row, its leases renewed and given back."""

    def heartbeat(self, now: float) -> None:
        """Record that this daemon is alive (``instances`` shows it)."""
        instance = self._owner()
        with self._conn() as conn:
            conn.execute(
                f"""
                INSERT INTO instances (id, name, version, started_at, last_seen_at, lease)
                VALUES (%s, %s, %s, {AT}, {AT}, %s)
                ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at
                """,
                (instance.id, instance.name, instance.version, at(now), at(now), self.lease),
            )

    def renew_leases(self) -> None:
        """Extend every lease this daemon still holds by one lease from now."""
        owner = self._owner().id
        held = self._held.snapshot()
        with self._conn() as conn:
            if held:
                renewed = conn.execute(_RENEW_JOBS, (list(held), owner, self.lease)).fetchall()
                self._held.keep(held, {row[0] for row in renewed})
            conn.execute(_RENEW_DELIVERIES, (owner, self.lease))

    def retire(self, timeout: float | None = None) -> None:
        """A clean stop: give every lease back and remove this daemon's heartbeat row,
        waiting ``timeout`` at most for a connection."""
        owner = self._owner().id
        with self._transaction(timeout) as conn:
            for table in ("jobs", "deliveries"):
                conn.execute(
                    f"UPDATE {table} SET lease_owner = NULL, lease_until = NULL"
                    " WHERE lease_owner = %s",
                    (owner,),
                )
            conn.execute("DELETE FROM instances WHERE id = %s", (owner,))

    def instances(self, now: float) -> list[InstanceRecord]:
        """Every daemon that heartbeats here; alive if seen within its lease."""
        rows = self._query(
            f"SELECT name, started_at, last_seen_at, version, {AT} - last_seen_at <= lease"
            " FROM instances ORDER BY started_at, name",
            (at(now),),
        )
        return [InstanceRecord(*row) for row in rows]
