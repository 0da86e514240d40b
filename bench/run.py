"""The benchmark: the daemon (a subprocess) against a naive poller, on this machine.

Every scenario starts a fresh Datasaur simulator in its own process
(``python -m notifier simulate``) so that its CPU is not the daemon's, runs the daemon as
``python -m notifier -c <config> run`` and reads the daemon's CPU time (utime + stime) and
memory from ``/proc/<pid>``. Webhook receivers run as threads of this process. The naive
poller -- one ``getJob`` per job, sequentially, over a pooled ``requests.Session`` -- runs
in a subprocess of its own and measures its CPU with ``time.process_time``.

Large watch lists are written before the daemon starts, the way ``datasaur-notifier
watch`` writes them (``source = 'cli'``, through the store's own upsert), but all in one
transaction; jobs polled "in steady state" get their ``next_poll_at`` spread over one
interval, as a daemon that has been running for a while has them.

``python -m bench`` (full, 3 runs), ``--quick`` (1 short run), ``--runs N``,
``--only SCENARIO ...``, ``--out PATH`` (default ``bench/results.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from notifier.config import JobSpec, PollingSettings
from notifier.poller import Observation, decide
from notifier.receiver import ReceivedWebhook, WebhookReceiver
from notifier.store import SqliteStore

PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024
DEFAULT_OUT = Path(__file__).with_name("results.json")

# The naive poller's query: the getJob example from Datasaur's documentation, with the
# same fields the daemon asks for.
NAIVE_QUERY = (
    "query GetJob($jobId: String!) { result: getJob(jobId: $jobId) "
    "{ id status progress errors { id stack args } resultId createdAt updatedAt result } }"
)


@dataclass(frozen=True)
class Sizes:
    """How big and how long each scenario is (full or ``--quick``)."""

    throughput_jobs: int = 5_000
    throughput_seconds: float = 8.0
    cadence_seconds: float = 30.0
    footprint_jobs: tuple[int, ...] = (1_000, 10_000, 100_000)
    footprint_settle: float = 6.0
    latency_jobs: int = 1_000
    delivery_jobs: int = 2_000


FULL = Sizes()
QUICK = Sizes(
    throughput_jobs=2_000,
    throughput_seconds=4.0,
    cadence_seconds=10.0,
    footprint_jobs=(1_000, 10_000, 100_000),
    footprint_settle=4.0,
    latency_jobs=1_000,
    delivery_jobs=600,
)


# --- processes ---------------------------------------------------------------------------


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_memory(pid: int) -> dict[str, float]:
    """Resident and peak resident memory in MiB."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return {"rss_mib": values.get("VmRSS", 0.0), "hwm_mib": values.get("VmHWM", 0.0)}


