"""Digests: closing a callback's window into one outbox row, and a digest's members."""

from __future__ import annotations

from notifier.digests import DIGEST_EVENT, DigestSettings
from notifier.store.columns import DELIVERY_COLUMNS, delivery_row
from notifier.store.digesting import MEMBER_ORDER, closes, digest_row
from notifier.store.rows import Delivery
from notifier.store.sqlite.connection import SqliteConnection
from notifier.store.sqlite.silences import HELD


class SqliteDigests(SqliteConnection):
    """Digests on one file: the write lock (``BEGIN IMMEDIATE``) serialises closing."""

    def close_digests(self, callback: str, now: float, digest: DigestSettings) -> int:
        """Close every window of ``callback`` that is due (see
        :mod:`notifier.store.digesting`); returns how many digests were made."""
        gathered = digest.gathered()
        where = (
            "state = 'pending' AND callback = ? AND digest_id IS NULL AND next_attempt_at <= ?"
            f" AND event IN ({','.join('?' * len(gathered))}) AND NOT {HELD}"
        )
        params = (callback, now, *gathered, now, now)
        window = (
            f"SELECT count(*), min(next_attempt_at) FROM (SELECT next_attempt_at FROM"
            f" deliveries WHERE {where} {MEMBER_ORDER} LIMIT ?)"
        )
        count, opened = self._query(window, (*params, digest.max_events))[0]
        if not closes(count, opened, now, digest):
            return 0
        made = 0
        with self._transaction() as conn:
            while True:
                count, opened = conn.execute(window, (*params, digest.max_events)).fetchone()
                if not closes(count, opened, now, digest):
                    break
                members = conn.execute(
                    f"SELECT id, payload FROM deliveries WHERE {where} {MEMBER_ORDER} LIMIT ?",
                    (*params, digest.max_events),
                ).fetchall()
                ident, payload = digest_row(callback, members, now)
                conn.executemany(
                    "UPDATE deliveries SET state = 'digested', digest_id = ?,"
                    " next_attempt_at = NULL WHERE id = ? AND state = 'pending'",
                    [(ident, row[0]) for row in members],
                )
                conn.execute(
                    "INSERT OR IGNORE INTO deliveries (id, job_id, callback, event, payload,"
                    " state, created_at, queued_at, next_attempt_at)"
                    " VALUES (?, NULL, ?, ?, ?, 'pending', ?, ?, ?)",
                    (ident, callback, DIGEST_EVENT, payload, now, now, now),
                )
                made += 1
                if count < digest.max_events:
                    break
        return made

    def digest_members(self, digest_id: str) -> list[Delivery]:
        """The events a digest gathered, oldest first."""
        rows = self._query(
            f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE digest_id = ?"
            " ORDER BY created_at, id",
            (digest_id,),
        )
        return [delivery_row(row) for row in rows]
