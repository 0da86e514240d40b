"""``wait``: register jobs and block until every one has ended, showing their progress.

Who polls: when a daemon heartbeats into the same state (alive: seen within its lease),
``wait`` only reads the state and sends nothing to Datasaur. When none does, ``wait``
polls itself with the config's credentials, through the daemon's own
:class:`~notifier.poller.Poller` (batches, adaptive and predictive, within
``max_requests_per_second``), and records what it sees as the daemon would: the events
it records are sent by the daemon when one runs; ``wait`` never notifies. It looks again
at whether a daemon runs on every round, so one starting (or stopping) meanwhile takes
over (or hands back) at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from notifier import __version__
from notifier.backoff import STORE_BACKOFF, exponential
from notifier.cli.base import FAILURE, OK, Command, UsageError
from notifier.cli.parsing import add_repeatable
from notifier.cli.progress import LiveBars, clock
from notifier.cli.watching import _job_ids, _watch_one
from notifier.config import Config, unknown_callback
from notifier.durations import parse_duration
from notifier.events import isoformat
from notifier.poller import NOT_FOUND, Poller
from notifier.store import Instance, Store, StoreError, WatchedJob, open_store

UNKNOWN, TIMED_OUT, INTERRUPTED = 3, 124, 130
ROUND = 0.25  # seconds between looks at the state (and at most 4 redraws a second)
NOT_FOUND_POLLS = 3  # Datasaur answers "no such job" this many polls in a row: exit 3
ENDED = ("done", "expired", "unwatched")
log = logging.getLogger("notifier.wait")


@dataclass
class Watched:
    """What ``wait`` knows of one job between rounds."""

    job: WatchedJob
    not_found: int = 0
    seen: tuple[Any, ...] = field(default_factory=tuple)

    def observe(self, job: WatchedJob) -> bool:
        """Take the job's new row; whether anything shown changed."""
        if job.last_polled_at != self.job.last_polled_at:
            self.not_found = self.not_found + 1 if job.last_error == NOT_FOUND else 0
        self.job = job
        shown = (job.state, job.status, job.progress, job.eta)
        changed, self.seen = shown != self.seen, shown
        return changed

    @property
    def ended(self) -> bool:
        return self.job.state in ENDED or self.not_found >= NOT_FOUND_POLLS


def exit_code(jobs: list[Watched]) -> int:
    """0 every job DELIVERED; 3 one Datasaur does not know; 1 any other end."""
    if any(w.not_found >= NOT_FOUND_POLLS for w in jobs):
        return UNKNOWN
    if all(w.job.state == "done" and w.job.status == "DELIVERED" for w in jobs):
        return OK
    return FAILURE


def change_document(w: Watched, now: float) -> dict[str, Any]:
    """One job as ``--json`` shows it."""
    job = w.job
    return {
        "time": isoformat(now),
        "job": job.id,
        "state": "unknown" if w.not_found >= NOT_FOUND_POLLS else job.state,
        "status": job.status,
        "progress": job.progress,
        "eta": None if job.eta is None else isoformat(job.eta),
    }


def change_line(w: Watched, now: float) -> str:
    """``2026-12-01T10:00:03Z ExportQueue:4a6c IN_PROGRESS 40% eta 10:04:10``."""
    job = w.job
    parts = [isoformat(now)[:19] + "Z", job.id, job.status or "(not polled yet)"]
    if job.progress is not None:
        parts.append(f"{job.progress}%")
    if job.eta is not None and job.state == "watching":
        parts.append("eta " + clock(job.eta))
    if job.state in ("expired", "unwatched"):
        parts.append(job.state)
    if w.not_found >= NOT_FOUND_POLLS:
        parts.append("not found by Datasaur")
    return " ".join(parts)


