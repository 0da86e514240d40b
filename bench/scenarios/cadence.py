"""10,000 jobs on a 30 s cadence: the daemon's CPU and memory in steady state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.harness import (
    Daemon,
    Simulator,
    Sizes,
    daemon_config,
    job_ids,
    measure,
    seed_watch_list,
    workdir,
)
from bench.report import Row
from bench.scenarios import Step, scenario

ORDER = 30

ROWS = [
    Row("10k jobs, 30 s cadence: CPU % of one core", "cadence_10k.cpu_percent", None, "< 5 %",
        lambda m: m["cadence_10k.cpu_percent"] < 5, "{:.2f}"),
    Row("10k jobs, 30 s cadence: RSS MiB", "cadence_10k.rss_mib", None, "< 100 MiB",
        lambda m: m["cadence_10k.rss_mib"] < 100),
]  # fmt: skip


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


@scenario("cadence")
def run(root: Path, sizes: Sizes, step: Step) -> None:
    step("cadence_10k", lambda: cadence_10k(root, sizes))
