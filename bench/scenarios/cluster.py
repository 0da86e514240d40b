"""Scenarios for the PostgreSQL store (issue 8): 1, 2 and 3 daemons against SQLite.

Each daemon is its own process polling the same watch list of ``cluster_jobs`` jobs
(each due twice a second: more than 3 daemons poll, so the demand is not the ceiling)
with the rate cap lifted; the figures are the job-polls per second at the simulator and
the daemons' summed client CPU per 1,000 job-polls. A throwaway PostgreSQL server
(tests/support/postgres.py) runs for the whole scenario; its own CPU is reported beside
the daemons', and the cores each part used (simulator, daemons, server) show where the
ceiling is.

``claim_cost`` times the claim statement (one claim's worth: ``requests_per_write``
requests of 50) on tables of 100,000 and 1,000,000 watched jobs and keeps the
``EXPLAIN`` plan, to show the partial index ``jobs_due`` is used.

Two scenarios: ``cluster`` (the daemons) and ``claims``. Both need PostgreSQL's binaries and
psycopg, imported when they run, so that the other scenarios run without them.
"""

from __future__ import annotations

import contextlib
import functools
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.harness import Daemon, Simulator, Sizes, daemon_config, job_ids, proc_cpu, workdir
from bench.report import Row
from bench.scenarios import Step, scenario
from notifier.store import Instance

if TYPE_CHECKING:
    from tests.support.postgres import PostgresServer

ORDER = 80

CLAIM_SAMPLES = 200

ROWS = [
    Row("PostgreSQL, 1 daemon: job-polls/s (cap lifted)", "cluster_1.polls_per_s", None, "",
        None, "{:.0f}"),
    Row("PostgreSQL, 2 daemons: job-polls/s", "cluster_2.polls_per_s", None, "", None,
        "{:.0f}"),
    Row("PostgreSQL, 3 daemons: job-polls/s", "cluster_3.polls_per_s", None, "", None,
        "{:.0f}"),
    Row("PostgreSQL, 1 daemon: client CPU ms / 1,000 job-polls", "cluster_1.cpu_ms_per_1000_polls",
        "naive.cpu_ms_per_1000_polls"),
    Row("  CPU ratio naive / daemon on PostgreSQL (1 daemon)", "cpu_ratio_naive_over_postgres",
        None, "(reported)", None),
    Row("PostgreSQL, 2 daemons: client CPU ms / 1,000 job-polls",
        "cluster_2.cpu_ms_per_1000_polls"),
    Row("PostgreSQL, 3 daemons: client CPU ms / 1,000 job-polls",
        "cluster_3.cpu_ms_per_1000_polls"),
    Row("PostgreSQL server CPU ms / 1,000 job-polls, 1 daemon",
        "cluster_1.db_cpu_ms_per_1000_polls"),
    Row("PostgreSQL, 3 daemons: cores used by the simulator", "cluster_3.sim_cores", None,
        "", None, "{:.2f}"),
    Row("  by the 3 daemons", "cluster_3.daemon_cores", None, "", None, "{:.2f}"),
    Row("  by PostgreSQL", "cluster_3.db_cores", None, "", None, "{:.2f}"),
    Row("Claim statement ms (median), 100,000 watched jobs", "claims_100k.claim_ms_median", None,
        "uses jobs_due", lambda m: m["claims_100k.uses_jobs_due_index"], "{:.2f}"),
    Row("Claim statement ms (median), 1,000,000 watched jobs", "claims_1m.claim_ms_median", None,
        "< 5, uses jobs_due", lambda m: m["claims_1m.uses_jobs_due_index"]
        and m["claims_1m.claim_ms_median"] < 5, "{:.2f}"),
]  # fmt: skip


@contextlib.contextmanager
def postgres() -> Iterator[PostgresServer]:
    from tests.support.postgres import PostgresServer

    server = PostgresServer.start_local()
    try:
        yield server
    finally:
        server.close()


def server_cpu(server: PostgresServer) -> float:
    """CPU seconds used so far by every process of the PostgreSQL server."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if str(server.data_dir) in (proc / "cmdline").read_bytes().decode(errors="replace"):
                total += proc_cpu(int(proc.name))
                total += _children_cpu(int(proc.name))
    return total


def _children_cpu(postmaster: int) -> float:
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[1]) == postmaster:
                total += proc_cpu(int(proc.name))
    return total


def seed_postgres(url: str, ids: list[str], schema: bool = True) -> None:
    """Watch ``ids`` (source 'cli'), all due now, in one statement; ``schema`` False:
    the caller created the schema (another tree's, say)."""
    import psycopg

    from notifier.store.postgres import PostgresStore

    if schema:
        PostgresStore(url).close()  # creates the schema
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO jobs (id, on_status, source, state, registered_at, next_poll_at)"
            " SELECT unnest(%s::text[]), '[\"DELIVERED\", \"FAILED\"]', 'cli', 'watching',"
            " extract(epoch from now()), extract(epoch from now())",
            (ids,),
        )
        conn.execute("ANALYZE jobs")


