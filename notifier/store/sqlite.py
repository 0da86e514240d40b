"""The SQLite backend: one file in WAL mode, one daemon (held by a file lock).

Every change that must be atomic -- a job's new status together with its outbox rows,
an attempt together with its delivery's new state -- is one ``BEGIN IMMEDIATE``
transaction. One daemon owns the file, so work needs no leases: claims are plain
reads and the delivery lanes keep their in-flight ids in memory.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from notifier.config import JobSpec
from notifier.ratelimit import RateLimiter
from notifier.store.base import (
    CLAIM_COLUMNS,
    DELIVERY_COLUMNS,
    HEALTH_COLUMNS,
    JOB_COLUMNS,
    PRUNABLE_JOBS,
    PRUNE_BATCH,
    PRUNE_BATCHES,
    SCHEDULE_COLUMNS,
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

BUSY_TIMEOUT_MS = 10_000

# What a poll writes, in three widths: the schedule alone (most polls), every poll's
# columns, and those with the job itself when the poll found something new.
_SCHEDULE_SET = ", ".join(f"{column} = ?" for column in SCHEDULE_COLUMNS)
_POLLED_SET = f"""{_SCHEDULE_SET},
    last_error = ?, changed_at = ?, stalls = ?, stalled = ?, started_at = ?, baseline_progress = ?
"""
_WATCHED = "WHERE id = ? AND state = 'watching'"
_RESCHEDULED = f"UPDATE jobs SET {_SCHEDULE_SET} {_WATCHED}"
# The jobs of one request that share their new schedule (the usual case: one clock
# reading and one jitter per request) in one statement: a JSON array of their ids.
# ``+state``: look each id up by the primary key, not through the ``jobs_state`` index.
_RESCHEDULED_TOGETHER = f"""
    UPDATE jobs SET {_SCHEDULE_SET}
    WHERE +state = 'watching' AND id IN (SELECT value FROM json_each(?))
"""
_POLLED = f"UPDATE jobs SET {_POLLED_SET} {_WATCHED}"
_CHANGED = f"""
    UPDATE jobs SET {_POLLED_SET}, state = ?, status = ?, progress = ?, job = coalesce(?, job),
                    job_updated_at = CASE WHEN ? THEN ? ELSE job_updated_at END
    {_WATCHED}
