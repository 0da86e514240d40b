"""Digests (issue 23.1): a burst of ``digest_events`` job.delivered events through one
webhook callback, once sent one by one and once through a digest (``window: 2s``,
``max_events: 100``), in the same run.

The burst is an outbox seeded as the poller records it (every event at one instant),
then the daemon starts; the figures are the messages the receiver got, the time from
the daemon's start to the last event's arrival (the events counted inside the digests),
and the daemon's CPU seconds by then.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from bench.harness import Daemon, Simulator, Sizes, daemon_config, job_ids, seed_outbox, workdir
from bench.report import Row
from bench.scenarios import Step, scenario
from notifier.standins.receiver import ReceivedWebhook, WebhookReceiver

ORDER = 72
DIGEST = {"window": "2s", "max_events": 100}

ROWS = [
    Row("Burst one by one: messages", "digest_off.messages", None, "", None, "{:.0f}"),
    Row("Burst one by one: s to drain", "digest_off.drain_s", None, "", None, "{:.1f}"),
    Row("Burst one by one: daemon CPU s", "digest_off.daemon_cpu_s", None, "", None, "{:.1f}"),
    Row("Burst in digests: messages", "digest_on.messages", None, "events / max_events",
        None, "{:.0f}"),
    Row("Burst in digests: s to drain", "digest_on.drain_s", None, "", None, "{:.1f}"),
    Row("Burst in digests: daemon CPU s", "digest_on.daemon_cpu_s", None,
        "less than one by one", lambda m: m["digest_cpu_ratio"] < 1, "{:.1f}"),
    Row("Burst: every event arrived once, both ways", "digest_every_event_once", None, "",
        lambda m: m["digest_every_event_once"] == 1, "{:.0f}"),
]  # fmt: skip


class Events:
    """Events arriving at a receiver, a digest counting as its members."""

    def __init__(self, receiver: WebhookReceiver) -> None:
        self.messages = 0
        self.jobs: set[str] = set()
        self.repeats = 0
        self.last_at = 0.0
        self._done = threading.Condition()
        receiver.on_receive = self._seen

    def _seen(self, webhook: ReceivedWebhook) -> None:
        body = webhook.json or {}
        data = body.get("data") or {}
        events = data["events"] if body.get("type") == "digest" else [body]
        with self._done:
            self.messages += 1
            for event in events:
                job = str((event.get("data") or {}).get("job_id"))
                self.repeats += job in self.jobs
                self.jobs.add(job)
            self.last_at = webhook.received_at
            self._done.notify_all()

    def wait(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._done:
            while len(self.jobs) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._done.wait(left)
        return True


def burst(root: Path, sizes: Sizes, digest: bool) -> dict[str, Any]:
    """Seed the burst, start the daemon, wait until every event has arrived."""
    ids = job_ids(sizes.digest_events)
    name = "digest_on" if digest else "digest_off"
    with workdir(root, name) as work, Simulator() as sim, WebhookReceiver() as receiver:
        events = Events(receiver)
        state = work / "state.db"
        hook: dict[str, Any] = {"type": "webhook", "url": receiver.url + "/hook"}
        if digest:
            hook["digest"] = DIGEST
        seed_outbox(state, ids, ["hook"])
        started = time.time()
        with Daemon(work, daemon_config(sim, state, callbacks={"hook": hook})) as daemon:
            complete = events.wait(len(ids), timeout=600)
            cpu = daemon.cpu()
    return {
        "events": len(ids),
        "received_events": len(events.jobs),
        "repeats": events.repeats,
        "complete": complete,
        "messages": events.messages,
        "drain_s": events.last_at - started,
        "daemon_cpu_s": cpu,
    }


@scenario("digest")
def run(root: Path, sizes: Sizes, step: Step) -> None:
    step("digest_off", lambda: burst(root, sizes, digest=False))
    step("digest_on", lambda: burst(root, sizes, digest=True))


def derive(run: dict[str, Any]) -> None:
    """CPU with a digest over without; 1 when both drained every event exactly once."""
    off, on = run.get("digest_off"), run.get("digest_on")
    if off is None or on is None:
        return
    run["digest_cpu_ratio"] = (
        on["daemon_cpu_s"] / off["daemon_cpu_s"] if off["daemon_cpu_s"] else None
    )
    once = all(r["complete"] and not r["repeats"] and r["received_events"] == r["events"]
               for r in (off, on))  # fmt: skip
    run["digest_every_event_once"] = 1.0 if once else 0.0
