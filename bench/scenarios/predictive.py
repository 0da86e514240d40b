"""Predictive polling against today's adaptive schedule, on one seeded workload.

The simulator runs ``predictive_jobs`` jobs that progress over time -- half linear with
noise, half in a few random steps -- with durations drawn from ``predictive_durations``
(the same seed for both runs, so both see the same jobs). The daemon watches them with
interval 1 s and max_interval 10 s, first with ``polling.predictive: false``, then with
the default ``true``. Figures: job-polls per job until every job was notified, and the
delay from "the job reached DELIVERED at the simulator" to "its webhook arrived".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.harness import (
    Arrivals,
    Daemon,
    Simulator,
    Sizes,
    daemon_config,
    percentile,
    seed_watch_list,
    workdir,
)
from bench.report import Row
from bench.scenarios import Step, scenario
from notifier.standins.receiver import WebhookReceiver

ORDER = 65
SEED = 2026
INTERVAL, MAX_INTERVAL = 1.0, 10.0

ROWS = [
    Row("Job-polls per job, progressing jobs: adaptive", "predictive_off.polls_per_job",
        fmt="{:.1f}"),
    Row("Job-polls per job, progressing jobs: predictive", "predictive_on.polls_per_job", None,
        "<= half of adaptive", lambda m: m["predictive_polls_ratio"] <= 0.5, "{:.1f}"),
    Row("Delay p50 s, end -> webhook: adaptive", "predictive_off.p50_s", fmt="{:.2f}"),
    Row("Delay p50 s, end -> webhook: predictive", "predictive_on.p50_s", None,
        "<= adaptive", lambda m: m["predictive_on.p50_s"] <= m["predictive_off.p50_s"] + 0.05,
        "{:.2f}"),
    Row("Delay p95 s, end -> webhook: adaptive", "predictive_off.p95_s", fmt="{:.2f}"),
    Row("Delay p95 s, end -> webhook: predictive", "predictive_on.p95_s", None,
        "<= adaptive", lambda m: m["predictive_on.p95_s"] <= m["predictive_off.p95_s"] + 0.05,
        "{:.2f}"),
    Row("Delay p99 s, end -> webhook: adaptive", "predictive_off.p99_s", fmt="{:.2f}"),
    Row("Delay p99 s, end -> webhook: predictive", "predictive_on.p99_s", fmt="{:.2f}"),
]  # fmt: skip


def progressing(root: Path, sizes: Sizes, predictive: bool) -> dict[str, Any]:
    """One run over the seeded workload with ``polling.predictive`` set as given."""
    low, high = sizes.predictive_durations
    name = "predictive" if predictive else "adaptive"
    with workdir(root, name) as work, Simulator() as sim, WebhookReceiver() as receiver:
        arrivals = Arrivals(receiver)
        jobs = sim.workload(
            count=sizes.predictive_jobs, seed=SEED, duration=[low, high], kinds=["linear", "step"]
        )
        ends = {job["id"]: job["finishes_at"] for job in jobs}
        state = work / "state.db"
        seed_watch_list(state, list(ends))
        config = daemon_config(
            sim,
            state,
            interval=INTERVAL,
            max_interval=MAX_INTERVAL,
            rate=100,
            callbacks={"hook": {"type": "webhook", "url": receiver.url + "/hook"}},
        )
        config["polling"]["predictive"] = predictive
        with Daemon(work, config) as daemon:
            daemon.wait_running()
            complete = arrivals.wait(len(ends), timeout=high + 60)
            stats = sim.stats()
            errors = daemon.errors()
    delays = [
        arrived - ends[job_id]
        for job_id, arrived in zip(arrivals.jobs, arrivals.times, strict=True)
        if job_id in ends
    ]
    return {
        "jobs": len(ends),
        "complete": complete,
        "polls_per_job": stats["job_polls"] / len(ends),
        "requests": stats["graphql_requests"],
        "p50_s": percentile(delays, 0.50),
        "p95_s": percentile(delays, 0.95),
        "p99_s": percentile(delays, 0.99),
        "errors": errors[:5],
    }


@scenario("predictive")
def run(root: Path, sizes: Sizes, step: Step) -> None:
    step("predictive_off", lambda: progressing(root, sizes, predictive=False))
    step("predictive_on", lambda: progressing(root, sizes, predictive=True))


def derive(run: dict[str, Any]) -> None:
    """The share of adaptive's job-polls that predictive needed."""
    if "predictive_on" in run and "predictive_off" in run:
        run["predictive_polls_ratio"] = (
            run["predictive_on"]["polls_per_job"] / run["predictive_off"]["polls_per_job"]
        )
