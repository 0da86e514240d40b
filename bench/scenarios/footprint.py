"""Start-up time, memory and state size with 1,000 to 100,000 watched jobs, defaults."""

from __future__ import annotations

import functools
import shutil
import time
from pathlib import Path
from typing import Any

from bench.harness import (
    Daemon,
    Simulator,
    Sizes,
    daemon_config,
    footprint_template,
    job_ids,
    state_sizes,
    workdir,
)
from bench.report import Row
from bench.scenarios import Step, scenario

ORDER = 40

# Its job-polls per request at 10k jobs are shown among throughput's rows, beside the
# saturated figure; its start-up rows close the table.
ROWS = [
    Row("RSS MiB, 1,000 watched jobs", "footprint_1000.rss_mib"),
    Row("RSS MiB, 10,000 watched jobs", "footprint_10000.rss_mib", None, "< 100 MiB",
        lambda m: m["footprint_10000.rss_mib"] < 100),
    Row("RSS MiB, 100,000 watched jobs", "footprint_100000.rss_mib"),
    Row("Peak RSS MiB, 100,000 watched jobs", "footprint_100000.hwm_mib"),
    Row("State file MiB, 1,000 jobs", "footprint_1000.state_mib", fmt="{:.2f}"),
    Row("State file MiB, 10,000 jobs", "footprint_10000.state_mib", fmt="{:.2f}"),
    Row("State file MiB, 100,000 jobs", "footprint_100000.state_mib", fmt="{:.2f}"),
    Row("Start-up s to 'running:', 1,000 jobs", "footprint_1000.running_s", fmt="{:.2f}",
        last=True),
    Row("Start-up s to 'running:', 100,000 jobs", "footprint_100000.running_s", fmt="{:.2f}",
        last=True),
    Row("Start-up s to READY, 100,000 jobs", "footprint_100000.ready_s", fmt="{:.2f}",
        last=True),
]  # fmt: skip


def footprint(root: Path, sizes: Sizes, n: int) -> dict[str, Any]:
    """Start-up time, memory and state size with ``n`` watched jobs, default settings."""
    template = footprint_template(root, n)
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


@scenario("footprint")
def run(root: Path, sizes: Sizes, step: Step) -> None:
    for n in sizes.footprint_jobs:
        step(f"footprint_{n}", functools.partial(footprint, root, sizes, n))
