"""Groups on SQLite: :mod:`notifier.store.groupstore` in this backend's transactions
(``BEGIN IMMEDIATE`` serialises every writer, so no row lock is needed)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from notifier.store.grouping import Tx
from notifier.store.groupstore import Enqueue, GroupStore
from notifier.store.rows import NewEvent
from notifier.store.sqlite.connection import SqliteConnection
from notifier.store.sqlite.outbox import enqueue


class SqliteGroups(SqliteConnection, GroupStore):
    """Groups in the state file."""

    @contextmanager
    def _group_tx(self) -> Iterator[tuple[Tx, Enqueue]]:
        with self._transaction() as conn:

            def put(events: Sequence[NewEvent], now: float) -> int:
                return sum(enqueue(conn, None, event, now) for event in events)

            yield Tx(conn.execute, postgres=False), put

    @contextmanager
    def _group_read(self) -> Iterator[Tx]:
        yield Tx(self._conn().execute, postgres=False)
