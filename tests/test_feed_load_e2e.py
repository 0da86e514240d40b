"""The feed under load: 60 held waiters leave the API and notifications as fast as
without them; two daemons on PostgreSQL recording events at full speed while a reader
follows the feed, which returns every event exactly once, in cursor order."""

# ruff: noqa: F811  (pytest fixtures imported from other test modules, then requested)

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from notifier.standins.receiver import WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from tests.support.waiting import wait_until
from tests.test_api_e2e import READ_TOKEN, Client, api_section, free_port
from tests.test_cluster_e2e import (  # noqa: F401  (fixture)
    Cluster,
    cluster,
    in_progress,
    wait_all_polled,
)
from tests.test_feed_e2e import events, feed, register  # noqa: F401  (fixture)

WAITERS = 60
SAMPLES = 12


def timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def status(feed: Client, job_id: str) -> str | None:
    found: str | None = feed.call("GET", f"/v1/jobs/{job_id}").json()["job"]["status"]
    return found


def latencies(feed: Client, simulator: DatasaurSimulator, receiver: WebhookReceiver,
              tag: str) -> dict[str, float]:  # fmt: skip
    """Median seconds of /healthz, a registration and DELIVERED -> webhook."""
    health, registration, notification = [], [], []
    for n in range(SAMPLES):
        job_id = f"{tag}-{n}"
        simulator.set_job(job_id, "IN_PROGRESS", 10)
        health.append(timed(lambda: requests.get(feed.base + "/healthz", timeout=10)))
        registration.append(timed(lambda: register(feed, job_id)))
        wait_until(lambda: status(feed, job_id) == "IN_PROGRESS", timeout=10)
        before = len(receiver.received)
        set_at = time.time()
        simulator.set_job(job_id, "DELIVERED", 100)
        wait_until(lambda: len(receiver.received) > before, timeout=10)
        notification.append(receiver.received[-1].received_at - set_at)
    measured = {"healthz": health, "register": registration, "notify": notification}
    return {name: statistics.median(values) for name, values in measured.items()}


def test_sixty_held_waiters_cost_the_api_and_notifications_under_100ms(
    feed: Client, simulator: DatasaurSimulator, receiver: WebhookReceiver
) -> None:
    without = latencies(feed, simulator, receiver, "quiet")
    stop = threading.Event()
    answered: list[int] = []
    headers = {"Authorization": f"Bearer {READ_TOKEN}"}

    def long_poll() -> None:  # woken by every event, holds on: none is job.failed
        while not stop.is_set():
            params = {"after": "now", "wait": "5s", "type": "job.failed"}
            answered.append(requests.get(feed.base + "/v1/events", params=params,
                                         headers=headers, timeout=30).status_code)  # fmt: skip

    def stream() -> None:  # gets every event
        with requests.get(feed.base + "/v1/events/stream", params={"after": "now"},
                          headers=headers, stream=True, timeout=30) as answer:  # fmt: skip
            answered.append(answer.status_code)
            for _ in answer.iter_lines():
                if stop.is_set():
                    return

    waiters = [threading.Thread(target=long_poll if n % 3 else stream) for n in range(WAITERS)]
    for thread in waiters:
        thread.start()
    wait_until(lambda: len(answered) >= WAITERS // 3, timeout=10)  # the streams are open
    held = latencies(feed, simulator, receiver, "held")
    stop.set()
    for thread in waiters:
        thread.join(timeout=30)
    report = {name: (round(without[name] * 1000), round(held[name] * 1000)) for name in held}
    print(f"\nmedian ms without / with {WAITERS} held waiters: {report}")
    assert set(answered) == {200}, answered
    for name in held:
        assert held[name] - without[name] < 0.100, report


def test_two_daemons_at_full_speed_and_a_reader_that_misses_nothing(
    cluster: Cluster, simulator: DatasaurSimulator, tmp_path: Path
) -> None:
    jobs = in_progress(simulator, 300)
    ports = [free_port(), free_port()]
    for name, port in zip(("a", "b"), ports, strict=True):
        config = cluster.config(name, {}, [{"id": job_id} for job_id in jobs])
        config["api"] = api_section(port)
        config["polling"] = {"interval": "0.2s", "max_interval": "0.4s", "expire_after": 0}
        cluster.start(name, config)
    client = Client(f"http://127.0.0.1:{ports[0]}", READ_TOKEN)
    wait_all_polled(cluster, 300, timeout=60)
    seen: list[dict[str, Any]] = []
    cursor = events(client, after="now")["next_cursor"]

    def follow() -> None:
        nonlocal cursor
        deadline = time.monotonic() + 90
        while len(seen) < 300 and time.monotonic() < deadline:
            page = events(client, after=cursor, limit=7, wait="5s")  # small pages: many reads
            seen.extend(page["events"])
            cursor = page["next_cursor"]

    reader = threading.Thread(target=follow)
    reader.start()
    for job_id in jobs:  # both daemons record the DELIVERED events as fast as they poll
        simulator.set_job(job_id, "DELIVERED", 100)
    reader.join(timeout=120)
    assert len(seen) == 300, len(seen)
    assert len({e["id"] for e in seen}) == 300  # each once
    cursors = [e["cursor"] for e in seen]
    assert cursors == sorted(cursors)
    assert {e["data"]["job_id"] for e in seen} == set(jobs)
    recorded = cluster.query("SELECT cursor FROM events WHERE type = 'job.delivered' ORDER BY 1")
    assert cursors == [row[0] for row in recorded]
