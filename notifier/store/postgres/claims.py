"""Leased claims of due jobs and deliveries, and the poll writes fenced by them."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from notifier import metrics
from notifier.store.columns import (
    CLAIM_COLUMNS,
    CLAIM_WIDTH,
    DELIVERY_COLUMNS,
    DELIVERY_WIDTH,
    claimed_row,
    delivery_row,
    dumps,
)
from notifier.store.grouping import Tx, records_only_schedules, touched_groups
from notifier.store.groupstore import GroupStore
from notifier.store.postgres.arrays import Bools, Float8s, Int4s, Int8s, Texts
from notifier.store.postgres.connection import AT, NOW, PostgresConnection, at, qualified
from notifier.store.postgres.outbox import enqueue
from notifier.store.postgres.silences import HELD
from notifier.store.rows import (
    Delivery,
    JobUpdate,
    NewEvent,
    PollsWritten,
    WatchedJob,
    is_quiet,
    updated_at_of,
)

log = logging.getLogger("notifier.store.postgres")


def _count_takeovers(kind: str, previous_owners: Sequence[Any], owner: str) -> None:
    """A claimed row whose expired lease named another instance was taken over from it."""
    taken = sum(1 for previous in previous_owners if previous not in (None, owner))
    if taken:
        metrics.LEASE_TAKEOVERS.labels(kind).inc(taken)


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
    RETURNING {qualified(CLAIM_COLUMNS, "jobs")}, jobs.lease_token, jobs.next_poll_at,
              due.previous_owner
"""
_CLAIM_DELIVERIES = f"""
    WITH due AS (
        SELECT id, lease_owner AS previous_owner FROM deliveries
        WHERE state = 'pending' AND callback = %s AND next_attempt_at <= {AT}
          AND (lease_until IS NULL OR lease_until < {NOW})
          AND NOT (id = ANY(%s)) AND (%s::text[] IS NULL OR event = ANY(%s::text[]))
          AND NOT (event = ANY(%s::text[]))
          AND NOT {HELD}
        ORDER BY next_attempt_at
        LIMIT %s
        FOR UPDATE SKIP LOCKED
    )
    UPDATE deliveries SET lease_owner = %s, lease_token = deliveries.lease_token + 1,
                          lease_until = {NOW} + %s
    FROM due WHERE deliveries.id = due.id
    RETURNING {qualified(DELIVERY_COLUMNS, "deliveries")}, deliveries.lease_token,
              due.previous_owner
"""
# What a poll writes, in three widths: the schedule alone (most polls), every poll's
# columns, and those with the job itself when the poll found something new. Each is
# accepted only while the caller's lease holds, and gives the job back. A round's polls
# are one statement per width, whatever the round's size: each column's values as one
# array, unnested in step (in id order, so rows are locked in the order every writer
# takes them). Times are offsets, as in AT.
# ``%b``: arrays sent in binary (see notifier/store/postgres/arrays.py and BENCHMARKS.md).
_FROM_ARRAYS = """
    FROM unnest(%b::text[], %b::bigint[], %b::float8[], %b::float8[], %b::float8[],
                %b::float8[], %b::float8[]{more})
         AS u(id, token, polled_at, next_poll_at, poll_interval, baseline_at, eta{names})
    WHERE jobs.id = u.id AND jobs.state = 'watching' AND jobs.lease_owner = %s
      AND jobs.lease_token = u.token
"""
_RETURNING_IDS = " RETURNING jobs.id"  # when the ids written matter (a round with events)
_SCHEDULE_SET = f"""
    last_polled_at = {NOW} + u.polled_at, next_poll_at = {NOW} + u.next_poll_at,
    poll_interval = u.poll_interval, baseline_at = {NOW} + u.baseline_at,
    eta = {NOW} + u.eta, lease_owner = NULL, lease_until = NULL
"""
_POLLED_SET = f"""{_SCHEDULE_SET}, last_error = u.last_error,
    changed_at = {NOW} + u.changed_at, stalls = u.stalls, stalled = u.stalled,
    started_at = {NOW} + u.started_at, baseline_progress = u.baseline_progress
"""
_POLLED_ARRAYS = ", %b::text[], %b::float8[], %b::int[], %b::bool[], %b::float8[], %b::int[]"
_POLLED_NAMES = ", last_error, changed_at, stalls, stalled, started_at, baseline_progress"
_RESCHEDULED = f"UPDATE jobs SET {_SCHEDULE_SET}" + _FROM_ARRAYS.format(more="", names="")
_POLLED = f"UPDATE jobs SET {_POLLED_SET}" + _FROM_ARRAYS.format(
    more=_POLLED_ARRAYS, names=_POLLED_NAMES
)
_CHANGED = f"""UPDATE jobs SET {_POLLED_SET}, state = u.state, status = u.status,
    progress = u.progress, job = coalesce(u.job, jobs.job),
    job_updated_at = CASE WHEN u.has_job THEN u.updated_at ELSE jobs.job_updated_at END,
    at_risk_at = CASE WHEN u.at_risk THEN {NOW} + u.polled_at ELSE jobs.at_risk_at END
""" + _FROM_ARRAYS.format(
    more=_POLLED_ARRAYS + ", %b::text[], %b::text[], %b::int[], %b::text[], %b::bool[],"
    " %b::text[], %b::bool[]",
    names=_POLLED_NAMES + ", state, status, progress, job, has_job, updated_at, at_risk",
)


