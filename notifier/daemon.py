"""The ``run`` command's wiring: lock, store, poller, dispatcher, scheduler, signals.

APScheduler's background scheduler drives two ticks (poll, deliver); the main thread
owns the signals, waiting for them synchronously with ``sigtimedwait`` so that no
handler ever runs on top of a lock, and does the SIGHUP reloads and systemd pings.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler

from notifier import __version__, channels
from notifier.config import Config, ConfigError, load_config, secrets_of
from notifier.delivery import Dispatcher
from notifier.lock import LockHeld, StateLock
from notifier.logs import redact
from notifier.metrics import Health, MetricsServer
from notifier.poller import Poller
from notifier.store import SqliteStore, Store, StoreError
from notifier.systemd import Notifier

log = logging.getLogger(__name__)

SIGNALS = {signal.SIGHUP, signal.SIGTERM, signal.SIGINT}
HEARTBEAT = 5.0


def tick_seconds(config: Config) -> float:
    """How often the scheduler looks for due work: a quarter interval, within [50ms, 1s]."""
    return min(1.0, max(0.05, config.polling.interval / 4))


def build_channels(config: Config) -> dict[str, channels.Channel]:
    """One channel per configured callback."""
    return {
        name: channels.create(name, settings, config.delivery.timeout)
        for name, settings in config.callbacks.items()
    }


def warn_if_readable(path: Path, config: Config) -> None:
    """The config may hold secrets: say so if other users can read it.

    A warning when a secret is written in the file itself; only a note when every secret
    comes from the environment (``${VAR}``), as with systemd's ``EnvironmentFile=``.
    """
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return
    if not mode & stat.S_IROTH:
        return
    if any(secret in text for secret in secrets_of(config)):
        log.warning(
            "config file %s is readable by other users and holds secrets: chmod o-r it, "
            "or take the secrets from the environment with ${VAR}",
            path,
        )
    else:
        log.info("config file %s is readable by other users (it holds no secret itself)", path)


def warn_about_orphans(store: Store, config: Config) -> None:
    """Pending deliveries to a callback no longer configured wait for it: say so."""
    for callback, count in store.pending_by_callback().items():
        if callback not in config.callbacks:
            log.warning(
                "%d pending deliveries are for callback %r, which is not configured; "
                "they stay pending until it is configured again",
                count,
                callback,
            )


class Daemon:
    """Runs until SIGTERM/SIGINT; SIGHUP reloads the config."""

    def __init__(self, config_path: Path, config: Config, metrics_port: int | None = None):
        self.config_path = config_path
        self.config = config
        self.metrics_port = metrics_port if metrics_port is not None else config.metrics.port
        self.systemd = Notifier()
        self.lock = StateLock(config.state_path)

    def run(self) -> int:
        """Serve; returns the exit status."""
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        try:
            self.lock.acquire()
        except (LockHeld, OSError) as exc:
            log.error("%s", exc)
            return 1
        try:
            self.store = SqliteStore(self.config.state_path)
        except StoreError as exc:
            log.error("%s", exc)
            return 1
        try:
            self._serve()
        except OSError as exc:  # e.g. the metrics port is taken; no thread is running yet
            log.error("cannot start: %s", exc)
            return 1
        finally:
            self.store.close()
            self.lock.release()
        return 0

    def _serve(self) -> None:
        config = self.config
        redact(secrets_of(config))
        warn_if_readable(self.config_path, config)
        self.store.sync_config_jobs(config.jobs, time.time())
        warn_about_orphans(self.store, config)
        self.health = Health(stall_after=max(30.0, 10 * tick_seconds(config)))
        self.dispatcher = Dispatcher(self.store, build_channels(config), config.delivery)
        self.poller = Poller(self.store, config, on_enqueued=self._wake_delivery)
        self.metrics: MetricsServer | None = None
        if self.metrics_port is not None:
            self.metrics = MetricsServer(
                self.store, self.health, config.metrics.host, self.metrics_port
            )
            self.metrics.start()
        self.scheduler = BackgroundScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        )
        self._schedule(config)
        self.scheduler.start()
        log.info(
            "datasaur-notifier %s running: state %s, %d callbacks, %s",
            __version__,
            config.state_path,
            len(config.callbacks),
            self.summary(),
        )
        self.systemd.ready(self.summary())
        self._wait_for_signals()
        self._shutdown()

    def _schedule(self, config: Config) -> None:
        every = tick_seconds(config)
        for job_id, func in (("poll", self._poll_tick), ("deliver", self._deliver_tick)):
            self.scheduler.add_job(
                func,
                "interval",
                seconds=every,
                id=job_id,
                replace_existing=True,
                next_run_time=dt.datetime.now(dt.UTC),
            )

    def _guarded(self, name: str, func: Callable[[], object]) -> None:
        try:
            func()
        except Exception as exc:
            log.error("%s tick failed: %s: %s", name, type(exc).__name__, exc)
        self.health.ticked()

    def _poll_tick(self) -> None:
        self._guarded("poll", self.poller.tick)

    def _deliver_tick(self) -> None:
        self._guarded("delivery", self.dispatcher.tick)

    def _wake_delivery(self) -> None:
        self.dispatcher.tick()

    def summary(self) -> str:
        """One line: jobs watched, deliveries pending."""
        counts = self.store.counts()
        watching = counts["jobs"].get("watching", 0)
        pending = counts["deliveries"].get("pending", 0)
        return f"watching {watching} jobs, {pending} deliveries pending"

    def _wait_for_signals(self) -> None:
        interval = min(HEARTBEAT, self.systemd.watchdog_interval or HEARTBEAT)
        last_status = 0.0
        while True:
            received = signal.sigtimedwait(SIGNALS, interval)
            if received is not None and received.si_signo == signal.SIGHUP:
                self.reload()
            elif received is not None:
                log.info("received %s; shutting down", signal.Signals(received.si_signo).name)
                return
            self.systemd.watchdog()
            if time.monotonic() - last_status >= HEARTBEAT:
                last_status = time.monotonic()
                try:
                    self.systemd.status(self.summary())
                except StoreError as exc:
                    log.error("%s", exc)

    def reload(self) -> None:
        """Re-read the config; apply it if valid, else keep the current one."""
        self.systemd.reloading()
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload: %s: %s", exc.source, problem)
            log.error("reload: the config is invalid; keeping the previous one")
            self.systemd.ready(self.summary())
            return
        try:
            self._apply(new)
        except Exception as exc:
            log.error("reload failed, keeping the previous config: %s", exc)
        self.systemd.ready(self.summary())

    def _apply(self, new: Config) -> None:
        for key in ("state_path", "metrics"):
            if getattr(new, key) != getattr(self.config, key):
                log.warning("reload: %s changed; it takes effect at the next restart", key)
        new = new.model_copy(update={"state_path": self.config.state_path})
        redact(secrets_of(new))
        self.store.sync_config_jobs(new.jobs, time.time())
        self.poller.reconfigure(new)
        self.dispatcher.reconfigure(build_channels(new), new.delivery)
        warn_about_orphans(self.store, new)
        if tick_seconds(new) != tick_seconds(self.config):
            self._schedule(new)
        self.config = new
        log.info("reloaded %s: %s", self.config_path, self.summary())

    def _shutdown(self) -> None:
        self.systemd.stopping()
        self.poller.stopping.set()
        # The poll tick (bounded by datasaur.timeout) and the deliveries in flight
        # (bounded by delivery.timeout) wind down at the same time.
        stopper = threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": True})
        stopper.start()
        self.dispatcher.close()
        stopper.join()
        if self.metrics is not None:
            self.metrics.stop()
        log.info("stopped: %s", self.summary())
