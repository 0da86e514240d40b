"""Groups and labels on the poll path (issue 21): saturated polling of jobs whose
progress moves (so every poll has an estimate), each job in a group of 10 with a
deadline and two labels, against the same jobs alone, in one run: client CPU per 1,000
job-polls. The grouped variant pays the at-risk probe of every write (the groups of the
polled jobs that have a deadline and no warning yet, and their members' latest estimate).
Both stores: SQLite, then one daemon on PostgreSQL (issue 25's third target). Windows
alternate plain, grouped, plain, grouped (:data:`ROUNDS` pairs), and the target is read
on the median of the pairs' ratios, so that the machine's drift hits both variants.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from bench.harness import Daemon, Simulator, Sizes, daemon_config, measure, workdir
from bench.report import Row
from bench.scenarios import Step, scenario
from bench.scenarios.cluster import postgres
from notifier.config import JobSpec
from notifier.groups import GroupSpec
from notifier.store import SqliteStore
from notifier.store.postgres import PostgresStore
from notifier.store.postgres.connection import NOW

ORDER = 16
GROUP_SIZE = 10
ROUNDS = 2

ROWS = [
    Row("Client CPU ms per 1,000 job-polls, every job in a group of 10 with labels",
        "groups.grouped.cpu_ms_per_1000_polls", None, "", None),
    Row("  same jobs without group or labels (same run)", "groups.plain.cpu_ms_per_1000_polls",
        None, "", None),
    Row("  grouped / plain (median of the pairs' ratios)", "groups.ratio", None,
        "<= 1.10 (within 10 %)", lambda m: m["groups.ratio"] <= 1.1, "{:.3f}"),
    Row("PostgreSQL: client CPU ms per 1,000 job-polls, grouped and labelled",
        "groups.pg_grouped.cpu_ms_per_1000_polls", None, "", None),
    Row("  same jobs without group or labels (same run)",
        "groups.pg_plain.cpu_ms_per_1000_polls", None, "", None),
    Row("  grouped / plain (median of the pairs' ratios)", "groups.pg_ratio", None,
        "<= 1.10 (within 10 %)", lambda m: m["groups.pg_ratio"] <= 1.1, "{:.3f}"),
]  # fmt: skip


def specs(ids: list[str], grouped: bool) -> tuple[list[GroupSpec], list[JobSpec]]:
    """``ids`` as jobs, in groups of 10 with a deadline a day away and two labels when
    ``grouped``."""
    if not grouped:
        return [], [JobSpec(id=job_id) for job_id in ids]
    group = [f"run-{index // GROUP_SIZE:05d}" for index in range(len(ids))]
    labels = {"team": "ml", "stage": "export"}
    jobs = [
        JobSpec(id=job_id, group=g, labels=labels) for job_id, g in zip(ids, group, strict=True)
    ]
    return [GroupSpec(id=name, deadline="1d") for name in sorted(set(group))], jobs


def seed(state_path: Path, ids: list[str], grouped: bool) -> None:
    """Watch ``ids`` (next polls spread over half a second), as :func:`specs` says."""
    now = time.time()
    groups, jobs = specs(ids, grouped)
    store = SqliteStore(state_path)
    try:
        store.sync_config_groups(groups, now)
        with store._transaction() as conn:
            for job in jobs:
                store._upsert(conn, job, "cli", now)
            conn.execute(
                "UPDATE jobs SET next_poll_at = ? + (abs(random()) % 500) / 1000.0,"
                " poll_interval = 0.5",
                (now,),
            )
    finally:
        store.close()


def seed_postgres(url: str, ids: list[str], grouped: bool) -> None:
    """:func:`seed` on PostgreSQL."""
    now = time.time()
    groups, jobs = specs(ids, grouped)
    store = PostgresStore(url)
    try:
        store.sync_config_groups(groups, now)
        with store._transaction() as conn:
            store._upsert(conn, jobs, "cli", now)
            conn.execute(
                f"UPDATE jobs SET next_poll_at = {NOW} + random() / 2, poll_interval = 0.5"
            )
    finally:
        store.close()


def saturated(
    root: Path, sizes: Sizes, grouped: bool, server: Any = None, index: int = 0
) -> dict[str, Any]:
    """The daemon polling every job as fast as the cap allows (on ``server``'s
    PostgreSQL when given, else SQLite); ``index`` numbers its database."""
    name = ("pg_" if server else "") + ("grouped" if grouped else "plain") + str(index)
    with workdir(root, f"groups-{name}") as work, Simulator() as sim:
        jobs = sim.workload(count=sizes.throughput_jobs // 2, seed=21, duration=[120, 240],
                            kinds=["linear"], prefix="Run:")  # fmt: skip
        ids = [job["id"] for job in jobs]
        state = work / "state.db"
        config = daemon_config(sim, state, interval=0.5, max_interval=0.5, rate=1000)
        if server is None:
            seed(state, ids, grouped)
        else:
            del config["state_path"]
            config["state_url"] = server.create_database(name)
            seed_postgres(config["state_url"], ids, grouped)
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


def pairs(root: Path, sizes: Sizes, server: Any = None) -> dict[str, Any]:
    """:data:`ROUNDS` pairs of windows, plain then grouped: medians per variant and of the
    pairs' ratios (``pg_``-prefixed on PostgreSQL)."""
    prefix = "pg_" if server else ""
    windows: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    for index in range(ROUNDS):
        for grouped in (False, True):
            windows[grouped].append(saturated(root, sizes, grouped, server, index))
    result: dict[str, Any] = {
        f"{prefix}{'grouped' if grouped else 'plain'}": {
            key: statistics.median(w[key] for w in ws) for key in ws[0] if key != "errors"
        }
        for grouped, ws in windows.items()
    }
    ratios = [g["cpu_ms_per_1000_polls"] / p["cpu_ms_per_1000_polls"]
              for p, g in zip(windows[False], windows[True], strict=True)]  # fmt: skip
    result[f"{prefix}ratio"] = statistics.median(ratios)
    result[f"{prefix}errors"] = [e for ws in windows.values() for w in ws for e in w["errors"]][:5]
    return result


@scenario("groups")
def run(root: Path, sizes: Sizes, step: Step) -> None:
    def both() -> dict[str, Any]:
        with postgres() as server:
            return {**pairs(root, sizes), **pairs(root, sizes, server)}

    step("groups", both)