def _float(value: float | None) -> float | None:
    """A binary array holds one type: an ``int`` interval as a float."""
    return value if value is None or type(value) is float else float(value)


def _int(value: float | None) -> int | None:
    """An integer column's value as an ``int`` (rounded as PostgreSQL casts a float)."""
    return value if value is None or type(value) is int else round(value)


def _rescheduled(u: JobUpdate, base: float) -> tuple[Any, ...]:
    return (u.job_id, u.lease, at(u.polled_at, base), at(u.next_poll_at, base),
            _float(u.poll_interval), at(u.baseline_at, base), at(u.eta, base))  # fmt: skip


def _polled(u: JobUpdate, base: float) -> tuple[Any, ...]:
    return (*_rescheduled(u, base), u.last_error, at(u.changed_at, base), _int(u.stalls),
            bool(u.stalled), at(u.started_at, base), _int(u.baseline_progress))  # fmt: skip


def _written(
    cur: psycopg.Cursor[Any], sql: str, rows: list[tuple[Any, ...]], owner: str
) -> list[str]:
    """Write polls of one width (rows of :func:`_rescheduled`, :func:`_polled` or
    :func:`_changed`) in one statement; the ids written."""
    if not rows:
        return []
    return [row[0] for row in cur.execute(sql + _RETURNING_IDS, _columns(rows, owner)).fetchall()]


# The types of the columns of :func:`_changed`'s rows (:func:`_polled`'s: the first 13,
# :func:`_rescheduled`'s: the first 7).
_COLUMN_TYPES = (Texts, Int8s, Float8s, Float8s, Float8s, Float8s, Float8s,
                 Texts, Float8s, Int4s, Bools, Float8s, Int4s,
                 Texts, Texts, Int4s, Texts, Bools, Texts, Bools)  # fmt: skip


def _columns(rows: list[tuple[Any, ...]], owner: str) -> tuple[Any, ...]:
    """Rows as the arrays of their columns, then the lease owner (the quiet statements'
    parameters)."""
    columns = zip(*rows, strict=True)
    kinds = _COLUMN_TYPES[: len(rows[0])]
    return (*(kind(column) for kind, column in zip(kinds, columns, strict=True)), owner)


def _changed(u: JobUpdate, base: float) -> tuple[Any, ...]:
    """A row of :data:`_CHANGED`: :func:`_polled`'s, then what the poll found."""
    return (*_polled(u, base), u.state, u.status, _int(u.progress), dumps(u.job),
            u.job is not None, updated_at_of(u.job), bool(u.at_risk))  # fmt: skip


def _one_statement(updates: Sequence[JobUpdate]) -> bool:
    """Whether ``updates`` are quiet polls of one width, no group to settle: one
    statement records them all (:data:`_RESCHEDULED` or :data:`_POLLED`)."""
    if not updates:
        return False
    width = updates[0].schedule_only
    return all(u.schedule_only == width for u in updates) and records_only_schedules(updates)


def _note_lost(lost: int, of: int) -> None:
    if lost:
        log.info("%d of %d polls not recorded: the job was unwatched or its lease lost", lost, of)


