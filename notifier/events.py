"""Events the daemon notifies about, and the payload every channel renders.

The payload is the Standard Webhooks body: ``{"type", "timestamp", "data"}``. It is
built once, when the event is recorded, and stored with the outbox row so that a
retry or a redelivery sends exactly the same body.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from notifier.durations import format_duration

TERMINAL_STATUSES = frozenset({"DELIVERED", "FAILED"})
EXPIRED_EVENT = "job.expired"
STALLED_EVENT = "job.stalled"
TEST_EVENT = "test"
ALERT_PREFIX = "callback."


class JobStatus(StrEnum):
    """Datasaur's ``JobStatus`` enum."""

    NONE = "NONE"
    QUEUED = "QUEUED"
    IN_PROGRESS = "IN_PROGRESS"
    FAILED = "FAILED"
    DELIVERED = "DELIVERED"


def event_type(status: str) -> str:
    """``DELIVERED`` -> ``job.delivered``."""
    return "job." + status.lower()


def isoformat(timestamp: float) -> str:
    """Unix seconds -> ISO-8601 UTC with millisecond precision and a ``Z``."""
    moment = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_payload(
    event: str,
    *,
    job_id: str,
    name: str | None,
    job: dict[str, Any] | None,
    previous_status: str | None,
    observed_at: float,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the payload for ``event`` about ``job`` (Datasaur's object, or None).

    ``extra`` adds event-specific fields to ``data`` (``job.stalled``: ``stalled_for_s``
    and ``stalled_since``).
    """
    job = job or {}
    return {
        "type": event,
        "timestamp": isoformat(observed_at),
        "data": {
            "job_id": job_id,
            "name": name,
            "status": job.get("status"),
            "previous_status": previous_status,
            "progress": job.get("progress"),
            "result_id": job.get("resultId"),
            "errors": job.get("errors"),
            "observed_at": isoformat(observed_at),
            "job": job or None,
            **(extra or {}),
        },
    }


def stall_fields(changed_at: float, now: float) -> dict[str, Any]:
    """``job.stalled``'s extra ``data``: seconds since the last change, and when it was."""
    return {"stalled_for_s": round(now - changed_at, 3), "stalled_since": isoformat(changed_at)}


def sample_payload(now: float) -> dict[str, Any]:
    """A ``test`` event about a made-up job, for ``test-callback`` and template checks."""
    job_id = "AutoLabelQueue:00000000-0000-4000-8000-000000000000"
    job: dict[str, Any] = {
        "id": job_id,
        "status": "DELIVERED",
        "progress": 100,
        "errors": [],
        "resultId": "sample-result",
        "createdAt": isoformat(now - 60),
        "updatedAt": isoformat(now),
    }
    return build_payload(
        TEST_EVENT,
        job_id=job_id,
        name="sample job",
        job=job,
        previous_status="IN_PROGRESS",
        observed_at=now,
    )


def alert_payload(kind: str, health: Any, pending: int, now: float) -> dict[str, Any]:
    """A ``callback.paused``/``callback.resumed`` event: about a callback, not a job."""
    return {
        "type": f"callback.{kind}",
        "timestamp": isoformat(now),
        "data": {
            "callback": health.callback,
            "consecutive_failures": health.consecutive_failures,
            "last_error": health.last_error,
            "pending": pending,
        },
    }


def is_alert(payload: dict[str, Any]) -> bool:
    """Whether ``payload`` is an operational alert (it has no job)."""
    return str(payload.get("type", "")).startswith(ALERT_PREFIX)


def describe(payload: dict[str, Any]) -> str:
    """One line naming the job and what happened, e.g. ``autolabel batch 12: DELIVERED``
    (for an alert: ``callback ops-hook paused``)."""
    data = payload["data"]
    if is_alert(payload):
        return f"callback {data['callback']} {payload['type'].removeprefix(ALERT_PREFIX)}"
    label = data.get("name") or data["job_id"]
    status = data.get("status") or "?"
    if payload["type"] == STALLED_EVENT:
        since = format_duration(float(data.get("stalled_for_s") or 0))
        return f"{label}: STALLED ({status}, no change for {since})"
    what = "EXPIRED" if payload["type"] == EXPIRED_EVENT else status
    return f"{label}: {what}"
