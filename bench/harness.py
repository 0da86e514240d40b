"""What every scenario shares: the processes, seeding, measuring windows, sizes.

Every scenario starts a fresh Datasaur simulator in its own process
(``python -m notifier simulate``) so that its CPU is not the daemon's, runs the daemon as
``python -m notifier -c <config> run`` and reads the daemon's CPU time (utime + stime) and
memory from ``/proc/<pid>``. Webhook receivers run as threads of this process.

Large watch lists are written before the daemon starts, the way ``datasaur-notifier
watch`` writes them (``source = 'cli'``, through the store's own upsert), but all in one
transaction; jobs polled "in steady state" get their ``next_poll_at`` spread over one
interval, as a daemon that has been running for a while has them.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from notifier.config import JobSpec, PollingSettings
from notifier.poller import Observation, decide
from notifier.standins.receiver import ReceivedWebhook, WebhookReceiver
from notifier.store import SqliteStore

PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


@dataclass(frozen=True)
class Sizes:
    """How big and how long each scenario is (full or ``--quick``)."""

    throughput_jobs: int = 5_000
    throughput_seconds: float = 8.0
    # Several daemons: more jobs than one daemon can poll (each is due twice a second),
    # so that the demand is not the ceiling.
    cluster_jobs: int = 20_000
    cadence_seconds: float = 30.0
    footprint_jobs: tuple[int, ...] = (1_000, 10_000, 100_000)
    footprint_settle: float = 6.0
    latency_jobs: int = 1_000
    delivery_jobs: int = 2_000
    predictive_jobs: int = 1_000
    predictive_durations: tuple[float, float] = (20.0, 60.0)
    feed_events: int = 5_000
    feed_samples: int = 60
    digest_events: int = 10_000


FULL = Sizes()
QUICK = Sizes(
    throughput_jobs=2_000,
    throughput_seconds=4.0,
    cluster_jobs=8_000,
    cadence_seconds=10.0,
    footprint_jobs=(1_000, 10_000, 100_000),
    footprint_settle=4.0,
    latency_jobs=1_000,
    delivery_jobs=600,
    predictive_jobs=1_000,
    predictive_durations=(10.0, 30.0),
    feed_events=2_000,
    feed_samples=20,
    digest_events=1_000,
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

    def workload(self, **spec: Any) -> list[dict[str, Any]]:
        """Start seeded jobs that progress over time (``POST /_sim/workload``)."""
        answer = self.session.post(self.url + "/_sim/workload", json=spec, timeout=120)
        answer.raise_for_status()
        return list(answer.json()["jobs"])

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

    def __init__(
        self,
        workdir: Path,
        config: dict[str, Any],
        module: str = "notifier",
        tree: Path | None = None,
    ) -> None:
        """``module``: what ``python -m`` runs (a bench variant of the daemon, say);
        ``tree``: a directory holding another ``notifier`` package to run instead (an
        older commit's, for an A/B in one run: see :mod:`bench.scenarios.pg_path`)."""
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
            [PYTHON, "-m", module, "-c", str(self.config_path), "run"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "NOTIFY_SOCKET": self._notify_name},
            cwd=tree,  # ``python -m`` imports from the working directory first
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
        jobs = store.claim_jobs(now + 1, len(ids))
        updates = [
            decide(
                job,
                Observation(job={"id": job.id, "status": "DELIVERED", "progress": 100}),
                now,
                polling,
                callbacks,
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


def footprint_template(root: Path, n: int) -> Path:
    """A state file of ``n`` watched jobs in steady state, seeded once per benchmark root.

    Scenarios copy it rather than use it (footprint, idle).
    """
    template = root / f"template-{n}.db"
    if not template.exists():
        seed_watch_list(template, job_ids(n), spread=30, interval=30)
    return template


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
