"""The watch list: jobs registered by the config, the CLI and the API."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from notifier.config import JobSpec
from notifier.store.columns import (
    FIELD_COLUMNS,
    JOB_COLUMNS,
    field_columns,
    job_row,
    spec_columns,
)
from notifier.store.grouping import Tx, join, seal_if_expected
from notifier.store.rows import Cursor, WatchedJob
from notifier.store.shared import UPSERT_SET, check_group, config_spec
from notifier.store.sqlite.connection import SqliteConnection
from notifier.store.sqlite.filters import filters, keyset
from notifier.store.sqlite.reminders import END_REMINDERS


class SqliteJobs(SqliteConnection):
    """Registering, unwatching and listing jobs."""

    def _upsert(
        self,
        conn: sqlite3.Connection,
        spec: JobSpec,
        source: str,
        now: float,
        callback_url: str | None = None,
        registered_at: float | None = None,
    ) -> None:
        """Insert or update ``spec``; a duration deadline counts from ``registered_at``
        (default ``now``)."""
        conn.execute(
            f"""
            INSERT INTO jobs (id, name, notify, on_status, source, state, registered_at,
                              next_poll_at, callback_url, {", ".join(FIELD_COLUMNS)})
            VALUES (?, ?, ?, ?, ?, 'watching', ?, ?, ?, ?, ?, ?, ?, ?, ?)
            {UPSERT_SET}
            """,
            (spec.id, spec.name, *spec_columns(spec), source, now, now, callback_url,
             *field_columns(spec, registered_at or now)),
        )  # fmt: skip

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
            known = {
                row[0]: row[1:]
                for row in conn.execute(
                    "SELECT id, group_id, registered_at, state FROM jobs WHERE source='config'"
                )
            }
            for spec in specs:
                if spec.id in cli_jobs:
                    continue
                group, registered_at, state = known.get(spec.id, (None, now, None))
                since = now if state == "unwatched" else registered_at
                self._upsert(conn, config_spec(spec, group), "config", now, None, since)
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
        """Add (or update) a job from the CLI or the API; it survives config reloads.
        Re-registering a job ends its reminders.

        A job in a group registered under another is refused (:class:`GroupConflict`),
        as is joining a group that has ended (:class:`~notifier.groups.GroupEnded`), and
        nothing changes. An undeclared group is created open.
        """
        with self._transaction() as conn:
            stored = conn.execute("SELECT group_id FROM jobs WHERE id = ?", (spec.id,)).fetchone()
            stored_group = None if stored is None else stored[0]
            check_group(spec, stored_group)
            tx = Tx(conn.execute, postgres=False)
            join(tx, spec.group, stored_group, now)
            self._upsert(conn, spec, source, now, callback_url)
            self._rewatch(conn, spec.id, now, "operator")
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
                WHERE id = ? AND state != 'done'
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
        """The watch list, optionally filtered (``labels``: all must match), in
        registration order (then id)."""
        where, params = filters(state=state, id=job_id, group_id=group)
        for key, value in labels:
            where += f"{' AND' if where else ' WHERE'} json_extract(labels, ?) = ?"
            params += [f'$."{key}"', value]
        where, params = keyset(where, params, "registered_at", after)
        rows = self._query(
            f"SELECT {JOB_COLUMNS} FROM jobs{where} ORDER BY registered_at, id LIMIT ?",
            [*params, -1 if limit is None else limit],
        )
        return [job_row(row) for row in rows]
