"""What every store backend offers: the row types and the :class:`Store` protocol.

The poller, the delivery loop and the CLI only use this protocol. Times are Unix
seconds. A backend shared by several daemons (PostgreSQL) takes leases when it hands
out work (:meth:`Store.claim_jobs`, :meth:`Store.claim_deliveries`) and accepts the
write that follows only while the lease is still the caller's; the SQLite backend has
one daemon by construction (a file lock) and needs no leases.
"""

from __future__ import annotations

import functools
import itertools
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from notifier.callback_urls import CALLBACK_PREFIX
from notifier.config import JobSpec


class StoreError(Exception):
    """The state store cannot be opened or used (file, database, network)."""


class WatchedJob(NamedTuple):
    """A row of the watch list; ``lease`` is the claim token the poll's write must show.

    A tuple because one is built for every job-poll; Datasaur's object stays JSON text
    (``stored_job``) until something reads :attr:`job`, which on the poll path is only
    an event built from what was stored (an expiry after failed polls). A claimed job
    (:meth:`Store.claim_jobs`) leaves ``source``, ``last_polled_at`` and ``next_poll_at``
    None: the poll does not read them (:data:`CLAIM_COLUMNS`).
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


class PollsWritten(NamedTuple):
    """What :meth:`Store.apply_polls` recorded.

    ``refused``: the polls with something to record (events, or a state other than
    watching) that were not recorded, because the job was unwatched meanwhile or, on
    PostgreSQL, its lease had passed to another daemon. Their events were not queued.
    """

    created: int  # outbox rows created
    refused: frozenset[str] = frozenset()


# What a schedule-only poll writes (JobUpdate.schedule_only), in this order.
SCHEDULE_COLUMNS = ("last_polled_at", "next_poll_at", "poll_interval", "baseline_at", "eta")


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


def health_after(
    before: CallbackHealth, ok: bool, detail: str, pause_after: int, now: float
) -> CallbackHealth:
    """A callback's health after one attempt: both backends apply this same rule."""
    if ok:
        return CallbackHealth(before.callback, 0, None, None, None)
    failures = before.consecutive_failures + 1
    paused_at = before.paused_at
    if paused_at is None and pause_after and failures >= pause_after:
        paused_at = now
    return CallbackHealth(before.callback, failures, detail, paused_at, before.last_probe_at)


def change_between(
    before: CallbackHealth, after: CallbackHealth, pending: int
) -> HealthChange | None:
    """``paused`` or ``resumed`` if the attempt flipped the lane, else None."""
    if before.paused_at is None and after.paused_at is not None:
        return HealthChange("paused", after, pending)
    if before.paused_at is not None and after.paused_at is None:
        return HealthChange("resumed", before._replace(consecutive_failures=0), pending)
    return None


HEALTH_COLUMNS = "callback, consecutive_failures, last_error, paused_at, last_probe_at"


class PruneCounts(NamedTuple):
    """Rows removed by retention."""

    jobs: int = 0
    deliveries: int = 0
    attempts: int = 0

    def __add__(self, other: object) -> PruneCounts:
        assert isinstance(other, PruneCounts)
        return PruneCounts(*(a + b for a, b in zip(self, other, strict=True)))


PRUNE_BATCH = 500  # jobs per transaction, so pruning never holds the write lock for long
PRUNE_BATCHES = 20  # per housekeeping call; the rest waits for the next one

# Jobs retention may remove: ended, quiet since the cutoff, and no delivery of theirs
# pending or touched since (``{greatest}``: the backend's max of several values).
PRUNABLE_JOBS = """
    SELECT id FROM jobs j
    WHERE state != 'watching' AND coalesce(last_polled_at, registered_at) < {cutoff}
      AND NOT EXISTS (
          SELECT 1 FROM deliveries d WHERE d.job_id = j.id
            AND (d.state = 'pending'
                 OR {greatest}(d.created_at, d.queued_at, coalesce(d.delivered_at, 0)) >= {cutoff}))
    LIMIT {limit}
"""


class InstanceRecord(NamedTuple):
    """A daemon's heartbeat row, as ``instances`` shows it."""

    name: str
    started_at: float
    last_seen_at: float
    version: str
    alive: bool


