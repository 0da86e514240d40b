"""The event feed on PostgreSQL: appends serialised, so that no reader skips an event.

A ``bigserial`` is handed out at insert but the row becomes visible at commit: had two
daemons appended freely, a reader could see cursor 11 before 10 commits and move past
10 forever. So every append takes :data:`FEED_LOCK` (an advisory lock held until its
transaction ends) just before inserting, as the transaction's last step: cursors are
then handed out in commit order, and once a reader sees cursor n every cursor below it
has committed (or rolled back). The lock is held only from the insert to the commit
(BENCHMARKS.md measures what it costs). Times are the database's, as everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import psycopg

from notifier.store.feed import FEED_COLUMNS, FeedBounds, FeedFilter, FeedPage, feed_event
from notifier.store.postgres.connection import AT, PostgresConnection, at

FEED_LOCK = 0x4E6F7469_66790004


def append(cur: psycopg.Cursor[Any], rows: Sequence[tuple[Any, ...]], base: float) -> None:
    """Append :func:`~notifier.store.feed.log_row` rows with their times (offsets from
    ``base``), under :data:`FEED_LOCK`; must be the transaction's last statement."""
    if not rows:
        return
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (FEED_LOCK,))
    cur.executemany(
        f"""
        INSERT INTO events (id, type, job_id, grp, labels, occurrence, payload, created_at)
        VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s, {AT})
        ON CONFLICT DO NOTHING
        """,
        [(*row[:-1], at(row[-1], base)) for row in rows],
    )


def _matching(where: FeedFilter) -> tuple[str, list[Any]]:
    sql, params = "", list[Any]()
    if where.types:
        sql += " AND type = ANY(%s)"
        params.append(list(where.types))
    if where.group is not None:
        sql += " AND grp = %s"
        params.append(where.group)
    if where.labels:
        sql += " AND labels @> %s::jsonb"
        params.append(json.dumps(dict(where.labels)))
    return sql, params


def prune(conn: psycopg.Connection[Any], cutoff: float, batch: int) -> int:
    """Remove up to ``batch`` events recorded before ``cutoff`` (in a transaction of the
    caller's); the horizon moves to the highest cursor removed."""
    found = conn.execute(
        "SELECT max(cursor) FROM (SELECT cursor FROM events"
        f" WHERE created_at < {AT} ORDER BY cursor LIMIT %s) oldest",
        (at(cutoff), batch),
    ).fetchone()
    through = None if found is None else found[0]
    if through is None:
        return 0
    removed = conn.execute("DELETE FROM events WHERE cursor <= %s", (through,)).rowcount
    conn.execute(
        "INSERT INTO event_horizon VALUES (1, %s) ON CONFLICT (only_row) DO UPDATE"
        " SET pruned_through = greatest(event_horizon.pruned_through, excluded.pruned_through)",
        (through,),
    )
    return int(removed)


class PostgresFeed(PostgresConnection):
    """Reading the event log; retention's horizon."""

    def read_events(self, after: int, limit: int, where: FeedFilter) -> FeedPage:
        """Up to ``limit`` events after cursor ``after`` that match ``where``.

        The head is read first: every cursor up to it is final (see the module), so the
        page, read in a later snapshot, misses none of them.
        """
        sql, params = _matching(where)
        with self._conn() as conn:
            head = conn.execute("SELECT coalesce(max(cursor), 0) FROM events").fetchone()
            rows = conn.execute(
                f"SELECT {FEED_COLUMNS} FROM events WHERE cursor > %s AND cursor <= %s{sql}"
                " ORDER BY cursor LIMIT %s",
                (after, head[0] if head else 0, *params, limit),
            ).fetchall()
        return FeedPage([feed_event(row) for row in rows], int(head[0]) if head else 0)

    def event_bounds(self) -> FeedBounds:
        """The oldest kept cursor, retention's horizon and the head."""
        rows = self._query(
            "SELECT (SELECT min(cursor) FROM events), (SELECT max(cursor) FROM events),"
            " (SELECT pruned_through FROM event_horizon)"
        )
        oldest, newest, pruned = rows[0]
        pruned = pruned or 0
        return FeedBounds(oldest, int(pruned), max(int(newest or 0), int(pruned)))
