"""The PostgreSQL backend: several daemons share one database and divide the work.

How work is shared (see the README's "Running several instances"):

- A claim is one statement: ``FOR UPDATE SKIP LOCKED`` in a CTE picks due rows no
  live lease holds, and the ``UPDATE`` around it stamps ``lease_owner`` (this process's
  random id), a fresh ``lease_token`` and ``lease_until``. It commits before any HTTP
  or SMTP call; no transaction is ever held open across one.
- The write that follows (a poll's status + outbox rows, an attempt + the delivery's
  new state) is one transaction that matches owner *and* token, and releases the
  lease. If the lease was lost meanwhile (expired and taken over), it changes nothing.
- Every time is the database's: a caller's local time ``t`` is stored as
  ``now() + (t - time.time())``, so clocks that differ between hosts never cause
  double work, and only local durations (monotonic in practice) cross the boundary.
- New outbox rows ``NOTIFY`` the other daemons, which ``LISTEN`` on a connection of
  their own (with the delivery tick as the fallback).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from notifier import metrics
from notifier.backoff import exponential
from notifier.config import JobSpec
from notifier.ratelimit import WaitingLimiter
from notifier.store.base import (
    CLAIM_COLUMNS,
    CLAIM_WIDTH,
    DELIVERY_COLUMNS,
    DELIVERY_WIDTH,
    HEALTH_COLUMNS,
    JOB_COLUMNS,
    JOB_WIDTH,
    PRUNABLE_JOBS,
    PRUNE_BATCH,
    PRUNE_BATCHES,
    UPSERT_SET,
    Attempt,
    AttemptRecord,
    BulkRedelivery,
    CallbackHealth,
    Cursor,
    Delivery,
    HealthChange,
    Instance,
    InstanceRecord,
    JobUpdate,
    NewEvent,
    PollsWritten,
    PruneCounts,
    StoreError,
    Summaries,
    WatchedJob,
    change_between,
    claimed_row,
    delivery_row,
    display_url,
    dumps,
    health_after,
    is_quiet,
    job_row,
    migrations,
    new_delivery_id,
    payload_text,
    requeued,
    spec_columns,
    target_url,
    updated_at_of,
)

log = logging.getLogger(__name__)

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
FORGET_INSTANCES_AFTER = 86_400.0  # a dead daemon's heartbeat row is shown for a day
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


def describe(exc: BaseException) -> str:
    """A database error on one line."""
    text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return text or type(exc).__name__


def _count_takeovers(kind: str, previous_owners: Sequence[Any], owner: str) -> None:
    """A claimed row whose expired lease named another instance was taken over from it."""
    taken = sum(1 for previous in previous_owners if previous not in (None, owner))
    if taken:
        metrics.LEASE_TAKEOVERS.labels(kind).inc(taken)


def _qualified(columns: str, table: str) -> str:
    return ", ".join(f"{table}.{column.strip()}" for column in columns.split(","))


_CLAIM_JOBS = f"""
    WITH due AS (
        SELECT id, lease_owner AS previous_owner FROM jobs
        WHERE state = 'watching' AND next_poll_at <= {AT}
          AND (lease_until IS NULL OR lease_until < {NOW})
        ORDER BY next_poll_at
        LIMIT %s
        FOR UPDATE SKIP LOCKED
    )
    UPDATE jobs SET lease_owner = %s, lease_token = jobs.lease_token + 1,
                    lease_until = {NOW} + %s
    FROM due WHERE jobs.id = due.id
    RETURNING {_qualified(CLAIM_COLUMNS, "jobs")}, jobs.lease_token, jobs.next_poll_at,
              due.previous_owner
"""
_CLAIM_DELIVERIES = f"""
    WITH due AS (
        SELECT id, lease_owner AS previous_owner FROM deliveries
        WHERE state = 'pending' AND callback = %s AND next_attempt_at <= {AT}
          AND (lease_until IS NULL OR lease_until < {NOW})
          AND NOT (id = ANY(%s))
        ORDER BY next_attempt_at
        LIMIT %s
        FOR UPDATE SKIP LOCKED
    )
    UPDATE deliveries SET lease_owner = %s, lease_token = deliveries.lease_token + 1,
                          lease_until = {NOW} + %s
    FROM due WHERE deliveries.id = due.id
    RETURNING {_qualified(DELIVERY_COLUMNS, "deliveries")}, deliveries.lease_token,
              due.previous_owner