class Simulator:
    """``python -m notifier simulate`` in a subprocess, driven through its control API."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [PYTHON, "-m", "notifier", "simulate", "--port", "0", "--finish-after", "1e9"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        if "listening on" not in first:
            self.process.kill()
            raise RuntimeError(f"the simulator did not start: {first!r}")
        self.url = first.split()[-1]
        threading.Thread(target=self.process.stdout.read, daemon=True).start()
        self.session = requests.Session()

    @property
    def graphql_url(self) -> str:
        return self.url + "/graphql"

    def set_jobs(self, ids: list[str], status: str, progress: int = 50) -> None:
        """Set every job in ``ids`` (bulk control requests)."""
        for start in range(0, len(ids), 20_000):
            chunk = ids[start : start + 20_000]
            body = {"jobs": [{"id": i, "status": status, "progress": progress} for i in chunk]}
            self.session.post(self.url + "/_sim/jobs", json=body, timeout=120).raise_for_status()

    def stats(self) -> dict[str, Any]:
        answer = self.session.get(self.url + "/_sim/stats", timeout=60)
        answer.raise_for_status()
        return dict(answer.json())

    def stop(self) -> None:
        self.session.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Daemon:
    """``python -m notifier -c <config> run``, with its log lines and READY timestamped."""

    def __init__(self, workdir: Path, config: dict[str, Any]) -> None:
        self.workdir = workdir
        self.config_path = workdir / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.config_path.chmod(0o600)
        self.running_at: float | None = None
        self.ready_at: float | None = None
        self.lines: list[str] = []
        self._running = threading.Event()
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        name = f"bench-notify-{os.getpid()}-{random.getrandbits(32):08x}"
        self._notify.bind("\0" + name)
        self._notify.settimeout(0.2)
        self._notify_name = "@" + name
        self._closed = False
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            [PYTHON, "-m", "notifier", "-c", str(self.config_path), "run"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "NOTIFY_SOCKET": self._notify_name},
        )
        self.pid = self.process.pid
        threading.Thread(target=self._read_log, daemon=True).start()
        threading.Thread(target=self._read_notify, daemon=True).start()

    def _read_log(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode(errors="replace").rstrip()
            if self.running_at is None and "running:" in line:
                self.running_at = time.monotonic()
                self._running.set()
            if len(self.lines) < 2_000 or "ERROR" in line:
                self.lines.append(line)

    def _read_notify(self) -> None:
        while not self._closed:
            try:
                message = self._notify.recv(4096).decode(errors="replace")
            except (TimeoutError, OSError):
                continue
            if self.ready_at is None and "READY=1" in message.splitlines():
                self.ready_at = time.monotonic()

    def wait_running(self, timeout: float = 180) -> None:
        if not self._running.wait(timeout) or self.process.poll() is not None:
            tail = "\n".join(self.lines[-20:])
            raise RuntimeError(f"the daemon did not start within {timeout}s:\n{tail}")
        deadline = time.monotonic() + 5
        while self.ready_at is None and time.monotonic() < deadline:
            time.sleep(0.01)

    def cpu(self) -> float:
        return proc_cpu(self.pid)

    def memory(self) -> dict[str, float]:
        return proc_memory(self.pid)

    def errors(self) -> list[str]:
        return [line for line in self.lines if " ERROR " in line]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._closed = True
        self._notify.close()

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def daemon_config(
    sim: Simulator,
    state_path: Path,
    *,
    interval: float = 30,
    max_interval: float = 300,
    rate: float | None = None,
    callbacks: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A config against ``sim``; ``rate`` None keeps the default request cap (5/s)."""
    datasaur: dict[str, Any] = {
        "graphql_url": sim.graphql_url,
        "client_id": "bench",
        "client_secret": "bench-secret",
        "timeout": "10s",
    }
    if rate is not None:
        datasaur["max_requests_per_second"] = rate
    return {
        "datasaur": datasaur,
        "state_path": str(state_path),
        "polling": {"interval": f"{interval}s", "max_interval": f"{max_interval}s"},
        "delivery": {"timeout": "10s", "initial_backoff": "1s", "max_backoff": "10s"},
        "callbacks": callbacks or {},
    }


def job_ids(n: int) -> list[str]:
    return [f"AutoLabelQueue:bench-{i:06d}" for i in range(n)]


def seed_watch_list(
    state_path: Path, ids: list[str], *, spread: float | None = None, interval: float | None = None
) -> None:
    """Watch ``ids`` as ``watch`` would (source 'cli'), in one transaction.

    With ``spread``, next polls are spread uniformly over ``[now, now + spread)`` and the
    last interval set to ``interval``: the steady state of a daemon that has been running.
    """
    now = time.time()
    store = SqliteStore(state_path)
    try:
        with store._transaction() as conn:
            for job_id in ids:
                store._upsert(conn, JobSpec(id=job_id), "cli", now)
            if spread:
                millis = max(1, int(spread * 1000))
                conn.execute(
                    "UPDATE jobs SET next_poll_at = ? + (abs(random()) % ?) / 1000.0,"
                    " poll_interval = ?",
                    (now, millis, interval),
                )
    finally:
        store.close()


def seed_outbox(state_path: Path, ids: list[str], callbacks: list[str]) -> None:
    """Pending deliveries for ``ids`` turning DELIVERED, as the poller would record them."""
    seed_watch_list(state_path, ids)
    store = SqliteStore(state_path)
    try:
        now = time.time()
        polling = PollingSettings()
        rng = random.Random(1)
        jobs = store.claim_jobs(now + 1, len(ids))
        updates = [
            decide(
                job,
                Observation(job={"id": job.id, "status": "DELIVERED", "progress": 100}),
                now,
                polling,
                callbacks,
                rng,
            )
            for job in jobs
        ]
        store.apply_polls(updates)
    finally:
        store.close()


