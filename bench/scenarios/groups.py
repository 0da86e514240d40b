"""Groups and labels on the poll path (issue 21): saturated polling of jobs whose
progress moves (so every poll has an estimate), each job in a group of 10 with a
deadline and two labels, against the same jobs alone, in one run: client CPU per 1,000
job-polls. The grouped variant pays the at-risk probe of every write (the groups of the
polled jobs that have a deadline and no warning yet, and their members' latest estimate).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.harness import Daemon, Simulator, Sizes, daemon_config, measure, workdir
from bench.report import Row
from bench.scenarios import Step, scenario
from notifier.config import JobSpec
from notifier.groups import GroupSpec
from notifier.store import SqliteStore

ORDER = 16
GROUP_SIZE = 10

ROWS = [
    Row("Client CPU ms per 1,000 job-polls, every job in a group of 10 with labels",
        "groups.grouped.cpu_ms_per_1000_polls", None, "within 10 % of without",
        lambda m: m["groups.grouped.cpu_ms_per_1000_polls"]
        <= 1.1 * m["groups.plain.cpu_ms_per_1000_polls"]),
    Row("  same jobs without group or labels (same run)", "groups.plain.cpu_ms_per_1000_polls",
        None, "", None),
]  # fmt: skip


def seed(state_path: Path, ids: list[str], grouped: bool) -> None:
    """Watch ``ids`` (next polls spread over half a second), in groups of 10 with a
    deadline a day away and two labels when ``grouped``."""
    now = time.time()
    store = SqliteStore(state_path)
    try:
        if grouped:
            names = sorted({f"run-{i // GROUP_SIZE:05d}" for i in range(len(ids))})
            store.sync_config_groups([GroupSpec(id=n, deadline="1d") for n in names], now)
        with store._transaction() as conn:
            for index, job_id in enumerate(ids):
                fields: dict[str, Any] = {}
                if grouped:
                    fields = {"group": f"run-{index // GROUP_SIZE:05d}",
                              "labels": {"team": "ml", "stage": "export"}}  # fmt: skip
                store._upsert(conn, JobSpec(id=job_id, **fields), "cli", now)
            conn.execute(
                "UPDATE jobs SET next_poll_at = ? + (abs(random()) % 500) / 1000.0,"
                " poll_interval = 0.5",
                (now,),
            )
    finally:
        store.close()


def saturated(root: Path, sizes: Sizes, grouped: bool) -> dict[str, Any]:
    """The daemon polling every job as fast as the cap allows."""
    name = "grouped" if grouped else "plain"
    with workdir(root, f"groups-{name}") as work, Simulator() as sim:
        jobs = sim.workload(count=sizes.throughput_jobs // 2, seed=21, duration=[120, 240],
                            kinds=["linear"], prefix="Run:")  # fmt: skip
        ids = [job["id"] for job in jobs]
        state = work / "state.db"
        seed(state, ids, grouped)
        config = daemon_config(sim, state, interval=0.5, max_interval=0.5, rate=1000)
        with Daemon(work, config) as daemon:
            window = measure(sim, daemon, warmup=2.0, seconds=sizes.throughput_seconds)
            errors = daemon.errors()
    return {
        "jobs": len(ids),
        "polls": window.polls,
        "polls_per_s": window.polls / window.seconds,
        "cpu_ms_per_1000_polls": 1000 * 1000 * window.cpu_s / max(window.polls, 1),
        "errors": errors[:5],
    }


@scenario("groups")
def run(root: Path, sizes: Sizes, step: Step) -> None:
    step("groups.plain", lambda: saturated(root, sizes, False))
    step("groups.grouped", lambda: saturated(root, sizes, True))