"""
# What a poll writes, in three widths: the schedule alone (most polls), every poll's
# columns, and those with the job itself when the poll found something new. Each is
# accepted only while the caller's lease holds, and gives the job back.
_SCHEDULE_SET = f"""
    last_polled_at = {AT}, next_poll_at = {AT}, poll_interval = %s, baseline_at = {AT},
    eta = {AT}, lease_owner = NULL, lease_until = NULL
"""
_POLLED_SET = f"""{_SCHEDULE_SET}, last_error = %s, changed_at = {AT}, stalls = %s,
    stalled = %s, started_at = {AT}, baseline_progress = %s
"""
_POLL_GUARD = "WHERE id = %s AND state = 'watching' AND lease_owner = %s AND lease_token = %s"
_RESCHEDULED = f"UPDATE jobs SET {_SCHEDULE_SET} {_POLL_GUARD} RETURNING id"
_POLLED = f"UPDATE jobs SET {_POLLED_SET} {_POLL_GUARD} RETURNING id"
_CHANGED = f"""
    UPDATE jobs SET {_POLLED_SET}, state = %s, status = %s, progress = %s,
                    job = coalesce(%s, job),
                    job_updated_at = CASE WHEN %s THEN %s ELSE job_updated_at END
    {_POLL_GUARD} RETURNING id
"""


def _rescheduled(u: JobUpdate, base: float) -> tuple[Any, ...]:
    return (at(u.polled_at, base), at(u.next_poll_at, base), u.poll_interval,
            at(u.baseline_at, base), at(u.eta, base))  # fmt: skip


def _polled(u: JobUpdate, base: float) -> tuple[Any, ...]:
    return (*_rescheduled(u, base), u.last_error, at(u.changed_at, base), u.stalls, u.stalled,
            at(u.started_at, base), u.baseline_progress)  # fmt: skip


def _write_of(u: JobUpdate, base: float) -> tuple[str, tuple[Any, ...]]:
    """The statement that records ``u`` and its parameters before the lease guard's."""
    if u.schedule_only:
        return _RESCHEDULED, _rescheduled(u, base)
    if is_quiet(u):
        return _POLLED, _polled(u, base)
    return _CHANGED, (*_polled(u, base), *_changes(u))


def _changes(u: JobUpdate) -> tuple[Any, ...]:
    return (u.state, u.status, u.progress, dumps(u.job), u.job is not None,
            updated_at_of(u.job))  # fmt: skip


# Renewal locks in id order and skips rows another thread is writing, so that it never
# deadlocks with the multi-row writes that follow a poll (also in id order).
_RENEW = """
    WITH mine AS (
        SELECT id FROM {table} WHERE lease_owner = %s AND lease_until >= {now}
        ORDER BY id FOR UPDATE SKIP LOCKED
    )
    UPDATE {table} SET lease_until = {now} + %s FROM mine WHERE {table}.id = mine.id
"""


