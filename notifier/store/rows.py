"""The rows the store hands out and takes in: what the poller, the delivery loop, the
CLI and the API see of the state. Times are Unix seconds."""

from __future__ import annotations

import itertools
import json
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

JOB_STATES = ("watching", "done", "expired", "unwatched")
DELIVERY_STATES = ("pending", "delivered", "dead", "silenced", "digested")
Cursor = tuple[float, str]  # keyset pagination: (time, id) of the last row seen


class WatchedJob(NamedTuple):
    """A row of the watch list; ``lease`` is the claim token the poll's write must show.

    A tuple because one is built for every job-poll; Datasaur's object stays JSON text
    (``stored_job``) until something reads :attr:`job`, which on the poll path is only
    an event built from what was stored (an expiry after failed polls). A claimed job
    (:meth:`Store.claim_jobs`) leaves ``source``, ``last_polled_at``, ``next_poll_at``,
    ``labels`` and ``metadata`` None: the poll does not read them (:data:`CLAIM_COLUMNS`).
    """

    id: str
    name: str | None
    notify: tuple[str, ...] | None
    on_status: tuple[str, ...]
    source: str | None  # None in a claimed job
    state: str
    status: str | None
    progress: int | None
    stored_job: str | None  # JSON: the job as Datasaur last returned it
    registered_at: float
    last_polled_at: float | None
    next_poll_at: float | None
    poll_interval: float | None
    last_error: str | None
    callback_url: str | None = None
    # Stall tracking: when status or progress last changed (as first observed), how many
    # times the job stalled, and whether its current stall was already notified.
    changed_at: float | None = None
    stalls: int = 0
    stalled: bool = False
    # Predictive polling (see notifier.eta): first seen, the rate's baseline, the estimate.
    started_at: float | None = None
    baseline_at: float | None = None
    baseline_progress: int | None = None
    eta: float | None = None
    job_updated_at: str | None = None  # its ``updatedAt``: did anything change since?
    # Issue 21: its group, deadline (Unix seconds), own timeouts (None: polling's) and
    # when job.at_risk / job.late were recorded; then labels (with ``queue``) and
    # metadata, which a claimed job leaves None (the poll reads them only for an event).
    group: str | None = None
    deadline: float | None = None
    expire_after: float | None = None
    stall_after: float | None = None
    at_risk_at: float | None = None
    late_at: float | None = None
    labels: dict[str, str] | None = None
    metadata: dict[str, Any] | None = None
    owner: str | None = None
    lease: int = 0

    @property
    def job(self) -> dict[str, Any] | None:
        """The job as Datasaur last returned it."""
        return None if self.stored_job is None else json.loads(self.stored_job)


@dataclass(frozen=True)
class NewEvent:
    """An event to put in the outbox, once per target callback."""

    event: str
    payload: dict[str, Any]
    callbacks: Sequence[str]
    target_url: str | None = None  # where the job's ``url:<origin>`` callback posts
    occurrence: int = 0  # the n-th time this event happens to this job (stalls)


class JobUpdate(NamedTuple):
    """What one poll decided about one job.

    ``job`` is Datasaur's object when it changed (status, progress or ``updatedAt``),
    else None: the stored one stands, and a poll that changed nothing else is written
    without it (:func:`is_quiet`). ``schedule_only`` (decided by the poller, which knows
    the row it claimed): of the columns a poll writes, only :data:`SCHEDULE_COLUMNS`
    changed, so only they are written -- most polls.
    """

    job_id: str
    state: str
    status: str | None
    progress: int | None
    job: dict[str, Any] | None
    polled_at: float
    next_poll_at: float | None
    poll_interval: float | None
    last_error: str | None
    events: Sequence[NewEvent] = ()
    lease: int = 0
    changed_at: float | None = None
    stalls: int = 0
    stalled: bool = False
    started_at: float | None = None
    baseline_at: float | None = None
    baseline_progress: int | None = None
    eta: float | None = None
    schedule_only: bool = False
    at_risk: bool = False  # job.at_risk is among the events: record when (at_risk_at)
    group: str | None = None  # the job's group: its end or estimate may settle the group


class JobExtras(NamedTuple):
    """What an event reads of a job beyond its claim (labels, metadata)."""

    labels: dict[str, str]
    metadata: dict[str, Any]


