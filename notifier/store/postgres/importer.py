"""``import-state``: copy a SQLite state file into PostgreSQL."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notifier.store.base import StoreError
from notifier.store.columns import DELIVERY_COLUMNS
from notifier.store.grouping import GROUP_COLUMNS
from notifier.store.postgres.connection import CHANNEL, PostgresConnection, returned
from notifier.store.reminding import ACK_COLUMNS, REMINDER_COLUMNS

log = logging.getLogger("notifier.store.postgres")


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
    groups: list[tuple[Any, ...]]
    acks: list[tuple[Any, ...]]
    reminders: list[tuple[Any, ...]]


_IMPORTED_JOB_COLUMNS = (
    "id, name, notify, on_status, source, state, unwatched_by, status, progress, job,"
    " registered_at, last_polled_at, next_poll_at, poll_interval, last_error, callback_url,"
    " changed_at, stalls, stalled, started_at, baseline_at, baseline_progress, eta, job_updated_at,"
    " group_id, labels, metadata, deadline, expire_after, stall_after, at_risk_at, late_at"
)


# The groups jobs name that no imported group row declares: open, as a job creates one.
_GROUPS_OF_JOBS = """
    INSERT INTO job_groups (id, source, state, created_at, updated_at)
    SELECT group_id, 'job', 'open', min(registered_at), min(registered_at) FROM jobs
    WHERE group_id IS NOT NULL GROUP BY group_id
    ON CONFLICT (id) DO NOTHING
"""


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
                (*row[:13], row[13] or 0, *row[14:])
                for row in _select(conn, "deliveries", DELIVERY_COLUMNS)
            ]
            attempts = [
                (*row[:3], bool(row[3]), row[4])
                for row in _select(
                    conn, "attempts", "delivery_id, attempted_at, duration, ok, detail"
                )
            ]
            groups = _groups(conn)
            acks = _rows_if_present(conn, "acks", ACK_COLUMNS)
            reminders = _rows_if_present(conn, "reminders", REMINDER_COLUMNS)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the SQLite state file {path}: {exc}") from None
    return _SqliteRows(jobs, deliveries, attempts, groups, acks, reminders)


def _rows_if_present(conn: sqlite3.Connection, table: str, columns: str) -> list[tuple[Any, ...]]:
    """Every row of ``table``; none in a schema older than the table."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone():
        return []
    return _select(conn, table, columns)


def _groups(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """The groups (none in a schema older than groups: the jobs' groups come back open)."""
    rows = _rows_if_present(conn, "job_groups", GROUP_COLUMNS)
    return [(*row[:6], bool(row[6]), *row[7:]) for row in rows]  # fail_fast


class PostgresImport(PostgresConnection):
    """Moving from SQLite, idempotently."""

    def import_sqlite(self, path: Path) -> ImportCounts:
        """Copy a SQLite state file's jobs, groups, deliveries, attempts, acks and
        reminder schedules, in one transaction (silences are not copied: add them again).

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
            jobs = len(returned(cur))
            cur.executemany(
                f"""
                INSERT INTO deliveries ({DELIVERY_COLUMNS})
                VALUES ({_marks(DELIVERY_COLUMNS)})
                ON CONFLICT DO NOTHING RETURNING id
                """,
                source.deliveries,
                returning=True,
            )
            new = set(returned(cur))
            attempts = [row for row in source.attempts if row[0] in new]
            cur.executemany(
                "INSERT INTO attempts (delivery_id, attempted_at, duration, ok, detail)"
                " VALUES (%s, %s, %s, %s, %s)",
                attempts,
            )
            cur.executemany(
                f"INSERT INTO job_groups ({GROUP_COLUMNS}) VALUES ({_marks(GROUP_COLUMNS)})"
                " ON CONFLICT (id) DO NOTHING",
                source.groups,
            )
            cur.execute(_GROUPS_OF_JOBS)
            cur.executemany(
                f"INSERT INTO acks ({ACK_COLUMNS}) VALUES ({_marks(ACK_COLUMNS)})"
                " ON CONFLICT (kind, subject) DO NOTHING",
                source.acks,
            )
            cur.executemany(  # the schedules of the deliveries copied now
                f"INSERT INTO reminders ({REMINDER_COLUMNS}) VALUES ({_marks(REMINDER_COLUMNS)})"
                " ON CONFLICT (delivery_id) DO NOTHING",
                [row for row in source.reminders if row[0] in new],
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
