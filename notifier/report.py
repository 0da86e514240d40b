"""How ``status`` and ``deliveries`` show the store: JSON documents and aligned tables."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from notifier.durations import relative_time
from notifier.events import isoformat
from notifier.reminders import Ack, ack_document
from notifier.store import AttemptRecord, CallbackHealth, Delivery, InstanceRecord, WatchedJob


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else isoformat(timestamp)


def job_errors(job: WatchedJob) -> list[dict[str, str]]:
    """Datasaur's ``errors`` of the job as last seen: each error's ``id`` and ``stack``."""
    errors = (job.job or {}).get("errors")
    if not isinstance(errors, list):
        return []
    return [
        {"id": str(error.get("id", "")), "stack": str(error.get("stack", ""))}
        for error in errors
        if isinstance(error, dict)
    ]


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0].strip() if lines else ""


def error_text(job: WatchedJob) -> str:
    """The ``ERROR`` cell: Datasaur's errors (id: the stack's first line), then ours."""
    parts = [": ".join(filter(None, (e["id"], _first_line(e["stack"])))) for e in job_errors(job)]
    return "; ".join([*parts, *([job.last_error] if job.last_error else [])])


def job_document(job: WatchedJob, ack: Ack | None = None) -> dict[str, Any]:
    """A watched job as ``status --json`` prints it, with its acknowledgement."""
    return {
        "id": job.id,
        "name": job.name,
        "status": job.status,
        "progress": job.progress,
        "state": job.state,
        "last_polled_at": _iso(job.last_polled_at),
        "next_poll_at": _iso(job.next_poll_at),
        "last_error": job.last_error,
        "errors": job_errors(job),
        "notify": job.notify,
        "on_status": list(job.on_status),
        "source": job.source,
        "owner": job.owner,
        "callback_url": job.callback_url,
        "eta": _iso(job.eta),
        "group": job.group,
        "labels": job.labels or {},
        "metadata": job.metadata or {},
        "deadline": _iso(job.deadline),
        "expire_after": job.expire_after,
        "stall_after": job.stall_after,
        "at_risk_at": _iso(job.at_risk_at),
        "late_at": _iso(job.late_at),
        "ack": ack_document(ack),
    }


def delivery_document(delivery: Delivery) -> dict[str, Any]:
    """A delivery as ``deliveries --json`` prints it; ``id`` is the webhook-id."""
    return {
        "id": delivery.id,
        "job_id": delivery.job_id,
        "callback": delivery.callback,
        "event": delivery.event,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "created_at": _iso(delivery.created_at),
        "delivered_at": _iso(delivery.delivered_at),
        "next_attempt_at": _iso(delivery.next_attempt_at if delivery.state == "pending" else None),
        "occurrence": delivery.occurrence,
        "silence_id": delivery.silence_id,
        "digest_id": delivery.digest_id,
    }


def attempt_document(attempt: AttemptRecord) -> dict[str, Any]:
    """One past attempt: when, how long, and what the receiver or the network said."""
    return {
        "attempted_at": isoformat(attempt.attempted_at),
        "duration_ms": round(attempt.duration * 1000, 1),
        "ok": attempt.ok,
        "detail": attempt.detail,
    }


def attempts_table(attempts: Sequence[AttemptRecord], now: float | None = None) -> str:
    """A delivery's attempts for people."""
    now = time.time() if now is None else now
    rows = [
        [
            relative_time(a.attempted_at, now),
            f"{a.duration * 1000:.0f}ms",
            "ok" if a.ok else "failed",
            a.detail,
        ]
        for a in attempts
    ]
    return table(["ATTEMPTED", "TOOK", "OUTCOME", "DETAIL"], rows) if rows else "no attempts yet"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def jobs_table(
    jobs: Sequence[WatchedJob], now: float | None = None, acks: Mapping[str, Ack] | None = None
) -> str:
    """The watch list for people (an ACK column when some job is acknowledged)."""
    now = time.time() if now is None else now
    rows = [
        [
            job.id,
            job.name or "-",
            job.state,
            job.status or "-",
            "-" if job.progress is None else str(job.progress),
            relative_time(job.last_polled_at, now),
            relative_time(job.next_poll_at, now),
            relative_time(job.eta, now),
            error_text(job),
        ]
        for job in jobs
    ]
    headers = ["JOB", "NAME", "STATE", "STATUS", "PROGRESS", "POLLED", "NEXT POLL", "ETA", "ERROR"]
    # Issue 21's columns, only when some job has a group or a deadline.
    if any(job.group for job in jobs):
        headers.insert(2, "GROUP")
        for row, job in zip(rows, jobs, strict=True):
            row.insert(2, job.group or "-")
    if any(job.deadline is not None for job in jobs):
        headers.insert(-1, "DEADLINE")
        for row, job in zip(rows, jobs, strict=True):
            row.insert(-1, deadline_text(job, now))
    if acks:
        headers.append("ACK")
        for row, job in zip(rows, jobs, strict=True):
            row.append(ack_text(acks.get(job.id), now))
    return table(headers, rows) if rows else "no watched jobs"


