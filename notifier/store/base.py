"""What every store backend offers: the row types and the :class:`Store` protocol.

The poller, the delivery loop and the CLI only use this protocol. Times are Unix
seconds. A backend shared by several daemons (PostgreSQL) takes leases when it hands
out work (:meth:`Store.claim_jobs`, :meth:`Store.claim_deliveries`) and accepts the
write that follows only while the lease is still the caller's; the SQLite backend has
one daemon by construction (a file lock) and needs no leases.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from notifier.config import JobSpec
from notifier.store.rows import (
    Attempt,
    AttemptRecord,
    BulkRedelivery,
    CallbackHealth,
    Cursor,
    Delivery,
    HealthChange,
    Instance,
    InstanceRecord,
    JobUpdate,
    NewEvent,
    PollsWritten,
    PruneCounts,
    WatchedJob,
)


class StoreError(Exception):
    """The state store cannot be opened or used (file, database, network)."""


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
