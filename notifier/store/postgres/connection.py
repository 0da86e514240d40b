"""The database: the connection pool, times as offsets from the database's clock, the schema."""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from notifier.store.base import StoreError
from notifier.store.postgres import arrays
from notifier.store.rows import Instance, WatchedJob
from notifier.store.schema import migrations
from notifier.store.shared import Summaries, display_url

log = logging.getLogger("notifier.store.postgres")


NOW = "extract(epoch from now())"
AT = f"({NOW} + %s::float8)"  # a caller's time, as an offset from the caller's now
CHANNEL = "notifier_outbox"
# Advisory lock keys (any constants unique to this application).
MIGRATION_LOCK = 0x4E6F7469_66790001
SYNC_LOCK = 0x4E6F7469_66790002
HOUSEKEEPING_LOCK = 0x4E6F7469_66790003
POOL_SIZE = 10
STATEMENT_TIMEOUT_MS = 10_000
IDLE_IN_TRANSACTION_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_S = 5
# How long a caller waits for a pooled connection: more than a new connection may take,
# less than a stop waits for the ticks (daemon.STOP_WAIT), so that a stop during an
# outage ends in time (psycopg_pool's wait between two failed checks is not interrupted
# by closing the pool).
POOL_WAIT_S = CONNECT_TIMEOUT_S + 1.0
CLOSE_WAIT_S = 0.5  # what close() waits for the listener and the pool's connecting threads
# Dead connections are found by TCP keepalives rather than by a hung statement.
CONNECTION_OPTIONS: dict[str, Any] = {
    "connect_timeout": CONNECT_TIMEOUT_S,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
    "options": (
        f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"
        f" -c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT_MS}"
    ),
}


def at(timestamp: float | None, base: float | None = None) -> float | None:
    """The offset of a caller's time from the caller's now, for :data:`AT`.

    Rows written together pass one ``base`` (one reading of the clock), so that equal
    times stay equal and their order is kept (else each row would drift by microseconds).
    """
    if timestamp is None:
        return None
    return timestamp - (time.time() if base is None else base)


def check_quiet_socket(conn: psycopg.Connection[Any]) -> None:
    """The pool's check of a connection it hands out, without a round trip while the
    connection's socket has nothing to read.

    An idle connection's server sends nothing unless it goes away (a restart, a
    terminated backend: the socket reads its FATAL message or the close) or has news
    (a notice); only then is the connection asked an empty query, as psycopg_pool's own
    check does every time (~90 µs of CPU, 3 per poll round: BENCHMARKS.md, issue 25). A
    connection whose check raises is discarded and another one tried.
    """
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    if readable:
        ConnectionPool.check_connection(conn)