def state_sizes(state_path: Path) -> dict[str, float]:
    def size(path: Path) -> float:
        return path.stat().st_size / MIB if path.exists() else 0.0

    wal = state_path.with_name(state_path.name + "-wal")
    return {"state_mib": size(state_path), "wal_mib": size(wal)}


def watching_below(state_path: Path, interval: float) -> int:
    """Watched jobs whose last interval is still below ``interval`` (read-only peek)."""
    with contextlib.closing(sqlite3.connect(f"file:{state_path}?mode=ro", uri=True)) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM jobs WHERE state = 'watching'"
            " AND (poll_interval IS NULL OR poll_interval < ?)",
            (interval - 1e-6,),
        ).fetchone()
    return int(row[0])


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@contextlib.contextmanager
def workdir(root: Path, name: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=name + "-", dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Arrivals:
    """Timestamps of webhooks reaching a receiver (``time.time()`` on arrival)."""

    def __init__(self, receiver: WebhookReceiver) -> None:
        self.times: list[float] = []
        self.jobs: list[str] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        receiver.on_receive = self._seen

    def _seen(self, webhook: ReceivedWebhook) -> None:
        with self._changed:
            self.times.append(webhook.received_at)
            data = (webhook.json or {}).get("data") or {}
            self.jobs.append(str(data.get("job_id")))
            self._changed.notify_all()

    def wait(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.times) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True


@dataclass(frozen=True)
class Window:
    """What the daemon did over one measured window."""

    polls: int
    requests: int
    seconds: float
    cpu_s: float
    max_batch_size: int

    @property
    def cpu_percent(self) -> float:
        """Share of one core."""
        return 100 * self.cpu_s / self.seconds


def measure(sim: Simulator, daemon: Daemon, warmup: float, seconds: float) -> Window:
    """Job-polls, requests and daemon CPU over ``seconds``, once running plus ``warmup``."""
    daemon.wait_running()
    time.sleep(warmup)
    before, cpu0, t0 = sim.stats(), daemon.cpu(), time.monotonic()
    time.sleep(seconds)
    after, cpu1, t1 = sim.stats(), daemon.cpu(), time.monotonic()
    return Window(
        polls=after["job_polls"] - before["job_polls"],
        requests=after["graphql_requests"] - before["graphql_requests"],
        seconds=t1 - t0,
        cpu_s=cpu1 - cpu0,
        max_batch_size=after["max_batch_size"],
    )


# --- scenarios ---------------------------------------------------------------------------


def polling_throughput(root: Path, sizes: Sizes, batch_size: int | None = None) -> dict[str, Any]:
    """Saturated polling: every job always due, rate cap lifted to 1000/s."""
    ids = job_ids(sizes.throughput_jobs)
    with workdir(root, "throughput") as work, Simulator() as sim:
        sim.set_jobs(ids, "IN_PROGRESS")
        state = work / "state.db"
        seed_watch_list(state, ids)
        config = daemon_config(sim, state, interval=0.5, max_interval=0.5, rate=1000)
        if batch_size is not None:
            config["datasaur"]["batch_size"] = batch_size
        with Daemon(work, config) as daemon:
            window = measure(sim, daemon, warmup=2.0, seconds=sizes.throughput_seconds)
            errors = daemon.errors()
    return {
        "jobs": len(ids),
        "polls": window.polls,
        "requests": window.requests,
        "polls_per_s": window.polls / window.seconds,
        "requests_per_1000_polls": 1000 * window.requests / max(window.polls, 1),
        "cpu_ms_per_1000_polls": 1000 * 1000 * window.cpu_s / max(window.polls, 1),
        "cpu_percent": window.cpu_percent,
        "max_batch_size": window.max_batch_size,
        "errors": errors[:5],
    }


def naive_throughput(root: Path, sizes: Sizes) -> dict[str, Any]:
    """The naive poller over the same jobs, as fast as it goes, in its own process."""
    ids = job_ids(sizes.throughput_jobs)
    with Simulator() as sim:
        sim.set_jobs(ids, "IN_PROGRESS")
        command = [
            PYTHON, "-m", "bench.run", "_naive", sim.graphql_url, str(len(ids)),
            str(sizes.throughput_seconds),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300)
        stats = sim.stats()
    result: dict[str, Any] = json.loads(done.stdout)
    polls = result["polls"]
    result.update(
        {
            "jobs": len(ids),
            "polls_per_s": polls / result["wall_s"],
            "requests_per_1000_polls": 1000 * stats["graphql_requests"] / max(polls, 1),
            "cpu_ms_per_1000_polls": 1000 * 1000 * result["cpu_s"] / max(polls, 1),
        }
    )
    return result


def naive_worker(graphql_url: str, count: int, seconds: float) -> None:
    """The loop a user would write: getJob for each job in turn, over one Session."""
    ids = job_ids(count)
    session = requests.Session()
    token_url = graphql_url.rsplit("/", 1)[0] + "/api/oauth/token"
    form = {"client_id": "naive", "client_secret": "naive", "grant_type": "client_credentials"}
    token = session.post(token_url, data=form, timeout=10).json()["access_token"]
    session.headers["Authorization"] = f"Bearer {token}"
    seen: dict[str, tuple[Any, Any]] = {}
    polls = 0
    cpu0, t0 = time.process_time(), time.monotonic()
    while time.monotonic() - t0 < seconds:
        for job_id in ids:
            body = {"operationName": "GetJob", "query": NAIVE_QUERY, "variables": {"jobId": job_id}}
            job = session.post(graphql_url, json=body, timeout=10).json()["data"]["result"]
            state = (job["status"], job["progress"])
            if seen.get(job_id) != state:
                seen[job_id] = state
            polls += 1
            if polls % 100 == 0 and time.monotonic() - t0 >= seconds:
                break
    cpu_s, wall_s = time.process_time() - cpu0, time.monotonic() - t0
    print(json.dumps({"polls": polls, "cpu_s": cpu_s, "wall_s": wall_s}))


def cadence_10k(root: Path, sizes: Sizes) -> dict[str, Any]:
    """10,000 jobs polled every 30 s (max_interval 30 s), next polls spread, 10 req/s cap."""
    ids = job_ids(10_000)
    with workdir(root, "cadence") as work, Simulator() as sim:
        sim.set_jobs(ids, "IN_PROGRESS")
        state = work / "state.db"
        seed_watch_list(state, ids, spread=30, interval=30)
        config = daemon_config(sim, state, interval=30, max_interval=30, rate=10)
        with Daemon(work, config) as daemon:
            window = measure(sim, daemon, warmup=1.0, seconds=sizes.cadence_seconds)
            memory = daemon.memory()
    return {
        "seconds": window.seconds,
        "polls": window.polls,
        "requests": window.requests,
        "polls_per_request": window.polls / max(window.requests, 1),
        "cpu_percent": window.cpu_percent,
        **memory,
    }


def _footprint_template(root: Path, n: int) -> Path:
    template = root / f"template-{n}.db"
    if not template.exists():
        seed_watch_list(template, job_ids(n), spread=30, interval=30)
    return template


def footprint(root: Path, sizes: Sizes, n: int) -> dict[str, Any]:
    """Start-up time, memory and state size with ``n`` watched jobs, default settings."""
    template = _footprint_template(root, n)
    ids = job_ids(n)
    with workdir(root, f"footprint-{n}") as work, Simulator() as sim:
        sim.set_jobs(ids, "IN_PROGRESS")
        state = work / "state.db"
        shutil.copyfile(template, state)
        config = daemon_config(sim, state)
        with Daemon(work, config) as daemon:
            daemon.wait_running()
            cpu0, t0 = daemon.cpu(), time.monotonic()
            time.sleep(sizes.footprint_settle)
            cpu1, t1 = daemon.cpu(), time.monotonic()
            memory = daemon.memory()
            stats = sim.stats()
            assert daemon.running_at is not None
            running_s = daemon.running_at - daemon.started_at
            ready_s = None if daemon.ready_at is None else daemon.ready_at - daemon.started_at
        sizes_now = state_sizes(state)
    return {
        "jobs": n,
        "running_s": running_s,
        "ready_s": ready_s,
        "cpu_percent": 100 * (cpu1 - cpu0) / (t1 - t0),
        "polls": stats["job_polls"],
        "requests": stats["graphql_requests"],
        "polls_per_request": stats["job_polls"] / max(stats["graphql_requests"], 1),
        "max_batch_size": stats["max_batch_size"],
        **memory,
        **sizes_now,
    }


def idle_finished(root: Path, sizes: Sizes) -> dict[str, Any]:
    """100,000 jobs that are all done: what an idle daemon costs."""
    n = 100_000
    with workdir(root, "idle") as work, Simulator() as sim:
        state = work / "state.db"
        shutil.copyfile(_footprint_template(root, n), state)
        with contextlib.closing(sqlite3.connect(state)) as conn, conn:
            conn.execute(
                "UPDATE jobs SET state = 'done', status = 'DELIVERED', next_poll_at = NULL"
            )
        with Daemon(work, daemon_config(sim, state)) as daemon:
            window = measure(sim, daemon, warmup=1.0, seconds=sizes.footprint_settle)
            memory = daemon.memory()
        stats = sim.stats()
    return {
        "jobs_done": n,
        "cpu_percent": window.cpu_percent,
        "requests": stats["graphql_requests"],
        **memory,
    }


def latency(root: Path, sizes: Sizes) -> dict[str, Any]:
    """1,000 jobs at max_interval turn DELIVERED at once; a 5 s receiver on another callback."""
    interval, max_interval = 1.0, 5.0
    ids = job_ids(sizes.latency_jobs)
    with (
        workdir(root, "latency") as work,
        Simulator() as sim,
        WebhookReceiver() as fast,
        WebhookReceiver() as slow,
    ):
        slow.respond_with(200, delay=5.0)
        arrivals = Arrivals(fast)
        sim.set_jobs(ids, "IN_PROGRESS")
        state = work / "state.db"
        seed_watch_list(state, ids, spread=max_interval)
        callbacks = {
            "fast": {"type": "webhook", "url": fast.url + "/hook"},
            "slow": {"type": "webhook", "url": slow.url + "/hook"},
        }
        config = daemon_config(
            sim, state, interval=interval, max_interval=max_interval, callbacks=callbacks
        )
        try:
            with Daemon(work, config) as daemon:
                daemon.wait_running()
                # Wait until every job has backed off to max_interval (the worst case).
                deadline = time.monotonic() + 60
                while watching_below(state, max_interval) and time.monotonic() < deadline:
                    time.sleep(0.5)
                settled = watching_below(state, max_interval) == 0
                time.sleep(random.uniform(0, max_interval))
                finished_at = time.time()
                sim.set_jobs(ids, "DELIVERED", 100)
                complete = arrivals.wait(len(ids), timeout=60)
                slow_count = len(slow.received)
                slow.stop()  # so the daemon's in-flight slow attempts end now
        finally:
            slow.stop()
    latencies = [t - finished_at for t in arrivals.times]
    return {
        "jobs": len(ids),
        "interval": interval,
        "max_interval": max_interval,
        "settled_at_max_interval": settled,
        "complete": complete,
        "received": len(latencies),
        "slow_received": slow_count,
        "p50_s": percentile(latencies, 0.50) if latencies else None,
        "p99_s": percentile(latencies, 0.99) if latencies else None,
        "max_s": max(latencies) if latencies else None,
    }


def delivery_throughput(root: Path, sizes: Sizes, with_slow: bool) -> dict[str, Any]:
    """Drain an outbox backlog to a fast receiver (and a 5 s one on another callback)."""
    ids = job_ids(sizes.delivery_jobs)
    with (
        workdir(root, "delivery") as work,
        Simulator() as sim,
        WebhookReceiver() as fast,
        WebhookReceiver() as slow,
    ):
        slow.respond_with(200, delay=5.0)
        arrivals = Arrivals(fast)
        state = work / "state.db"
        callbacks = {"fast": {"type": "webhook", "url": fast.url + "/hook"}}
        if with_slow:
            callbacks["slow"] = {"type": "webhook", "url": slow.url + "/hook"}
        seed_outbox(state, ids, list(callbacks))
        try:
            with Daemon(work, daemon_config(sim, state, callbacks=callbacks)) as daemon:
                daemon.wait_running()
                complete = arrivals.wait(len(ids), timeout=180)
                slow_count = len(slow.received)
                cpu = daemon.cpu()
                slow.stop()
        finally:
            slow.stop()
    times = sorted(arrivals.times)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return {
        "deliveries": len(ids),
        "received": len(times),
        "complete": complete,
        "slow_received": slow_count,
        "webhooks_per_s": (len(times) - 1) / span if span else None,
        "daemon_cpu_s_total": cpu,
    }


# --- one run, medians, the table ---------------------------------------------------------

SCENARIOS = (
    "throughput", "naive", "cadence", "footprint", "idle", "latency", "delivery", "cluster",
    "claims",
)  # fmt: skip


def one_run(root: Path, sizes: Sizes, only: set[str], log: Callable[[str], None]) -> dict[str, Any]:
    run: dict[str, Any] = {}

    def step(name: str, func: Callable[[], dict[str, Any]]) -> None:
        started = time.monotonic()
        run[name] = func()
        log(f"  {name}: {time.monotonic() - started:.1f}s {_brief(run[name])}")

    if "throughput" in only:
        step("throughput", lambda: polling_throughput(root, sizes))
        step("throughput_batch200", lambda: polling_throughput(root, sizes, batch_size=200))
    if "naive" in only:
        step("naive", lambda: naive_throughput(root, sizes))
    if "cadence" in only:
        step("cadence_10k", lambda: cadence_10k(root, sizes))
    if "footprint" in only:
        for n in sizes.footprint_jobs:
            step(f"footprint_{n}", lambda n=n: footprint(root, sizes, n))
    if "idle" in only:
        step("idle_100k_done", lambda: idle_finished(root, sizes))
    if "latency" in only:
        step("latency", lambda: latency(root, sizes))
    if "delivery" in only:
        step("delivery_fast", lambda: delivery_throughput(root, sizes, with_slow=False))
        step("delivery_with_slow", lambda: delivery_throughput(root, sizes, with_slow=True))
    if "cluster" in only or "claims" in only:
        from bench import cluster  # needs PostgreSQL's binaries and psycopg

        if "cluster" in only:
            for n in (1, 2, 3):
                step(f"cluster_{n}", lambda n=n: cluster.cluster_throughput(root, sizes, n))
        if "claims" in only:
            step("claims_100k", lambda: cluster.claim_cost(root, sizes))
    if "throughput" in run and "naive" in run:
        daemon_cpu = run["throughput"]["cpu_ms_per_1000_polls"]
        run["cpu_ratio_naive_over_daemon"] = run["naive"]["cpu_ms_per_1000_polls"] / daemon_cpu
        batch200 = run["throughput_batch200"]["cpu_ms_per_1000_polls"]
        run["cpu_ratio_naive_over_daemon_batch200"] = (
            run["naive"]["cpu_ms_per_1000_polls"] / batch200
        )
    if "delivery_fast" in run and "delivery_with_slow" in run:
        fast = run["delivery_fast"]["webhooks_per_s"]
        slow = run["delivery_with_slow"]["webhooks_per_s"]
        run["delivery_ratio_with_slow"] = slow / fast if fast and slow else None
    return run


def _brief(result: dict[str, Any]) -> str:
    keys = (
        "polls_per_s", "cpu_ms_per_1000_polls", "cpu_percent", "rss_mib", "running_s",
        "p50_s", "p99_s", "webhooks_per_s",
    )  # fmt: skip
    return " ".join(f"{k}={result[k]:.3g}" for k in keys if isinstance(result.get(k), float))


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every numeric figure over the runs (booleans: all runs true)."""
    flats = [_flatten(run) for run in runs]
    keys = dict.fromkeys(key for flat in flats for key in flat)
    result: dict[str, Any] = {}
    for key in keys:
        values = [flat.get(key) for flat in flats]
        if all(isinstance(v, bool) for v in values):
            result[key] = all(values)
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            result[key] = statistics.median(values)  # type: ignore[type-var]
    return result


@dataclass(frozen=True)
class Row:
    label: str
    daemon: str | None
    naive: str | None = None
    target: str = ""
    check: Callable[[dict[str, Any]], bool | None] | None = None
    fmt: str = "{:.1f}"


def _get(m: dict[str, Any], key: str | None) -> Any:
    return None if key is None else m.get(key)


ROWS = [
    Row("API requests per 1,000 job-polls (saturated)", "throughput.requests_per_1000_polls",
        "naive.requests_per_1000_polls", "<= 40 (>= 25 polls/request)",
        lambda m: m["throughput.requests_per_1000_polls"] <= 40),
    Row("Job-polls per request, default settings (10k jobs)", "footprint_10000.polls_per_request",
        None, ">= 25", lambda m: m["footprint_10000.polls_per_request"] >= 25),
    Row("Largest batch seen by the API", "throughput.max_batch_size", None,
        "<= batch_size (50)", lambda m: m["throughput.max_batch_size"] <= 50, "{:.0f}"),
    Row("Job-polls per second sustained (cap lifted)", "throughput.polls_per_s",
        "naive.polls_per_s", "", None, "{:.0f}"),
    Row("Client CPU ms per 1,000 job-polls", "throughput.cpu_ms_per_1000_polls",
        "naive.cpu_ms_per_1000_polls", "naive/daemon >= 30x", None),
    Row("CPU ratio naive / daemon", "cpu_ratio_naive_over_daemon", None, ">= 30",
        lambda m: m["cpu_ratio_naive_over_daemon"] >= 30),
    Row("  same, batch_size 200 (not the default)", "throughput_batch200.cpu_ms_per_1000_polls",
        None, "", None),
    Row("  CPU ratio naive / daemon at batch_size 200", "cpu_ratio_naive_over_daemon_batch200",
        None, "(>= 30)", None),
    Row("10k jobs, 30 s cadence: CPU % of one core", "cadence_10k.cpu_percent", None, "< 5 %",
        lambda m: m["cadence_10k.cpu_percent"] < 5, "{:.2f}"),
    Row("10k jobs, 30 s cadence: RSS MiB", "cadence_10k.rss_mib", None, "< 100 MiB",
        lambda m: m["cadence_10k.rss_mib"] < 100),
    Row("RSS MiB, 1,000 watched jobs", "footprint_1000.rss_mib"),
    Row("RSS MiB, 10,000 watched jobs", "footprint_10000.rss_mib", None, "< 100 MiB",
        lambda m: m["footprint_10000.rss_mib"] < 100),
    Row("RSS MiB, 100,000 watched jobs", "footprint_100000.rss_mib"),
    Row("Peak RSS MiB, 100,000 watched jobs", "footprint_100000.hwm_mib"),
    Row("State file MiB, 1,000 jobs", "footprint_1000.state_mib", fmt="{:.2f}"),
    Row("State file MiB, 10,000 jobs", "footprint_10000.state_mib", fmt="{:.2f}"),
    Row("State file MiB, 100,000 jobs", "footprint_100000.state_mib", fmt="{:.2f}"),
    Row("CPU % with 100,000 finished jobs (idle)", "idle_100k_done.cpu_percent", None,
        "~0 (finished jobs cost nothing)", lambda m: m["idle_100k_done.cpu_percent"] < 1,
        "{:.2f}"),
    Row("Latency p50 s, 1,000 jobs finish at once", "latency.p50_s", None, "", None, "{:.2f}"),
    Row("Latency p99 s, 1,000 jobs finish at once", "latency.p99_s", None,
        "<= max_interval + 1 s = 6 s", lambda m: m["latency.p99_s"] <= 6.0, "{:.2f}"),
    Row("Webhooks/s to a fast receiver", "delivery_fast.webhooks_per_s", None, "", None,
        "{:.0f}"),
    Row("Webhooks/s to it, another callback at 5 s/request",
        "delivery_with_slow.webhooks_per_s", None, "not dragged down (>= 0.8x)",
        lambda m: m["delivery_ratio_with_slow"] >= 0.8, "{:.0f}"),
    Row("PostgreSQL, 1 daemon: job-polls/s (cap lifted)", "cluster_1.polls_per_s", None, "",
        None, "{:.0f}"),
    Row("PostgreSQL, 2 daemons: job-polls/s", "cluster_2.polls_per_s", None, "", None,
        "{:.0f}"),
    Row("PostgreSQL, 3 daemons: job-polls/s", "cluster_3.polls_per_s", None, "", None,
        "{:.0f}"),
    Row("PostgreSQL, 1 daemon: client CPU ms / 1,000 job-polls", "cluster_1.cpu_ms_per_1000_polls"),
    Row("PostgreSQL, 2 daemons: client CPU ms / 1,000 job-polls",
        "cluster_2.cpu_ms_per_1000_polls"),
    Row("PostgreSQL, 3 daemons: client CPU ms / 1,000 job-polls",
        "cluster_3.cpu_ms_per_1000_polls"),
    Row("PostgreSQL server CPU ms / 1,000 job-polls, 1 daemon",
        "cluster_1.db_cpu_ms_per_1000_polls"),
    Row("Claim statement ms (median), 100,000 watched jobs", "claims_100k.claim_ms_median", None,
        "uses jobs_due", lambda m: m["claims_100k.uses_jobs_due_index"], "{:.2f}"),
    Row("Start-up s to 'running:', 1,000 jobs", "footprint_1000.running_s", fmt="{:.2f}"),
    Row("Start-up s to 'running:', 100,000 jobs", "footprint_100000.running_s", fmt="{:.2f}"),
    Row("Start-up s to READY, 100,000 jobs", "footprint_100000.ready_s", fmt="{:.2f}"),
]  # fmt: skip


def table(m: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The figures as a text table, and as rows for the JSON."""
    rows: list[dict[str, Any]] = []
    for row in ROWS:
        daemon, naive = _get(m, row.daemon), _get(m, row.naive)
        if daemon is None:
            continue
        met: bool | None = None
        if row.check is not None:
            try:
                met = bool(row.check(m))
            except (KeyError, TypeError):
                met = None
        rows.append(
            {
                "figure": row.label,
                "daemon": daemon,
                "naive": naive,
                "target": row.target,
                "met": met,
                "text": (
                    row.fmt.format(daemon),
                    "" if naive is None else row.fmt.format(naive),
                ),
            }
        )
    headers = ("Figure", "daemon", "naive", "target", "met")
    lines = [
        (r["figure"], r["text"][0], r["text"][1], r["target"],
         {True: "yes", False: "NO", None: ""}[r["met"]])
        for r in rows
    ]  # fmt: skip
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    out = [
        "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    for line in lines:
        out.append("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)))
    for r in rows:
        del r["text"]
    return "\n".join(out), rows


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "nproc": int(nproc or os.cpu_count() or 0),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_naive"]:
        naive_worker(argv[1], int(argv[2]), float(argv[3]))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short run (about 2 minutes)")
    parser.add_argument("--runs", type=int, help="runs to take medians over (default 3; quick 1)")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, help="run only these scenarios")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument("--workdir", type=Path, help="where state files go (default: a temp dir)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    runs = args.runs or (1 if args.quick else 3)
    only = set(args.only or SCENARIOS)
    root = Path(tempfile.mkdtemp(prefix="notifier-bench-", dir=args.workdir))
    command = "python -m bench " + " ".join(argv)
    started = time.monotonic()
    log = _print_now
    log(f"{command.strip()}: {runs} run(s), state files in {root}")
    results: list[dict[str, Any]] = []
    try:
        for index in range(runs):
            log(f"run {index + 1}/{runs}")
            results.append(one_run(root, sizes, only, log))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    median = medians(results)
    text, rows = table(median)
    elapsed = time.monotonic() - started
    print()
    print(text)
    print(f"\nmedians of {runs} run(s); {elapsed:.0f}s in all")
    document = {
        "command": command.strip(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "quick": args.quick,
        "sizes": sizes.__dict__,
        "elapsed_s": elapsed,
        "table": rows,
        "median": median,
        "runs": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


def _print_now(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
