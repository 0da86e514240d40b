"""The SQLite file: connections (one per thread, WAL), transactions, the schema."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from notifier.store.base import StoreError
from notifier.store.rows import Instance
from notifier.store.schema import migrations
from notifier.store.shared import Summaries

BUSY_TIMEOUT_MS = 10_000


def statements(script: str) -> Iterator[str]:
    """The statements of an SQL script one by one, to run inside a transaction of ours
    (``executescript`` would commit it first)."""
    statement = ""
    for piece in re.split(r"(?<=;)", script):
        statement += piece
        if sqlite3.complete_statement(statement):
            yield statement
            statement = ""
    if statement.strip():
        yield statement


class SqliteConnection(Summaries):
    """A SQLite file in WAL mode, one connection per thread, and its schema."""

    # Four requests' polls per transaction: a quarter of the fsyncs (synchronous=FULL)
    # and of the WAL frames (BENCHMARKS.md).
    requests_per_write = 4

    def __init__(self, path: Path, instance: Instance | None = None) -> None:
        self.path = path
        self.instance = instance
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.migrate()
        except StoreError:
            self.close()
            raise
        except OSError as exc:
            self.close()
            raise StoreError(f"cannot use state file {path}: {exc}") from None

    def migrate(self) -> int:
        """Apply the numbered steps not yet applied (``PRAGMA user_version`` counts them).

        One ``BEGIN IMMEDIATE`` transaction re-reads the version under the write lock and
        applies every missing step, so processes that open a new state file at once (a
        daemon starting, a ``status`` run beside it) apply each step exactly once.
        """
        steps = migrations("sqlite")
        try:
            if self._version() >= steps[-1][0]:
                return 0
            with self._transaction() as conn:
                pending = [(number, sql) for number, _, sql in steps if number > self._version()]
                for _, sql in pending:
                    for statement in statements(sql):
                        conn.execute(statement)
                if pending:
                    conn.execute(f"PRAGMA user_version = {pending[-1][0]}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot use state file {self.path}: {exc}") from None
        return len(pending)

    def _version(self) -> int:
        version: int = self._conn().execute("PRAGMA user_version").fetchone()[0]
        return version

    # --- connections and transactions ---------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                _switch_to_wal(conn)
                conn.execute("PRAGMA synchronous = FULL")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot use state file {self.path}: {exc}") from None
            self._local.conn, self._local.durable = conn, True
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _transaction(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction; ``BEGIN IMMEDIATE`` so that the busy timeout applies.

        ``durable=False`` (a round of quiet polls: schedules only) commits without the
        fsync (``synchronous=NORMAL``). A power cut may then undo it, and the jobs are
        polled again sooner. Nothing else is lost: the WAL is one file, so the next
        durable commit's fsync makes every earlier frame durable too.
        """
        conn = self._conn()
        if durable != self._local.durable:
            conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
            self._local.durable = durable
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.DatabaseError):  # e.g. a corrupt page found mid-write
                raise StoreError(f"cannot use state file {self.path}: {exc}") from None
            raise

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot read state file {self.path}: {exc}") from None

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()


def _switch_to_wal(conn: sqlite3.Connection) -> None:
    """``PRAGMA journal_mode = WAL``, retried while another process holds the file's lock:
    the switch can answer "database is locked" at once, without the busy timeout, when
    several processes open a new state file together."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
