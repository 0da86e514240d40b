"""The persisted state: watched jobs and the notification outbox, in SQLite.

The poller and the delivery loop only use the :class:`Store` protocol, so another
backend (PostgreSQL) can be added without touching them. Every change that must be
atomic -- a job's new status together with its outbox rows, an attempt together with
its delivery's new state -- is one ``BEGIN IMMEDIATE`` transaction.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from notifier.config import JobSpec

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    name TEXT,
    notify TEXT,                 -- JSON list of callback names; NULL = every callback
    on_status TEXT NOT NULL,     -- JSON list of statuses that fire an event
    source TEXT NOT NULL,        -- 'config' | 'cli'
    state TEXT NOT NULL,         -- 'watching' | 'done' | 'expired' | 'unwatched'
    unwatched_by TEXT,           -- 'config' | 'operator' while state = 'unwatched'
    status TEXT,
    progress INTEGER,
    job TEXT,                    -- JSON: the job as Datasaur last returned it
    registered_at REAL NOT NULL,
    last_polled_at REAL,
    next_poll_at REAL,
    poll_interval REAL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs(next_poll_at) WHERE state = 'watching';
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,         -- the webhook-id
    job_id TEXT NOT NULL,
    callback TEXT NOT NULL,
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,         -- 'pending' | 'delivered' | 'dead'
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at REAL NOT NULL,
    queued_at REAL NOT NULL,     -- start of the give_up_after window (reset by redeliver)
    next_attempt_at REAL,
    delivered_at REAL,
    UNIQUE (job_id, callback, event)
);
CREATE INDEX IF NOT EXISTS deliveries_due
    ON deliveries(callback, next_attempt_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries(state, created_at);
CREATE TABLE IF NOT EXISTS attempts (
    delivery_id TEXT NOT NULL REFERENCES deliveries(id),
    attempted_at REAL NOT NULL,
    duration REAL NOT NULL,
    ok INTEGER NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_delivery ON attempts(delivery_id);
"""


class StoreError(Exception):
    """The state file cannot be opened or used."""


@dataclass(frozen=True)
class WatchedJob:
    """A row of the watch list."""

    id: str
    name: str | None
    notify: list[str] | None
    on_status: tuple[str, ...]
    source: str
    state: str
    status: str | None
    progress: int | None
    job: dict[str, Any] | None
    registered_at: float
    last_polled_at: float | None
    next_poll_at: float | None
    poll_interval: float | None
    last_error: str | None


@dataclass(frozen=True)
class NewEvent:
    """An event to put in the outbox, once per target callback."""

    event: str
    payload: dict[str, Any]
    callbacks: Sequence[str]


@dataclass(frozen=True)
class JobUpdate:
    """What one poll decided about one job."""

    job_id: str
    state: str
    status: str | None
    progress: int | None
    job: dict[str, Any] | None
    polled_at: float
    next_poll_at: float | None
    poll_interval: float | None
    last_error: str | None
    events: Sequence[NewEvent] = field(default=())


@dataclass(frozen=True)
class Delivery:
    """A row of the outbox."""

    id: str
    job_id: str
    callback: str
    event: str
    payload: dict[str, Any]
    state: str
    attempts: int
    last_error: str | None
    created_at: float
    queued_at: float
    next_attempt_at: float | None
    delivered_at: float | None


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt and the state it leaves the delivery in."""

    delivery_id: str
    attempted_at: float
    duration: float
    ok: bool
    detail: str
    state: str
    next_attempt_at: float | None


class AttemptRecord(NamedTuple):
    """A past attempt, as ``deliveries --id`` shows it."""

    attempted_at: float
    duration: float
    ok: bool
    detail: str


class Store(Protocol):
    """What the daemon and the CLI need from persistence."""

    def sync_config_jobs(self, specs: Iterable[JobSpec], now: float) -> None: ...
    def watch(self, spec: JobSpec, now: float) -> WatchedJob: ...
    def unwatch(self, job_id: str) -> WatchedJob | None: ...
    def due_jobs(self, now: float, limit: int) -> list[WatchedJob]: ...
    def apply_polls(self, updates: Sequence[JobUpdate]) -> int: ...
    def due_deliveries(
        self, callback: str, now: float, limit: int, exclude: Iterable[str]
    ) -> list[Delivery]: ...
    def record_attempt(self, attempt: Attempt) -> None: ...
    def attempts(self, delivery_id: str) -> list[AttemptRecord]: ...
    def redeliver(self, delivery_id: str, now: float) -> Delivery | None: ...
    def jobs(self, state: str | None = None, job_id: str | None = None) -> list[WatchedJob]: ...
    def deliveries(
        self, state: str | None = None, job_id: str | None = None, delivery_id: str | None = None
    ) -> list[Delivery]: ...
    def counts(self) -> dict[str, dict[str, int]]: ...
    def oldest_pending(self) -> float | None: ...
    def pending_by_callback(self) -> dict[str, int]: ...
    def close(self) -> None: ...


def new_delivery_id() -> str:
    """A ``webhook-id``: unique, stable for the delivery's lifetime."""
    return "msg_" + uuid.uuid4().hex


