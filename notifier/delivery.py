"""The delivery loop: sends outbox rows through their callbacks, records every attempt.

Each callback has its own lane -- a bounded pool of ``delivery.concurrency`` workers --
so a slow or dead receiver never delays another callback's deliveries. Claims are kept
in memory only: after a crash every pending row is simply due again (and may be sent
once more under the same ``webhook-id``). On a shared store each claim is also a lease
(see :mod:`notifier.store.postgres`), so that two daemons never send the same row at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import replace

from notifier import metrics, reminders
from notifier.backoff import exponential
from notifier.callback_urls import CALLBACK_PREFIX
from notifier.channels import Channel, Outcome
from notifier.config import DeliverySettings
from notifier.digests import DIGEST_EVENT
from notifier.durations import format_duration
from notifier.events import alert_payload
from notifier.logs import scrub
from notifier.ratelimit import RateLimiter
from notifier.store import Attempt, Delivery, HealthChange, NewEvent, Store, StoreError

log = logging.getLogger(__name__)

UrlChannelFactory = Callable[[str], Channel]
REMINDER_BATCH = 500  # reminders queued per tick at most; the rest on the next


def next_state(
    delivery: Delivery, outcome: Outcome, now: float, settings: DeliverySettings
) -> tuple[str, float | None]:
    """The delivery's state after an attempt, and when to try again."""
    if outcome.ok:
        return "delivered", None
    if outcome.permanent or now - delivery.queued_at >= settings.give_up_after:
        return "dead", None
    delay = exponential(delivery.attempts + 1, settings.initial_backoff, settings.max_backoff)
    if outcome.retry_after is not None:
        return "pending", now + max(delay, outcome.retry_after)
    return "pending", min(now + delay, delivery.queued_at + settings.give_up_after)


