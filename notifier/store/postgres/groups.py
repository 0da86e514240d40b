"""Groups on PostgreSQL: :mod:`notifier.store.groupstore` in this backend's
transactions; a group's row is read ``FOR UPDATE`` before its members are counted."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from notifier.store.grouping import Tx
from notifier.store.groupstore import Enqueue, GroupStore
from notifier.store.postgres.connection import PostgresConnection, at
from notifier.store.postgres.outbox import enqueue
from notifier.store.rows import NewEvent


class PostgresGroups(PostgresConnection, GroupStore):
    """Groups in the shared database."""

    @contextmanager
    def _group_tx(self) -> Iterator[tuple[Tx, Enqueue]]:
        with self._transaction() as conn, conn.cursor() as cur:
            base = time.time()

            def put(events: Sequence[NewEvent], now: float) -> int:
                return enqueue(cur, [(None, event, now) for event in events]) if events else 0

            yield Tx(cur.execute, postgres=True, stamp=lambda t: at(t, base)), put

    @contextmanager
    def _group_read(self) -> Iterator[Tx]:
        with self._conn() as conn:
            yield Tx(conn.execute, postgres=True, stamp=at)
