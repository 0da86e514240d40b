"""Saturated polling: every job always due, the rate cap lifted (batch 50, and 200).

Its rows put the daemon beside the naive poller (:mod:`bench.scenarios.naive`), and
:func:`derive` computes the CPU ratio naive / daemon when both ran.
"""

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

ORDER = 10

ROWS = [
    Row("API requests per 1,000 job-polls (saturated)", "throughput.requests_per_1000_polls",
        "naive.requests_per_1000_polls", "<= 40 (>= 25 polls/request)",
        lambda m: m["throughput.requests_per_1000_polls"] <= 40),
    # From the footprint scenario: the batching at default settings, beside the saturated one.
    Row("Job-polls per request, default settings (10k jobs)", "footprint_10000.polls_per_request",
        None, ">= 25", lambda m: m["footprint_10000.polls_per_request"] >= 25),
    Row("Largest batch seen by the API", "throughput.max_batch_size", None,
        "<= batch_size (50)", lambda m: m["throughput.max_batch_size"] <= 50, "{:.0f}"),
    Row("Job-polls per second sustained (cap lifted)", "throughput.polls_per_s",
        "naive.polls_per_s", "", None, "{:.0f}"),
    Row("Client CPU ms per 1,000 job-polls", "throughput.cpu_ms_per_1000_polls",
        "naive.cpu_ms_per_1000_polls", "naive/daemon >= 30x", None),
    Row("CPU ratio naive / daemon", "cpu_ratio_naive_over_daemon", None, ">= 30",
        lambda m: m["cpu_ratio_naive_over_daemon"] >= 30),
    Row("  same, batch_size 200 (not the default)", "throughput_batch200.cpu_ms_per_1000_polls",
        None, "", None),
    Row("  CPU ratio naive / daemon at batch_size 200", "cpu_ratio_naive_over_daemon_batch200",
        None, "(>= 30)", None),
    Row("  same, batch 50, each request's rows scattered over the table",
        "throughput_scattered.cpu_ms_per_1000_polls", None, "", None),
]  # fmt: skip


def polling_throughput(
    root: Path, sizes: Sizes, batch_size: int | None = None, scattered: bool = False
) -> dict[str, Any]:
    """Saturated polling: every job always due, rate cap lifted to 1000/s.

    The jobs are registered together, so a request's jobs are neighbouring rows, and
    they stay together (a request's jobs are rescheduled together). ``scattered`` seeds
    the due times at random instead: each request then asks about jobs whose rows are
    spread over the table, as when jobs were registered at different times.
    """
    ids = job_ids(sizes.throughput_jobs)
    with workdir(root, "throughput") as work, Simulator() as sim:
        sim.set_jobs(ids, "IN_PROGRESS")
        state = work / "state.db"
        seed_watch_list(state, ids, spread=0.5 if scattered else None, interval=0.5)
        config = daemon_config(sim, state, interval=0.5, max_interval=0.5, rate=1000)
        if batch_size is not None:
            config["datasaur"]["batch_size"] = batch_size
        with Daemon(work, config) as daemon:
            window = measure(sim, daemon, warmup=2.0, seconds=sizes.throughput_seconds)
            errors = daemon.errors()
    return {
        "jobs": len(ids),
        "polls": window.polls,
        "requests": window.requests,
        "polls_per_s": window.polls / window.seconds,
        "requests_per_1000_polls": 1000 * window.requests / max(window.polls, 1),
        "cpu_ms_per_1000_polls": 1000 * 1000 * window.cpu_s / max(window.polls, 1),
        "cpu_percent": window.cpu_percent,
        "max_batch_size": window.max_batch_size,
        "errors": errors[:5],
    }


@scenario("throughput")
def run(root: Path, sizes: Sizes, step: Step) -> None:
    step("throughput", lambda: polling_throughput(root, sizes))
    step("throughput_batch200", lambda: polling_throughput(root, sizes, batch_size=200))
    step("throughput_scattered", lambda: polling_throughput(root, sizes, scattered=True))


def derive(run: dict[str, Any]) -> None:
    """The naive poller's CPU per 1,000 job-polls over the daemon's, at batch 50 and 200."""
    if "throughput" in run and "naive" in run:
        daemon_cpu = run["throughput"]["cpu_ms_per_1000_polls"]
        run["cpu_ratio_naive_over_daemon"] = run["naive"]["cpu_ms_per_1000_polls"] / daemon_cpu
        batch200 = run["throughput_batch200"]["cpu_ms_per_1000_polls"]
        run["cpu_ratio_naive_over_daemon_batch200"] = (
            run["naive"]["cpu_ms_per_1000_polls"] / batch200
        )