class Output:
    """Where changes and the summary go: lines, JSON lines, live bars, or the summary alone."""

    def __init__(self, args: argparse.Namespace, stream: TextIO = sys.stdout) -> None:
        self.json, self.quiet, self.stream = args.json, args.quiet, stream
        self.bars = None
        if not (self.json or self.quiet) and stream.isatty():
            self.bars = LiveBars(stream)

    def change(self, w: Watched, now: float) -> None:
        if self.quiet:
            return
        if self.bars is not None:
            return  # drawn by refresh()
        text = json.dumps(change_document(w, now)) if self.json else change_line(w, now)
        print(text, file=self.stream, flush=True)

    def refresh(self, jobs: list[Watched]) -> None:
        if self.bars is not None:
            self.bars.update([(w.job, w.not_found >= NOT_FOUND_POLLS) for w in jobs])

    def summary(self, jobs: list[Watched], code: int, now: float) -> None:
        if self.bars is not None:
            self.bars.stop()
        if self.json:
            document = {"done": code in (OK, FAILURE, UNKNOWN), "exit": code,
                        "jobs": [change_document(w, now) for w in jobs]}  # fmt: skip
            print(json.dumps(document), file=self.stream, flush=True)
            return
        ended = sum(w.ended for w in jobs)
        for w in jobs:
            print(change_line(w, now), file=self.stream)
        verdict = {OK: "all delivered", FAILURE: "not all delivered", UNKNOWN: "unknown job",
                   TIMED_OUT: "timed out", INTERRUPTED: "interrupted"}[code]  # fmt: skip
        print(f"{ended} of {len(jobs)} ended: {verdict} (exit {code})", file=self.stream)


def _daemon_alive(store: Store, now: float) -> bool:
    return any(record.alive for record in store.instances(now))


def _register(store: Store, ids: list[str], notify: list[str] | None) -> None:
    """Watch each job as ``watch`` does; a new one notifies only ``--notify`` (none)."""
    now = time.time()
    for job_id in ids:
        known = store.jobs(job_id=job_id)
        given: dict[str, Any] = {} if notify is None else {"notify": notify}
        if not known and notify is None:
            given = {"notify": []}  # a plain wait
        _watch_one(store, job_id, given, now)


def cmd_wait(args: argparse.Namespace, config: Config) -> int:
    """Register jobs and block until every one has ended."""
    if args.group is not None and args.job_ids:
        raise UsageError("wait for JOB_IDs or for --group G, not both")
    if not args.job_ids and args.group is None:
        raise UsageError("give the JOB_IDs to wait for (or --group G)")
    try:
        timeout = None if args.timeout is None else parse_duration(args.timeout)
    except ValueError as exc:
        raise UsageError(f"--timeout: {exc}") from None
    if args.group is not None:
        return _wait_group(args, config, timeout)
    for name in args.notify or []:
        if problem := unknown_callback(name, config.callbacks):
            raise UsageError(f"--notify: {problem}")
    ids = _job_ids(args.job_ids, config)
    store = open_store(config)
    _register(store, ids, args.notify)
    output = Output(args)
    jobs = [Watched(store.jobs(job_id=job_id)[0]) for job_id in ids]
    try:
        code = _follow(store, config, jobs, output, timeout)
    except KeyboardInterrupt:
        code = INTERRUPTED  # the registrations stay
    output.summary(jobs, code, time.time())
    return code


def _wait_group(args: argparse.Namespace, config: Config, timeout: float | None) -> int:
    """Follow a group's members until the group ends: 0 completed, 1 failed (an open
    group ends only once sealed)."""
    store = open_store(config)
    if not store.groups(group_id=args.group):
        raise UsageError(f"no group {args.group!r} (see `groups`)")
    output = Output(args)
    jobs: list[Watched] = []
    try:
        code = _follow(store, config, jobs, output, timeout, group=args.group)
    except KeyboardInterrupt:
        code = INTERRUPTED
    output.summary(jobs, code, time.time())
    views = store.groups(group_id=args.group)
    if views and not args.json:
        print(f"group {args.group}: {views[0].group.state}", file=output.stream)
    return code