class Lane:
    """The deliveries of one callback, sent by at most ``concurrency`` workers at once.

    A lane whose callback failed ``pause_after`` times in a row is paused: it sends one
    probe per ``max_backoff`` (whichever daemon claims it) until one succeeds. With a
    ``rate_limit`` it takes no more deliveries than its token bucket allows; it never
    sleeps, so a throttled or paused lane stops at once on SIGTERM.
    """

    def __init__(
        self,
        channel: Channel,
        store: Store,
        settings: DeliverySettings,
        clock: Callable[[], float],
        previous: Lane | None = None,
        on_health: Callable[[HealthChange], None] = lambda change: None,
    ) -> None:
        self.channel = channel
        self.store = store
        self.settings = settings
        self.clock = clock
        self.on_health = on_health
        self.in_flight: set[str] = set() if previous is None else previous.in_flight
        # The attempts being sent (shared with the previous lane, like in_flight).
        self.sending: set[Future[None]] = set() if previous is None else previous.sending
        self.paused_at: float | None = None if previous is None else previous.paused_at
        rate = channel.settings.rate_limit
        self.limiter = None if rate is None else RateLimiter(rate)
        self._lock = threading.Lock()
        self._closed = False
        self._pool = ThreadPoolExecutor(
            max_workers=settings.concurrency, thread_name_prefix=f"deliver-{channel.name}"
        )

    def fill(self) -> None:
        """Start sending due deliveries while there are free workers (and tokens)."""
        with self._lock:
            free = self.settings.concurrency - len(self.in_flight)
            if self._closed or free <= 0:
                return
            now = horizon = self.clock()
            only = self._quiet_events(now)
            if only == ():  # quiet hours hold every event
                return
            if self.paused_at is not None:  # one probe at a time, one per max_backoff
                every = self.settings.max_backoff
                if self.in_flight or not self.store.claim_probe(self.channel.name, now, every):
                    return
                free, horizon = 1, now + every
            skip = self._gather(now, only)
            tokens = free if self.limiter is None else self.limiter.take(free)
            if tokens <= 0:
                return
            busy = list(self.in_flight)
            due = self.store.claim_deliveries(
                self.channel.name, horizon, tokens, busy, events=only, skip=skip
            )
            if self.limiter is not None and len(due) < tokens:
                self.limiter.give_back(tokens - len(due))
            for delivery in due:
                self.in_flight.add(delivery.id)
                sent = self._pool.submit(self._send, delivery)
                self.sending.add(sent)
                sent.add_done_callback(self.sending.discard)

    def _gather(self, now: float, only: tuple[str, ...] | None) -> tuple[str, ...]:
        """With a digest: close the windows that are due (outside quiet hours) and return
        the events the lane must not send alone -- those the digest gathers, but in quiet
        hours the excepted ones, which go out alone at once."""
        digest = self.channel.settings.digest
        if digest is None:
            return ()
        if only is None:
            made = self.store.close_digests(self.channel.name, now, digest)
            if made:
                log.info("callback %s: %d digests closed", self.channel.name, made)
            return digest.gathered()
        return tuple(event for event in digest.gathered() if event not in only)

    def _quiet_events(self, now: float) -> tuple[str, ...] | None:
        """In the callback's quiet hours: the only events it may send (its
        ``except_events``); else None (every event)."""
        quiet = self.channel.settings.quiet_hours
        if quiet is None or quiet.ends_at(now) is None:
            return None
        return quiet.except_events

    def _send(self, delivery: Delivery) -> None:
        try:
            attempt = self.attempt(delivery)
            if attempt.ok:  # before the record: a crash in between resends, keeps the schedule
                self._start_reminders(delivery, attempt.attempted_at)
            if self.store.record_attempt(attempt):
                self._note(attempt)
        except StoreError as exc:  # the row stays pending: it is sent again later
            log.error("delivery %s: could not record the attempt: %s", delivery.id, exc)
        except Exception:
            log.exception("delivery %s: could not record the attempt", delivery.id)
        finally:
            with self._lock:
                self.in_flight.discard(delivery.id)
        try:
            self.fill()
        except StoreError as exc:
            log.error("callback %s: could not look for due deliveries: %s", self.channel.name, exc)
        except Exception:
            log.exception("callback %s: could not look for due deliveries", self.channel.name)

    def _start_reminders(self, delivery: Delivery, sent_at: float) -> None:
        """Schedule reminders of a first delivery the callback reminds of (a digest: of
        each event in it; their reminders are gathered into later digests)."""
        settings = self.channel.settings
        every = settings.remind_every
        if every is None:
            return
        firsts = [delivery]
        if delivery.event == DIGEST_EVENT:
            firsts = self.store.digest_members(delivery.id)
        for first in firsts:
            if first.event not in settings.remind_events or reminders.is_reminder(first.occurrence):
                continue
            kind, subject = reminders.subject_of(first.event, first.job_id, first.payload)
            self.store.start_reminders(first.id, kind, subject, sent_at, sent_at + every)

    def _note(self, attempt: Attempt) -> None:
        """Count the attempt in the callback's health; pause or resume the lane."""
        change = self.store.note_attempt(
            self.channel.name,
            attempt.ok,
            attempt.detail,
            self.settings.pause_after,
            attempt.attempted_at + attempt.duration,
        )
        if change is not None:
            self.paused_at = change.health.paused_at if change.kind == "paused" else None
            self.on_health(change)

    def attempt(self, delivery: Delivery) -> Attempt:
        """Send once and work out the delivery's new state.

        Time spent paused, or waiting in quiet hours, does not count toward
        ``give_up_after``.
        """
        started = self.clock()
        waited = 0.0 if self.paused_at is None else started - self.paused_at
        quiet = self.channel.settings.quiet_hours
        if quiet is not None and quiet.holds(delivery.event):
            waited += quiet.overlap(delivery.queued_at, started)
        if waited:
            delivery = replace(delivery, queued_at=delivery.queued_at + waited)
        begun = time.monotonic()
        outcome = self.channel.deliver(delivery.id, delivery.payload, delivery.target_url)
        duration = time.monotonic() - begun
        state, next_at = next_state(delivery, outcome, self.clock(), self.settings)
        _log_attempt(delivery, outcome, state, next_at, duration, self.clock())
        _count_attempt(delivery, outcome, state, self.clock())
        return Attempt(
            delivery_id=delivery.id,
            attempted_at=started,
            duration=duration,
            ok=outcome.ok,
            detail=scrub(outcome.detail),
            state=state,
            next_attempt_at=next_at,
            lease=delivery.lease,
        )

    def close(self, wait: bool) -> None:
        """Take no new work; with ``wait``, let the attempts in flight finish."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=wait, cancel_futures=True)


def _count_attempt(delivery: Delivery, outcome: Outcome, state: str, now: float) -> None:
    metrics.DELIVERY_ATTEMPTS.labels(delivery.callback, "ok" if outcome.ok else "failed").inc()
    if state != "pending":
        metrics.DELIVERIES.labels(delivery.callback, state).inc()
    if state == "delivered":
        metrics.NOTIFICATION_LATENCY.labels(delivery.callback).observe(now - delivery.created_at)


def _log_attempt(
    delivery: Delivery,
    outcome: Outcome,
    state: str,
    next_at: float | None,
    duration: float,
    now: float,
) -> None:
    about = "" if delivery.job_id is None else f" for job {delivery.job_id}"
    where = f"delivery {delivery.id} ({delivery.event}{about} to {delivery.callback})"
    if outcome.ok:
        log.info("%s: delivered, %s in %.0fms", where, outcome.detail, duration * 1000)
    elif state == "dead" and outcome.detail.startswith("HTTP 410"):
        log.warning("%s: dead: the endpoint answered 410 Gone and asked to be removed", where)
    elif state == "dead":
        log.warning("%s: dead after %d attempts: %s", where, delivery.attempts + 1, outcome.detail)
    else:
        retry = next_at - now if next_at is not None else 0.0
        log.warning("%s: failed (%s); retrying in %.1fs", where, outcome.detail, retry)


class Dispatcher:
    """Owns the lanes; ``tick`` (and every new outbox row) wakes them."""

    def __init__(
        self,
        store: Store,
        channels: Mapping[str, Channel],
        settings: DeliverySettings,
        clock: Callable[[], float] = time.time,
        url_channel: UrlChannelFactory | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.lanes: dict[str, Lane] = {}
        self.reconfigure(channels, settings, url_channel)

    def reconfigure(
        self,
        channels: Mapping[str, Channel],
        settings: DeliverySettings,
        url_channel: UrlChannelFactory | None = None,
    ) -> None:
        """Swap in new callbacks; attempts in flight finish in the background.

        A changed callback's new lane shares the old lane's in-flight set, so that a
        delivery being sent is not picked up a second time. ``url_channel`` makes the
        channel of a ``url:<origin>`` lane (jobs' own callback URLs), created when such
        a delivery is first pending; None when the API is off.
        """
        old = self.lanes
        self.settings = settings
        self.url_channel = url_channel
        self.lanes = {
            name: self._lane(channel, old.get(name)) for name, channel in channels.items()
        }
        for lane in old.values():
            lane.close(wait=False)

    def _lane(self, channel: Channel, previous: Lane | None) -> Lane:
        return Lane(channel, self.store, self.settings, self.clock, previous, self._health_changed)

    def refresh(self) -> None:
        """Open lanes for new ``url:<origin>`` callbacks and take up pauses and resumes
        made by other daemons. Called when outbox rows appear and on the lease tick, not
        on every delivery tick: it reads two aggregates."""
        if self.url_channel is not None:
            for name in self.store.pending_by_callback():
                if name.startswith(CALLBACK_PREFIX) and name not in self.lanes:
                    self.lanes[name] = self._lane(self.url_channel(name), None)
        paused = {h.callback: h.paused_at for h in self.store.callback_health()}
        for name, lane in list(self.lanes.items()):
            lane.paused_at = paused.get(name)

    def tick(self) -> None:
        """Hold what silences match and release what ended silences held, queue due
        reminders, then start every due delivery there is room for (paused lanes: a
        probe, if due)."""
        lanes = list(self.lanes.values())
        busy = [delivery_id for lane in lanes for delivery_id in lane.in_flight]
        changed = self.store.sweep_silences(self.clock(), busy)
        if changed:
            log.info("silences: %d deliveries held or released", changed)
        self._remind()
        for lane in lanes:
            lane.fill()

    def _remind(self) -> None:
        """Queue the reminders that are due (the lanes send them like any delivery)."""
        plans = reminders.plans({name: lane.channel.settings for name, lane in self.lanes.items()})
        if not plans:
            return
        sent = self.store.fire_reminders(self.clock(), plans, REMINDER_BATCH)
        if sent:
            log.info("reminders: %d queued", sent)

    def _health_changed(self, change: HealthChange) -> None:
        """Log a pause or resume and alert the ``alert_via`` callbacks (never the one
        that paused) through the outbox."""
        health = change.health
        if change.kind == "paused":
            log.warning(
                "callback %s paused after %d consecutive failed attempts (last: %s);"
                " %d deliveries wait, one probe every %s",
                health.callback,
                health.consecutive_failures,
                health.last_error,
                change.pending,
                format_duration(self.settings.max_backoff),
            )
        else:
            log.info(
                "callback %s resumed: a probe succeeded; %d pending deliveries go out now",
                health.callback,
                change.pending,
            )
        targets = [name for name in self.settings.alert_via if name != health.callback]
        if targets:
            now = self.clock()
            payload = alert_payload(change.kind, health, change.pending, now)
            event = NewEvent(event=payload["type"], payload=payload, callbacks=targets)
            self.store.add_event(None, event, now)
            for name in targets:
                if name in self.lanes:
                    self.lanes[name].fill()

    def close(self, timeout: float | None = None) -> int:
        """Stop taking work and wait for the attempts in flight (each bounded by its
        timeout), for ``timeout`` seconds at most; how many are still being sent then
        (they stay pending, to be sent again under the same ``webhook-id``)."""
        for lane in self.lanes.values():
            lane.close(wait=False)
        sending = [sent for lane in self.lanes.values() for sent in list(lane.sending)]
        _, not_done = wait(set(sending), timeout)
        return len(not_done)
