"""``result`` off the poll path (issue 20): saturated polling of jobs whose ``result``
is a few KiB, by the daemon as it was (every poll selects ``result``) and as it is,
in one run: bytes per getJobs answer and client CPU per 1,000 job-polls."""

from __future__ import annotations

import json
import time
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
from notifier.config import DatasaurSettings
from notifier.datasaur import DatasaurClient
from notifier.datasaur_answers import SELECTION_TIERS

ORDER = 15
BATCH = 50
VARIANTS = {"before": "bench.selecting_result", "after": "notifier"}

ROWS = [
    Row("getJobs answer, 50 jobs with a ~4 KiB result: KiB, result polled (before)",
        "result_path.before.kib_per_answer", None, "", None),
    Row("  same, result fetched only when a job ends (after)",
        "result_path.after.kib_per_answer", None, "", None),
    Row("Client CPU ms per 1,000 job-polls of those jobs (the daemon, saturated), before",
        "result_path.before.cpu_ms_per_1000_polls", None, "", None),
    Row("  same, after", "result_path.after.cpu_ms_per_1000_polls", None, "", None),
    Row("  the getJobs exchange alone (request, answer, JSON, matching), before",
        "result_path.before.exchange_cpu_ms_per_1000_polls", None, "", None),
    Row("  same, after", "result_path.after.exchange_cpu_ms_per_1000_polls", None, "", None),
    Row("Job-polls per second sustained against the stand-in, before",
        "result_path.before.polls_per_s", None, "", None, "{:.0f}"),
    Row("  same, after", "result_path.after.polls_per_s", None, "", None, "{:.0f}"),
]  # fmt: skip


def realistic_result(index: int) -> dict[str, Any]:
    """About 4 KiB: what an auto-labeling job's ``result`` may hold."""
    labels = [
        {"id": f"label-{index}-{row}", "text": f"token {row} of document {index}",
         "label": ("PERSON", "ORG", "DATE", "GPE")[row % 4], "score": 0.91, "start": row * 7}
        for row in range(32)
    ]  # fmt: skip
    return {"documentId": f"doc-{index:06d}", "labels": labels, "exportedFileUrl": None}


def exchange(sim: Simulator, ids: list[str], fields: str, rounds: int = 40) -> dict[str, float]:
    """One getJobs answer's size for ``ids`` with ``fields``, and the client's CPU (this
    thread: request, answer, JSON, matching) per 1,000 job-polls over ``rounds`` of them."""
    settings = DatasaurSettings(graphql_url=sim.graphql_url, client_id="b", client_secret="s")
    client = DatasaurClient(settings)
    sizes: list[int] = []
    post = client.transport.post

    def recording(body: bytes, headers: Any) -> Any:
        reply = post(body, headers)
        sizes.append(len(reply[2]))
        return reply

    client.transport.post = recording  # type: ignore[method-assign]
    client.tiers = (fields,)
    client.get_jobs(ids)  # the token, the connection
    started = time.thread_time()
    for _ in range(rounds):
        client.get_jobs(ids)
    cpu = time.thread_time() - started
    return {
        "kib_per_answer": sizes[-1] / 1024,
        "exchange_cpu_ms_per_1000_polls": 1000 * 1000 * cpu / (rounds * len(ids)),
    }


def saturated(root: Path, sizes: Sizes, variant: str) -> dict[str, Any]:
    """The daemon ``variant`` polling every job as fast as the cap allows."""
    ids = job_ids(sizes.throughput_jobs // 2)
    with workdir(root, f"result-{variant}") as work, Simulator() as sim:
        jobs = [
            {"id": job_id, "status": "IN_PROGRESS", "progress": 50, "result": realistic_result(i)}
            for i, job_id in enumerate(ids)
        ]
        sim.session.post(sim.url + "/_sim/jobs", json={"jobs": jobs}, timeout=120)
        fields = SELECTION_TIERS[0] + (" result" if variant == "before" else "")
        figures = exchange(sim, ids[:BATCH], fields)
        state = work / "state.db"
        seed_watch_list(state, ids, spread=0.5, interval=0.5)
        config = daemon_config(sim, state, interval=0.5, max_interval=0.5, rate=1000)
        with Daemon(work, config, module=VARIANTS[variant]) as daemon:
            window = measure(sim, daemon, warmup=2.0, seconds=sizes.throughput_seconds)
            errors = daemon.errors()
    return {
        "jobs": len(ids),
        "result_bytes": len(json.dumps(realistic_result(0))),
        **figures,
        "polls": window.polls,
        "polls_per_s": window.polls / window.seconds,
        "cpu_ms_per_1000_polls": 1000 * 1000 * window.cpu_s / max(window.polls, 1),
        "errors": errors[:5],
    }


@scenario("result_path")
def run(root: Path, sizes: Sizes, step: Step) -> None:
    step("result_path.before", lambda: saturated(root, sizes, "before"))
    step("result_path.after", lambda: saturated(root, sizes, "after"))
