"""Digests shared by daemons: one closer per callback at a time, one digest per window."""

from __future__ import annotations

import time
from typing import Any

import psycopg

from notifier.digests import DIGEST_EVENT, DigestSettings
from notifier.store.columns import DELIVERY_COLUMNS, delivery_row
from notifier.store.digesting import MEMBER_ORDER, closes, digest_row
from notifier.store.postgres.connection import AT, CHANNEL, PostgresConnection
from notifier.store.postgres.silences import HELD
from notifier.store.rows import Delivery

# The pending, unheld events a callback's digest gathers, due by the caller's now.
_MEMBERS = f"""
    FROM deliveries
    WHERE state = 'pending' AND callback = %s AND digest_id IS NULL
      AND next_attempt_at <= {AT} AND event = ANY(%s) AND NOT {HELD}
"""
_WINDOW = f"""
    SELECT count(*), min(next_attempt_at) - {AT}
    FROM (SELECT next_attempt_at {_MEMBERS} {MEMBER_ORDER} LIMIT %s) window_events
"""


class PostgresDigests(PostgresConnection):
    """Closing windows: a transaction-scoped advisory lock per callback makes the
    daemons take turns (one that finds it taken leaves the window to the holder), and
    the members are locked ``FOR UPDATE`` against a silence's sweep."""

    def close_digests(self, callback: str, now: float, digest: DigestSettings) -> int:
        """Close every window of ``callback`` that is due (see
        :mod:`notifier.store.digesting`); returns how many digests this daemon made."""
        gathered = list(digest.gathered())
        made = 0
        if not self._window_closes(callback, now, digest, gathered, None):
            return 0
        with self._transaction() as conn:
            locked = conn.execute(
                "SELECT pg_try_advisory_xact_lock(hashtext('digest:' || %s))", (callback,)
            ).fetchone()
            if locked is None or not locked[0]:
                return 0  # another daemon is closing this callback's window
            base = time.time()
            while self._window_closes(callback, now, digest, gathered, conn, base):
                offset = now - base
                members = conn.execute(
                    f"SELECT id, payload {_MEMBERS} {MEMBER_ORDER} LIMIT %s FOR UPDATE",
                    (callback, offset, gathered, offset, offset, digest.max_events),
                ).fetchall()
                ident, payload = digest_row(callback, members, now)
                conn.execute(
                    "UPDATE deliveries SET state = 'digested', digest_id = %s,"
                    " next_attempt_at = NULL WHERE id = ANY(%s) AND state = 'pending'",
                    (ident, [row[0] for row in members]),
                )
                conn.execute(
                    f"""
                    INSERT INTO deliveries (id, job_id, callback, event, payload, state,
                                            created_at, queued_at, next_attempt_at)
                    VALUES (%s, NULL, %s, %s, %s, 'pending', {AT}, {AT}, {AT})
                    ON CONFLICT (id) DO NOTHING
                    """,
                    (ident, callback, DIGEST_EVENT, payload, offset, offset, offset),
                )
                made += 1
                if len(members) < digest.max_events:
                    break
            if made:
                conn.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
        return made

    def _window_closes(
        self,
        callback: str,
        now: float,
        digest: DigestSettings,
        gathered: list[str],
        conn: psycopg.Connection[Any] | None,
        base: float | None = None,
    ) -> bool:
        """Whether the callback's oldest window is due (read in ``conn`` if given)."""
        offset = now - (time.time() if base is None else base)
        params = (offset, callback, offset, gathered, offset, offset, digest.max_events)
        if conn is None:
            rows = self._query(_WINDOW, params)
        else:
            rows = conn.execute(_WINDOW, params).fetchall()
        count, age = rows[0]
        # The first event's due time, in the caller's clock (the database keeps its own).
        return closes(int(count), None if age is None else now + float(age), now, digest)

    def digest_members(self, digest_id: str) -> list[Delivery]:
        """The events a digest gathered, oldest first."""
        rows = self._query(
            f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE digest_id = %s"
            " ORDER BY created_at, id",
            (digest_id,),
        )
        return [delivery_row(row) for row in rows]
