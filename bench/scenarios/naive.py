"""The naive poller: the loop a user would write, over the same jobs, as fast as it goes.

One ``getJob`` per job, sequentially, over a pooled ``requests.Session``. It runs in a
subprocess of its own (``python -m bench _naive URL COUNT SECONDS``, which calls
:func:`naive_worker`) and measures its CPU with ``time.process_time``. Its figures are
shown beside the daemon's by :mod:`bench.scenarios.throughput`.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from bench.harness import PYTHON, Simulator, Sizes, job_ids
from bench.scenarios import Step, scenario

ORDER = 20

# The naive poller's query: the getJob example from Datasaur's documentation, with the
# same fields the daemon asks for.
NAIVE_QUERY = (
    "query GetJob($jobId: String!) { result: getJob(jobId: $jobId) "
    "{ id status progress errors { id stack args } resultId createdAt updatedAt result } }"
)


def naive_throughput(root: Path, sizes: Sizes) -> dict[str, Any]:
    """The naive poller over the same jobs, as fast as it goes, in its own process."""
    ids = job_ids(sizes.throughput_jobs)
    with Simulator() as sim:
        sim.set_jobs(ids, "IN_PROGRESS")
        command = [
            PYTHON, "-m", "bench", "_naive", sim.graphql_url, str(len(ids)),
            str(sizes.throughput_seconds),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300)
        stats = sim.stats()
    result: dict[str, Any] = json.loads(done.stdout)
    polls = result["polls"]
    result.update(
        {
            "jobs": len(ids),
            "polls_per_s": polls / result["wall_s"],
            "requests_per_1000_polls": 1000 * stats["graphql_requests"] / max(polls, 1),
            "cpu_ms_per_1000_polls": 1000 * 1000 * result["cpu_s"] / max(polls, 1),
        }
    )
    return result


def naive_worker(graphql_url: str, count: int, seconds: float) -> None:
    """The loop a user would write: getJob for each job in turn, over one Session."""
    ids = job_ids(count)
    session = requests.Session()
    token_url = graphql_url.rsplit("/", 1)[0] + "/api/oauth/token"
    form = {"client_id": "naive", "client_secret": "naive", "grant_type": "client_credentials"}
    token = session.post(token_url, data=form, timeout=10).json()["access_token"]
    session.headers["Authorization"] = f"Bearer {token}"
    seen: dict[str, tuple[Any, Any]] = {}
    polls = 0
    cpu0, t0 = time.process_time(), time.monotonic()
    while time.monotonic() - t0 < seconds:
        for job_id in ids:
            body = {"operationName": "GetJob", "query": NAIVE_QUERY, "variables": {"jobId": job_id}}
            job = session.post(graphql_url, json=body, timeout=10).json()["data"]["result"]
            state = (job["status"], job["progress"])
            if seen.get(job_id) != state:
                seen[job_id] = state
            polls += 1
            if polls % 100 == 0 and time.monotonic() - t0 >= seconds:
                break
    cpu_s, wall_s = time.process_time() - cpu0, time.monotonic() - t0
    print(json.dumps({"polls": polls, "cpu_s": cpu_s, "wall_s": wall_s}))


@scenario("naive")
def run(root: Path, sizes: Sizes, step: Step) -> None:
    step("naive", lambda: naive_throughput(root, sizes))
