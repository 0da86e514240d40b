"""Notification latency: 1,000 jobs at max_interval finish at once, a slow callback beside.

The daemon polls with interval 1 s and max_interval 5 s at the default cap; the benchmark
waits until every job has backed off to max_interval, then a random 0-5 s, then sets all
jobs DELIVERED in one control request. Latency is measured at the fast receiver.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from bench.harness import (
    Arrivals,
    Daemon,
    Simulator,
    Sizes,
    daemon_config,
    job_ids,
    percentile,
    seed_watch_list,
    watching_below,
    workdir,
)
from bench.report import Row
from bench.scenarios import Step, scenario
from notifier.standins.receiver import WebhookReceiver

ORDER = 60

ROWS = [
    Row("Latency p50 s, 1,000 jobs finish at once", "latency.p50_s", None, "", None, "{:.2f}"),
    Row("Latency p99 s, 1,000 jobs finish at once", "latency.p99_s", None,
        "<= max_interval + 1 s = 6 s", lambda m: m["latency.p99_s"] <= 6.0, "{:.2f}"),
]  # fmt: skip


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


@scenario("latency")
def run(root: Path, sizes: Sizes, step: Step) -> None:
    step("latency", lambda: latency(root, sizes))
