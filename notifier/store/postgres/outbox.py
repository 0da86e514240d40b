"""The outbox: deliveries, their attempts, redelivery, ``NOTIFY`` on new rows."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import psycopg

from notifier.store.columns import (
    DELIVERY_COLUMNS,
    delivery_row,
    payload_text,
    requeued,
    target_url,
)
from notifier.store.feed import event_ids, log_row
from notifier.store.postgres.connection import AT, CHANNEL, PostgresConnection, at, returned
from notifier.store.postgres.feed import append as append_events
from notifier.store.rows import (
    Attempt,
    AttemptRecord,
    BulkRedelivery,
    Cursor,
    Delivery,
    NewEvent,
    new_delivery_id,
)

log = logging.getLogger("notifier.store.postgres")


def enqueue(cur: psycopg.Cursor[Any], events: Sequence[tuple[str | None, NewEvent, float]]) -> int:
    """Put each event in the outbox once per callback, wake the other daemons and append
    the events to the event log (last: see :mod:`~notifier.store.postgres.feed`);
    returns how many outbox rows are new."""
    base = time.time()
    ids = event_ids(events)
    rows = [
        (event_id if index == 0 else new_delivery_id(), job_id, callback, event.event,
         payload_text(event.payload), at(now, base), at(now, base), at(now, base),
         target_url(event, callback), event.occurrence)
        for event_id, (job_id, event, now) in zip(ids, events, strict=True)
        for index, callback in enumerate(event.callbacks)
    ]  # fmt: skip
    created = insert_deliveries(cur, rows) if rows else 0
    append_events(
        cur,
        [(*log_row(event_id, job_id, event), now)
         for event_id, (job_id, event, now) in zip(ids, events, strict=True)],
        base,
    )  # fmt: skip
    return created


def insert_deliveries(cur: psycopg.Cursor[Any], rows: Sequence[tuple[Any, ...]]) -> int:
    """Insert pending outbox rows (id, job_id, callback, event, payload, created_at,
    queued_at, next_attempt_at -- offsets for :data:`AT` -- target_url, occurrence) but
    those already there, and wake the other daemons; returns how many are new."""
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
    created = len(returned(cur))
    if created:
        cur.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
    return created


class PostgresOutbox(PostgresConnection):
    """Recording, listing and redelivering deliveries."""

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
        """Queue a delivery again under the same id; None if there is no such delivery.
        An event that went out in a digest: the digest, whole."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT digest_id FROM deliveries WHERE id = %s AND state = 'digested'",
                (delivery_id,),
            ).fetchone()
            delivery_id = delivery_id if row is None else row[0]
            conn.execute(
                f"""
                UPDATE deliveries SET state = 'pending', next_attempt_at = {AT}, queued_at = {AT},
                                      delivered_at = NULL
                WHERE id = %s AND state != 'digested'
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
        """The outbox, optionally filtered, oldest first; the events that went out in
        a digest only when asked for (by state, job or id)."""
        start, start_id = after or (None, None)
        members = state is not None or job_id is not None or delivery_id is not None
        rows = self._query(
            f"""
            SELECT {DELIVERY_COLUMNS} FROM deliveries
            WHERE (%s::text IS NULL OR state = %s) AND (%s::text IS NULL OR job_id = %s)
              AND (%s::text IS NULL OR id = %s) AND (%s::text IS NULL OR callback = %s)
              AND (%s::float8 IS NULL OR (created_at, id) > (%s, %s))
              AND (%s OR state != 'digested')
            ORDER BY created_at, id
            LIMIT %s
            """,
            (
                *(state, state, job_id, job_id, delivery_id, delivery_id, callback, callback),
                *(start, start, start_id, members, limit),
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

    def add_event(self, job_id: str | None, event: NewEvent, now: float) -> int:
        """Put one event (an operational alert: no job) in the outbox."""
        with self._transaction() as conn, conn.cursor() as cur:
            return enqueue(cur, [(job_id, event, now)])