class HeldJobs:
    """The jobs this daemon claimed and has not written or given back yet (id: lease
    token), which lease renewal extends; shared by the poll and lease threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}

    def add(self, jobs: Sequence[WatchedJob]) -> None:
        with self._lock:
            self._held.update((job.id, job.lease) for job in jobs)

    def drop(self, ids: Iterable[str]) -> None:
        with self._lock:
            for job_id in ids:
                self._held.pop(job_id, None)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._held)

    def keep(self, seen: dict[str, int], renewed: set[str]) -> None:
        """Forget the jobs of ``seen`` whose lease renewal no longer found (lost, or
        written meanwhile), unless claimed again since."""
        with self._lock:
            for job_id, lease in seen.items():
                if job_id not in renewed and self._held.get(job_id) == lease:
                    del self._held[job_id]


def describe(exc: BaseException) -> str:
    """A database error on one line."""
    text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return text or type(exc).__name__


def qualified(columns: str, table: str) -> str:
    """``columns`` prefixed with ``table.``."""
    return ", ".join(f"{table}.{column.strip()}" for column in columns.split(","))


def returned(cur: psycopg.Cursor[Any]) -> list[Any]:
    """The first column of every result set an ``executemany(returning=True)`` made."""
    values: list[Any] = []
    while True:
        if cur.pgresult is not None and cur.description is not None:
            values.extend(row[0] for row in cur.fetchall())
        if not cur.nextset():
            return values


class PostgresConnection(Summaries):
    """A pool of connections to the database shared by the daemons, and its schema."""

    # Four requests' polls per claim and per write, as on SQLite: since claims are HOT
    # and a round's quiet polls one statement, client CPU per poll 0.68 and the
    # server's 0.62 of one request's (BENCHMARKS.md, issue 25; it was the reverse when
    # every poll was its own UPDATE and every claim rewrote the indexes).
    requests_per_write = 4

    def __init__(
        self, url: str, instance: Instance | None = None, lease: float = 30.0, migrate: bool = True
    ) -> None:
        self.url = url
        self.instance = instance
        self.lease = lease
        self._closing = threading.Event()
        self._held = HeldJobs()
        self._listener: threading.Thread | None = None
        # psycopg_pool logs every failed reconnection itself; our callers log one line
        # per retry, so its own lines would only repeat them.
        logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=POOL_SIZE,
            kwargs={"autocommit": True, **CONNECTION_OPTIONS},
            check=check_quiet_socket,
            configure=lambda conn: arrays.register(conn.adapters),
            timeout=POOL_WAIT_S,
            reconnect_timeout=CONNECT_TIMEOUT_S * 2,
            open=False,
            name="notifier",
        )
        try:
            self._check_reachable()
            self._pool.open(wait=False)
            if migrate:
                self.migrate()
        except StoreError:
            self.close()
            raise

    def _check_reachable(self) -> None:
        """Connect once now, so an unreachable database is one clear error at once."""
        try:
            with psycopg.connect(self.url, autocommit=True, **CONNECTION_OPTIONS) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            raise StoreError(
                f"cannot reach the state database {display_url(self.url)}: {describe(exc)}"
            ) from None

    @contextmanager
    def _conn(self, timeout: float | None = None) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection, waited for ``timeout`` at most (default the pool's)."""
        try:
            with self._pool.connection(timeout=timeout) as conn:
                yield conn
        except psycopg.Error as exc:  # PoolTimeout is an OperationalError too
            raise StoreError(f"state database: {describe(exc)}") from None

    @contextmanager
    def _transaction(self, timeout: float | None = None) -> Iterator[psycopg.Connection[Any]]:
        with self._conn(timeout) as conn, conn.transaction():
            yield conn

    def _query(self, sql: str, params: Sequence[Any] = (), binary: bool = False) -> list[Any]:
        """``sql``'s rows; ``binary``: sent by the server in binary (no text to parse: a
        claim's 200 rows of numbers decode in two thirds of the time, BENCHMARKS.md)."""
        with self._conn() as conn, conn.cursor(binary=binary) as cur:
            return cur.execute(sql, params).fetchall()  # type: ignore[arg-type]

    def _owner(self) -> Instance:
        if self.instance is None:
            raise StoreError("only a running daemon claims work")
        return self.instance

    def close(self) -> None:
        """Stop listening and close every connection."""
        self._closing.set()
        if self._listener is not None:  # a daemon thread: left behind if inside a connect
            self._listener.join(timeout=CLOSE_WAIT_S)
        self._pool.close(timeout=CLOSE_WAIT_S)

    def migrate(self) -> int:
        """Apply the numbered steps not yet applied; returns how many were.

        Each step is one transaction under an advisory lock, so daemons that start
        together apply each step once.
        """
        steps = migrations("postgres")
        applied = 0
        with self._conn() as conn:
            for number, name, sql in steps:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                    conn.execute(
                        "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                        " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
                    )
                    newest = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
                    if newest and newest[0] is not None and newest[0] > steps[-1][0]:
                        raise StoreError(
                            f"the state database's schema is version {newest[0]}, newer than"
                            f" this datasaur-notifier knows ({steps[-1][0]}): upgrade it"
                        )
                    done = conn.execute(
                        "SELECT 1 FROM schema_migrations WHERE version = %s", (number,)
                    ).fetchone()
                    if done:
                        continue
                    conn.execute(sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (number, name),
                    )
                    applied += 1
                    log.info("state database: applied migration %04d_%s", number, name)
        return applied