_JOB_COLUMNS = (
    "id, name, notify, on_status, source, state, status, progress, job, registered_at, "
    "last_polled_at, next_poll_at, poll_interval, last_error"
)
_DELIVERY_COLUMNS = (
    "id, job_id, callback, event, payload, state, attempts, last_error, created_at, "
    "queued_at, next_attempt_at, delivered_at"
)


@functools.lru_cache(maxsize=256)
def _statuses(text: str) -> tuple[str, ...]:
    """``on_status`` decoded; the same few values recur on every row, so cached."""
    return tuple(json.loads(text))


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _job(row: sqlite3.Row) -> WatchedJob:
    return WatchedJob(
        id=row[0],
        name=row[1],
        notify=_loads(row[2]),
        on_status=_statuses(row[3]),
        source=row[4],
        state=row[5],
        status=row[6],
        progress=row[7],
        job=_loads(row[8]),
        registered_at=row[9],
        last_polled_at=row[10],
        next_poll_at=row[11],
        poll_interval=row[12],
        last_error=row[13],
    )


def _delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(
        id=row[0],
        job_id=row[1],
        callback=row[2],
        event=row[3],
        payload=json.loads(row[4]),
        state=row[5],
        attempts=row[6],
        last_error=row[7],
        created_at=row[8],
        queued_at=row[9],
        next_attempt_at=row[10],
        delivered_at=row[11],
    )


def _filters(**conditions: str | None) -> tuple[str, list[str]]:
    pairs = [(column, value) for column, value in conditions.items() if value is not None]
    where = " AND ".join(f"{column} = ?" for column, _ in pairs)
    return (f" WHERE {where}" if where else ""), [value for _, value in pairs]


