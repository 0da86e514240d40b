"""Groups end to end (issue 21.2), on both stores: the daemon as a subprocess against
the Datasaur stand-in and a real webhook receiver. A config group of 20 gives one
group.completed with all 20; an API group with expect 5 waits for its fifth; fail_fast
fails at the first failure; at_risk before the deadline, late after it; and two
daemons on PostgreSQL ending 50 groups of 10 within one second give exactly 50."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from notifier.standins.receiver import WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from tests.conftest import webhook
from tests.support.daemon import DaemonProcess, cli
from tests.support.smtp import free_port
from tests.support.waiting import wait_until
from tests.test_api_e2e import Client, api_section
from tests.test_cluster_e2e import Cluster, cluster  # noqa: F401 (a fixture)
from tests.test_noise_e2e import store_config  # noqa: F401 (a fixture)

Factory = Callable[..., DaemonProcess]
Make = Callable[..., dict[str, Any]]


def group_posts(receiver: WebhookReceiver, event: str | None = None) -> list[dict[str, Any]]:
    return [r.json for r in receiver.received
            if isinstance(r.json, dict) and str(r.json.get("type", "")).startswith("group.")
            and (event is None or r.json["type"] == event)]  # fmt: skip


def outbox_events(config: Path, prefix: str = "group.") -> list[dict[str, Any]]:
    result = cli(config, "deliveries", "--json")
    assert result.returncode == 0, result.stderr
    return [d for d in json.loads(result.stdout)["deliveries"] if d["event"].startswith(prefix)]


def job_ids(prefix: str, count: int) -> list[str]:
    return [f"ExportQueue:{prefix}-{index:04d}" for index in range(count)]


def test_a_config_group_of_20_gives_one_group_completed_with_all_20(
    store_config: Make,  # noqa: F811 (first: its database outlives the daemons)
    simulator: DatasaurSimulator, receiver: WebhookReceiver, daemon_factory: Factory,
) -> None:  # fmt: skip
    ids = job_ids("cfg", 20)
    for offset, job_id in enumerate(ids):
        simulator.script_job(job_id, [(0.0, "IN_PROGRESS", 10),
                                      (0.5 + offset * 0.1, "DELIVERED", 100)])  # fmt: skip
    config = store_config(
        simulator,
        callbacks={"hook": webhook(receiver), "jobs": webhook(receiver, "/jobs")},
        groups=[{"id": "nightly-42", "name": "Nightly", "notify": ["hook"],
                 "labels": {"team": "ml"}, "metadata": {"run": "r-42"}}],
        jobs=[{"id": job_id, "group": "nightly-42", "notify": ["jobs"]} for job_id in ids],
    )  # fmt: skip
    daemon = daemon_factory(config)
    [done] = wait_until(lambda: group_posts(receiver), timeout=40, message=daemon.output)
    assert done["type"] == "group.completed"
    data = done["data"]
    assert sorted(j["id"] for j in data["jobs"]) == sorted(ids) and data["total"] == 20
    assert data["counts"] == {"delivered": 20, "failed": 0, "expired": 0, "running": 0}
    assert (data["labels"], data["metadata"], data["name"]) == (
        {"team": "ml"}, {"run": "r-42"}, "Nightly")  # fmt: skip
    wait_until(lambda: len([r for r in receiver.received if r.path == "/jobs"]) == 20, 20)
    assert len(outbox_events(daemon.config)) == 1  # exactly one, recorded once
    assert len(group_posts(receiver)) == 1
    shown = json.loads(cli(daemon.config, "groups", "nightly-42", "--json").stdout)["group"]
    assert shown["state"] == "completed" and len(shown["members"]) == 20


def test_an_api_group_expecting_5_stays_open_at_4_and_completes_at_the_fifth(
    store_config: Make,  # noqa: F811 (first: its database outlives the daemons)
    simulator: DatasaurSimulator, receiver: WebhookReceiver, daemon_factory: Factory,
) -> None:  # fmt: skip
    port = free_port()
    config = store_config(simulator, callbacks={"hook": webhook(receiver)},
                          api=api_section(port))  # fmt: skip
    daemon = daemon_factory(config)
    client = Client(f"http://127.0.0.1:{port}")
    answer = client.call("PUT", "/v1/groups/run-5", json={"notify": ["hook"], "expect": 5})
    assert answer.status_code == 201, answer.text
    ids = job_ids("api", 5)
    for job_id in ids[:4]:
        simulator.set_job(job_id, "DELIVERED", 100)
        assert client.call("POST", "/v1/jobs", json={"id": job_id, "group": "run-5",
                                                     "notify": []}).status_code == 201  # fmt: skip

    def group() -> dict[str, Any]:
        return dict(client.call("GET", "/v1/groups/run-5").json()["group"])

    wait_until(lambda: group()["counts"]["delivered"] == 4, 30, message=daemon.output)
    assert group()["state"] == "open" and outbox_events(daemon.config) == []
    simulator.set_job(ids[4], "IN_PROGRESS", 50)
    client.call("POST", "/v1/jobs", json={"id": ids[4], "group": "run-5", "notify": []})
    assert group()["state"] == "sealed"
    simulator.set_job(ids[4], "DELIVERED", 100)
    [done] = wait_until(lambda: group_posts(receiver), 30, message=daemon.output)
    assert done["type"] == "group.completed" and done["data"]["total"] == 5
    late = client.call("POST", "/v1/jobs", json={"id": "ExportQueue:late", "group": "run-5"})
    assert late.status_code == 409


def test_fail_fast_fires_at_the_first_failure_and_nothing_follows(
    store_config: Make,  # noqa: F811 (first: its database outlives the daemons)
    simulator: DatasaurSimulator, receiver: WebhookReceiver, daemon_factory: Factory,
) -> None:  # fmt: skip
    ids = job_ids("ff", 3)
    for job_id in ids:
        simulator.set_job(job_id, "IN_PROGRESS", 10)
    config = store_config(
        simulator,
        callbacks={"hook": webhook(receiver), "jobs": webhook(receiver, "/jobs")},
        groups=[{"id": "ff", "notify": ["hook"], "fail_fast": True}],
        jobs=[{"id": job_id, "group": "ff", "notify": ["jobs"]} for job_id in ids],
    )
    daemon = daemon_factory(config)
    simulator.set_job(ids[0], "FAILED", 50, errors=[{"id": "e1", "stack": "boom"}])
    [failed] = wait_until(lambda: group_posts(receiver), 30, message=daemon.output)
    assert failed["type"] == "group.failed" and failed["data"]["counts"]["running"] == 2
    for job_id in ids[1:]:
        simulator.set_job(job_id, "DELIVERED", 100)
    wait_until(lambda: len([r for r in receiver.received if r.path == "/jobs"]) == 3, 30)
    assert len(outbox_events(daemon.config)) == 1 and len(group_posts(receiver)) == 1


def test_at_risk_arrives_before_the_deadline_and_late_after_it(
    store_config: Make,  # noqa: F811 (first: its database outlives the daemons)
    simulator: DatasaurSimulator, receiver: WebhookReceiver, daemon_factory: Factory,
) -> None:  # fmt: skip
    [job_id] = job_ids("slow", 1)
    steps = [(0.3 * i, "IN_PROGRESS", 1 + i) for i in range(60)]  # ~3 %/s: ~30 s to go
    simulator.script_job(job_id, steps)
    config = store_config(
        simulator,
        callbacks={"hook": webhook(receiver)},
        groups=[{"id": "slow", "notify": ["hook"], "deadline": "8s"}],
        jobs=[{"id": job_id, "group": "slow", "notify": []}],
    )
    started = time.time()
    daemon = daemon_factory(config)
    risk = wait_until(lambda: group_posts(receiver, "group.at_risk"), 20, message=daemon.output)
    assert time.time() < started + 8.5 and risk[0]["data"]["eta"] is not None
    late = wait_until(lambda: group_posts(receiver, "group.late"), 25, message=daemon.output)
    assert late[0]["data"]["late_by_s"] >= 0 and len(group_posts(receiver)) == 2


@pytest.mark.parametrize("attempt", range(3))
def test_two_daemons_on_postgres_end_50_groups_of_10_within_a_second_exactly_once(
    attempt: int, cluster: Cluster, simulator: DatasaurSimulator,  # noqa: F811
    receiver: WebhookReceiver,
) -> None:  # fmt: skip
    groups = [f"run-{attempt}-{g:02d}" for g in range(50)]
    members = {g: job_ids(g, 10) for g in groups}
    for ids in members.values():
        for job_id in ids:
            simulator.set_job(job_id, "IN_PROGRESS", 10)
    callbacks = {"hook": webhook(receiver)}
    jobs = [{"id": j, "group": g, "notify": []} for g, ids in members.items() for j in ids]
    daemons = []
    for name in ("one", "two"):
        config = cluster.config(name, callbacks, jobs)
        config["groups"] = [{"id": g, "notify": ["hook"]} for g in groups]
        config["polling"] = {"interval": "0.2s", "max_interval": "0.5s", "expire_after": 0}
        daemons.append(cluster.start(name, config, wait=False))
    for daemon in daemons:
        daemon.wait_ready(40)
    wait_until(lambda: cluster.scalar("SELECT count(*) FROM jobs WHERE status = 'IN_PROGRESS'")
               == 500, 40)  # fmt: skip
    began = time.monotonic()
    for ids in members.values():
        for job_id in ids:
            simulator.set_job(job_id, "DELIVERED", 100)
    assert time.monotonic() - began < 1.0
    wait_until(lambda: cluster.scalar("SELECT count(*) FROM jobs WHERE state = 'done'") == 500,
               60)  # fmt: skip
    wait_until(lambda: len(group_posts(receiver)) >= 50, 60)
    recorded = cluster.scalar("SELECT count(*) FROM deliveries WHERE event = 'group.completed'")
    posted = sorted(p["data"]["group"] for p in group_posts(receiver))
    ended = [daemon.output.count(": job.delivered, notifying") for daemon in daemons]
    print(f"\nattempt {attempt}: members ended per daemon {ended}; {recorded} group.completed"
          f" recorded, {len(posted)} posted")  # fmt: skip
    assert all(ended), ended  # both daemons ended members: the groups' rows were contended
    assert recorded == 50 and posted == sorted(groups)
    assert all(len(p["data"]["jobs"]) == 10 for p in group_posts(receiver))


def test_wait_group_exits_0_when_the_group_completes_and_1_when_it_fails(
    store_config: Make,  # noqa: F811 (first: its database outlives the daemons)
    simulator: DatasaurSimulator, receiver: WebhookReceiver, daemon_factory: Factory,
) -> None:  # fmt: skip
    good, bad = job_ids("good", 2), job_ids("bad", 2)
    for job_id in good:
        simulator.script_job(job_id, [(0.0, "IN_PROGRESS", 10), (2.0, "DELIVERED", 100)])
    simulator.script_job(bad[0], [(0.0, "IN_PROGRESS", 10), (2.0, "FAILED", 40)])
    simulator.script_job(bad[1], [(0.0, "IN_PROGRESS", 10), (2.5, "DELIVERED", 100)])
    config = store_config(
        simulator,
        callbacks={"hook": webhook(receiver)},
        groups=[{"id": "good"}, {"id": "bad"}],
        jobs=[{"id": j, "group": g, "notify": []} for g, ids in (("good", good), ("bad", bad))
              for j in ids],
    )  # fmt: skip
    daemon = daemon_factory(config)
    done = cli(daemon.config, "wait", "--group", "good", "--timeout", "40s")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "group good: completed" in done.stdout
    failed = cli(daemon.config, "wait", "--group", "bad", "--timeout", "40s", "--quiet")
    assert failed.returncode == 1 and "group bad: failed" in failed.stdout
    missing = cli(daemon.config, "wait", "--group", "nope")
    assert missing.returncode == 2 and "no group 'nope'" in missing.stderr
    assert group_posts(receiver) == []  # groups notify only where told