class PostgresStore(Summaries):
    """:class:`~notifier.store.base.Store` on a PostgreSQL database, shared by daemons."""

    # Claims of one request's worth: claiming four at once cut the client's CPU per
    # poll by a fifth but doubled the server's, and daemons share the work more evenly
    # in small claims (BENCHMARKS.md).
    requests_per_write = 1

    def __init__(
        self, url: str, instance: Instance | None = None, lease: float = 30.0, migrate: bool = True
    ) -> None:
        self.url = url
        self.instance = instance
        self.lease = lease
        self._closing = threading.Event()
        self._listener: threading.Thread | None = None
        # psycopg_pool logs every failed reconnection itself; our callers log one line
        # per retry, so its own lines would only repeat them.
        logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=POOL_SIZE,
            kwargs={"autocommit": True, **CONNECTION_OPTIONS},
            check=ConnectionPool.check_connection,
            timeout=CONNECT_TIMEOUT_S * 2,
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

    # --- connections ----------------------------------------------------------------

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
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:  # PoolTimeout is an OperationalError too
            raise StoreError(f"state database: {describe(exc)}") from None

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[Any]]:
        with self._conn() as conn, conn.transaction():
            yield conn

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._conn() as conn:
            return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]

    def _owner(self) -> Instance:
        if self.instance is None:
            raise StoreError("only a running daemon claims work")
        return self.instance

    def close(self) -> None:
        """Stop listening and close every connection."""
        self._closing.set()
        if self._listener is not None:
            self._listener.join(timeout=CONNECT_TIMEOUT_S + 2)
        self._pool.close()

    # --- schema -----------------------------------------------------------------------

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

    # --- the watch list ---------------------------------------------------------------

    def _upsert(
        self,
        conn: psycopg.Connection[Any],
        specs: Sequence[JobSpec],
        source: str,
        now: float,
        callback_url: str | None = None,
    ) -> None:
        offset = at(now)
        rows = [
            (s.id, s.name, *spec_columns(s), source, offset, offset, callback_url) for s in specs
        ]
        with conn.cursor() as cur:
            cur.executemany(
                f"""
                INSERT INTO jobs (id, name, notify, on_status, source, state, registered_at,
                                  next_poll_at, callback_url)
                VALUES (%s, %s, %s, %s, %s, 'watching', {AT}, {AT}, %s)
                {UPSERT_SET}
                """,
                rows,
            )

    def _rewatch(
        self, conn: psycopg.Connection[Any], job_ids: Sequence[str], now: float, by: str
    ) -> None:
        """Watch again jobs that were unwatched (by ``by``) or expired."""
        conn.execute(
            f"""
            UPDATE jobs SET state = 'watching', unwatched_by = NULL, registered_at = {AT},
                            next_poll_at = {AT}, poll_interval = NULL, last_error = NULL,
                            changed_at = NULL, stalled = false, started_at = NULL,
                            baseline_at = NULL, baseline_progress = NULL, eta = NULL
            WHERE id = ANY(%s) AND (state = 'expired' AND %s = 'operator'
                                    OR state = 'unwatched' AND unwatched_by IN ('config', %s))
            """,
            (at(now), at(now), list(job_ids), by, by),
        )

    def sync_config_jobs(self, specs: Iterable[JobSpec], now: float) -> None:
        """Make the config's jobs watched and unwatch config jobs no longer listed.

        Daemons starting together serialise here on an advisory lock.
        """
        specs = sorted(specs, key=lambda spec: spec.id)
        with self._transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SYNC_LOCK,))
            others = {
                row[0]
                for row in conn.execute(
                    "SELECT id FROM jobs WHERE source != 'config' AND id = ANY(%s)",
                    ([spec.id for spec in specs],),
                )
            }
            mine = [spec for spec in specs if spec.id not in others]
            self._upsert(conn, mine, "config", now)
            self._rewatch(conn, [spec.id for spec in mine], now, "config")
            conn.execute(
                """
                UPDATE jobs SET state = 'unwatched', unwatched_by = 'config', next_poll_at = NULL
                WHERE source = 'config' AND state = 'watching' AND NOT (id = ANY(%s))
                """,
                ([spec.id for spec in specs],),
            )

    def watch(
        self, spec: JobSpec, now: float, source: str = "cli", callback_url: str | None = None
    ) -> WatchedJob:
        """Add (or update) a job from the CLI or the API; it survives config reloads."""
        with self._transaction() as conn:
            self._upsert(conn, [spec], source, now, callback_url)
            self._rewatch(conn, [spec.id], now, "operator")
        return self.jobs(job_id=spec.id)[0]

    def unwatch(self, job_id: str) -> WatchedJob | None:
        """Stop polling a job (unless it is already done); None if it is unknown."""
        with self._transaction() as conn:
            conn.execute(
                """
                UPDATE jobs SET state = 'unwatched', unwatched_by = 'operator', next_poll_at = NULL
                WHERE id = %s AND state != 'done'
                """,
                (job_id,),
            )
        found = self.jobs(job_id=job_id)
        return found[0] if found else None

    def claim_jobs(self, now: float, limit: int) -> list[WatchedJob]:
        """Lease up to ``limit`` jobs due by ``now`` that no live lease holds."""
        owner = self._owner()
        rows = self._query(_CLAIM_JOBS, (at(now), limit, owner.id, self.lease))
        rows.sort(key=lambda row: (row[CLAIM_WIDTH + 1], row[0]))  # most overdue first
        _count_takeovers("job", [row[CLAIM_WIDTH + 2] for row in rows], owner.id)
        return [claimed_row(row, owner=owner.name, lease=row[CLAIM_WIDTH]) for row in rows]

    def release_jobs(self, jobs: Sequence[WatchedJob]) -> None:
        """Give claimed jobs back at once (e.g. no request token was free)."""
        if jobs:
            with self._conn() as conn:
                conn.execute(
                    "UPDATE jobs SET lease_owner = NULL, lease_until = NULL"
                    " WHERE id = ANY(%s) AND lease_owner = %s",
                    ([job.id for job in jobs], self._owner().id),
                )

    def apply_polls(self, updates: Sequence[JobUpdate]) -> PollsWritten:
        """Record polls and their outbox rows in one transaction, where the lease holds."""
        owner = self._owner().id
        updates = sorted(updates, key=lambda u: u.job_id)
        with self._transaction() as conn, conn.cursor() as cur:
            base = time.time()  # after BEGIN: a time written is never later than asked
            # Polls that found nothing new (most) leave state, status and the stored job alone.
            applied: set[str] = set()
            writes: dict[str, list[tuple[Any, ...]]] = {}
            for u in updates:
                sql, values = _write_of(u, base)
                writes.setdefault(sql, []).append((*values, u.job_id, owner, u.lease))
            for sql in (_RESCHEDULED, _POLLED, _CHANGED):  # a fixed order, each in id order
                if sql in writes:
                    cur.executemany(sql, writes[sql], returning=True)
                    applied.update(_returned(cur))
            if len(applied) < len(updates):
                log.info(
                    "%d of %d polls not recorded: the job was unwatched or its lease lost",
                    len(updates) - len(applied),
                    len(updates),
                )
            events = [(u.job_id, e, u.polled_at) for u in updates if u.job_id in applied
                      for e in u.events]  # fmt: skip
            refused = {u.job_id for u in updates if u.job_id not in applied and not is_quiet(u)}
            return PollsWritten(self._enqueue(cur, events), frozenset(refused))

    def _enqueue(
        self, cur: psycopg.Cursor[Any], events: Sequence[tuple[str | None, NewEvent, float]]
    ) -> int:
        base = time.time()
        rows = [
            (new_delivery_id(), job_id, callback, event.event, payload_text(event.payload),
             at(now, base), at(now, base), at(now, base), target_url(event, callback),
             event.occurrence)
            for job_id, event, now in events
            for callback in event.callbacks
        ]  # fmt: skip
        if not rows:
            return 0
        cur.executemany(
            f"""
            INSERT INTO deliveries (id, job_id, callback, event, payload, state, created_at,
                                    queued_at, next_attempt_at, target_url, occurrence)
            VALUES (%s, %s, %s, %s, %s, 'pending', {AT}, {AT}, {AT}, %s, %s)
            ON CONFLICT (job_id, callback, event, occurrence) DO NOTHING
            RETURNING id
            """,
            rows,
            returning=True,
        )
        created = len(_returned(cur))
        if created:
            cur.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
        return created

    def jobs(
        self,
        state: str | None = None,
        job_id: str | None = None,
        after: Cursor | None = None,
        limit: int | None = None,
    ) -> list[WatchedJob]:
        """The watch list, optionally filtered, in registration order, with lease holders."""
        start, start_id = after or (None, None)
        rows = self._query(
            f"""
            SELECT {_qualified(JOB_COLUMNS, "j")}, i.name FROM jobs j
            LEFT JOIN instances i ON i.id = j.lease_owner AND j.lease_until >= {NOW}
            WHERE (%s::text IS NULL OR j.state = %s) AND (%s::text IS NULL OR j.id = %s)
              AND (%s::float8 IS NULL OR (j.registered_at, j.id) > (%s, %s))
            ORDER BY j.registered_at, j.id
            LIMIT %s
            """,
            (state, state, job_id, job_id, start, start, start_id, limit),
        )
        return [job_row(row, owner=row[JOB_WIDTH]) for row in rows]

    # --- the outbox ---------------------------------------------------------------------

    def claim_deliveries(
        self, callback: str, now: float, limit: int, exclude: Iterable[str]
    ) -> list[Delivery]:
        """Lease up to ``limit`` of ``callback``'s deliveries due by ``now``."""
        owner = self._owner()
        rows = self._query(
            _CLAIM_DELIVERIES, (callback, at(now), list(exclude), limit, owner.id, self.lease)
        )
        rows.sort(key=lambda row: (row[10], row[0]))
        _count_takeovers("delivery", [row[DELIVERY_WIDTH + 1] for row in rows], owner.id)
        return [delivery_row(row, lease=row[DELIVERY_WIDTH]) for row in rows]

    def record_attempt(self, attempt: Attempt) -> bool:
        """Store an attempt and its delivery's new state, if the lease still holds."""
        with self._transaction() as conn:
            changed = conn.execute(
                f"""
                UPDATE deliveries SET attempts = attempts + 1, state = %s,
                    next_attempt_at = {AT}, last_error = %s, delivered_at = {AT},
                    lease_owner = NULL, lease_until = NULL
                WHERE id = %s AND state = 'pending' AND lease_owner = %s AND lease_token = %s
                """,
                (
                    attempt.state,
                    at(attempt.next_attempt_at),
                    None if attempt.ok else attempt.detail,
                    at(attempt.attempted_at) if attempt.ok else None,
                    attempt.delivery_id,
                    self._owner().id,
                    attempt.lease,
                ),
            ).rowcount
            if not changed:
                log.warning(
                    "delivery %s: attempt not recorded: its lease was lost", attempt.delivery_id
                )
                return False
            conn.execute(
                f"INSERT INTO attempts (delivery_id, attempted_at, duration, ok, detail)"
                f" VALUES (%s, {AT}, %s, %s, %s)",
                (
                    attempt.delivery_id,
                    at(attempt.attempted_at),
                    attempt.duration,
                    attempt.ok,
                    attempt.detail,
                ),
            )
        return True

    def redeliver(self, delivery_id: str, now: float) -> Delivery | None:
        """Queue a delivery again under the same id; None if there is no such delivery."""
        with self._transaction() as conn:
            conn.execute(
                f"""
                UPDATE deliveries SET state = 'pending', next_attempt_at = {AT}, queued_at = {AT},
                                      delivered_at = NULL
                WHERE id = %s
                """,
                (at(now), at(now), delivery_id),
            )
            conn.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
        found = self.deliveries(delivery_id=delivery_id)
        return found[0] if found else None

    def redeliver_matching(
        self,
        state: str,
        now: float,
        *,
        callback: str | None = None,
        job_id: str | None = None,
        created_after: float | None = None,
        created_before: float | None = None,
        dry_run: bool = False,
        at_most: int | None = None,
    ) -> BulkRedelivery:
        """Queue again, in one transaction, every delivery in ``state`` matching the
        filters (created at or after ``created_after``, before ``created_before``).

        The matching rows are locked while they are counted, so a delivery that starts
        matching meanwhile is neither queued nor counted. Nothing changes on a dry run
        or when more than ``at_most`` match.
        """
        with self._transaction() as conn:
            base = time.time()  # after BEGIN, like apply_polls
            rows = conn.execute(
                f"""
                SELECT {DELIVERY_COLUMNS} FROM deliveries
                WHERE state = %s AND (%s::text IS NULL OR callback = %s)
                  AND (%s::text IS NULL OR job_id = %s)
                  AND (%s::float8 IS NULL OR created_at >= {AT})
                  AND (%s::float8 IS NULL OR created_at < {AT})
                ORDER BY created_at, id
                FOR UPDATE
                """,
                (state, callback, callback, job_id, job_id,
                 created_after, at(created_after, base), created_before, at(created_before, base)),
            ).fetchall()  # fmt: skip
            found = [delivery_row(row) for row in rows]
            if dry_run or (at_most is not None and len(found) > at_most):
                return BulkRedelivery(found, queued=False)
            conn.execute(
                f"""
                UPDATE deliveries SET state = 'pending', next_attempt_at = {AT}, queued_at = {AT},
                                      delivered_at = NULL
                WHERE id = ANY(%s)
                """,
                (at(now, base), at(now, base), [d.id for d in found]),
            )
            if found:
                conn.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
        return BulkRedelivery(requeued(found, now), queued=True)

    def deliveries(
        self,
        state: str | None = None,
        job_id: str | None = None,
        delivery_id: str | None = None,
        after: Cursor | None = None,
        limit: int | None = None,
        callback: str | None = None,
    ) -> list[Delivery]:
        """The outbox, optionally filtered, oldest first."""
        start, start_id = after or (None, None)
        rows = self._query(
            f"""
            SELECT {DELIVERY_COLUMNS} FROM deliveries
            WHERE (%s::text IS NULL OR state = %s) AND (%s::text IS NULL OR job_id = %s)
              AND (%s::text IS NULL OR id = %s) AND (%s::text IS NULL OR callback = %s)
              AND (%s::float8 IS NULL OR (created_at, id) > (%s, %s))
            ORDER BY created_at, id
            LIMIT %s
            """,
            (
                *(state, state, job_id, job_id, delivery_id, delivery_id, callback, callback),
                *(start, start, start_id, limit),
            ),
        )
        return [delivery_row(row) for row in rows]

    def attempts(self, delivery_id: str) -> list[AttemptRecord]:
        """Every attempt at a delivery, oldest first."""
        rows = self._query(
            "SELECT attempted_at, duration, ok, detail FROM attempts WHERE delivery_id = %s"
            " ORDER BY attempted_at, id",
            (delivery_id,),
        )
        return [AttemptRecord(*row) for row in rows]

    # --- callback health ----------------------------------------------------------------

    def note_attempt(
        self, callback: str, ok: bool, detail: str, pause_after: int, now: float
    ) -> HealthChange | None:
        """Count an attempt in its callback's health (shared by every instance); pause or
        resume its lane, giving the time spent paused back to ``give_up_after``."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO callback_health (callback) VALUES (%s) ON CONFLICT DO NOTHING",
                (callback,),
            )
            row = conn.execute(
                f"SELECT {HEALTH_COLUMNS} FROM callback_health WHERE callback = %s FOR UPDATE",
                (callback,),
            ).fetchone()
            before = CallbackHealth(*row) if row else CallbackHealth(callback, 0, None, None, None)
            after = health_after(before, ok, detail, pause_after, now)
            if after == before:
                return None
            conn.execute(
                "UPDATE callback_health SET consecutive_failures = %s, last_error = %s,"
                " paused_at = %s, last_probe_at = %s WHERE callback = %s",
                (*after[1:], callback),
            )
            if before.paused_at is not None and after.paused_at is None:
                conn.execute(
                    "UPDATE deliveries SET queued_at = queued_at + %s"
                    " WHERE callback = %s AND state = 'pending'",
                    (now - before.paused_at, callback),
                )
            counted = conn.execute(
                "SELECT count(*) FROM deliveries WHERE callback = %s AND state = 'pending'",
                (callback,),
            ).fetchone()
        return change_between(before, after, counted[0] if counted else 0)

    def claim_probe(self, callback: str, now: float, every: float) -> bool:
        """Whether this instance sends the paused callback's one probe now."""
        with self._conn() as conn:
            return bool(
                conn.execute(
                    "UPDATE callback_health SET last_probe_at = %s WHERE callback = %s"
                    " AND paused_at IS NOT NULL AND coalesce(last_probe_at, paused_at) <= %s",
                    (now, callback, now - every),
                ).rowcount
            )

    def add_event(self, job_id: str | None, event: NewEvent, now: float) -> int:
        """Put one event (an operational alert: no job) in the outbox."""
        with self._transaction() as conn, conn.cursor() as cur:
            return self._enqueue(cur, [(job_id, event, now)])

    # --- instances and leases -----------------------------------------------------------

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
        with self._conn() as conn:
            for table in ("jobs", "deliveries"):
                conn.execute(_RENEW.format(table=table, now=NOW).encode(), (owner, self.lease))

    def retire(self) -> None:
        """A clean stop: give every lease back and remove this daemon's heartbeat row."""
        owner = self._owner().id
        with self._transaction() as conn:
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

    def housekeeping(self, now: float, retention: float) -> PruneCounts:
        """Chores that must run once across daemons: whoever gets the lock does them.

        Forgets instances silent for a day, then applies retention in small batches.
        """
        total = PruneCounts()
        for batch in range(PRUNE_BATCHES if retention else 1):
            with self._transaction() as conn:
                got = conn.execute(
                    "SELECT pg_try_advisory_xact_lock(%s)", (HOUSEKEEPING_LOCK,)
                ).fetchone()
                if not got or not got[0]:
                    return total
                if batch == 0:
                    conn.execute(
                        f"DELETE FROM instances WHERE last_seen_at < {NOW} - %s",
                        (FORGET_INSTANCES_AFTER,),
                    )
                if not retention:
                    return total
                counts, more = self._prune(conn, now - retention)
            total += counts
            if not more:
                break
        return total

    def _prune(self, conn: psycopg.Connection[Any], cutoff: float) -> tuple[PruneCounts, bool]:
        select = PRUNABLE_JOBS.format(cutoff=AT, greatest="greatest", limit="%s")
        ids = [row[0] for row in conn.execute(select, (at(cutoff), at(cutoff), PRUNE_BATCH))]
        if not ids:
            return PruneCounts(), False
        counts = PruneCounts(
            attempts=conn.execute(
                "DELETE FROM attempts WHERE delivery_id IN"
                " (SELECT id FROM deliveries WHERE job_id = ANY(%s))",
                (ids,),
            ).rowcount,
            deliveries=conn.execute(
                "DELETE FROM deliveries WHERE job_id = ANY(%s)", (ids,)
            ).rowcount,
            jobs=conn.execute("DELETE FROM jobs WHERE id = ANY(%s)", (ids,)).rowcount,
        )
        return counts, len(ids) == PRUNE_BATCH

    def rate_limiter(self, rate: float) -> SharedRateLimiter:
        """The Datasaur request cap, shared by every daemon on this database."""
        return SharedRateLimiter(self, rate)

    # --- wake-ups ---------------------------------------------------------------------

    def listen(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` whenever any daemon adds outbox rows (and after reconnecting)."""
        self._listener = threading.Thread(
            target=self._listen_loop, args=(wake,), name="pg-listen", daemon=True
        )
        self._listener.start()

    def _listen_loop(self, wake: Callable[[], None]) -> None:
        failures = 0
        while not self._closing.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, **CONNECTION_OPTIONS) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    if failures:
                        log.info("listening for new deliveries again")
                    failures = 0
                    _wake_safely(wake)  # sweep: rows added while we were not listening
                    while not self._closing.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            _wake_safely(wake)
                        conn.execute("SELECT 1")  # a silently dead connection raises here
            except psycopg.Error as exc:
                failures += 1
                delay = exponential(failures, 0.5, 10.0)
                log.warning(
                    "LISTEN connection lost (%s); reconnecting in %.1fs", describe(exc), delay
                )
                self._closing.wait(delay)

    # --- moving from SQLite -----------------------------------------------------------

    def import_sqlite(self, path: Path) -> ImportCounts:
        """Copy a SQLite state file's jobs, deliveries and attempts, in one transaction.

        Rows already here (same job id, same delivery id) are kept as they are, and the
        attempts of a delivery are copied only with the delivery, so running it twice
        changes nothing.
        """
        source = _read_sqlite(path)
        with self._transaction() as conn, conn.cursor() as cur:
            cur.executemany(
                f"""
                INSERT INTO jobs ({_IMPORTED_JOB_COLUMNS})
                VALUES ({_marks(_IMPORTED_JOB_COLUMNS)})
                ON CONFLICT (id) DO NOTHING RETURNING id
                """,
                source.jobs,
                returning=True,
            )
            jobs = len(_returned(cur))
            cur.executemany(
                f"""
                INSERT INTO deliveries ({DELIVERY_COLUMNS})
                VALUES ({_marks(DELIVERY_COLUMNS)})
                ON CONFLICT DO NOTHING RETURNING id
                """,
                source.deliveries,
                returning=True,
            )
            new = set(_returned(cur))
            attempts = [row for row in source.attempts if row[0] in new]
            cur.executemany(
                "INSERT INTO attempts (delivery_id, attempted_at, duration, ok, detail)"
                " VALUES (%s, %s, %s, %s, %s)",
                attempts,
            )
            if new:
                cur.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
        return ImportCounts(
            jobs=jobs,
            deliveries=len(new),
            attempts=len(attempts),
            skipped_jobs=len(source.jobs) - jobs,
            skipped_deliveries=len(source.deliveries) - len(new),
        )


def _returned(cur: psycopg.Cursor[Any]) -> list[Any]:
    """The first column of every result set an ``executemany(returning=True)`` made."""
    values: list[Any] = []
    while True:
        if cur.pgresult is not None and cur.description is not None:
            values.extend(row[0] for row in cur.fetchall())
        if not cur.nextset():
            return values


def _wake_safely(wake: Callable[[], None]) -> None:
    try:
        wake()
    except Exception as exc:
        log.error("waking the delivery lanes failed: %s", exc)


class SharedRateLimiter(WaitingLimiter):
    """At most ``rate`` requests per second across every daemon on the database.

    One row per cap holds the next free slot of a virtual schedule (GCRA): a request is
    allowed when taking the next slot keeps it within ``capacity`` slots of now. The
    row lock serialises daemons, and ``clock_timestamp()`` (not ``now()``, which is the
    transaction's start) is the clock.
    """

    def __init__(self, store: PostgresStore, rate: float, name: str = "datasaur") -> None:
        self.store = store
        self.name = name  # the row is created by the first migration
        self.slot = 1.0 / rate
        self.window = max(1.0, rate) * self.slot

    def take(self, wanted: int) -> int:
        """Take up to ``wanted`` of the next slots that are within the window."""
        rows = self.store._query(
            """
            WITH free AS (
                SELECT least(%s, floor((c.t + %s - greatest(r.next_free, c.t)) / %s + 1e-9))
                       ::int AS n, c.t
                FROM rate_limits r, (SELECT extract(epoch from clock_timestamp()) AS t) AS c
                WHERE r.name = %s
                FOR UPDATE OF r
            )
            UPDATE rate_limits SET next_free = greatest(next_free, free.t) + free.n * %s
            FROM free WHERE name = %s AND free.n > 0
            RETURNING free.n
            """,
            (wanted, self.window, self.slot, self.name, self.slot, self.name),
        )
        return int(rows[0][0]) if rows else 0

    def give_back(self, count: int) -> None:
        """Free ``count`` slots taken but not used."""
        if count > 0:
            self.store._query(
                "UPDATE rate_limits SET next_free = next_free - %s WHERE name = %s RETURNING 1",
                (count * self.slot, self.name),
            )

    def wait_hint(self) -> float:
        """Until the next slot enters the window (at most one slot: others compete)."""
        rows = self.store._query(
            "SELECT next_free - extract(epoch from clock_timestamp()) - %s"
            " FROM rate_limits WHERE name = %s",
            (self.window - self.slot, self.name),
        )
        wait = float(rows[0][0]) if rows else self.slot
        return min(max(wait, 0.001), self.slot)


@dataclass(frozen=True)
class ImportCounts:
    """What ``import-state`` copied, and what it found already there."""

    jobs: int
    deliveries: int
    attempts: int
    skipped_jobs: int
    skipped_deliveries: int


@dataclass(frozen=True)
class _SqliteRows:
    jobs: list[tuple[Any, ...]]
    deliveries: list[tuple[Any, ...]]
    attempts: list[tuple[Any, ...]]


_IMPORTED_JOB_COLUMNS = (
    "id, name, notify, on_status, source, state, unwatched_by, status, progress, job,"
    " registered_at, last_polled_at, next_poll_at, poll_interval, last_error, callback_url,"
    " changed_at, stalls, stalled, started_at, baseline_at, baseline_progress, eta, job_updated_at"
)


def _marks(columns: str) -> str:
    """One ``%s`` per column."""
    return ", ".join("%s" for _ in columns.split(","))


def _select(conn: sqlite3.Connection, table: str, columns: str) -> list[tuple[Any, ...]]:
    """Every row of ``table``; columns an older schema lacks read as NULL."""
    present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    names = [column.strip() for column in columns.split(",")]
    picked = ", ".join(name if name in present else "NULL" for name in names)
    return conn.execute(f"SELECT {picked} FROM {table} ORDER BY rowid").fetchall()


def _read_sqlite(path: Path) -> _SqliteRows:
    """Every row of a SQLite state file, opened read-only (it is not changed)."""
    if not path.is_file():
        raise StoreError(f"no SQLite state file at {path}")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            # An older schema has no stall columns or occurrences: their defaults.
            jobs = [
                (*row[:17], row[17] or 0, bool(row[18]), *row[19:])  # stalls, stalled
                for row in _select(conn, "jobs", _IMPORTED_JOB_COLUMNS)
            ]
            deliveries = [
                (*row[:-1], row[-1] or 0) for row in _select(conn, "deliveries", DELIVERY_COLUMNS)
            ]
            attempts = [
                (*row[:3], bool(row[3]), row[4])
                for row in _select(
                    conn, "attempts", "delivery_id, attempted_at, duration, ok, detail"
                )
            ]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the SQLite state file {path}: {exc}") from None
    return _SqliteRows(jobs, deliveries, attempts)