class Limiter(Protocol):
    """A request-rate cap (see :mod:`notifier.ratelimit`)."""

    def take(self, wanted: int) -> int: ...
    def give_back(self, count: int) -> None: ...
    def try_acquire(self) -> bool: ...
    def acquire(self, stopping: threading.Event) -> bool: ...


class Store(Protocol):
    """What the daemon and the CLI need from persistence."""

    instance: Instance | None
    # How many getJobs requests' worth of due jobs one claim takes, their polls then
    # written in one transaction (see Poller.tick).
    requests_per_write: int

    def migrate(self) -> int: ...
    def sync_config_jobs(self, specs: Iterable[JobSpec], now: float) -> None: ...
    def watch(
        self, spec: JobSpec, now: float, source: str = "cli", callback_url: str | None = None
    ) -> WatchedJob: ...
    def unwatch(self, job_id: str) -> WatchedJob | None: ...
    def claim_jobs(self, now: float, limit: int) -> list[WatchedJob]: ...
    def release_jobs(self, jobs: Sequence[WatchedJob]) -> None: ...
    def apply_polls(self, updates: Sequence[JobUpdate]) -> PollsWritten: ...
    def claim_deliveries(
        self, callback: str, now: float, limit: int, exclude: Iterable[str]
    ) -> list[Delivery]: ...
    def record_attempt(self, attempt: Attempt) -> bool: ...
    def attempts(self, delivery_id: str) -> list[AttemptRecord]: ...
    def redeliver(self, delivery_id: str, now: float) -> Delivery | None: ...
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
    ) -> BulkRedelivery: ...
    def jobs(
        self,
        state: str | None = None,
        job_id: str | None = None,
        after: Cursor | None = None,
        limit: int | None = None,
    ) -> list[WatchedJob]: ...
    def deliveries(
        self,
        state: str | None = None,
        job_id: str | None = None,
        delivery_id: str | None = None,
        after: Cursor | None = None,
        limit: int | None = None,
        callback: str | None = None,
    ) -> list[Delivery]: ...
    def counts(self) -> dict[str, dict[str, int]]: ...
    def oldest_pending(self) -> float | None: ...
    def pending_by_callback(self) -> dict[str, int]: ...
    def dead_by_callback(self) -> dict[str, int]: ...
    def note_attempt(
        self, callback: str, ok: bool, detail: str, pause_after: int, now: float
    ) -> HealthChange | None: ...
    def claim_probe(self, callback: str, now: float, every: float) -> bool: ...
    def callback_health(self) -> list[CallbackHealth]: ...
    def add_event(self, job_id: str | None, event: NewEvent, now: float) -> int: ...
    def heartbeat(self, now: float) -> None: ...
    def renew_leases(self) -> None: ...
    def retire(self) -> None: ...
    def instances(self, now: float) -> list[InstanceRecord]: ...
    def housekeeping(self, now: float, retention: float) -> PruneCounts: ...
    def rate_limiter(self, rate: float) -> Limiter: ...
    def listen(self, wake: Callable[[], None]) -> None: ...
    def close(self) -> None: ...


def display_url(url: str) -> str:
    """``url`` with its password masked, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is not None:
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{host}")
    query = [(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


Cursor = tuple[float, str]  # keyset pagination: (time, id) of the last row seen

# The upsert both backends use for ``watch``/``sync``: ``callback_url`` belongs to API
# registrations, so a CLI or config upsert keeps the one there is.
UPSERT_SET = """
    ON CONFLICT (id) DO UPDATE SET
        name = excluded.name, notify = excluded.notify, on_status = excluded.on_status,
        source = excluded.source,
        callback_url = CASE WHEN excluded.source = 'api' THEN excluded.callback_url
                            ELSE jobs.callback_url END
