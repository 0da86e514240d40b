"""The watch list: jobs registered by the config, the CLI and the API."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from notifier.config import JobSpec
from notifier.store.columns import (
    FIELD_COLUMNS,
    JOB_COLUMNS,
    JOB_WIDTH,
    field_columns,
    job_row,
    spec_columns,
)
from notifier.store.grouping import Tx, join, seal_if_expected
from notifier.store.postgres.connection import AT, NOW, SYNC_LOCK, PostgresConnection, at, qualified
from notifier.store.postgres.reminders import END_REMINDERS
from notifier.store.rows import Cursor, WatchedJob
from notifier.store.shared import UPSERT_SET, check_group, config_spec

log = logging.getLogger("notifier.store.postgres")


class PostgresJobs(PostgresConnection):
    """Registering, unwatching and listing jobs."""

    def _upsert(
        self,
        conn: psycopg.Connection[Any],
        specs: Sequence[JobSpec],
        source: str,
        now: float,
        callback_url: str | None = None,
        since: dict[str, float] | None = None,
    ) -> None:
        """Insert or update ``specs``; a duration deadline counts from the job's
        ``since`` entry (default ``now``)."""
        offset = at(now)
        rows = []
        for s in specs:
            group, labels, metadata, deadline, expire, stall = field_columns(
                s, (since or {}).get(s.id, now)
            )
            rows.append((s.id, s.name, *spec_columns(s), source, offset, offset, callback_url,
                         group, labels, metadata, at(deadline, now), expire, stall))  # fmt: skip
        with conn.cursor() as cur:
            cur.executemany(
                f"""
                INSERT INTO jobs (id, name, notify, on_status, source, state, registered_at,
                                  next_poll_at, callback_url, {", ".join(FIELD_COLUMNS)})
                VALUES (%s, %s, %s, %s, %s, 'watching', {AT}, {AT}, %s,
                        %s, %s::jsonb, %s, {AT}, %s, %s)
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
            stored = {
                row[0]: row[1:]
                for row in conn.execute(
                    f"SELECT id, source, group_id, registered_at - {NOW} + %s, state FROM jobs"
                    " WHERE id = ANY(%s)",
                    (now, [spec.id for spec in specs]),
                )
            }
            mine = [
                config_spec(spec, stored[spec.id][1] if spec.id in stored else None)
                for spec in specs
                if stored.get(spec.id, ("config",))[0] == "config"
            ]
            since = {
                job_id: registered_at
                for job_id, (_, _, registered_at, state) in stored.items()
                if state != "unwatched"
            }
            self._upsert(conn, mine, "config", now, None, since)
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
        """Add (or update) a job from the CLI or the API; it survives config reloads.
        Re-registering a job ends its reminders.

        A job in a group registered under another is refused (:class:`GroupConflict`),
        as is joining a group that has ended (:class:`~notifier.groups.GroupEnded`), and
        nothing changes. An undeclared group is created open.
        """
        with self._transaction() as conn:
            stored = conn.execute(
                "SELECT group_id FROM jobs WHERE id = %s FOR UPDATE", (spec.id,)
            ).fetchone()
            stored_group = None if stored is None else stored[0]
            check_group(spec, stored_group)
            tx = Tx(conn.execute, postgres=True, stamp=at)
            join(tx, spec.group, stored_group, now)
            self._upsert(conn, [spec], source, now, callback_url)
            self._rewatch(conn, [spec.id], now, "operator")
            conn.execute(END_REMINDERS, ("job", spec.id))
            seal_if_expected(tx, spec.group, now)
        return self.jobs(job_id=spec.id)[0]

    def unwatch(self, job_id: str) -> WatchedJob | None:
        """Stop polling a job (unless it is already done) and end its reminders; None if
        it is unknown."""
        with self._transaction() as conn:
            conn.execute(
                """
                UPDATE jobs SET state = 'unwatched', unwatched_by = 'operator', next_poll_at = NULL
                WHERE id = %s AND state != 'done'
                """,
                (job_id,),
            )
            conn.execute(END_REMINDERS, ("job", job_id))
        found = self.jobs(job_id=job_id)
        return found[0] if found else None

    def jobs(
        self,
        state: str | None = None,
        job_id: str | None = None,
        after: Cursor | None = None,
        limit: int | None = None,
        group: str | None = None,
        labels: Sequence[tuple[str, str]] = (),
    ) -> list[WatchedJob]:
        """The watch list, optionally filtered (``labels``: all must match, one jsonb
        containment), in registration order, with lease holders."""
        start, start_id = after or (None, None)
        wanted = json.dumps(dict(labels)) if labels else None
        rows = self._query(
            f"""
            SELECT {qualified(JOB_COLUMNS, "j")}, i.name FROM jobs j
            LEFT JOIN instances i ON i.id = j.lease_owner AND j.lease_until >= {NOW}
            WHERE (%s::text IS NULL OR j.state = %s) AND (%s::text IS NULL OR j.id = %s)
              AND (%s::text IS NULL OR j.group_id = %s)
              AND (%s::jsonb IS NULL OR j.labels @> %s::jsonb)
              AND (%s::float8 IS NULL OR (j.registered_at, j.id) > (%s, %s))
            ORDER BY j.registered_at, j.id
            LIMIT %s
            """,
            (
                state,
                state,
                job_id,
                job_id,
                group,
                group,
                wanted,
                wanted,
                start,
                start,
                start_id,
                limit,
            ),
        )
        return [job_row(row, owner=row[JOB_WIDTH]) for row in rows]