"""


def _rescheduled(u: JobUpdate) -> tuple[Any, ...]:
    return (u.polled_at, u.next_poll_at, u.poll_interval, u.baseline_at, u.eta)


def _polled(u: JobUpdate) -> tuple[Any, ...]:
    return (*_rescheduled(u), u.last_error, u.changed_at, u.stalls, int(u.stalled),
            u.started_at, u.baseline_progress)  # fmt: skip


def _changed(u: JobUpdate) -> tuple[Any, ...]:
    new_job = u.job is not None
    return (*_polled(u), u.state, u.status, u.progress, dumps(u.job), new_job,
            updated_at_of(u.job), u.job_id)  # fmt: skip


def _filters(**conditions: str | None) -> tuple[str, list[Any]]:
    pairs = [(column, value) for column, value in conditions.items() if value is not None]
    where = " AND ".join(f"{column} = ?" for column, _ in pairs)
    return (f" WHERE {where}" if where else ""), [value for _, value in pairs]


def _after(
    where: str, params: list[Any], column: str, after: Cursor | None
) -> tuple[str, list[Any]]:
    """Keyset pagination: rows after ``(time, id)`` in ``(column, id)`` order."""
    if after is None:
        return where, params
    condition = f"({column}, id) > (?, ?)"
    return (f"{where} AND {condition}" if where else f" WHERE {condition}"), [*params, *after]


class SqliteStore(Summaries):
    """:class:`Store` on one SQLite file in WAL mode; one connection per thread."""

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
        """Apply the numbered steps not yet applied (``PRAGMA user_version`` counts them)."""
        applied = 0
        try:
            conn = self._conn()
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            for number, _, sql in migrations("sqlite"):
                if number <= current:
                    continue
                try:
                    conn.executescript(
                        f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {number};\nCOMMIT;"
                    )
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                applied += 1
        except sqlite3.Error as exc:
            raise StoreError(f"cannot use state file {self.path}: {exc}") from None
        return applied

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

    def _upsert(
        self,
        conn: sqlite3.Connection,
        spec: JobSpec,
        source: str,
        now: float,
        callback_url: str | None = None,
    ) -> None:
        conn.execute(
            f"""
            INSERT INTO jobs (id, name, notify, on_status, source, state, registered_at,
                              next_poll_at, callback_url)
            VALUES (?, ?, ?, ?, ?, 'watching', ?, ?, ?)
            {UPSERT_SET}
            """,
            (spec.id, spec.name, *spec_columns(spec), source, now, now, callback_url),
        )

    def _rewatch(self, conn: sqlite3.Connection, job_id: str, now: float, by: str) -> None:
        """Watch again a job that was unwatched (by ``by``) or expired."""
        conn.execute(
            """
            UPDATE jobs SET state = 'watching', unwatched_by = NULL, registered_at = ?,
                            next_poll_at = ?, poll_interval = NULL, last_error = NULL,
                            changed_at = NULL, stalled = 0, started_at = NULL,
                            baseline_at = NULL, baseline_progress = NULL, eta = NULL
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
            cli_jobs = {
                row[0] for row in conn.execute("SELECT id FROM jobs WHERE source!='config'")
            }
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

    def watch(
        self, spec: JobSpec, now: float, source: str = "cli", callback_url: str | None = None
    ) -> WatchedJob:
        """Add (or update) a job from the CLI or the API; it survives config reloads."""
        with self._transaction() as conn:
            self._upsert(conn, spec, source, now, callback_url)
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

    def claim_jobs(self, now: float, limit: int) -> list[WatchedJob]:
        """Watched jobs whose next poll is due, most overdue first (no lease: one daemon).

        ``INDEXED BY``: without statistics SQLite would otherwise pick ``jobs_state`` and
        sort every watched job on every call (17 ms at 100,000 jobs, even with none due).
        """
        rows = self._query(
            f"SELECT {CLAIM_COLUMNS} FROM jobs INDEXED BY jobs_due"
            " WHERE state = 'watching' AND next_poll_at <= ? ORDER BY next_poll_at LIMIT ?",
            (now, limit),
        )
        return [claimed_row(row) for row in rows]

    def apply_polls(self, updates: Sequence[JobUpdate]) -> PollsWritten:
        """Record a batch of polls and their outbox rows in one transaction.

        An event already in the outbox for a (job, callback) is not added again.
        """
        created, refused = 0, set[str]()
        schedules: dict[tuple[Any, ...], list[str]] = {}
        quiet, changed = [], []
        for u in updates:
            if u.schedule_only:
                schedules.setdefault(_rescheduled(u), []).append(u.job_id)
            elif is_quiet(u):
                quiet.append((*_polled(u), u.job_id))
            else:
                changed.append(u)
        with self._transaction() as conn:
            # Polls that found nothing new (most) leave state, status and the stored job
            # alone: one statement per shared schedule, and one for the other quiet ones.
            # The others one by one, so that a poll's events are recorded only if the job
            # was still watched (not unwatched meanwhile).
            alone = [(*schedule, ids[0]) for schedule, ids in schedules.items() if len(ids) == 1]
            conn.executemany(_RESCHEDULED, alone)
            for schedule, ids in schedules.items():
                if len(ids) > 1:
                    conn.execute(_RESCHEDULED_TOGETHER, (*schedule, json.dumps(ids)))
            conn.executemany(_POLLED, quiet)
            for update in changed:
                if not conn.execute(_CHANGED, _changed(update)).rowcount:
                    refused.add(update.job_id)
                    continue
                for event in update.events:
                    created += self._enqueue(conn, update.job_id, event, update.polled_at)
        return PollsWritten(created, frozenset(refused))

    def _enqueue(
        self, conn: sqlite3.Connection, job_id: str | None, event: NewEvent, now: float
    ) -> int:
        payload = payload_text(event.payload)
        rows = [
            (new_delivery_id(), job_id, callback, event.event, payload, now, now, now,
             target_url(event, callback), event.occurrence)
            for callback in event.callbacks
        ]  # fmt: skip
        before = conn.total_changes
        conn.executemany(
            """
            INSERT OR IGNORE INTO deliveries
                (id, job_id, callback, event, payload, state, created_at, queued_at,
                 next_attempt_at, target_url, occurrence)
            VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)
            """,
            rows,
        )
        return conn.total_changes - before

    def jobs(
        self,
        state: str | None = None,
        job_id: str | None = None,
        after: Cursor | None = None,
        limit: int | None = None,
    ) -> list[WatchedJob]:
        """The watch list, optionally filtered, in registration order (then id)."""
        where, params = _filters(state=state, id=job_id)
        where, params = _after(where, params, "registered_at", after)
        rows = self._query(
            f"SELECT {JOB_COLUMNS} FROM jobs{where} ORDER BY registered_at, id LIMIT ?",
            [*params, -1 if limit is None else limit],
        )
        return [job_row(row) for row in rows]

    # --- the outbox ---------------------------------------------------------------

    def claim_deliveries(
        self, callback: str, now: float, limit: int, exclude: Iterable[str]
    ) -> list[Delivery]:
        """Pending deliveries of ``callback`` due now, except those being sent."""
        exclude = list(exclude)
        marks = ",".join("?" * len(exclude))
        rows = self._query(
            f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE state = 'pending' AND callback = ?"
            f" AND next_attempt_at <= ? AND id NOT IN ({marks}) ORDER BY next_attempt_at LIMIT ?",
            (callback, now, *exclude, limit),
        )
        return [delivery_row(row) for row in rows]

    def record_attempt(self, attempt: Attempt) -> bool:
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
        return True

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

        Nothing changes on a dry run or when more than ``at_most`` match.
        """
        where, params = _filters(state=state, callback=callback, job_id=job_id)
        if created_after is not None:
            where, params = f"{where} AND created_at >= ?", [*params, created_after]
        if created_before is not None:
            where, params = f"{where} AND created_at < ?", [*params, created_before]
        with self._transaction() as conn:
            rows = conn.execute(
                f"SELECT {DELIVERY_COLUMNS} FROM deliveries{where} ORDER BY created_at, id",
                params,
            ).fetchall()
            found = [delivery_row(row) for row in rows]
            if dry_run or (at_most is not None and len(found) > at_most):
                return BulkRedelivery(found, queued=False)
            conn.execute(
                f"""
                UPDATE deliveries SET state = 'pending', next_attempt_at = ?, queued_at = ?,
                                      delivered_at = NULL
                {where}
                """,
                [now, now, *params],
            )
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
        """The outbox, optionally filtered, oldest first (then by id)."""
        where, params = _filters(state=state, job_id=job_id, id=delivery_id, callback=callback)
        where, params = _after(where, params, "created_at", after)
        rows = self._query(
            f"SELECT {DELIVERY_COLUMNS} FROM deliveries{where} ORDER BY created_at, id LIMIT ?",
            [*params, -1 if limit is None else limit],
        )
        return [delivery_row(row) for row in rows]

    def attempts(self, delivery_id: str) -> list[AttemptRecord]:
        """Every attempt at a delivery, oldest first."""
        rows = self._query(
            "SELECT attempted_at, duration, ok, detail FROM attempts WHERE delivery_id = ?"
            " ORDER BY attempted_at",
            (delivery_id,),
        )
        return [AttemptRecord(row[0], row[1], bool(row[2]), row[3]) for row in rows]

    # --- callback health --------------------------------------------------------------

    def note_attempt(
        self, callback: str, ok: bool, detail: str, pause_after: int, now: float
    ) -> HealthChange | None:
        """Count an attempt in its callback's health; pause or resume its lane.

        On resuming, the time spent paused is given back to the pending deliveries'
        ``give_up_after`` window.
        """
        with self._transaction() as conn:
            row = conn.execute(
                f"SELECT {HEALTH_COLUMNS} FROM callback_health WHERE callback = ?", (callback,)
            ).fetchone()
            before = CallbackHealth(*row) if row else CallbackHealth(callback, 0, None, None, None)
            after = health_after(before, ok, detail, pause_after, now)
            if after == before and row:
                return None
            conn.execute(
                f"INSERT OR REPLACE INTO callback_health ({HEALTH_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                after,
            )
            if before.paused_at is not None and after.paused_at is None:
                conn.execute(
                    "UPDATE deliveries SET queued_at = queued_at + ?"
                    " WHERE callback = ? AND state = 'pending'",
                    (now - before.paused_at, callback),
                )
            pending = conn.execute(
                "SELECT count(*) FROM deliveries WHERE callback = ? AND state = 'pending'",
                (callback,),
            ).fetchone()[0]
        return change_between(before, after, pending)

    def claim_probe(self, callback: str, now: float, every: float) -> bool:
        """Whether this caller sends the paused callback's one probe now."""
        with self._transaction() as conn:
            return bool(
                conn.execute(
                    "UPDATE callback_health SET last_probe_at = ? WHERE callback = ?"
                    " AND paused_at IS NOT NULL"
                    " AND coalesce(last_probe_at, paused_at) <= ?",
                    (now, callback, now - every),
                ).rowcount
            )

    def add_event(self, job_id: str | None, event: NewEvent, now: float) -> int:
        """Put one event (an operational alert: no job) in the outbox."""
        with self._transaction() as conn:
            return self._enqueue(conn, job_id, event, now)

    # --- one daemon: no leases, a heartbeat row for ``instances`` ----------------------

    def release_jobs(self, jobs: Sequence[WatchedJob]) -> None:
        """Nothing to release: claims take no lease here."""

    def renew_leases(self) -> None:
        """Nothing to renew: claims take no lease here."""

    def heartbeat(self, now: float) -> None:
        """Record that this daemon is alive; the file lock means it is the only one."""
        instance = self.instance
        if instance is None:
            return
        with self._transaction() as conn:
            conn.execute("DELETE FROM instances WHERE id != ?", (instance.id,))
            conn.execute(
                """
                INSERT INTO instances (id, name, version, started_at, last_seen_at, lease)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at
                """,
                (instance.id, instance.name, instance.version, now, now, instance.lease),
            )

    def retire(self) -> None:
        """A clean stop: this daemon's heartbeat row goes."""
        if self.instance is not None:
            with self._transaction() as conn:
                conn.execute("DELETE FROM instances WHERE id = ?", (self.instance.id,))

    def instances(self, now: float) -> list[InstanceRecord]:
        """The daemon that heartbeats into this file, if any; alive if seen within a lease."""
        rows = self._query(
            "SELECT name, started_at, last_seen_at, version, lease FROM instances"
            " ORDER BY started_at"
        )
        return [
            InstanceRecord(name, started, seen, version, now - seen <= lease)
            for name, started, seen, version, lease in rows
        ]

    def housekeeping(self, now: float, retention: float) -> PruneCounts:
        """Apply retention, a few small transactions at a time."""
        total = PruneCounts()
        if not retention:
            return total
        select = PRUNABLE_JOBS.format(cutoff="?", greatest="max", limit="?")
        for _ in range(PRUNE_BATCHES):
            with self._transaction() as conn:
                ids = [
                    row[0] for row in conn.execute(select, (now - retention,) * 2 + (PRUNE_BATCH,))
                ]
                if not ids:
                    break
                marks = ",".join("?" * len(ids))
                deliveries = f"SELECT id FROM deliveries WHERE job_id IN ({marks})"
                counts = PruneCounts(
                    attempts=conn.execute(
                        f"DELETE FROM attempts WHERE delivery_id IN ({deliveries})", ids
                    ).rowcount,
                    deliveries=conn.execute(
                        f"DELETE FROM deliveries WHERE job_id IN ({marks})", ids
                    ).rowcount,
                    jobs=conn.execute(f"DELETE FROM jobs WHERE id IN ({marks})", ids).rowcount,
                )
            total += counts
            if len(ids) < PRUNE_BATCH:
                break
        return total

    def backup(self, target: Path) -> None:
        """A consistent copy of the state, taken with SQLite's online backup API while
        the daemon runs; written beside ``target`` and renamed, so a reader never sees
        half a copy."""
        partial = target.with_name(f".{target.name}.partial")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial.unlink(missing_ok=True)
            with closing(sqlite3.connect(partial)) as copy:
                self._conn().backup(copy)
                copy.execute("DELETE FROM instances")  # a copy has no daemon running
                copy.commit()
            partial.replace(target)
        except (OSError, sqlite3.Error) as exc:
            partial.unlink(missing_ok=True)
            raise StoreError(f"cannot back up {self.path} to {target}: {exc}") from None

    def rate_limiter(self, rate: float) -> RateLimiter:
        """The cap is this process's own: no other daemon shares the file."""
        return RateLimiter(rate)

    def listen(self, wake: Callable[[], None]) -> None:
        """No notifications between processes here: the delivery tick finds new rows."""
