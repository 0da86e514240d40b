"""The PostgreSQL poll path (issue 25): one daemon, batch 50, the tree as it was against
the tree as it is, alternated in one run on one server and one simulator.

Each window is the ``cluster`` scenario's one-daemon measure (every job always due, cap
lifted) on a fresh database: client CPU and the server's CPU per 1,000 job-polls. The
base tree is ``git archive`` of ``BENCH_PG_BASE`` (default :data:`BASE`, main before
issue 25) into the run's directory, and its daemon runs with that directory as its
working directory, so ``python -m notifier`` imports the old package; the new tree is
copied there too when the run starts (edits made meanwhile do not leak in). Windows alternate
base, new, base, new, ... (:data:`ROUNDS` pairs), so the machine's drift hits both.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.harness import PYTHON, Daemon, Simulator, Sizes, daemon_config, job_ids, workdir
from bench.report import Row
from bench.scenarios import Step, scenario
from bench.scenarios.cluster import postgres, seed_postgres, server_cpu

ORDER = 85
BASE = "332a266"  # main before issue 25's changes
ROUNDS = 3
REPO = Path(__file__).resolve().parents[2]

ROWS = [
    Row("PG poll path, base tree: client CPU ms / 1,000 job-polls", "pg_path.base.cpu_ms",
        "naive.cpu_ms_per_1000_polls"),
    Row("  new tree", "pg_path.new.cpu_ms", "naive.cpu_ms_per_1000_polls"),
    Row("  CPU ratio naive / daemon, base tree", "pg_path.base_ratio", None, "", None),
    Row("  CPU ratio naive / daemon, new tree", "pg_path.new_ratio", None, ">= 30",
        lambda m: m["pg_path.new_ratio"] >= 30),
    Row("PG poll path, server CPU ms / 1,000 job-polls, base tree", "pg_path.base.db_cpu_ms"),
    Row("  new tree", "pg_path.new.db_cpu_ms"),
    Row("  server CPU new / base (median of the pairs' ratios)", "pg_path.db_ratio", None,
        "<= 0.5", lambda m: m["pg_path.db_ratio"] <= 0.5, "{:.2f}"),
    Row("  client CPU new / base (median of the pairs' ratios)", "pg_path.cpu_ratio", None,
        "", None, "{:.2f}"),
    Row("PG poll path, job-polls/s, base / new", "pg_path.base.polls_per_s",
        "pg_path.new.polls_per_s", "", None, "{:.0f}"),
]  # fmt: skip


def base_tree(root: Path) -> Path:
    """The ``notifier`` package of ``BENCH_PG_BASE`` (git archive), under ``root``."""
    rev = os.environ.get("BENCH_PG_BASE", BASE)
    tree = root / f"base-{rev}"
    if not tree.exists():
        tree.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", rev, "notifier"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def new_tree(root: Path) -> Path:
    """A copy of this tree's ``notifier`` package, under ``root``."""
    tree = root / "new-tree"
    if not tree.exists():
        shutil.copytree(REPO / "notifier", tree / "notifier",
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    return tree


def one_window(
    work: Path, server: Any, sim: Simulator, ids: list[str], seconds: float, tree: Path, name: str
) -> dict[str, Any]:
    """One daemon of ``tree`` on a fresh database, saturated."""
    url = server.create_database(name)
    schema = f"from notifier.store.postgres import PostgresStore as S; S({url!r}).close()"
    subprocess.run([PYTHON, "-c", schema], cwd=tree, check=True)  # the tree's own schema
    seed_postgres(url, ids, schema=False)
    config = daemon_config(sim, work / "unused.db", interval=0.5, max_interval=0.5, rate=1000)
    del config["state_path"]
    config["state_url"] = url
    config["cluster"] = {"instance_name": name}
    folder = work / name
    folder.mkdir()
    with Daemon(folder, config, tree=tree) as daemon:
        daemon.wait_running()
        time.sleep(2.0)
        before, t0 = sim.stats(), time.monotonic()
        cpu0, db0 = daemon.cpu(), server_cpu(server)
        time.sleep(seconds)
        after, t1 = sim.stats(), time.monotonic()
        cpu1, db1 = daemon.cpu(), server_cpu(server)
        errors = daemon.errors()
    polls = after["job_polls"] - before["job_polls"]
    return {
        "polls_per_s": polls / (t1 - t0),
        "cpu_ms": 1e6 * (cpu1 - cpu0) / max(polls, 1),
        "db_cpu_ms": 1e6 * (db1 - db0) / max(polls, 1),
        "requests_per_1000_polls": 1000
        * (after["graphql_requests"] - before["graphql_requests"])
        / max(polls, 1),
        "errors": errors[:3],
    }


def ab(root: Path, sizes: Sizes) -> dict[str, Any]:
    """:data:`ROUNDS` pairs of windows, base then new; medians per tree and of the ratios."""
    ids = job_ids(sizes.throughput_jobs)
    old, new = base_tree(root), new_tree(root)
    windows: dict[str, list[dict[str, Any]]] = {"base": [], "new": []}
    with workdir(root, "pg_path") as work, postgres() as server, Simulator() as sim:
        sim.set_jobs(ids, "IN_PROGRESS")
        for index in range(ROUNDS):
            for variant, tree in (("base", old), ("new", new)):
                window = one_window(work, server, sim, ids, sizes.throughput_seconds, tree,
                                    f"{variant}{index}")  # fmt: skip
                windows[variant].append(window)
    result: dict[str, Any] = {
        variant: {key: statistics.median(w[key] for w in ws) for key in ws[0] if key != "errors"}
        for variant, ws in windows.items()
    }
    pairs = list(zip(windows["base"], windows["new"], strict=True))
    result["db_ratio"] = statistics.median(n["db_cpu_ms"] / b["db_cpu_ms"] for b, n in pairs)
    result["cpu_ratio"] = statistics.median(n["cpu_ms"] / b["cpu_ms"] for b, n in pairs)
    result["windows"] = windows
    result["base_rev"] = os.environ.get("BENCH_PG_BASE", BASE)
    return result


@scenario("pg_path")
def run(root: Path, sizes: Sizes, step: Step) -> None:
    step("pg_path", lambda: ab(root, sizes))


def derive(run: dict[str, Any]) -> None:
    """The naive poller's CPU per 1,000 job-polls over each tree's."""
    if "pg_path" in run and "naive" in run:
        naive = run["naive"]["cpu_ms_per_1000_polls"]
        for variant in ("base", "new"):
            run["pg_path"][f"{variant}_ratio"] = naive / run["pg_path"][variant]["cpu_ms"]