# A job whose deadline passed, and the events that say so (see Store.record_late).
LateJob = tuple[str, Sequence["NewEvent"]]


class PollsWritten(NamedTuple):
    """What :meth:`Store.apply_polls` recorded.

    ``refused``: the polls with something to record (events, or a state other than
    watching) that were not recorded, because the job was unwatched meanwhile or, on
    PostgreSQL, its lease had passed to another daemon. Their events were not queued.
    """

    created: int  # outbox rows created
    refused: frozenset[str] = frozenset()


def updated_at_of(job: dict[str, Any] | None) -> str | None:
    """A Datasaur job's ``updatedAt`` as stored in ``job_updated_at``."""
    value = None if job is None else job.get("updatedAt")
    return None if value is None else str(value)


def is_quiet(update: JobUpdate) -> bool:
    """A poll that found the job as it was: only its schedule (and estimate) changes."""
    return update.job is None and update.state == "watching" and not update.events


@dataclass(frozen=True)
class Delivery:
    """A row of the outbox."""

    id: str
    job_id: str | None  # None for an operational alert (callback.paused/resumed)
    callback: str
    event: str
    payload: dict[str, Any]
    state: str
    attempts: int
    last_error: str | None
    created_at: float
    queued_at: float
    next_attempt_at: float | None
    delivered_at: float | None
    target_url: str | None = None
    lease: int = 0
    occurrence: int = 0  # the n-th time its event happened to the job (stalls)
    silence_id: str | None = None  # the silence holding it (state 'silenced')
    digest_id: str | None = None  # the digest it went out in (state 'digested')


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt and the state it leaves the delivery in."""

    delivery_id: str
    attempted_at: float
    duration: float
    ok: bool
    detail: str
    state: str
    next_attempt_at: float | None
    lease: int = 0


class BulkRedelivery(NamedTuple):
    """What ``redeliver_matching`` found, and whether it queued them again.

    ``queued`` is False for a dry run and when more than ``at_most`` matched (then
    nothing changed); the deliveries are as they are after the call.
    """

    deliveries: list[Delivery]
    queued: bool


class AttemptRecord(NamedTuple):
    """A past attempt, as ``deliveries --id`` shows it."""

    attempted_at: float
    duration: float
    ok: bool
    detail: str


@dataclass(frozen=True)
class Instance:
    """This daemon, as the store knows it.

    ``id`` is random per process and is what owns leases, so a restarted daemon with
    the same ``name`` (a pod, a host) never inherits its predecessor's leases.
    """

    name: str
    lease: float
    version: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


class CallbackHealth(NamedTuple):
    """A callback's recent record, as ``status``/``deliveries`` and the lanes see it."""

    callback: str
    consecutive_failures: int
    last_error: str | None
    paused_at: float | None
    last_probe_at: float | None


class HealthChange(NamedTuple):
    """A callback's lane paused or resumed by the attempt just recorded."""

    kind: str  # 'paused' | 'resumed'
    health: CallbackHealth
    pending: int  # its deliveries still pending


class PruneCounts(NamedTuple):
    """Rows removed by retention."""

    jobs: int = 0
    deliveries: int = 0
    attempts: int = 0
    events: int = 0
    groups: int = 0

    def __add__(self, other: object) -> PruneCounts:
        assert isinstance(other, PruneCounts)
        return PruneCounts(*(a + b for a, b in zip(self, other, strict=True)))


class InstanceRecord(NamedTuple):
    """A daemon's heartbeat row, as ``instances`` shows it."""

    name: str
    started_at: float
    last_seen_at: float
    version: str
    alive: bool


_SEQUENCE = itertools.count()


def new_delivery_id() -> str:
    """A ``webhook-id``: unique, stable for the delivery's lifetime, and time-ordered.

    32 hex digits like a UUID: microseconds since the epoch, a per-process sequence and
    random bits, so rows created together sort in the order they were created (the
    outbox's order and its pagination key are ``(created_at, id)``).
    """
    micros = time.time_ns() // 1000
    return f"msg_{micros:014x}{next(_SEQUENCE) % 0x1000:03x}{secrets.randbits(60):015x}"