class SqliteStore:
    """:class:`Store` on one SQLite file in WAL mode; one connection per thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn().executescript(SCHEMA + f"PRAGMA user_version = {SCHEMA_VERSION};")
        except StoreError:
            self.close()
            raise
        except (OSError, sqlite3.Error) as exc:
            self.close()
            raise StoreError(f"cannot use state file {path}: {exc}") from None

    # --- connections and transactions ---------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = FULL")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot use state file {self.path}: {exc}") from None
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; ``BEGIN IMMEDIATE`` so that the busy timeout applies."""
        conn = self._conn()
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

    # --- the watch list -----------------------------------------------------------

    def _upsert(self, conn: sqlite3.Connection, spec: JobSpec, source: str, now: float) -> None:
        notify = None if spec.notify is None else json.dumps(spec.notify)
        on_status = json.dumps([str(status) for status in spec.on_status])
        conn.execute(
            """
            INSERT INTO jobs (id, name, notify, on_status, source, state, registered_at,
                              next_poll_at)
            VALUES (?, ?, ?, ?, ?, 'watching', ?, ?)
            ON CONFLICT (id) DO UPDATE SET
                name = excluded.name, notify = excluded.notify,
                on_status = excluded.on_status, source = excluded.source
            """,
            (spec.id, spec.name, notify, on_status, source, now, now),
        )

    def _rewatch(self, conn: sqlite3.Connection, job_id: str, now: float, by: str) -> None:
        """Watch again a job that was unwatched (by ``by``) or expired."""
        conn.execute(
            """
            UPDATE jobs SET state = 'watching', unwatched_by = NULL, registered_at = ?,
                            next_poll_at = ?, poll_interval = NULL, last_error = NULL
            WHERE id = ? AND (state = 'expired' AND ? = 'operator'
                              OR state = 'unwatched' AND unwatched_by IN ('config', ?))
            """,
            (now, now, job_id, by, by),
        )

    def sync_config_jobs(self, specs: Iterable[JobSpec], now: float) -> None:
        """Make the config's jobs watched and unwatch config jobs no longer listed.

        Jobs added with ``watch`` are left alone; a job an operator unwatched stays so.
        """
        specs = list(specs)
        with self._transaction() as conn:
            cli_jobs = {row[0] for row in conn.execute("SELECT id FROM jobs WHERE source='cli'")}
            for spec in specs:
                if spec.id in cli_jobs:
                    continue
                self._upsert(conn, spec, "config", now)
                self._rewatch(conn, spec.id, now, "config")
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS listed (id TEXT PRIMARY KEY)")
            conn.execute("DELETE FROM listed")
            conn.executemany("INSERT OR IGNORE INTO listed VALUES (?)", [(s.id,) for s in specs])
            conn.execute(
                """
                UPDATE jobs SET state = 'unwatched', unwatched_by = 'config', next_poll_at = NULL
                WHERE source = 'config' AND state = 'watching'
                  AND id NOT IN (SELECT id FROM listed)
                """
            )

    def watch(self, spec: JobSpec, now: float) -> WatchedJob:
        """Add (or update) a job from the CLI; it survives config reloads."""
        with self._transaction() as conn:
            self._upsert(conn, spec, "cli", now)
            self._rewatch(conn, spec.id, now, "operator")
        return self.jobs(job_id=spec.id)[0]

    def unwatch(self, job_id: str) -> WatchedJob | None:
        """Stop polling a job (unless it is already done); None if it is unknown."""
        with self._transaction() as conn:
            conn.execute(
                """
                UPDATE jobs SET state = 'unwatched', unwatched_by = 'operator', next_poll_at = NULL
                WHERE id = ? AND state != 'done'
                """,
                (job_id,),
            )
        found = self.jobs(job_id=job_id)
        return found[0] if found else None

    def due_jobs(self, now: float, limit: int) -> list[WatchedJob]:
        """Watched jobs whose next poll is due, most overdue first.

        ``INDEXED BY``: without statistics SQLite would otherwise pick ``jobs_state`` and
        sort every watched job on every call (17 ms at 100,000 jobs, even with none due).
        """
        rows = self._query(
            f"SELECT {_JOB_COLUMNS} FROM jobs INDEXED BY jobs_due"
            " WHERE state = 'watching' AND next_poll_at <= ? ORDER BY next_poll_at LIMIT ?",
            (now, limit),
        )
        return [_job(row) for row in rows]

    def apply_polls(self, updates: Sequence[JobUpdate]) -> int:
        """Record a batch of polls and their outbox rows in one transaction.

        Returns the number of outbox rows created; an event already in the outbox for a
        (job, callback) is not added again.
        """
        created = 0
        with self._transaction() as conn:
            conn.executemany(
                """
                UPDATE jobs SET state = ?, status = ?, progress = ?, job = ?,
                    last_polled_at = ?, next_poll_at = ?, poll_interval = ?, last_error = ?
                WHERE id = ? AND state = 'watching'
                """,
                [
                    (
                        u.state,
                        u.status,
                        u.progress,
                        None if u.job is None else json.dumps(u.job),
                        u.polled_at,
                        u.next_poll_at,
                        u.poll_interval,
                        u.last_error,
                        u.job_id,
                    )
                    for u in updates
                ],
            )
            for update in updates:
                for event in update.events:
                    created += self._enqueue(conn, update.job_id, event, update.polled_at)
        return created

    def _enqueue(self, conn: sqlite3.Connection, job_id: str, event: NewEvent, now: float) -> int:
        payload = json.dumps(event.payload, separators=(",", ":"))
        rows = [
            (new_delivery_id(), job_id, callback, event.event, payload, now, now, now)
            for callback in event.callbacks
        ]
        before = conn.total_changes
        conn.executemany(
            """
            INSERT OR IGNORE INTO deliveries
                (id, job_id, callback, event, payload, state, created_at, queued_at,
                 next_attempt_at)
            VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)
            """,
            rows,
        )
        return conn.total_changes - before

    def jobs(self, state: str | None = None, job_id: str | None = None) -> list[WatchedJob]:
        """The watch list, optionally filtered, in registration order."""
        where, params = _filters(state=state, id=job_id)
        rows = self._query(f"SELECT {_JOB_COLUMNS} FROM jobs{where} ORDER BY registered_at", params)
        return [_job(row) for row in rows]

    # --- the outbox ---------------------------------------------------------------

    def due_deliveries(
        self, callback: str, now: float, limit: int, exclude: Iterable[str]
    ) -> list[Delivery]:
        """Pending deliveries of ``callback`` due now, except those being sent."""
        exclude = list(exclude)
        marks = ",".join("?" * len(exclude))
        rows = self._query(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE state = 'pending' AND callback = ?"
            f" AND next_attempt_at <= ? AND id NOT IN ({marks}) ORDER BY next_attempt_at LIMIT ?",
            (callback, now, *exclude, limit),
        )
        return [_delivery(row) for row in rows]

    def record_attempt(self, attempt: Attempt) -> None:
        """Store an attempt and its delivery's new state together."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO attempts VALUES (?, ?, ?, ?, ?)",
                (
                    attempt.delivery_id,
                    attempt.attempted_at,
                    attempt.duration,
                    int(attempt.ok),
                    attempt.detail,
                ),
            )
            conn.execute(
                """
                UPDATE deliveries SET attempts = attempts + 1, state = ?, next_attempt_at = ?,
                    last_error = ?, delivered_at = ?
                WHERE id = ? AND state = 'pending'
                """,
                (
                    attempt.state,
                    attempt.next_attempt_at,
                    None if attempt.ok else attempt.detail,
                    attempt.attempted_at if attempt.ok else None,
                    attempt.delivery_id,
                ),
            )

    def redeliver(self, delivery_id: str, now: float) -> Delivery | None:
        """Queue a delivery again under the same id; None if there is no such delivery."""
        with self._transaction() as conn:
            conn.execute(
                """
                UPDATE deliveries SET state = 'pending', next_attempt_at = ?, queued_at = ?,
                                      delivered_at = NULL
                WHERE id = ?
                """,
                (now, now, delivery_id),
            )
        found = self.deliveries(delivery_id=delivery_id)
        return found[0] if found else None

    def deliveries(
        self, state: str | None = None, job_id: str | None = None, delivery_id: str | None = None
    ) -> list[Delivery]:
        """The outbox, optionally filtered, oldest first."""
        where, params = _filters(state=state, job_id=job_id, id=delivery_id)
        rows = self._query(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries{where} ORDER BY created_at, rowid", params
        )
        return [_delivery(row) for row in rows]

    def attempts(self, delivery_id: str) -> list[AttemptRecord]:
        """Every attempt at a delivery, oldest first."""
        rows = self._query(
            "SELECT attempted_at, duration, ok, detail FROM attempts WHERE delivery_id = ?"
            " ORDER BY attempted_at",
            (delivery_id,),
        )
        return [AttemptRecord(row[0], row[1], bool(row[2]), row[3]) for row in rows]

    def counts(self) -> dict[str, dict[str, int]]:
        """Jobs by state and deliveries by state."""
        return {
            "jobs": dict(self._query("SELECT state, COUNT(*) FROM jobs GROUP BY state")),
            "deliveries": dict(
                self._query("SELECT state, COUNT(*) FROM deliveries GROUP BY state")
            ),
        }

    def pending_by_callback(self) -> dict[str, int]:
        """Pending deliveries per callback name."""
        rows = self._query(
            "SELECT callback, COUNT(*) FROM deliveries WHERE state = 'pending' GROUP BY callback"
        )
        return dict(rows)

    def oldest_pending(self) -> float | None:
        """Creation time of the oldest pending delivery."""
        rows = self._query("SELECT MIN(created_at) FROM deliveries WHERE state = 'pending'")
        return rows[0][0] if rows else None
