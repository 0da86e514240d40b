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
LATE_EVENT = "job.late"
AT_RISK_EVENT = "job.at_risk"
# A group's events (issue 21.2), valid in a callback's ``events`` filter as well.
GROUP_EVENTS = ("group.completed", "group.failed", "group.late", "group.at_risk")
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
    group: str | None = None,
    labels: dict[str, str] | None = None,
    metadata: dict[str, Any] | None = None,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Return the payload for ``event`` about ``job`` (Datasaur's object, or None).

    ``extra`` adds event-specific fields to ``data`` (``job.stalled``: ``stalled_for_s``
    and ``stalled_since``); then come the job's registration fields (issue 21):
    ``group`` (or null), ``labels``, ``metadata`` (``{}`` when none) and ``deadline``.
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
            **registration_data(group, labels, metadata, deadline),
        },
    }


def registration_data(
    group: str | None,
    labels: dict[str, str] | None,
    metadata: dict[str, Any] | None,
    deadline: float | None,
) -> dict[str, Any]:
    """The ``data`` fields every job event carries from the job's registration."""
    return {
        "group": group,
        "labels": dict(labels or {}),
        "metadata": dict(metadata or {}),
        "deadline": None if deadline is None else isoformat(deadline),
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
        labels={"queue": "AutoLabelQueue"},
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
    (for an alert: ``callback ops-hook paused``; a reminder starts ``reminder 2:``)."""
    reminder = payload["data"].get("reminder")
    what = _describe(payload)
    return what if reminder is None else f"reminder {reminder}: {what}"


def _describe(payload: dict[str, Any]) -> str:
    data = payload["data"]
    if str(payload.get("type", "")).startswith("group."):
        return group_subject(payload)
    if is_alert(payload):
        return f"callback {data['callback']} {payload['type'].removeprefix(ALERT_PREFIX)}"
    label = data.get("name") or data.get("job_id") or data.get("group")
    status = data.get("status") or "?"
    if payload["type"] == STALLED_EVENT:
        since = format_duration(float(data.get("stalled_for_s") or 0))
        return f"{label}: STALLED ({status}, no change for {since})"
    if payload["type"] == LATE_EVENT:
        return f"{label}: LATE ({status}, deadline {data.get('deadline')})"
    if payload["type"] == AT_RISK_EVENT:
        return (
            f"{label}: AT RISK ({status}, expected {data.get('eta')}, deadline"
            f" {data.get('deadline')})"
        )
    what = "EXPIRED" if payload["type"] == EXPIRED_EVENT else status
    return f"{label}: {what}"


def group_subject(payload: dict[str, Any]) -> str:
    """``group nightly-42 failed: 38 delivered, 2 failed`` (e-mail and Apprise titles)."""
    data = payload["data"]
    what = str(payload["type"]).removeprefix("group.").replace("_", " ")
    counts = data.get("counts") or {}
    parts = [f"{counts[key]} {key}" for key in ("delivered", "failed", "expired", "running")
             if counts.get(key)]  # fmt: skip
    return f"group {data.get('group')} {what}: {', '.join(parts) or 'no members'}"