def ack_text(ack: Ack | None, now: float) -> str:
    """``cli 5m ago``, or ``-``."""
    return "-" if ack is None else f"{ack.by} {relative_time(ack.at, now)}"


def deadline_text(job: WatchedJob, now: float) -> str:
    """``in 2h``, ``in 5m (at risk)``, ``3m ago (late)``, or ``-``."""
    if job.deadline is None:
        return "-"
    mark = " (late)" if job.late_at else " (at risk)" if job.at_risk_at else ""
    return relative_time(job.deadline, now) + mark


def deliveries_table(deliveries: Sequence[Delivery], now: float | None = None) -> str:
    """The outbox for people."""
    now = time.time() if now is None else now
    rows = [
        [
            d.id,
            d.job_id or "-",
            d.callback,
            d.event,
            d.state,
            str(d.attempts),
            relative_time(d.created_at, now),
            _delivered_or_next(d, now),
            d.last_error or "",
        ]
        for d in deliveries
    ]
    headers = [
        "ID",
        "JOB",
        "CALLBACK",
        "EVENT",
        "STATE",
        "ATTEMPTS",
        "CREATED",
        "DELIVERED/NEXT",
        "LAST ERROR",
    ]
    return table(headers, rows) if rows else "no deliveries"


def _delivered_or_next(delivery: Delivery, now: float) -> str:
    """When it was delivered, when it is tried next, the silence that holds it, or the
    digest it went out in."""
    if delivery.state == "delivered":
        return relative_time(delivery.delivered_at, now)
    if delivery.state == "pending":
        return relative_time(delivery.next_attempt_at, now)
    if delivery.state == "silenced":
        return f"silence {delivery.silence_id}"
    if delivery.state == "digested":
        return f"in digest {delivery.digest_id}"
    return "-"


def instance_document(instance: InstanceRecord) -> dict[str, Any]:
    """A daemon's heartbeat row as ``instances --json`` prints it."""
    return {
        "name": instance.name,
        "started_at": isoformat(instance.started_at),
        "last_seen_at": isoformat(instance.last_seen_at),
        "version": instance.version,
        "alive": instance.alive,
    }


def instances_table(instances: Sequence[InstanceRecord], now: float | None = None) -> str:
    """The daemons sharing the state, for people."""
    now = time.time() if now is None else now
    rows = [
        [
            i.name,
            relative_time(i.started_at, now),
            relative_time(i.last_seen_at, now),
            i.version,
            "yes" if i.alive else "no",
        ]
        for i in instances
    ]
    headers = ["NAME", "STARTED", "LAST SEEN", "VERSION", "ALIVE"]
    return table(headers, rows) if rows else "no daemon running"


def paused_lines(health: Sequence[CallbackHealth], now: float | None = None) -> list[str]:
    """One line per paused callback, for ``status`` and ``deliveries``."""
    now = time.time() if now is None else now
    return [
        f"callback {h.callback} paused {relative_time(h.paused_at, now)} after"
        f" {h.consecutive_failures} consecutive failed attempts (last: {h.last_error});"
        " one probe per delivery.max_backoff"
        for h in health
        if h.paused_at is not None
    ]


def health_document(health: CallbackHealth) -> dict[str, Any]:
    """A paused callback in ``status --json``/``deliveries --json``."""
    return {
        "callback": health.callback,
        "consecutive_failures": health.consecutive_failures,
        "last_error": health.last_error,
        "paused_at": _iso(health.paused_at),
    }
