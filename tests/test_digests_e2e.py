"""Issue 23.1 end to end, on both stores: digests through a webhook (signed), email and
Apprise. 200 jobs ending within 10 s through a 3 s window with ``max_events: 50`` give
4-6 digests per callback holding every event exactly once (counted in and out); a
kill -9 while a digest is being sent sends the same digest again under the same
``webhook-id`` and nothing else; two daemons on PostgreSQL make one digest per window.

The daemon runs as a subprocess against the Datasaur stand-in, a webhook receiver and an
SMTP sink; waits are on observable effects with deadlines.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from notifier.standins.receiver import ReceivedWebhook, WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from tests.conftest import base_config, email, webhook
from tests.support.daemon import DaemonProcess, cli, write_config
from tests.support.smtp import SmtpSink
from tests.support.waiting import wait_until
from tests.test_noise_e2e import outbox, store_config

__all__ = ["store_config"]  # the fixture, parametrised over both stores

Factory = Callable[..., DaemonProcess]
DIGEST = {"window": "3s", "max_events": 50}


def job_ids(count: int, prefix: str = "ExportQueue:digest") -> list[str]:
    return [f"{prefix}-{n:03d}" for n in range(count)]


def digests_at(receiver: WebhookReceiver, path: str) -> list[ReceivedWebhook]:
    """The answered digests POSTed to ``path``."""
    return [
        hook for hook in receiver.received
        if hook.path == path and hook.answered_status == 200
    ]  # fmt: skip


def members(hooks: list[ReceivedWebhook]) -> list[str]:
    """The job ids in every digest, in order received (a repeat shows twice)."""
    return [event["data"]["job_id"] for hook in hooks for event in hook.json["data"]["events"]]


def end_in_batches(sim: DatasaurSimulator, ids: list[str], batches: int, every: float) -> None:
    """End ``ids`` in ``batches`` steps ``every`` seconds apart (every tenth one fails)."""
    size = -(-len(ids) // batches)
    for start in range(0, len(ids), size):
        began = time.time()
        for n, job_id in enumerate(ids[start : start + size], start):
            if n % 10 == 3:
                sim.set_job(job_id, "FAILED", 40)
            else:
                sim.set_job(job_id, "DELIVERED", 100)
        wait_until(lambda began=began: time.time() >= began + every, timeout=every + 5)


def test_200_jobs_ending_within_10s_give_4_to_6_digests_holding_every_event_once(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    smtp: SmtpSink,
    daemon_factory: Factory,
    store_config: Callable[..., dict[str, Any]],
) -> None:
    ids = job_ids(200)
    for job_id in ids:
        simulator.set_job(job_id, "IN_PROGRESS", 10)
    chat = "json://" + receiver.url.removeprefix("http://") + "/apprise"
    config = store_config(
        simulator,
        callbacks={
            "hook": webhook(receiver, digest=DIGEST),
            "mail": email(smtp, digest=DIGEST),
            "chat": {"type": "apprise", "url": chat, "digest": DIGEST},
        },
        jobs=[{"id": job_id} for job_id in ids],
    )
    config["datasaur"].update({"batch_size": 50, "max_requests_per_second": 50})
    daemon = daemon_factory(config)
    wait_until(lambda: simulator.stats().job_polls >= 200, timeout=30, message=daemon.output)
    began = time.time()
    end_in_batches(simulator, ids, batches=8, every=1.0)
    assert time.time() - began < 10.5

    def all_out() -> bool:
        return len(members(digests_at(receiver, "/hook"))) >= 200 and sum(
            int(m.message["Subject"].split()[1]) for m in smtp.messages
        ) >= 200 and len(digests_at(receiver, "/apprise")) >= 4  # fmt: skip

    wait_until(all_out, timeout=40, message=daemon.output)
    hooks = digests_at(receiver, "/hook")
    assert 4 <= len(hooks) <= 6, [hook.json["data"]["count"] for hook in hooks]
    assert sorted(members(hooks)) == sorted(ids)  # every event, exactly once
    assert all(hook.signature_ok for hook in hooks)
    assert len({hook.headers["webhook-id"] for hook in hooks}) == len(hooks)
    first = hooks[0].json
    assert first["type"] == "digest" and set(first) == {"type", "timestamp", "data"}
    assert set(first["data"]) == {"count", "first_at", "last_at", "counts_by_type", "events"}
    assert first["data"]["count"] == len(first["data"]["events"])
    event = first["data"]["events"][0]
    assert set(event) == {"id", "type", "timestamp", "data"} and event["id"].startswith("msg_")
    failed = Counter(e["type"] for hook in hooks for e in hook.json["data"]["events"])
    assert failed == {"job.delivered": 180, "job.failed": 20}

    mails = [m for m in smtp.messages if m.accepted]
    assert 4 <= len(mails) <= 6
    subjects = [m.message["Subject"] for m in mails]
    assert all(s.startswith("[datasaur-notifier] ") and " jobs ended: " in s for s in subjects)
    assert sum(int(s.split()[1]) for s in subjects) == 200
    body = mails[0].message.get_content()
    listed = [line.split()[1] for line in body.splitlines() if line.startswith("job.")]
    assert len(listed) == int(subjects[0].split()[1])
    assert body.index("job.delivered") > body.rfind("job.failed") or "job.failed" not in body
    apprise = digests_at(receiver, "/apprise")
    assert 4 <= len(apprise) <= 6
    assert all(hook.json["title"].startswith("[datasaur-notifier] ") for hook in apprise)

    # deliveries: one row per digest; --id lists a digest's events.
    rows = outbox(daemon.config)
    assert {row["event"] for row in rows} == {"digest"}
    assert Counter(row["callback"] for row in rows) == {"hook": len(hooks), "mail": len(mails),
                                                        "chat": len(apprise)}  # fmt: skip
    shown = cli(daemon.config, "deliveries", "--id", hooks[0].headers["webhook-id"], "--json")
    [document] = json.loads(shown.stdout)["deliveries"]
    assert sorted(m["job_id"] for m in document["members"]) == sorted(
        e["data"]["job_id"] for e in first["data"]["events"]
    )
    assert {m["state"] for m in document["members"]} == {"digested"}
    # redeliver of one of its events sends the digest again, whole, under its id.
    again = cli(daemon.config, "redeliver", document["members"][0]["id"])
    digest_id = hooks[0].headers["webhook-id"]
    assert again.returncode == 0 and again.stdout.startswith(f"{digest_id}: queued again")
    wait_until(lambda: len(digests_at(receiver, "/hook")) > len(hooks), timeout=20)
    resent = digests_at(receiver, "/hook")[len(hooks) :]
    assert [(h.headers["webhook-id"], h.json) for h in resent] == [(digest_id, first)]
    assert daemon.stop() == 0


def test_kill9_mid_digest_sends_the_same_digest_again_and_nothing_else(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    store_config: Callable[..., dict[str, Any]],
) -> None:
    ids = job_ids(12, "ExportQueue:kill9")
    for job_id in ids:
        simulator.set_job(job_id, "IN_PROGRESS", 10)
    config = store_config(
        simulator,
        callbacks={"hook": webhook(receiver, digest={"window": "1s", "max_events": 100})},
        jobs=[{"id": job_id} for job_id in ids],
    )
    daemon = daemon_factory(config)
    receiver.respond_with(200, count=1, delay=30)  # the first POST hangs: kill -9 then
    for job_id in ids:
        simulator.set_job(job_id, "DELIVERED", 100)
    wait_until(lambda: receiver.received, timeout=30, message=daemon.output)
    daemon.kill9()
    first = receiver.received[0]
    assert first.json["type"] == "digest"
    restarted = DaemonProcess(daemon.config).start()
    try:
        restarted.wait_ready()
        wait_until(lambda: digests_at(receiver, "/hook"), timeout=40, message=restarted.output)
        wait_until(
            lambda: [row["state"] for row in outbox(daemon.config)] == ["delivered"],
            timeout=20,
            message=restarted.output,
        )
        # Nothing more after the digest is delivered, however long one waits for it.
        settled, settled_at = len(receiver.received), time.time()
        wait_until(lambda: time.time() >= settled_at + 2, timeout=5)
        assert restarted.stop() == 0
    finally:
        if restarted.alive():
            restarted.stop()
    assert len(receiver.received) == settled
    got = receiver.received
    assert {hook.headers["webhook-id"] for hook in got} == {first.headers["webhook-id"]}
    assert all(hook.json == first.json for hook in got)  # the same digest, byte for byte
    assert sorted(members([got[-1]])) == sorted(ids)


def test_two_daemons_on_postgres_make_one_digest_per_window(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    postgres_url: str,
    tmp_path: Path,
) -> None:
    ids = job_ids(80, "ExportQueue:pair")
    for job_id in ids:
        simulator.set_job(job_id, "IN_PROGRESS", 10)
    daemons = []
    for name in ("one", "two"):
        config = base_config(
            simulator,
            tmp_path,
            callbacks={"hook": webhook(receiver, digest={"window": "3s", "max_events": 1000})},
            jobs=[{"id": job_id} for job_id in ids],
        )
        del config["state_path"]
        config["state_url"] = postgres_url
        config["cluster"] = {"lease": "6s", "instance_name": name}
        daemons.append(DaemonProcess(write_config(tmp_path / f"{name}.yaml", config)).start())
    try:
        for daemon in daemons:
            daemon.wait_ready(40)
        for batch in (ids[:40], ids[40:]):  # two windows, well apart
            for job_id in batch:
                simulator.set_job(job_id, "DELIVERED", 100)
            expected = len(members(digests_at(receiver, "/hook"))) + len(batch)
            wait_until(
                lambda expected=expected: len(members(digests_at(receiver, "/hook"))) >= expected,
                timeout=30,
                message=daemons[0].output + daemons[1].output,
            )
        hooks = digests_at(receiver, "/hook")
        assert len(hooks) == 2, [hook.json["data"]["count"] for hook in hooks]
        assert sorted(members(hooks)) == sorted(ids)
        closed = sum(d.output.count("digests closed") for d in daemons)
        assert closed == 2, daemons[0].output + daemons[1].output
    finally:
        for daemon in daemons:
            if daemon.alive():
                daemon.stop()