@contextmanager
def _ctrl_c() -> Iterator[threading.Event]:
    """Ctrl-C (SIGINT) as an event the loop looks at, not an exception raised wherever
    the main thread happens to be: one raised while rich's lock is held (between the
    lock's acquire and its ``with`` block) left the bars' refresh thread waiting for it
    forever, and the exit with them."""
    pressed = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: pressed.set())
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)


def _follow(
    store: Store,
    config: Config,
    jobs: list[Watched],
    output: Output,
    timeout: float | None,
    group: str | None = None,
) -> int:
    """Show changes until every job (or ``group``) has ended; the exit code."""
    with _ctrl_c() as pressed:
        return _follow_until(store, config, jobs, output, timeout, group, pressed)


def _follow_until(
    store: Store,
    config: Config,
    jobs: list[Watched],
    output: Output,
    timeout: float | None,
    group: str | None,
    pressed: threading.Event,
) -> int:
    """:func:`_follow`'s loop; ``pressed``: Ctrl-C (exit 130 at the next look).

    A state store that fails meanwhile (a PostgreSQL restart, say) is waited for, with
    one line per retry, until it answers or the timeout passes: a blip is not an exit
    (1 would read as a failed job)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    rounds = _Rounds(store, config, jobs, output, group, pressed)
    failures = 0
    while not pressed.is_set():
        delay = ROUND
        try:
            code = rounds.look(time.time())
        except StoreError as exc:
            failures += 1
            delay = exponential(failures, *STORE_BACKOFF)
            log.error("%s; retrying in %.1fs (failure %d)", exc, delay, failures)
        else:
            if failures:
                log.info("the state store answers again after %d failures", failures)
            failures = 0
            if code is not None:
                return code
        if deadline is not None and time.monotonic() >= deadline:
            return TIMED_OUT
        pressed.wait(delay)
    return INTERRUPTED


@dataclass
class _Rounds:
    """One look at the state per round: polling first if no daemon runs."""

    store: Store
    config: Config
    jobs: list[Watched]
    output: Output
    group: str | None
    pressed: threading.Event
    poller: Poller | None = None

    def look(self, now: float) -> int | None:
        """Show what changed; the exit code once every job (or the group) has ended."""
        store, jobs, group = self.store, self.jobs, self.group
        if not _daemon_alive(store, now):
            self.poller = self.poller or _own_poller(self.config, self.pressed)
            self.poller.tick()
        if group is not None:  # members may join while it is open
            known = {w.job.id for w in jobs}
            jobs += [Watched(j) for j in store.jobs(group=group) if j.id not in known]
        for w in jobs:
            found = store.jobs(job_id=w.job.id)
            if found and w.observe(found[0]):
                self.output.change(w, now)
        self.output.refresh(jobs)
        if group is not None:
            views = store.groups(group_id=group)
            if not views:
                raise UsageError(f"group {group!r} was deleted")
            if views[0].group.ended:
                return OK if views[0].group.state == "completed" else FAILURE
        elif all(w.ended for w in jobs):
            return exit_code(jobs)
        return None


def _own_poller(config: Config, stopping: threading.Event) -> Poller:
    """A poller of this process's own (no daemon runs): it claims like one, never sends;
    it stops between requests once ``stopping`` is set."""
    instance = Instance(f"wait@{socket.gethostname()}", config.cluster.lease, __version__)
    poller = Poller(open_store(config, instance), config)
    poller.stopping = stopping
    return poller


def _wait_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_ids", nargs="*", metavar="JOB_ID")
    parser.add_argument("--group", metavar="G", help="wait for a group to end")
    parser.add_argument("--timeout", help="give up after this long (e.g. 2h): exit 124")
    add_repeatable(parser, "--notify", "CALLBACK", "also notify this callback (default: none)")
    parser.add_argument("--json", action="store_true", help="one JSON object per change")
    parser.add_argument("--quiet", action="store_true", help="only the summary")


COMMANDS = [
    Command(
        "wait",
        cmd_wait,
        "Register jobs (or follow --group G) and wait until every one has ended (exit 0"
        " delivered / group completed, 1 failed, 3 unknown, 124 timeout).",
        _wait_arguments,
    )
]
