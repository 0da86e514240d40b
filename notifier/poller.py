"""The poll tick: which jobs are due, one batched query, and what each answer means.

:func:`decide` is the pure rule for one job (adaptive or predictive interval, terminal
states, expiry, stalls, events); :class:`Poller` drives it against the store and the API, respecting
the request-rate cap and backing off the whole poller when the API is unwell.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from notifier import metrics
from notifier.backoff import exponential
from notifier.config import Config, PollingSettings
from notifier.datasaur import ApiUnavailable, DatasaurClient, QueryRejected, TokenRefused
from notifier.datasaur_answers import KNOWN_STATUSES, Observation
from notifier.eta import Baseline, estimate, interval_until, next_baseline
from notifier.events import (
    AT_RISK_EVENT,
    EXPIRED_EVENT,
    STALLED_EVENT,
    TERMINAL_STATUSES,
    build_payload,
    event_type,
    isoformat,
    stall_fields,
)
from notifier.logs import scrub
from notifier.recipients import Recipients, complete, late_event
from notifier.store import JobUpdate, NewEvent, Store, WatchedJob, updated_at_of

log = logging.getLogger(__name__)

NOT_FOUND = "not found"
SPREAD = 0.2  # a batch's next polls land at [0.8, 1.0] x their interval
TOKEN_ERROR_EVERY = 60.0  # seconds between two "fixed token refused" lines
LATE_BATCH = 200  # jobs the deadline sweep marks late per transaction
__all__ = ["Observation", "Poller", "decide", "jitter"]


def jitter(rng: random.Random) -> float:
    """The factor one batch's intervals are scaled by, in [1 - SPREAD, 1].

    One draw per batch, not per job: batches spread out, but the jobs of one request
    are rescheduled together, so their next request is full again (and on SQLite the
    rows of jobs registered together are written together, on the same few pages).
    """
    return rng.uniform(1 - SPREAD, 1.0)


def _next_interval(job: WatchedJob, changed: bool, polling: PollingSettings) -> float:
    """Back to ``interval`` on any change, else twice the last one, up to ``max_interval``."""
    if changed or job.poll_interval is None:
        return polling.interval
    return min(job.poll_interval * 2, polling.max_interval)


def decide(
    job: WatchedJob,
    seen: Observation,
    now: float,
    polling: PollingSettings,
    targets: Sequence[str],
    spread: float = 1.0,
    filters: Mapping[str, Collection[str]] | None = None,
) -> JobUpdate:
    """What ``seen`` means for ``job``: its new row and the events to notify.

    The next poll is ``spread`` (see :func:`jitter`) times the interval away.

    Each event goes to those ``targets`` whose ``filters`` entry (a callback's
    ``events``) lets it through; a target without an entry takes every event.
    """
    status, progress = job.status, job.progress
    answer: dict[str, Any] | None = None  # what Datasaur answered, if it did
    changed_job: dict[str, Any] | None = None  # the answer, if anything in it changed
    changed_at, stalled = job.changed_at, job.stalled
    started_at, eta = job.started_at, job.eta
    baseline = Baseline(job.baseline_at, job.baseline_progress)
    events: list[NewEvent] = []
    terminal = False

    def event(name: str, occurrence: int = 0, extra: dict[str, Any] | None = None) -> None:
        to = _accepting(targets, filters, name)
        timing: dict[str, Any] = {
            "started_at": None if started_at is None else isoformat(started_at),
            "duration_s": round(now - started_at, 3) if terminal and started_at else None,
        }
        details = job.job if answer is None else answer
        events.append(_event(name, job, details, now, to, occurrence, {**timing, **(extra or {})}))

    if seen.error is not None:  # e.g. its entry nulled by an error: asked again soon
        interval, error = polling.interval, seen.error
    elif not seen.found:
        interval, error = polling.max_interval, NOT_FOUND
    else:
        answer = seen.job or {}
        status, progress, error = answer.get("status"), answer.get("progress"), None
        changed = status != job.status or progress != job.progress
        if changed or updated_at_of(answer) != job.job_updated_at:
            changed_job = answer
        started_at = now if started_at is None else started_at
        terminal = status in TERMINAL_STATUSES
        interval = _next_interval(job, changed, polling)
        baseline = next_baseline(baseline, job.progress, progress, now)
        eta = None if terminal else estimate(baseline, progress, now)
        if polling.predictive and eta is not None:
            interval = interval_until(eta, now, polling.interval, polling.max_interval)
        if changed or changed_at is None:  # the first poll after an upgrade starts the clock
            changed_at, stalled = now, False
        if status != job.status and status in job.on_status:
            event(event_type(status))
    state = "watching"
    stalls = job.stalls
    expire_after = polling.expire_after if job.expire_after is None else job.expire_after
    stall_after = polling.stall_after if job.stall_after is None else job.stall_after
    if terminal:
        state = "done"
    elif expire_after and now - job.registered_at >= expire_after:
        state = "expired"
        event(EXPIRED_EVENT)
    elif (since := _stalled_since(seen, changed_at, stalled, now, stall_after)) is not None:
        stalls, stalled = stalls + 1, True
        event(STALLED_EVENT, occurrence=stalls, extra=stall_fields(since, now))
    watching = state == "watching"
    at_risk = watching and at_risk_now(job, eta, now)
    if at_risk:
        event(AT_RISK_EVENT, extra={"eta": isoformat(eta)} if eta is not None else None)
    schedule_only = (
        watching
        and changed_job is None
        and not events
        and (error, changed_at, stalls, stalled, started_at, baseline.progress)
        == (job.last_error, job.changed_at, job.stalls, job.stalled, job.started_at,
            job.baseline_progress)
    )  # fmt: skip
    return JobUpdate(  # positionally: built on every job-poll
        job.id, state, status, progress, changed_job, now,
        interval * spread + now if watching else None, interval, error, events, job.lease,
        changed_at, stalls, stalled, started_at, baseline.at, baseline.progress,
        eta if watching else None, schedule_only, at_risk, job.group,
    )  # fmt: skip


def at_risk_now(job: WatchedJob, eta: float | None, now: float) -> bool:
    """Whether this poll's estimate puts ``job`` past its deadline, before the deadline
    and for the first time (never once job.late is recorded)."""
    if job.deadline is None or eta is None or job.at_risk_at is not None:
        return False
    return job.late_at is None and now < job.deadline < eta


def _stalled_since(
    seen: Observation, changed_at: float | None, stalled: bool, now: float, stall_after: float
) -> float | None:
    """When the job last changed, if this poll finds it stalled for the first time since.

    Only an answer counts: an error or an unknown id says nothing about progress.
    """
    if not stall_after or stalled or changed_at is None:
        return None
    if seen.error is not None or not seen.found or now - changed_at < stall_after:
        return None
    return changed_at


def _accepting(
    targets: Sequence[str], filters: Mapping[str, Collection[str]] | None, event: str
) -> list[str]:
    """The targets that take ``event``: a callback's ``events`` filter may leave it out."""
    if not filters:
        return list(targets)
    return [name for name in targets if name not in filters or event in filters[name]]


