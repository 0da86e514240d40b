"""The outbox: deliveries, their attempts, redelivery."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from notifier.store.columns import (
    DELIVERY_COLUMNS,
    delivery_row,
    payload_text,
    requeued,
    target_url,
)
from notifier.store.feed import log_row
from notifier.store.rows import (
    Attempt,
    AttemptRecord,
    BulkRedelivery,
    Cursor,
    Delivery,
    NewEvent,
    new_delivery_id,
)
from notifier.store.sqlite.connection import SqliteConnection
from notifier.store.sqlite.feed import append as append_events
from notifier.store.sqlite.filters import filters, keyset
from notifier.store.sqlite.silences import HELD


def enqueue(conn: sqlite3.Connection, job_id: str | None, event: NewEvent, now: float) -> int:
    """Put ``event`` in the outbox once per callback and append it to the event log;
    returns how many outbox rows are new."""
    payload = payload_text(event.payload)
    event_id = new_delivery_id()
    rows = [
        (event_id if index == 0 else new_delivery_id(), job_id, callback, event.event, payload,
         now, now, now, target_url(event, callback), event.occurrence)
        for index, callback in enumerate(event.callbacks)
    ]  # fmt: skip
    append_events(conn, [log_row(event_id, job_id, event)], now)
    return insert_deliveries(conn, rows)


def insert_deliveries(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> int:
    """Insert pending outbox rows (id, job_id, callback, event, payload, created_at,
    queued_at, next_attempt_at, target_url, occurrence) but those already there (the
    same event, callback and occurrence); returns how many are new."""
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


class SqliteOutbox(SqliteConnection):
    """Claiming, recording and redelivering deliveries (no lease: one daemon)."""

    def claim_deliveries(
        self,
        callback: str,
        now: float,
        limit: int,
        exclude: Iterable[str],
        events: Sequence[str] | None = None,
        skip: Sequence[str] = (),
    ) -> list[Delivery]:
        """Pending deliveries of ``callback`` due now, except those being sent and those
        a silence holds; with ``events``, only of those events (quiet hours); never of
        the ``skip`` events (a digest gathers them)."""
        exclude = list(exclude)
        marks = ",".join("?" * len(exclude))
        only = "" if events is None else f" AND event IN ({','.join('?' * len(events))})"
        only += f" AND event NOT IN ({','.join('?' * len(skip))})" if skip else ""
        rows = self._query(
            f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE state = 'pending' AND callback = ?"
            f" AND next_attempt_at <= ? AND id NOT IN ({marks}){only} AND NOT {HELD}"
            " ORDER BY next_attempt_at LIMIT ?",
            (callback, now, *exclude, *(events or ()), *skip, now, now, limit),
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
        """Queue a delivery again under the same id; None if there is no such delivery.
        An event that went out in a digest: the digest, whole."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT digest_id FROM deliveries WHERE id = ? AND state = 'digested'",
                (delivery_id,),
            ).fetchone()
            delivery_id = delivery_id if row is None else row[0]
            conn.execute(
                """
                UPDATE deliveries SET state = 'pending', next_attempt_at = ?, queued_at = ?,
                                      delivered_at = NULL
                WHERE id = ? AND state != 'digested'
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
        where, params = filters(state=state, callback=callback, job_id=job_id)
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
        """The outbox, optionally filtered, oldest first (then by id); the events that
        went out in a digest only when asked for (by state, job or id)."""
        where, params = filters(state=state, job_id=job_id, id=delivery_id, callback=callback)
        if state is None and job_id is None and delivery_id is None:
            where = f"{where} AND state != 'digested'" if where else " WHERE state != 'digested'"
        where, params = keyset(where, params, "created_at", after)
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

    def add_event(self, job_id: str | None, event: NewEvent, now: float) -> int:
        """Put one event (an operational alert: no job) in the outbox."""
        with self._transaction() as conn:
            return enqueue(conn, job_id, event, now)
