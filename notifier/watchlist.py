"""Registering a job that may already be known: what the CLI's ``watch`` and the API's
``POST /v1/jobs`` share.

The fields given win, the others keep their stored values (``null`` from the API
clears one); nothing given means nothing changes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from notifier.durations import relative_time
from notifier.jobfields import Deadline, with_queue
from notifier.store import WatchedJob

JOB_FIELDS = (
    "name", "notify", "on_status", "callback_url",
    "group", "labels", "metadata", "deadline", "expire_after", "stall_after",
)  # fmt: skip


def stored_fields(job: WatchedJob | None) -> dict[str, Any]:
    """A job's registration fields as stored (all None for an unknown job)."""
    if job is None:
        return dict.fromkeys(JOB_FIELDS)
    return {
        "name": job.name,
        "notify": None if job.notify is None else list(job.notify),
        "on_status": list(job.on_status),
        "callback_url": job.callback_url,
        "group": job.group,
        "labels": job.labels or None,
        "metadata": job.metadata or None,
        "deadline": None if job.deadline is None else Deadline(at=job.deadline),
        "expire_after": job.expire_after,
        "stall_after": job.stall_after,
    }


def merge(job_id: str, job: WatchedJob | None, given: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``job_id`` after registering ``given`` (a subset of JOB_FIELDS).

    ``on_status`` is left out when None: the default statuses.
    """
    merged = {"id": job_id, **stored_fields(job), **given}
    if merged["on_status"] is None:
        del merged["on_status"]
    return merged


def changed_fields(job: WatchedJob, given: Mapping[str, Any]) -> list[str]:
    """The names of the fields in ``given`` that differ from ``job``'s."""
    current = stored_fields(job)
    return [
        name for name, value in given.items()
        if current[name] != _comparable(job.id, name, value)
    ]  # fmt: skip


def _comparable(job_id: str, name: str, value: Any) -> Any:
    """A given value as :func:`stored_fields` has it (a duration deadline: always new)."""
    if name == "labels":
        return with_queue(job_id, value) or None
    if name == "metadata":
        return value or None
    if name == "deadline" and isinstance(value, Deadline) and value.at is None:
        return value
    return list(value) if isinstance(value, tuple) and not isinstance(value, Deadline) else value


def describe_state(job: WatchedJob, now: float | None = None) -> str:
    """``already done: delivered 3m ago`` and the like: where a known job stands."""
    now = time.time() if now is None else now
    if job.state == "done":
        status = (job.status or "done").lower()
        return f"already done: {status} {relative_time(job.changed_at or job.last_polled_at, now)}"
    if job.state == "watching":
        progress = "" if job.progress is None else f" {job.progress}%"
        return f"already watching ({job.status or 'not polled yet'}{progress})"
    return f"{job.state}"