class PostgresClaims(PostgresConnection, GroupStore):
    """The work daemons share: claim it under a lease, write back only while it holds."""

    def claim_jobs(self, now: float, limit: int) -> list[WatchedJob]:
        """Lease up to ``limit`` jobs due by ``now`` that no live lease holds."""
        owner = self._owner()
        rows = self._query(_CLAIM_JOBS, (at(now), limit, owner.id, self.lease), binary=True)
        rows.sort(key=lambda row: (row[CLAIM_WIDTH + 1], row[0]))  # most overdue first
        _count_takeovers("job", [row[CLAIM_WIDTH + 2] for row in rows], owner.id)
        jobs = [claimed_row(row, owner=owner.name, lease=row[CLAIM_WIDTH]) for row in rows]
        self._held.add(jobs)
        return jobs

    def release_jobs(self, jobs: Sequence[WatchedJob]) -> None:
        """Give claimed jobs back at once (e.g. no request token was free)."""
        if jobs:
            with self._conn() as conn:
                conn.execute(
                    "UPDATE jobs SET lease_owner = NULL, lease_until = NULL"
                    " WHERE id = ANY(%s) AND lease_owner = %s",
                    ([job.id for job in jobs], self._owner().id),
                )
            self._held.drop(job.id for job in jobs)

    def apply_polls(self, updates: Sequence[JobUpdate]) -> PollsWritten:
        """Record polls and their outbox rows in one transaction, where the lease holds."""
        owner = self._owner().id
        updates = sorted(updates, key=lambda u: u.job_id)
        if _one_statement(updates):
            return self._apply_quiet(updates, owner)
        with self._transaction() as conn, conn.cursor() as cur:
            base = time.time()  # after BEGIN: a time written is never later than asked
            schedules, quiet, changed = [], [], []
            for u in updates:
                if u.schedule_only:
                    schedules.append(_rescheduled(u, base))
                elif is_quiet(u):
                    quiet.append(_polled(u, base))
                else:
                    changed.append(_changed(u, base))
            # Polls that found nothing new (most) leave state, status and the stored job
            # alone; a fixed order of statements, each in id order.
            applied = set(_written(cur, _RESCHEDULED, schedules, owner))
            applied.update(_written(cur, _POLLED, quiet, owner))
            applied.update(_written(cur, _CHANGED, changed, owner))
            _note_lost(len(updates) - len(applied), len(updates))
            events: list[tuple[str | None, NewEvent, float]] = [
                (u.job_id, e, u.polled_at) for u in updates if u.job_id in applied for e in u.events
            ]
            refused = {u.job_id for u in updates if u.job_id not in applied and not is_quiet(u)}
            lost = {u.job_id for u in updates} - applied
            ended, estimated, now = touched_groups(updates, lost)
            if ended or estimated:
                tx = Tx(cur.execute, postgres=True, stamp=lambda t: at(t, base))
                events += [(None, e, now) for e in self._settle_polls(tx, ended, estimated, now)]
            written = PollsWritten(enqueue(cur, events), frozenset(refused))
        self._held.drop(u.job_id for u in updates)  # committed: written, or not ours any more
        return written

    def _apply_quiet(self, updates: Sequence[JobUpdate], owner: str) -> PollsWritten:
        """Quiet polls of one width (most rounds): one statement, sent with its COMMIT
        in one round trip after the BEGIN's (whose answer the clock is read after, so
        that a time written is never later than asked)."""
        with self._conn() as conn:
            conn.execute("BEGIN")
            base = time.time()
            if updates[0].schedule_only:
                sql, rows = _RESCHEDULED, [_rescheduled(u, base) for u in updates]
            else:
                sql, rows = _POLLED, [_polled(u, base) for u in updates]
            with conn.pipeline():
                written = conn.execute(sql, _columns(rows, owner))
                conn.execute("COMMIT")
        _note_lost(len(updates) - written.rowcount, len(updates))
        self._held.drop(u.job_id for u in updates)
        return PollsWritten(0)

    def claim_deliveries(
        self,
        callback: str,
        now: float,
        limit: int,
        exclude: Iterable[str],
        events: Sequence[str] | None = None,
        skip: Sequence[str] = (),
    ) -> list[Delivery]:
        """Lease up to ``limit`` of ``callback``'s deliveries due by ``now`` that no
        silence holds; with ``events``, only of those events (quiet hours); never of the
        ``skip`` events (a digest gathers them)."""
        owner = self._owner()
        only = None if events is None else list(events)
        offset = at(now)
        rows = self._query(
            _CLAIM_DELIVERIES,
            (callback, offset, list(exclude), only, only, list(skip), offset, offset, limit,
             owner.id,
             self.lease),
        )  # fmt: skip
        rows.sort(key=lambda row: (row[10], row[0]))
        _count_takeovers("delivery", [row[DELIVERY_WIDTH + 1] for row in rows], owner.id)
        return [delivery_row(row, lease=row[DELIVERY_WIDTH]) for row in rows]
