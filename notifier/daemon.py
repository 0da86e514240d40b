"""The ``run`` command's wiring: lock, store, poller, dispatcher, scheduler, signals.

APScheduler's background scheduler drives four ticks (poll, deliver, the lease tick:
heartbeat, lease renewal, lanes' view of the shared callback health, and housekeeping:
retention); the main thread owns the signals,
waiting for them synchronously with ``sigtimedwait`` so that no handler ever runs on
top of a lock, and does the SIGHUP reloads and systemd pings. When the state store
fails (a database restart, a network drop), every tick backs off together, one log
line per retry, and ``/healthz`` says so until it answers again.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from apscheduler.schedulers.background import BackgroundScheduler

from notifier import __version__, channels
from notifier.api.app import Api
from notifier.api.server import ApiServer
from notifier.backoff import STORE_BACKOFF, exponential
from notifier.channels.callback_url import CallbackUrlChannel
from notifier.config import Config, ConfigError, load_config, secrets_of, silent_jobs
from notifier.config_warnings import warn_about_orphans, warn_if_readable
from notifier.delivery import Dispatcher, UrlChannelFactory
from notifier.durations import format_duration
from notifier.errors import socket_reason
from notifier.lock import LockHeld, StateLock
from notifier.logs import redact
from notifier.metrics import Health, MetricsServer
from notifier.poller import Poller
from notifier.recipients import Recipients
from notifier.store import Instance, Store, StoreError, describe_location, open_store
from notifier.store_metrics import StoreCollector
from notifier.systemd import Notifier

log = logging.getLogger(__name__)

SIGNALS = {signal.SIGHUP, signal.SIGTERM, signal.SIGINT}
HEARTBEAT = 5.0
CONNECT_FOR = 30.0  # an unreachable database at start is retried for this long
STOP_WAIT = 7.0  # after SIGTERM, the work in flight is waited for this long at most
RETIRE_WAIT = 1.0  # then giving the leases back waits this long at most for the store


T = TypeVar("T")


def listening(key: str, host: str, port: int, bind: Callable[[], T]) -> T:
    """``bind()`` (a server that binds as it is made); a port that cannot be bound is
    one line naming the listener, e.g. ``api.listen 127.0.0.1:8765: address already in
    use``."""
    try:
        return bind()
    except OSError as exc:
        raise OSError(f"{key} {host}:{port}: {socket_reason(exc)}") from None


def tick_seconds(config: Config) -> float:
    """How often the scheduler looks for due work: a quarter interval, within [50ms, 1s]."""
    return min(1.0, max(0.05, config.polling.interval / 4))


def housekeeping_seconds(config: Config) -> float:
    """How often retention runs: a quarter of it, within [1 s, 1 min]."""
    return min(60.0, max(1.0, (config.retention or 240.0) / 4))


def build_channels(config: Config) -> dict[str, channels.Channel]:
    """One channel per configured callback."""
    return {
        name: channels.create(name, settings, config.delivery.timeout)
        for name, settings in config.callbacks.items()
    }


def url_channels(config: Config) -> UrlChannelFactory | None:
    """The channel maker of ``url:<origin>`` lanes (jobs' own URLs), if the API is on."""
    api = config.api
    if api is None:
        return None
    return lambda name: CallbackUrlChannel(
        name, api.callback_secret, api.allow_callback_urls, config.delivery.timeout
    )


class Daemon:
    """Runs until SIGTERM/SIGINT; SIGHUP reloads the config."""

    def __init__(self, config_path: Path, config: Config, metrics_port: int | None = None):
        self.config_path = config_path
        self.config = config
        self.metrics_port = metrics_port if metrics_port is not None else config.metrics.port
        self.systemd = Notifier()
        # The file lock keeps a second daemon off a SQLite file; PostgreSQL is shared.
        self.lock = StateLock(config.state_path) if config.state_url is None else None
        self.instance = Instance(config.cluster.name, config.cluster.lease, __version__)
        self.health = Health(stall_after=max(30.0, 10 * tick_seconds(config)))
        self.store_failures = 0
        self.store_closed = False  # by a stop during a database outage
        self.store_retry_at = 0.0
        # Set when a stop left work in flight: its threads are not waited for on exit.
        self.abandoned = False

    def run(self) -> int:
        """Serve; returns the exit status."""
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        try:
            if self.lock is not None:
                self.lock.acquire()
        except (LockHeld, OSError) as exc:
            log.error("%s", exc)
            return 1
        try:
            store = self._open_store()
            if store is None:
                return 1
            self.store = store
            try:
                self._serve()
            except OSError as exc:  # e.g. the metrics port is taken; no thread is running yet
                log.error("cannot start: %s", exc)
                return 1
            except StoreError as exc:  # the store failed during start-up
                log.error("%s", exc)
                return 1
            finally:
                if not self.abandoned and not self.store_closed:  # an attempt in flight
                    self.store.close()  # may still use it
        finally:
            if self.lock is not None:
                self.lock.release()
        return 0

    def _open_store(self) -> Store | None:
        """Open the store; a database that is not reachable yet is retried for 30 s."""
        deadline = time.monotonic() + CONNECT_FOR
        attempt = 0
        while True:
            try:
                return open_store(self.config, self.instance)
            except StoreError as exc:
                attempt += 1
                delay = exponential(attempt, 1.0, 8.0)
                if self.config.state_url is None or time.monotonic() + delay > deadline:
                    log.error("%s", exc)
                    return None
                log.warning("%s; retrying in %.1fs (attempt %d)", exc, delay, attempt)
                if signal.sigtimedwait(SIGNALS - {signal.SIGHUP}, delay) is not None:
                    return None

    def _serve(self) -> None:
        config = self.config
        redact(secrets_of(config))
        warn_if_readable(self.config_path, config)
        for warning in silent_jobs(config):
            log.warning("%s", warning)
        self.store.group_filters = Recipients.of(config).filters
        self._start_up_call(lambda: self._sync_config(config))
        self._start_up_call(lambda: self.store.heartbeat(time.time()))
        self._start_up_call(lambda: warn_about_orphans(self.store, config))
        self.dispatcher = Dispatcher(
            self.store,
            build_channels(config),
            config.delivery,
            url_channel=url_channels(config),
        )
        self.poller = Poller(self.store, config, on_enqueued=self._wake_delivery)
        self.api: Api | None = None
        self.api_server: ApiServer | None = None
        if config.api is not None:
            api, settings = Api(self.store, config.api, config.callbacks, self.health), config.api
            self.api = api
            self.api_server = listening(
                "api.listen",
                settings.host,
                settings.port,
                lambda: ApiServer(api.wsgi(), settings.host, settings.port, settings.max_waiters),
            )
            self.api_server.start()
        self.metrics: MetricsServer | None = None
        if self.metrics_port is not None:
            host, port = config.metrics.host, self.metrics_port
            collectors = [StoreCollector(self.store, lambda: self.config.callbacks)]
            self.metrics = listening(
                "metrics.port",
                host,
                port,
                lambda: MetricsServer(self.health, host, port, collectors),
            )
            self.metrics.start()
        self.scheduler = BackgroundScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        )
        self._schedule(config)
        self.scheduler.start()
        self.store.listen(self._wake_delivery)
        log.info(
            "datasaur-notifier %s running: instance %s, state %s, %d callbacks, %s",
            __version__,
            self.instance.name,
            describe_location(config),
            len(config.callbacks),
            self._summary_or_outage(),
        )
        self.systemd.ready(self._summary_or_outage())
        self._wait_for_signals()
        self._shutdown()

    def _sync_config(self, config: Config) -> None:
        """The config file's groups, then its jobs (which may name them)."""
        now = time.time()
        self.store.sync_config_groups(config.groups, now)  # the delivery tick sends any event
        self.store.sync_config_jobs(config.jobs, now)

    def _start_up_call(self, func: Callable[[], object]) -> None:
        """A store call at start: on PostgreSQL retried like at any other time, until it
        succeeds, so that a database restarting while the daemon starts does not kill it.
        """
        while True:
            try:
                func()
                self._store_answered()
                return
            except StoreError as exc:
                if self.config.state_url is None:
                    raise  # a broken SQLite file does not heal by waiting
                delay = self._store_failed(exc)
            if signal.sigtimedwait(SIGNALS - {signal.SIGHUP}, delay) is not None:
                raise StoreError("stopped while waiting for the state store")

    def _schedule(self, config: Config) -> None:
        every = tick_seconds(config)
        ticks = (
            ("poll", self._poll_tick, every),
            ("deliver", self._deliver_tick, every),
            ("lease", self._lease_tick, config.cluster.lease / 3),
            ("housekeeping", self._housekeeping_tick, housekeeping_seconds(config)),
            ("status", self._status_tick, HEARTBEAT),
        )
        for job_id, func, seconds in ticks:
            self.scheduler.add_job(
                func,
                "interval",
                seconds=seconds,
                id=job_id,
                replace_existing=True,
                next_run_time=dt.datetime.now(dt.UTC),
            )

    def _store_failed(self, exc: StoreError) -> float:
        """Back every tick off together; one log line per retry."""
        self.store_failures += 1
        delay = exponential(self.store_failures, *STORE_BACKOFF)
        self.store_retry_at = time.monotonic() + delay
        self.health.store_error = str(exc)
        log.error("%s; retrying in %.1fs (failure %d)", exc, delay, self.store_failures)
        return delay

    def _store_answered(self) -> None:
        if self.store_failures:
            log.info("the state store answers again after %d failures", self.store_failures)
        self.store_failures = 0
        self.health.store_error = None

    def _guarded(self, name: str, func: Callable[[], object]) -> None:
        if time.monotonic() < self.store_retry_at:
            self.health.ticked()
            return
        try:
            func()
            self._store_answered()
        except StoreError as exc:
            self._store_failed(exc)
        except Exception as exc:
            log.error("%s tick failed: %s: %s", name, type(exc).__name__, exc)
        self.health.ticked()

    def _poll_tick(self) -> None:
        self._guarded("poll", self.poller.tick)

    def _deliver_tick(self) -> None:
        self._guarded("delivery", self.dispatcher.tick)

    def _lease_tick(self) -> None:
        self._guarded("lease", self._keep_leases)

    def _keep_leases(self) -> None:
        """Heartbeat, extend the leases held, refresh the lanes' view of the store."""
        self.store.heartbeat(time.time())
        self.store.renew_leases()
        self.dispatcher.refresh()

    def _housekeeping_tick(self) -> None:
        self._guarded("housekeeping", self._housekeeping)

    def _housekeeping(self) -> None:
        """The once-across-daemons chores: retention, forgetting silent instances."""
        pruned = self.store.housekeeping(time.time(), self.config.retention)
        if any(pruned):
            log.info(
                "retention: removed %d finished jobs, %d deliveries, %d attempts, %d feed"
                " events and %d ended groups older than %s",
                *pruned,
                format_duration(self.config.retention),
            )

    def _wake_delivery(self) -> None:
        """New outbox rows (ours, or another daemon's NOTIFY): open their lanes, send;
        held feed readers look at once."""
        if self.api is not None:
            self.api.feed.poke()
        if time.monotonic() >= self.store_retry_at:
            self.dispatcher.refresh()
            self.dispatcher.tick()

    def summary(self) -> str:
        """One line: jobs watched, deliveries pending."""
        counts = self.store.counts()
        watching = counts["jobs"].get("watching", 0)
        pending = counts["deliveries"].get("pending", 0)
        return f"watching {watching} jobs, {pending} deliveries pending"

    def _summary_or_outage(self) -> str:
        """The summary, without asking a store that failed last time (it would wait)."""
        if self.store_failures:
            return "state store unavailable"
        try:
            return self.summary()
        except StoreError:
            return "state store unavailable"

    def _status_tick(self) -> None:
        """systemd's STATUS= line, from a tick: the main thread, which answers signals
        and the watchdog, never waits on the store."""
        self.systemd.status(self._summary_or_outage())

    def _wait_for_signals(self) -> None:
        interval = min(HEARTBEAT, self.systemd.watchdog_interval or HEARTBEAT)
        while True:
            received = signal.sigtimedwait(SIGNALS, interval)
            if received is not None and received.si_signo == signal.SIGHUP:
                self.reload()
            elif received is not None:
                log.info("received %s; shutting down", signal.Signals(received.si_signo).name)
                return
            self.systemd.watchdog()

    def reload(self) -> None:
        """Re-read the config; apply it if valid, else keep the current one."""
        self.systemd.reloading()
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload: %s: %s", exc.source, problem)
            log.error("reload: the config is invalid; keeping the previous one")
            self.systemd.ready(self._summary_or_outage())
            return
        try:
            self._apply(new)
        except StoreError as exc:
            log.error(
                "reload failed, keeping the previous config: %s; reload again (SIGHUP) once"
                " the state store answers",
                exc,
            )
        except Exception as exc:
            log.error("reload failed, keeping the previous config: %s", exc)
        self.systemd.ready(self._summary_or_outage())

    def _apply(self, new: Config) -> None:
        for key in ("state_path", "state_url", "cluster", "metrics"):
            if getattr(new, key) != getattr(self.config, key):
                log.warning("reload: %s changed; it takes effect at the next restart", key)
        old_listen = None if self.config.api is None else self.config.api.listen
        if (None if new.api is None else new.api.listen) != old_listen:
            log.warning("reload: api.listen changed; it takes effect at the next restart")
        new = new.model_copy(
            update={
                "state_path": self.config.state_path,
                "state_url": self.config.state_url,
                "cluster": self.config.cluster,
            }
        )
        redact(secrets_of(new))
        for warning in silent_jobs(new):
            log.warning("%s", warning)
        channels = build_channels(new)
        previous = self.config
        self.poller.reconfigure(new)  # first: the callbacks' filters for group events
        try:
            self._sync_config(new)  # the one step that needs the store (it may be down)
        except BaseException:
            self.poller.reconfigure(previous)  # the previous config stays whole
            raise
        self.dispatcher.reconfigure(channels, new.delivery, url_channels(new))
        if self.api is not None and new.api is not None:
            self.api.reconfigure(new.api, new.callbacks)
        if (tick_seconds(new), housekeeping_seconds(new)) != (
            tick_seconds(previous),
            housekeeping_seconds(previous),
        ):
            self._schedule(new)
        self.config = new
        log.info("reloaded %s: %s", self.config_path, self._summary_or_outage())
        try:  # reads only; the lease tick refreshes the lanes again
            self.dispatcher.refresh()
            warn_about_orphans(self.store, new)
        except StoreError as exc:
            log.warning("reload: %s", exc)

    def _shutdown(self) -> None:
        self.systemd.stopping()
        self.poller.stopping.set()
        self._end_store_waits_if_unreachable()
        # The poll tick (bounded by datasaur.timeout) and the deliveries in flight
        # (bounded by delivery.timeout) wind down at the same time, for STOP_WAIT at most:
        # a container's stop (10 s by default) must not end in a SIGKILL.
        deadline = time.monotonic() + STOP_WAIT
        stopper = threading.Thread(
            target=self.scheduler.shutdown, kwargs={"wait": True}, daemon=True
        )
        stopper.start()
        sending = self.dispatcher.close(timeout=STOP_WAIT)
        stopper.join(max(0.0, deadline - time.monotonic()))
        if sending or stopper.is_alive():
            self.abandoned = True
            log.warning(
                "still busy after %gs (%d deliveries in flight%s): stopping anyway; what"
                " was cut short is done again (a delivery under the same webhook-id)",
                STOP_WAIT,
                sending,
                ", a poll" if stopper.is_alive() else "",
            )
        if self.metrics is not None:
            self.metrics.stop()
        if self.api is not None:
            self.api.feed.stop()
        if self.api_server is not None:
            self.api_server.stop()
        if self._end_store_waits_if_unreachable():
            log.warning(
                "the state database is unreachable: leases not given back (they expire"
                " within a lease, as after a crash)"
            )
            log.info("stopped: state store unavailable")
            return
        try:  # other daemons take this one's work at once
            self.store.retire(timeout=RETIRE_WAIT)
        except StoreError as exc:
            self.store_failures += 1
            self._end_store_waits_if_unreachable()
            log.warning("could not release leases (they expire within a lease): %s", exc)
        log.info("stopped: %s", self._summary_or_outage())

    def _end_store_waits_if_unreachable(self) -> bool:
        """During a database outage (the last store call failed) every tick and lane
        waits for a connection (POOL_WAIT_S), and so would giving the leases back: closing
        the store ends those waits at once, so that a stop stays within a container's
        grace. What they were doing is done again after a restart, as after a crash.
        Returns whether the store is closed."""
        if self.store_failures and self.config.state_url is not None and not self.store_closed:
            self.store.close()
            self.store_closed = True
        return self.store_closed
