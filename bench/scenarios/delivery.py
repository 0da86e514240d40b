"""Delivery throughput: an outbox backlog drained to a fast receiver.

Once alone, once beside a callback whose receiver takes 5 s per request; :func:`derive`
computes the second throughput over the first (``delivery_ratio_with_slow``).
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
    job_ids,
    seed_outbox,
    workdir,
)
from bench.report import Row
from bench.scenarios import Step, scenario
from notifier.standins.receiver import WebhookReceiver

ORDER = 70

ROWS = [
    Row("Webhooks/s to a fast receiver", "delivery_fast.webhooks_per_s", None, "", None,
        "{:.0f}"),
    Row("Webhooks/s to it, another callback at 5 s/request",
        "delivery_with_slow.webhooks_per_s", None, "not dragged down (>= 0.8x)",
        lambda m: m["delivery_ratio_with_slow"] >= 0.8, "{:.0f}"),
]  # fmt: skip


def delivery_throughput(root: Path, sizes: Sizes, with_slow: bool) -> dict[str, Any]:
    """Drain an outbox backlog to a fast receiver (and a 5 s one on another callback)."""
    ids = job_ids(sizes.delivery_jobs)
    with (
        workdir(root, "delivery") as work,
        Simulator() as sim,
        WebhookReceiver() as fast,
        WebhookReceiver() as slow,
    ):
        slow.respond_with(200, delay=5.0)
        arrivals = Arrivals(fast)
        state = work / "state.db"
        callbacks = {"fast": {"type": "webhook", "url": fast.url + "/hook"}}
        if with_slow:
            callbacks["slow"] = {"type": "webhook", "url": slow.url + "/hook"}
        seed_outbox(state, ids, list(callbacks))
        try:
            with Daemon(work, daemon_config(sim, state, callbacks=callbacks)) as daemon:
                daemon.wait_running()
                complete = arrivals.wait(len(ids), timeout=180)
                slow_count = len(slow.received)
                cpu = daemon.cpu()
                slow.stop()
        finally:
            slow.stop()
    times = sorted(arrivals.times)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return {
        "deliveries": len(ids),
        "received": len(times),
        "complete": complete,
        "slow_received": slow_count,
        "webhooks_per_s": (len(times) - 1) / span if span else None,
        "daemon_cpu_s_total": cpu,
    }


@scenario("delivery")
def run(root: Path, sizes: Sizes, step: Step) -> None:
    step("delivery_fast", lambda: delivery_throughput(root, sizes, with_slow=False))
    step("delivery_with_slow", lambda: delivery_throughput(root, sizes, with_slow=True))


def derive(run: dict[str, Any]) -> None:
    """Webhooks/s to the fast receiver with the slow callback present, over without it."""
    if "delivery_fast" in run and "delivery_with_slow" in run:
        fast = run["delivery_fast"]["webhooks_per_s"]
        slow = run["delivery_with_slow"]["webhooks_per_s"]
        run["delivery_ratio_with_slow"] = slow / fast if fast and slow else None
