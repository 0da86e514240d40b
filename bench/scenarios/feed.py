"""The event feed (issue 22): how fast a reader pages through the log, and how soon a
long-poll answers after a job turns DELIVERED.

One daemon with the API on a loopback port. Latency, first, with only the sampled jobs
watched (well within the rate cap): ``feed_samples`` times, a long-poll (``after`` the
head, ``type=job.delivered``) is held, then one job polled every second turns DELIVERED
at a random phase of its schedule; the figure runs from the stand-in's change to the
answer, so it includes the wait for the next poll (uniform over 0-1 s). Throughput:
``feed_events`` more jobs turn DELIVERED at once; once all their events are logged, a
reader pages through the whole log with ``limit=1000`` over one kept-alive connection,
three times (the median counts).
"""

from __future__ import annotations

import random
import socket
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import requests

from bench.harness import (
    Daemon,
    Simulator,
    Sizes,
    daemon_config,
    job_ids,
    percentile,
    seed_watch_list,
    workdir,
)
from bench.report import Row
from bench.scenarios import Step, scenario

ORDER = 75
TOKEN = "bench-feed-read-token-0123456789"
PAGE = 1000

ROWS = [
    Row("Feed read, events/s (pages of 1,000)", "feed.read_events_per_s", fmt="{:.0f}"),
    Row("DELIVERED -> long-poll answer p50 s (poll every 1 s)", "feed.longpoll_p50_s",
        fmt="{:.2f}"),
    Row("DELIVERED -> long-poll answer p99 s (poll every 1 s)", "feed.longpoll_p99_s",
        target="<= interval + 1 s = 2 s", check=lambda m: m["feed.longpoll_p99_s"] <= 2.0,
        fmt="{:.2f}"),
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Reader:
    """The feed over one kept-alive connection."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}/v1/events"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {TOKEN}"

    def page(self, **params: Any) -> dict[str, Any]:
        answer = self.session.get(self.base, params=params, timeout=60)
        answer.raise_for_status()
        return dict(answer.json())

    def read_all(self) -> int:
        """Every event from the start; how many."""
        cursor, count = 0, 0
        while events := (page := self.page(after=cursor, limit=PAGE))["events"]:
            count += len(events)
            cursor = page["next_cursor"]
        return count

    def head(self) -> int:
        return int(self.page(after="now")["next_cursor"])


def _read_rate(reader: Reader, expected: int) -> float:
    """Events per second over three full reads of the log (median)."""
    rates = []
    for _ in range(3):
        started = time.perf_counter()
        count = reader.read_all()
        rates.append(count / (time.perf_counter() - started))
        assert count >= expected, f"read {count} of {expected} events"
    return statistics.median(rates)


def _latency(sim: Simulator, reader: Reader, job_id: str) -> float:
    """Seconds from ``job_id``'s DELIVERED at the stand-in to a held long-poll's answer."""
    answered: list[float] = []
    after = reader.head()

    def hold() -> None:
        Reader(reader.port).page(after=after, wait="30s", type="job.delivered")
        answered.append(time.monotonic())

    waiter = threading.Thread(target=hold)
    waiter.start()
    time.sleep(0.2 + random.uniform(0, 1.0))  # held by now; at a random phase of the polls
    changed = time.monotonic()
    sim.set_jobs([job_id], "DELIVERED", 100)
    waiter.join(60)
    return answered[0] - changed if answered else float("inf")


def feed(root: Path, sizes: Sizes) -> dict[str, Any]:
    bulk = job_ids(sizes.feed_events)
    sampled = [f"ExportQueue:bench-latency-{n:04d}" for n in range(sizes.feed_samples)]
    port = _free_port()
    with workdir(root, "feed") as work, Simulator() as sim:
        sim.set_jobs(bulk + sampled, "IN_PROGRESS")
        state = work / "state.db"
        seed_watch_list(state, sampled, spread=1.0, interval=1.0)  # well within the rate cap
        config = daemon_config(sim, state, interval=1, max_interval=1, rate=50)
        config["api"] = {
            "listen": f"127.0.0.1:{port}",
            "tokens": [{"name": "bench", "token": TOKEN, "scope": "read"}],
        }
        with Daemon(work, config) as daemon:
            daemon.wait_running()
            reader = Reader(port)
            latencies = [_latency(sim, reader, job_id) for job_id in sampled]
            seed_watch_list(state, bulk, spread=1.0, interval=1.0)  # beside the running daemon
            sim.set_jobs(bulk, "DELIVERED", 100)
            deadline = time.monotonic() + 300
            while reader.head() < len(bulk) + len(sampled) and time.monotonic() < deadline:
                time.sleep(0.5)
            rate = _read_rate(reader, len(bulk) + len(sampled))
    return {
        "events": len(bulk) + len(sampled),
        "read_events_per_s": rate,
        "samples": len(latencies),
        "longpoll_p50_s": percentile(latencies, 0.50),
        "longpoll_p99_s": percentile(latencies, 0.99),
        "longpoll_max_s": max(latencies),
    }


@scenario("feed")
def run(root: Path, sizes: Sizes, step: Step) -> None:
    step("feed", lambda: feed(root, sizes))