def _event(
    event: str,
    job: WatchedJob,
    details: dict[str, Any] | None,
    now: float,
    targets: Sequence[str],
    occurrence: int = 0,
    extra: dict[str, Any] | None = None,
) -> NewEvent:
    payload = build_payload(
        event,
        job_id=job.id,
        name=job.name,
        job=details,
        previous_status=job.status,
        observed_at=now,
        extra=extra,
        group=job.group,
        labels=job.labels,
        metadata=job.metadata,
        deadline=job.deadline,
    )
    return NewEvent(
        event=event,
        payload=payload,
        callbacks=targets,
        target_url=job.callback_url,
        occurrence=occurrence,
    )


class Poller:
    """Polls the due jobs once per tick, in batches, within the request-rate cap."""

    def __init__(
        self,
        store: Store,
        config: Config,
        on_enqueued: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.on_enqueued = on_enqueued
        self.clock = clock
        self.rng = rng or random.Random()
        self.stopping = threading.Event()
        self.failures = 0
        self.backoff_until = 0.0
        self.token_error_at = -TOKEN_ERROR_EVERY
        self.warned_statuses: set[str] = set()
        self.config = config
        self.recipients = Recipients.of(config)
        store.group_filters = self.recipients.filters
        self.client = DatasaurClient(config.datasaur)
        self._connect(config)

    def _connect(self, config: Config) -> None:
        same_server = config.datasaur.graphql_url == self.client.settings.graphql_url
        self.client = DatasaurClient(config.datasaur, tier=self.client.tier if same_server else 0)
        self.limiter = self.store.rate_limiter(config.datasaur.max_requests_per_second)

    def reconfigure(self, config: Config) -> None:
        """Use a new config (after SIGHUP); the API client is rebuilt if its settings changed.

        Callbacks, filters and routes apply to the events recorded from now on.
        """
        if config.datasaur != self.config.datasaur:
            self._connect(config)
        self.config = config
        self.recipients = Recipients.of(config)
        self.store.group_filters = self.recipients.filters

    def tick(self) -> int:
        """Poll what is due; returns the number of job-polls made.

        Jobs are claimed for up to ``store.requests_per_write`` requests at a time, as
        many as the rate cap grants now. Only jobs due when the tick starts are polled: a job
        rescheduled during the tick waits for the next one, so a tick always ends (and
        /healthz sees it end).
        """
        polled = 0
        batch_size = self.config.datasaur.batch_size
        started = self.clock()
        self.sweep_deadlines(started)
        while not self.stopping.is_set() and self.clock() >= self.backoff_until:
            granted = self.limiter.take(self.store.requests_per_write)
            if not granted:
                break
            jobs = self.store.claim_jobs(started, granted * batch_size)
            batches = [jobs[i : i + batch_size] for i in range(0, len(jobs), batch_size)]
            self.limiter.give_back(granted - len(batches))
            made, healthy = self._poll_batches(batches)
            polled += made
            if not healthy or len(jobs) < granted * batch_size:
                break
        return polled

    def _poll_batches(self, batches: list[list[WatchedJob]]) -> tuple[int, bool]:
        """Poll claimed batches, one request each (its token already taken), fetch the
        ``result`` of the jobs that ended (one request), and write the polls in one
        transaction.

        Returns the job-polls made and False when the API is unavailable or the daemon
        stops (the jobs not polled are given back).
        """
        healthy, updates = True, list[JobUpdate]()
        for index, batch in enumerate(batches):
            seen, healthy = self._observe(batch)
            updates += self._decide(batch[: len(seen)], seen)
            if not healthy or self.stopping.is_set():
                later = batches[index + 1 :]
                self.limiter.give_back(len(later))
                self.store.release_jobs([*batch[len(seen) :], *itertools.chain(*later)])
                healthy = False
                break
        self._note_changes(updates)
        self._write(updates)
        return len(updates), healthy

    def _observe(self, jobs: list[WatchedJob]) -> tuple[list[Observation], bool]:
        """What Datasaur says about one batch, and False when the API is unavailable.

        A batch rejected as a whole is asked again once, one ``getJob`` per job in one
        request, so that one bad job costs its own answer: never more than 2 requests.
        In an answer with data, an error is its job's own (polled again at ``interval``);
        only when every job of a batch of several failed is the API deemed unwell.
        """
        ids = [job.id for job in jobs]
        try:
            try:
                seen = self.client.get_jobs(ids)
                several = len(ids) > 1
            except QueryRejected as first:
                log.warning(
                    "batch of %d jobs rejected (%s); polling them one by one, in one request",
                    len(ids),
                    first,
                )
                if not self.limiter.acquire(self.stopping):
                    return [], False
                seen, several = self.client.get_jobs_each(ids), True
        except QueryRejected as exc:
            seen = [Observation(error=scrub(str(exc)))] * len(ids)
            several = True
        except ApiUnavailable as exc:
            self._api_failed(exc)
            return [], False
        if several and all(s.error is not None for s in seen):
            self._api_failed(ApiUnavailable(f"every job asked for was rejected: {seen[-1].error}"))
            return seen, False
        return seen, True

    def _note_changes(self, updates: list[JobUpdate]) -> None:
        """What the answers that changed something need: a WARNING for each new unknown
        status, and the ``result`` of the jobs that ended (one request for all)."""
        ended = []
        for update in updates:
            if update.job is None:  # a quiet poll
                continue
            if isinstance(update.status, str) and update.status not in KNOWN_STATUSES:
                self._warn_status(update.status, update.job_id)
            if update.events and update.state == "done":
                ended.append(update)
        if not ended:
            return
        jobs = [update.job for update in ended if update.job is not None]
        if self.limiter.acquire(self.stopping):
            self.client.attach_results(jobs)
        else:  # stopping: the events are recorded all the same
            for job in jobs:
                job.update(result=None, result_error="not fetched: the daemon was stopping")
        for update in ended:
            failure = update.job and update.job.get("result_error")
            for event in update.events if failure else ():
                event.payload["data"]["result_error"] = failure

    def _warn_status(self, status: str, job_id: str) -> None:
        if status not in self.warned_statuses:
            self.warned_statuses.add(status)
            log.warning(
                "job %s: Datasaur answered the status %r, which this version does not know; "
                "jobs in it are treated as still running",
                job_id,
                status,
            )

    def _decide(self, jobs: Sequence[WatchedJob], seen: Sequence[Observation]) -> list[JobUpdate]:
        """What one request's answers mean (one jitter for the whole request)."""
        if self.failures and any(s.error is None for s in seen):
            log.info("Datasaur API is answering again after %d failed attempts", self.failures)
            self.failures = 0
        now, polling, recipients = self.clock(), self.config.polling, self.recipients
        filters, spread = recipients.filters, jitter(self.rng)
        updates = [
            decide(job, s, now, polling, recipients.targets(job), spread, filters)
            for job, s in zip(jobs, seen, strict=True)
        ]
        return complete(updates, {job.id: job for job in jobs}, self.store, recipients)

    def sweep_deadlines(self, now: float) -> int:
        """Record ``job.late`` for the watched jobs whose deadline passed by ``now``,
        polled or not (Datasaur need not answer: the clock decides); returns how many.

        Every tick, before polling: one probe of an index of the jobs with a deadline
        and no job.late yet, so it costs next to nothing when none is due.
        """
        recorded = 0
        if self.store.record_groups_late(now):
            self.on_enqueued()
        while not self.stopping.is_set():
            due = self.store.deadlines_due(now, LATE_BATCH)
            if not due:
                break
            late = [(job.id, [late_event(job, now, self.recipients)]) for job in due]
            written = self.store.record_late(late, now)
            for job_id, events in late:
                if job_id not in written.refused:
                    recorded += 1
                    self._log_update(JobUpdate(job_id, "watching", None, None, None, now,
                                               None, None, None, events))  # fmt: skip
            if written.created:
                self.on_enqueued()
            if len(due) < LATE_BATCH or len(written.refused) == len(due):
                break
        return recorded

    def _write(self, updates: list[JobUpdate]) -> None:
        if not updates:
            return
        written = self.store.apply_polls(updates)
        metrics.JOB_POLLS.inc(len(updates))
        for update in updates:
            if update.job_id in written.refused:
                log.info(
                    "job %s: %s not recorded: unwatched meanwhile, or taken over by another "
                    "instance (which notifies)",
                    update.job_id,
                    ", ".join(event.event for event in update.events) or update.state,
                )
            elif update.events or update.state == "done":  # most polls have nothing to say
                self._log_update(update)
        if written.created:
            self.on_enqueued()

    @staticmethod
    def _log_update(update: JobUpdate) -> None:
        for event in update.events:
            log.info(
                "job %s: %s, notifying %s",
                update.job_id,
                event.event,
                ", ".join(event.callbacks) or "no callback (none configured or taking it)",
            )
        if update.state == "done" and not update.events:
            log.info("job %s: %s (no notification configured)", update.job_id, update.status)

    def _api_failed(self, exc: ApiUnavailable) -> None:
        metrics.POLL_ERRORS.labels(type(exc).__name__).inc()
        self.failures += 1
        polling = self.config.polling
        delay = exponential(self.failures, min(polling.interval, 5.0), polling.max_interval)
        delay = max(delay, exc.retry_after or 0.0)
        now = self.clock()
        self.backoff_until = now + delay
        if isinstance(exc, TokenRefused):
            if now - self.token_error_at < TOKEN_ERROR_EVERY:
                return
            self.token_error_at = now
        log.error("polling paused for %.1fs: %s (failure %d)", delay, exc, self.failures)
