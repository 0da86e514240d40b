"""The columns both backends select, in one order, and the one decoder of each row.

What the poll reads of a job it claims (:meth:`~notifier.store.base.Store.claim_jobs`),
then the rest of a row: a claim leaves out ``source``, ``state`` (it is 'watching'),
``last_polled_at`` and ``next_poll_at``, which nothing on the poll path reads. Python
3.11's sqlite3 releases and retakes the GIL around every column it reads: each costs
~0.06 µs per row.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from notifier.callback_urls import CALLBACK_PREFIX
from notifier.config import JobSpec
from notifier.jobfields import metadata_text
from notifier.store.rows import Delivery, NewEvent, WatchedJob

CLAIM_COLUMNS = (
    "id, name, notify, on_status, status, progress, job, registered_at, poll_interval, "
    "last_error, callback_url, changed_at, stalls, stalled, started_at, baseline_at, "
    "baseline_progress, eta, job_updated_at, group_id, deadline, expire_after, stall_after, "
    "at_risk_at, late_at"
)
# Labels and metadata (JSON, up to 8 KiB) stay off the claim: an event reads them.
EXTRA_COLUMNS = "labels, metadata"
JOB_COLUMNS = f"{CLAIM_COLUMNS}, source, state, last_polled_at, next_poll_at, {EXTRA_COLUMNS}"
DELIVERY_COLUMNS = (
    "id, job_id, callback, event, payload, state, attempts, last_error, created_at, "
    "queued_at, next_attempt_at, delivered_at, target_url, occurrence, silence_id, "
    "digest_id"
)
# How many columns those are: a query that selects more after them reads them from here.
CLAIM_WIDTH = len(CLAIM_COLUMNS.split(","))
JOB_WIDTH = len(JOB_COLUMNS.split(","))
DELIVERY_WIDTH = len(DELIVERY_COLUMNS.split(","))
# What a schedule-only poll writes (JobUpdate.schedule_only), in this order.
SCHEDULE_COLUMNS = ("last_polled_at", "next_poll_at", "poll_interval", "baseline_at", "eta")
HEALTH_COLUMNS = "callback, consecutive_failures, last_error, paused_at, last_probe_at"


@functools.lru_cache(maxsize=256)
def _names(text: str | None) -> tuple[str, ...] | None:
    """``notify`` or ``on_status`` decoded; the same few values recur on every row."""
    return None if text is None else tuple(json.loads(text))


def dumps(value: Any) -> str | None:
    """JSON text for a column, or NULL."""
    return None if value is None else json.dumps(value)


def claimed_row(row: Sequence[Any], owner: str | None = None, lease: int = 0) -> WatchedJob:
    """A :data:`CLAIM_COLUMNS` row as a :class:`WatchedJob` being polled (on every
    job-poll: keep it lean, ``_make`` skips a call with 25 arguments); the columns a claim
    leaves out are None."""
    return WatchedJob._make((
        row[0], row[1], _names(row[2]), _names(row[3]) or (), None, "watching", row[4], row[5],
        row[6], row[7], None, None, row[8], row[9], row[10], row[11], row[12], bool(row[13]),
        row[14], row[15], row[16], row[17], row[18], row[19], row[20], row[21], row[22],
        row[23], row[24], None, None, owner, lease,
    ))  # fmt: skip


def job_row(row: Sequence[Any], owner: str | None = None, lease: int = 0) -> WatchedJob:
    """A :data:`JOB_COLUMNS` row as a :class:`WatchedJob`."""
    source, state, last_polled_at, next_poll_at, labels, metadata = row[CLAIM_WIDTH:JOB_WIDTH]
    return claimed_row(row, owner, lease)._replace(
        source=source, state=state, last_polled_at=last_polled_at, next_poll_at=next_poll_at,
        labels=json_object(labels), metadata=json_object(metadata),
    )  # fmt: skip


def json_object(value: Any) -> dict[str, Any]:
    """A JSON object column (text on SQLite, jsonb or text on PostgreSQL); NULL: ``{}``."""
    if value is None:
        return {}
    return dict(json.loads(value) if isinstance(value, str) else value)


def delivery_row(row: Sequence[Any], lease: int = 0) -> Delivery:
    """A :data:`DELIVERY_COLUMNS` row as a :class:`Delivery`."""
    return Delivery(
        id=row[0],
        job_id=row[1],
        callback=row[2],
        event=row[3],
        payload=json.loads(row[4]),
        state=row[5],
        attempts=row[6],
        last_error=row[7],
        created_at=row[8],
        queued_at=row[9],
        next_attempt_at=row[10],
        delivered_at=row[11],
        target_url=row[12],
        lease=lease,
        occurrence=row[13],
        silence_id=row[14],
        digest_id=row[15],
    )


def requeued(deliveries: Iterable[Delivery], now: float) -> list[Delivery]:
    """``deliveries`` as a redelivery leaves them: pending, due ``now``, queued ``now``."""
    return [
        replace(d, state="pending", next_attempt_at=now, queued_at=now,
                            delivered_at=None)
        for d in deliveries
    ]  # fmt: skip


def spec_columns(spec: JobSpec) -> tuple[str | None, str]:
    """A job spec's ``notify`` and ``on_status`` as stored."""
    return dumps(spec.notify), json.dumps([str(status) for status in spec.on_status])


# What a registration writes beyond SPEC's first columns, in this order.
FIELD_COLUMNS = ("group_id", "labels", "metadata", "deadline", "expire_after", "stall_after")


def field_columns(spec: JobSpec, registered_at: float) -> tuple[Any, ...]:
    """A spec's :data:`FIELD_COLUMNS` as stored: a duration deadline counted from
    ``registered_at``."""
    return (
        spec.group,
        json.dumps(spec.labels) if spec.labels else None,
        None if spec.metadata is None else metadata_text(spec.metadata),
        None if spec.deadline is None else spec.deadline.resolve(registered_at),
        spec.expire_after,
        spec.stall_after,
    )


def target_url(event: NewEvent, callback: str) -> str | None:
    """The URL a ``url:<origin>`` delivery posts to; None for configured callbacks."""
    return event.target_url if callback.startswith(CALLBACK_PREFIX) else None


def payload_text(payload: dict[str, Any]) -> str:
    """An outbox payload as stored: compact JSON."""
    return json.dumps(payload, separators=(",", ":"))