def cluster_throughput(root: Path, sizes: Sizes, instances: int) -> dict[str, Any]:
    """``instances`` daemons on one PostgreSQL database, every job always due."""
    ids = job_ids(sizes.cluster_jobs)
    with workdir(root, f"cluster{instances}") as work, postgres() as server, Simulator() as sim:
        sim.set_jobs(ids, "IN_PROGRESS")
        url = server.create_database("bench")
        seed_postgres(url, ids)
        daemons = []
        try:
            for index in range(instances):
                config = daemon_config(sim, work / "unused.db", interval=0.5, max_interval=0.5,
                                       rate=1000)  # fmt: skip
                del config["state_path"]
                config["state_url"] = url
                config["cluster"] = {"instance_name": f"bench-{index}"}
                folder = work / f"d{index}"
                folder.mkdir()
                daemons.append(Daemon(folder, config))
            for daemon in daemons:
                daemon.wait_running()
            time.sleep(2.0)
            before, t0 = sim.stats(), time.monotonic()
            cpu0, db0 = sum(d.cpu() for d in daemons), server_cpu(server)
            sim0 = proc_cpu(sim.process.pid)
            time.sleep(sizes.throughput_seconds)
            after, t1 = sim.stats(), time.monotonic()
            cpu1, db1 = sum(d.cpu() for d in daemons), server_cpu(server)
            sim1 = proc_cpu(sim.process.pid)
            errors = [line for d in daemons for line in d.errors()]
        finally:
            for daemon in daemons:
                daemon.stop()
    polls, seconds = after["job_polls"] - before["job_polls"], t1 - t0
    return {
        "instances": instances,
        "polls_per_s": polls / seconds,
        "cpu_ms_per_1000_polls": 1e6 * (cpu1 - cpu0) / max(polls, 1),
        "db_cpu_ms_per_1000_polls": 1e6 * (db1 - db0) / max(polls, 1),
        "sim_cores": (sim1 - sim0) / seconds,
        "daemon_cores": (cpu1 - cpu0) / seconds,
        "db_cores": (db1 - db0) / seconds,
        "requests_per_1000_polls": 1000
        * (after["graphql_requests"] - before["graphql_requests"])
        / max(polls, 1),
        "errors": errors[:5],
    }


def claim_cost(root: Path, sizes: Sizes, watched: int = 100_000) -> dict[str, Any]:
    """The claim statement at ``watched`` jobs: median time, and its plan."""
    import psycopg

    from notifier.store.postgres import PostgresStore
    from notifier.store.postgres.claims import _CLAIM_JOBS
    from notifier.store.postgres.connection import at

    ids = job_ids(watched)
    with postgres() as server:
        url = server.create_database("claims")
        seed_postgres(url, ids)
        with psycopg.connect(url, autocommit=True) as conn:
            # Most jobs not due (as in steady state): spread over 30 s from now.
            conn.execute("UPDATE jobs SET next_poll_at = next_poll_at + random() * 30")
            conn.execute("VACUUM ANALYZE jobs")
            limit = PostgresStore.requests_per_write * 50
            plan = conn.execute(
                "EXPLAIN " + _CLAIM_JOBS, (at(time.time()), limit, "bench", 30.0)
            ).fetchall()
        store = PostgresStore(url, Instance("bench", 30.0, "bench"))
        try:
            timings = []
            for _ in range(CLAIM_SAMPLES):
                started = time.perf_counter()
                jobs = store.claim_jobs(time.time(), limit)
                timings.append(time.perf_counter() - started)
                store.release_jobs(jobs)
        finally:
            store.close()
    text = "\n".join(row[0] for row in plan)
    return {
        "watched": watched,
        "claimed": limit,
        "claim_ms_median": 1000 * statistics.median(timings),
        "claim_ms_p95": 1000 * sorted(timings)[int(0.95 * len(timings))],
        "uses_jobs_due_index": "jobs_due" in text,
        "plan": text,
    }


@scenario("cluster")
def run_cluster(root: Path, sizes: Sizes, step: Step) -> None:
    for n in (1, 2, 3):
        step(f"cluster_{n}", functools.partial(cluster_throughput, root, sizes, n))


@scenario("claims")
def run_claims(root: Path, sizes: Sizes, step: Step) -> None:
    step("claims_100k", lambda: claim_cost(root, sizes))
    step("claims_1m", lambda: claim_cost(root, sizes, 1_000_000))


def derive(run: dict[str, Any]) -> None:
    """The naive poller's CPU per 1,000 job-polls over one daemon's on PostgreSQL."""
    if "cluster_1" in run and "naive" in run:
        daemon_cpu = run["cluster_1"]["cpu_ms_per_1000_polls"]
        run["cpu_ratio_naive_over_postgres"] = run["naive"]["cpu_ms_per_1000_polls"] / daemon_cpu
