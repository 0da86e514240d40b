"""The event feed on SQLite: appended with the outbox rows, read by cursor.

One writer at a time (``BEGIN IMMEDIATE``) means cursors are handed out and committed
in the same order: a reader that sees cursor n has seen every event before it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from notifier.store.base import StoreError
from notifier.store.feed import FEED_COLUMNS, FeedBounds, FeedFilter, FeedPage, feed_event
from notifier.store.sqlite.connection import SqliteConnection


def append(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]], now: float) -> None:
    """Append :func:`~notifier.store.feed.log_row` rows recorded at ``now`` (an event
    already in the log is not appended again)."""
    conn.executemany(
        "INSERT OR IGNORE INTO events (id, type, job_id, grp, labels, occurrence, payload,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(*row, now) for row in rows],
    )


def _matching(where: FeedFilter) -> tuple[str, list[Any]]:
    sql, params = "", list[Any]()
    if where.types:
        sql += f" AND type IN ({','.join('?' * len(where.types))})"
        params += where.types
    if where.group is not None:
        sql += " AND grp = ?"
        params.append(where.group)
    for key, value in where.labels:
        sql += " AND json_extract(labels, ?) = ?"
        params += [f'$."{key}"', value]
    return sql, params


def prune(conn: sqlite3.Connection, cutoff: float, batch: int) -> int:
    """Remove up to ``batch`` events recorded before ``cutoff`` (in a transaction of the
    caller's); the horizon moves to the highest cursor removed."""
    through = conn.execute(
        "SELECT max(cursor) FROM (SELECT cursor FROM events WHERE created_at < ?"
        " ORDER BY cursor LIMIT ?)",
        (cutoff, batch),
    ).fetchone()[0]
    if through is None:
        return 0
    removed = conn.execute("DELETE FROM events WHERE cursor <= ?", (through,)).rowcount
    conn.execute(
        "INSERT INTO event_horizon VALUES (1, ?) ON CONFLICT (only_row)"
        " DO UPDATE SET pruned_through = max(pruned_through, excluded.pruned_through)",
        (through,),
    )
    return int(removed)


class SqliteFeed(SqliteConnection):
    """Reading the event log; retention's horizon."""

    def read_events(self, after: int, limit: int, where: FeedFilter) -> FeedPage:
        """Up to ``limit`` events after cursor ``after`` that match ``where``."""
        conn = self._conn()
        try:
            conn.execute("BEGIN")  # one snapshot for the head and the page
            head = conn.execute("SELECT coalesce(max(cursor), 0) FROM events").fetchone()[0]
            sql, params = _matching(where)
            rows = conn.execute(
                f"SELECT {FEED_COLUMNS} FROM events WHERE cursor > ?{sql} ORDER BY cursor LIMIT ?",
                (after, *params, limit),
            ).fetchall()
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(f"cannot read state file {self.path}: {exc}") from None
        return FeedPage([feed_event(row) for row in rows], int(head))

    def event_bounds(self) -> FeedBounds:
        """The oldest kept cursor, retention's horizon and the head."""
        rows = self._query(
            "SELECT (SELECT min(cursor) FROM events), (SELECT max(cursor) FROM events),"
            " (SELECT pruned_through FROM event_horizon)"
        )
        oldest, newest, pruned = rows[0]
        pruned = pruned or 0
        return FeedBounds(oldest, pruned, max(newest or 0, pruned))