"""


_SEQUENCE = itertools.count()


class Summaries:
    """Read-only summaries whose SQL is the same on both backends (a base of each store)."""

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def counts(self) -> dict[str, dict[str, int]]:
        """Jobs by state and deliveries by state."""
        return {
            "jobs": dict(self._query("SELECT state, count(*) FROM jobs GROUP BY state")),
            "deliveries": dict(
                self._query("SELECT state, count(*) FROM deliveries GROUP BY state")
            ),
        }

    def pending_by_callback(self) -> dict[str, int]:
        """Pending deliveries per callback name."""
        return self._by_callback("pending")

    def dead_by_callback(self) -> dict[str, int]:
        """Dead deliveries per callback name."""
        return self._by_callback("dead")

    def _by_callback(self, state: str) -> dict[str, int]:
        assert state in DELIVERY_STATES  # a constant, spliced into the SQL
        return dict(
            self._query(
                f"SELECT callback, count(*) FROM deliveries WHERE state = '{state}'"
                " GROUP BY callback"
            )
        )

    def oldest_pending(self) -> float | None:
        """Creation time of the oldest pending delivery."""
        rows = self._query("SELECT min(created_at) FROM deliveries WHERE state = 'pending'")
        return rows[0][0] if rows else None

    def callback_health(self) -> list[CallbackHealth]:
        """Every callback with a recorded failure or pause."""
        rows = self._query(f"SELECT {HEALTH_COLUMNS} FROM callback_health ORDER BY callback")
        return [CallbackHealth(*row) for row in rows]


def new_delivery_id() -> str:
    """A ``webhook-id``: unique, stable for the delivery's lifetime, and time-ordered.

    32 hex digits like a UUID: microseconds since the epoch, a per-process sequence and
    random bits, so rows created together sort in the order they were created (the
    outbox's order and its pagination key are ``(created_at, id)``).
    """
    micros = time.time_ns() // 1000
    return f"msg_{micros:014x}{next(_SEQUENCE) % 0x1000:03x}{secrets.randbits(60):015x}"


# Both backends select these columns in this order, so one decoder serves both.
# What the poll reads of a job it claims (:meth:`Store.claim_jobs`), then the rest of a
# row: a claim leaves out ``source``, ``state`` (it is 'watching'), ``last_polled_at`` and
# ``next_poll_at``, which nothing on the poll path reads. Python 3.11's sqlite3 releases
# and retakes the GIL around every column it reads: each costs ~0.06 µs per row.
CLAIM_COLUMNS = (
    "id, name, notify, on_status, status, progress, job, registered_at, poll_interval, "
    "last_error, callback_url, changed_at, stalls, stalled, started_at, baseline_at, "
    "baseline_progress, eta, job_updated_at"
)
JOB_COLUMNS = f"{CLAIM_COLUMNS}, source, state, last_polled_at, next_poll_at"
DELIVERY_COLUMNS = (
    "id, job_id, callback, event, payload, state, attempts, last_error, created_at, "
    "queued_at, next_attempt_at, delivered_at, target_url, occurrence"
)
# How many columns those are: a query that selects more after them reads them from here.
CLAIM_WIDTH = len(CLAIM_COLUMNS.split(","))
JOB_WIDTH = len(JOB_COLUMNS.split(","))
DELIVERY_WIDTH = len(DELIVERY_COLUMNS.split(","))
JOB_STATES = ("watching", "done", "expired", "unwatched")
DELIVERY_STATES = ("pending", "delivered", "dead")


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
        row[14], row[15], row[16], row[17], row[18], owner, lease,
    ))  # fmt: skip


def job_row(row: Sequence[Any], owner: str | None = None, lease: int = 0) -> WatchedJob:
    """A :data:`JOB_COLUMNS` row as a :class:`WatchedJob`."""
    source, state, last_polled_at, next_poll_at = row[CLAIM_WIDTH:JOB_WIDTH]
    return claimed_row(row, owner, lease)._replace(
        source=source, state=state, last_polled_at=last_polled_at, next_poll_at=next_poll_at
    )


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


def target_url(event: NewEvent, callback: str) -> str | None:
    """The URL a ``url:<origin>`` delivery posts to; None for configured callbacks."""
    return event.target_url if callback.startswith(CALLBACK_PREFIX) else None


def payload_text(payload: dict[str, Any]) -> str:
    """An outbox payload as stored: compact JSON."""
    return json.dumps(payload, separators=(",", ":"))


def migrations(backend: str) -> list[tuple[int, str, str]]:
    """``(number, name, sql)`` of ``migrations/<backend>/NNNN_name.sql``, in order."""
    folder = Path(__file__).with_name("migrations") / backend
    steps = []
    for path in sorted(folder.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        number, _, name = path.stem.partition("_")
        steps.append((int(number), name, path.read_text(encoding="utf-8")))
    return steps
