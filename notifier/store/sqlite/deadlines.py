"""Issue 21 on the poll path: a job's labels and metadata read when one of its events is
recorded, and the deadline sweep (job.late, at most once per job)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from notifier.store.columns import EXTRA_COLUMNS, JOB_COLUMNS, job_row, json_object
from notifier.store.rows import JobExtras, LateJob, PollsWritten, WatchedJob
from notifier.store.sqlite.connection import SqliteConnection
from notifier.store.sqlite.outbox import enqueue


class SqliteDeadlines(SqliteConnection):
    """What an event reads beyond the claim, and the deadline sweep."""

    def job_extras(self, job_ids: Sequence[str]) -> dict[str, JobExtras]:
        """The labels and metadata of ``job_ids`` (the ones still known)."""
        rows = self._query(
            f"SELECT id, {EXTRA_COLUMNS} FROM jobs WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(job_ids)),),
        )
        return {row[0]: JobExtras(json_object(row[1]), json_object(row[2])) for row in rows}

    def deadlines_due(self, now: float, limit: int) -> list[WatchedJob]:
        """Watched jobs whose deadline passed by ``now`` and whose job.late is not
        recorded yet, earliest deadline first."""
        rows = self._query(
            f"SELECT {JOB_COLUMNS} FROM jobs INDEXED BY jobs_deadline"
            " WHERE deadline IS NOT NULL AND late_at IS NULL AND state = 'watching'"
            " AND deadline <= ? ORDER BY deadline LIMIT ?",
            (now, limit),
        )
        return [job_row(row) for row in rows]

    def record_late(self, late: Sequence[LateJob], now: float) -> PollsWritten:
        """Mark jobs late and queue their events, in one transaction; a job already
        marked, or no longer watched, is refused (its events are not queued)."""
        created, refused = 0, set[str]()
        with self._transaction() as conn:
            for job_id, events in late:
                marked = conn.execute(
                    "UPDATE jobs SET late_at = ? WHERE id = ? AND late_at IS NULL"
                    " AND state = 'watching'",
                    (now, job_id),
                ).rowcount
                if not marked:
                    refused.add(job_id)
                    continue
                for event in events:
                    created += enqueue(conn, job_id, event, now)
        return PollsWritten(created, frozenset(refused))
