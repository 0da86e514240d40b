"""Issue 11, end to end: ``redeliver`` with filters instead of an id.

The CLI runs as ``python -m notifier`` subprocesses; the daemon as a subprocess against
the Datasaur simulator and a webhook receiver. Deliveries that died long ago are written
into the state file through the store before the daemon starts (the only way to have a
delivery created hours ago without waiting hours).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from notifier.config import JobSpec
from notifier.events import build_payload
from notifier.standins.receiver import WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from notifier.store import Attempt, JobUpdate, NewEvent, SqliteStore
from tests.conftest import base_config, webhook
from tests.support.daemon import DaemonProcess, cli, deliveries, write_config
from tests.support.waiting import wait_until

Factory = Callable[..., DaemonProcess]
HOUR = 3600.0


def seed_dead(path: Path, jobs: dict[str, float], callback: str = "hook") -> None:
    """One dead ``job.delivered`` delivery to ``callback`` per job, created at the given time."""
    store = SqliteStore(path)
    try:
        for job_id, created in jobs.items():
            store.watch(JobSpec(id=job_id), created)
            details = {"id": job_id, "status": "DELIVERED", "progress": 100}
            payload = build_payload(
                "job.delivered",
                job_id=job_id,
                name=None,
                job=details,
                previous_status="IN_PROGRESS",
                observed_at=created,
            )
            event = NewEvent("job.delivered", payload, [callback])
            polled = JobUpdate(
                job_id, "done", "DELIVERED", 100, details, created, None, 1.0, None, [event]
            )
            store.apply_polls([polled])
        for row in store.claim_deliveries(callback, time.time(), 10_000, []):
            store.record_attempt(
                Attempt(row.id, row.created_at + 1, 0.01, False, "HTTP 410 Gone", "dead", None)
            )
    finally:
        store.close()


def states(config: Path) -> dict[str, str]:
    """{job id: state of its delivery}."""
    return {d["job_id"]: d["state"] for d in deliveries(config)}


def test_dead_deliveries_of_one_callback_are_queued_again_while_the_daemon_runs(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    jobs = [f"AutoLabelQueue:bulk-{n}" for n in range(3)]
    for job_id in jobs:
        simulator.set_job(job_id, "DELIVERED", 100)
    config = base_config(
        simulator,
        tmp_path,
        callbacks={"hook": webhook(receiver, "/hook"), "other": webhook(receiver, "/other")},
        jobs=[{"id": job_id} for job_id in jobs],
    )
    receiver.respond_with(410)  # every delivery is dead at its first attempt
    daemon = daemon_factory(config)
    wait_until(
        lambda: [d["state"] for d in deliveries(daemon.config)] == ["dead"] * 6,
        message=daemon.output,
    )
    first = {hook.headers["webhook-id"]: hook.path for hook in receiver.received}
    receiver.respond_with(200)
    receiver.clear()

    listed = cli(daemon.config, "redeliver", "--state", "dead", "--callback", "hook", "--dry-run")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:5] == ["ID", "JOB", "CALLBACK", "EVENT", "STATE"]
    hook_ids = {d["id"] for d in deliveries(daemon.config) if d["callback"] == "hook"}
    assert {line.split()[0] for line in lines[1:4]} == hook_ids
    assert lines[-1] == "3 deliveries match; nothing queued (dry run)"
    as_json = cli(daemon.config, "redeliver", "--state", "dead", "--job", jobs[0], "--dry-run",
                  "--json")  # fmt: skip
    document = json.loads(as_json.stdout)
    assert document["queued"] is False
    assert sorted(d["callback"] for d in document["deliveries"]) == ["hook", "other"]
    assert [d["state"] for d in deliveries(daemon.config)] == ["dead"] * 6
    assert receiver.received == []

    queued = cli(daemon.config, "redeliver", "--state", "dead", "--callback", "hook")
    assert (queued.returncode, queued.stdout.strip()) == (0, "queued 3 deliveries again")
    again = receiver.wait_for(3)
    assert {hook.headers["webhook-id"] for hook in again} == hook_ids
    assert all(first[hook.headers["webhook-id"]] == "/hook" for hook in again)
    assert all(hook.signature_ok for hook in again)
    wait_until(
        lambda: (
            sorted((d["callback"], d["state"]) for d in deliveries(daemon.config))
            == [("hook", "delivered")] * 3 + [("other", "dead")] * 3
        ),
        message=daemon.output,
    )
    nothing = cli(daemon.config, "redeliver", "--state", "dead", "--callback", "hook")
    assert (nothing.returncode, nothing.stdout.strip()) == (0, "no delivery matches")
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.output


def test_creation_windows_and_the_confirmation_above_100(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    now = time.time()
    old = {f"old-{n}": now - 5 * HOUR - n for n in range(2)}
    recent = {f"recent-{n}": now - 1 * HOUR - n for n in range(99)}
    seed_dead(tmp_path / "state.db", {**old, **recent})
    config = base_config(simulator, tmp_path, callbacks={"hook": webhook(receiver)})
    path = write_config(tmp_path / "config.yaml", config)

    def redeliver(*args: str) -> Any:
        return cli(path, "redeliver", *args)

    # --since / --until compare the delivery's creation time with now
    window = redeliver("--state", "dead", "--since", "6h", "--until", "2h", "--dry-run", "--json")
    assert sorted(d["job_id"] for d in json.loads(window.stdout)["deliveries"]) == sorted(old)
    since = redeliver("--state", "dead", "--since", "2h", "--dry-run", "--json")
    assert len(json.loads(since.stdout)["deliveries"]) == 99
    # 101 match: refused without --yes, exit 2, nothing changed
    refused = redeliver("--state", "dead")
    assert refused.returncode == 2, refused
    assert "101 deliveries match" in refused.stderr and "--yes" in refused.stderr
    assert set(states(path).values()) == {"dead"}
    # a dry run lists them all, --yes is not needed to look
    listed = redeliver("--state", "dead", "--dry-run")
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 1 + 101 + 2
    # the old ones alone are few enough
    some = redeliver("--state", "dead", "--until", "2h")
    assert (some.returncode, some.stdout.strip()) == (0, "queued 2 deliveries again")
    assert {job for job, state in states(path).items() if state == "pending"} == set(old)

    daemon = daemon_factory(config)
    receiver.wait_for(2)
    everything = redeliver("--state", "dead", "--yes", "--json")
    document = json.loads(everything.stdout)
    assert document["queued"] is True and len(document["deliveries"]) == 99
    assert {d["state"] for d in document["deliveries"]} == {"pending"}
    receiver.wait_for(101, timeout=30)
    wait_until(lambda: set(states(path).values()) == {"delivered"}, message=daemon.output)
    assert len({hook.headers["webhook-id"] for hook in receiver.received}) == 101
    assert daemon.stop() == 0


def test_an_id_and_filters_or_neither_is_a_usage_error(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    config = base_config(simulator, tmp_path, callbacks={"hook": webhook(receiver)})
    path = write_config(tmp_path / "config.yaml", config)
    cases = {
        (): "give a DELIVERY_ID, or --state STATE",
        ("msg_1", "--state", "dead"): "give a DELIVERY_ID or filters, not both (--state",
        ("msg_1", "--dry-run"): "not both (--dry-run go with filters)",
        ("--callback", "hook"): "--callback: also give --state",
        ("--state", "dead", "--since", "1h", "--until", "2h"): "--since must reach further back",
    }
    for args, message in cases.items():
        result = cli(path, "redeliver", *args)
        assert result.returncode == 2, (args, result)
        assert message in result.stderr, (args, result.stderr)
    bad = cli(path, "redeliver", "--state", "dead", "--since", "yesterday")
    assert bad.returncode == 2 and "not a duration" in bad.stderr
    # one id keeps working as before (on an existing state: a read never creates one)
    assert cli(path, "migrate").returncode == 0
    unknown = cli(path, "redeliver", "msg_unknown")
    assert (unknown.returncode, unknown.stderr.strip()) == (1, "no delivery 'msg_unknown'")
