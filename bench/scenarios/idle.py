"""100,000 jobs that are all done: what an idle daemon costs."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from bench.harness import (
    Daemon,
    Simulator,
    Sizes,
    daemon_config,
    footprint_template,
    measure,
    workdir,
)
from bench.report import Row
from bench.scenarios import Step, scenario

ORDER = 50

ROWS = [
    Row("CPU % with 100,000 finished jobs (idle)", "idle_100k_done.cpu_percent", None,
        "~0 (finished jobs cost nothing)", lambda m: m["idle_100k_done.cpu_percent"] < 1,
        "{:.2f}"),
]  # fmt: skip


def idle_finished(root: Path, sizes: Sizes) -> dict[str, Any]:
    """100,000 jobs that are all done: what an idle daemon costs."""
    n = 100_000
    with workdir(root, "idle") as work, Simulator() as sim:
        state = work / "state.db"
        shutil.copyfile(footprint_template(root, n), state)
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


@scenario("idle")
def run(root: Path, sizes: Sizes, step: Step) -> None:
    step("idle_100k_done", lambda: idle_finished(root, sizes))
