"""Events the daemon notifies about, and the payload every channel renders.

The payload is the Standard Webhooks body: ``{"type", "timestamp", "data"}``. It is
built once, when the event is recorded, and stored with the outbox row so that a
retry or a redelivery sends exactly the same body.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

TERMINAL_STATUSES = frozenset({"DELIVERED", "FAILED"})
EXPIRED_EVENT = "job.expired"
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
) -> dict[str, Any]:
    """Return the payload for ``event`` about ``job`` (Datasaur's object, or None)."""
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
        },
    }


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
    what = "EXPIRED" if payload["type"] == EXPIRED_EVENT else (data.get("status") or "?")
    return f"{label}: {what}"
