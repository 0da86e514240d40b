"""Issue 21 on the poll path: a job's labels and metadata read when one of its events is
recorded, and the deadline sweep (job.late, at most once per job, whichever daemon
sweeps first: the mark is a conditional update, so a second daemon's is refused)."""

from __future__ import annotations

from collections.abc import Sequence

from notifier.store.columns import EXTRA_COLUMNS, JOB_COLUMNS, job_row, json_object
from notifier.store.postgres.connection import AT, PostgresConnection, at, returned
from notifier.store.postgres.outbox import enqueue
from notifier.store.rows import JobExtras, LateJob, PollsWritten, WatchedJob


class PostgresDeadlines(PostgresConnection):
    """What an event reads beyond the claim, and the deadline sweep."""

    def job_extras(self, job_ids: Sequence[str]) -> dict[str, JobExtras]:
        """The labels and metadata of ``job_ids`` (the ones still known)."""
        rows = self._query(
            f"SELECT id, {EXTRA_COLUMNS} FROM jobs WHERE id = ANY(%s)", (list(job_ids),)
        )
        return {row[0]: JobExtras(json_object(row[1]), json_object(row[2])) for row in rows}

    def deadlines_due(self, now: float, limit: int) -> list[WatchedJob]:
        """Watched jobs whose deadline passed by ``now`` and whose job.late is not
        recorded yet, earliest deadline first."""
        rows = self._query(
            f"SELECT {JOB_COLUMNS} FROM jobs"
            " WHERE deadline IS NOT NULL AND late_at IS NULL AND state = 'watching'"
            f" AND deadline <= {AT} ORDER BY deadline LIMIT %s",
            (at(now), limit),
        )
        return [job_row(row) for row in rows]

    def record_late(self, late: Sequence[LateJob], now: float) -> PollsWritten:
        """Mark jobs late and queue their events, in one transaction (in id order); a
        job already marked (by another daemon too), or no longer watched, is refused."""
        late = sorted(late, key=lambda item: item[0])
        if not late:
            return PollsWritten(0)
        with self._transaction() as conn, conn.cursor() as cur:
            cur.executemany(
                f"UPDATE jobs SET late_at = {AT} WHERE id = %s AND late_at IS NULL"
                " AND state = 'watching' RETURNING id",
                [(at(now), job_id) for job_id, _ in late],
                returning=True,
            )
            marked = set(returned(cur))
            events = [(job_id, e, now) for job_id, events in late if job_id in marked
                      for e in events]  # fmt: skip
            created = enqueue(cur, events) if events else 0
        return PollsWritten(created, frozenset(job_id for job_id, _ in late) - marked)
