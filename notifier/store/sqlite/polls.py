"""Claiming due jobs and recording what their polls found."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from notifier.store.columns import CLAIM_COLUMNS, SCHEDULE_COLUMNS, claimed_row, dumps
from notifier.store.grouping import Tx, records_only_schedules, touched_groups
from notifier.store.groupstore import GroupStore
from notifier.store.rows import JobUpdate, PollsWritten, WatchedJob, is_quiet, updated_at_of
from notifier.store.sqlite.connection import SqliteConnection
from notifier.store.sqlite.outbox import enqueue

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
                    job_updated_at = CASE WHEN ? THEN ? ELSE job_updated_at END,
                    at_risk_at = CASE WHEN ? THEN ? ELSE at_risk_at END
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
            updated_at_of(u.job), u.at_risk, u.polled_at, u.job_id)  # fmt: skip


class SqlitePolls(SqliteConnection, GroupStore):
    """The poll path: claim due jobs, write their polls and events in one transaction."""

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
        with self._transaction(durable=not records_only_schedules(updates)) as conn:
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
                    created += enqueue(conn, update.job_id, event, update.polled_at)
            created += self._settle_groups(conn, updates, refused)
        return PollsWritten(created, frozenset(refused))

    def _settle_groups(
        self, conn: sqlite3.Connection, updates: Sequence[JobUpdate], refused: set[str]
    ) -> int:
        """The group events this write causes (see :func:`touched_groups`), recorded in
        its transaction; the outbox rows created."""
        ended, estimated, now = touched_groups(updates, refused)
        if not ended and not estimated:
            return 0
        events = self._settle_polls(Tx(conn.execute, postgres=False), ended, estimated, now)
        return sum(enqueue(conn, None, event, now) for event in events)

    def release_jobs(self, jobs: Sequence[WatchedJob]) -> None:
        """Nothing to release: claims take no lease here."""
