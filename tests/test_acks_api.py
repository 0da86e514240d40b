"""Acknowledging jobs and groups over the API (the real application on a real SQLite
store) and the CLI (as a subprocess): the ack shows in the job and group objects, an
unknown id is a 422 naming the field (exit 2 from the CLI), a group's ack ends the
reminders of its group events."""

from __future__ import annotations

import json
from pathlib import Path

from notifier.reminders import ReminderPlan
from notifier.store import NewEvent
from tests.support.daemon import cli
from tests.test_groups_api import Client, api
from tests.test_job_fields import BASE

__all__ = ["api"]  # the fixture


def test_jobs_and_groups_are_acknowledged_with_the_tokens_name(api: Client) -> None:
    client, _ = api
    client.simulate_put("/v1/groups/nightly-42", json={"notify": ["hook"]})
    client.simulate_post("/v1/jobs", json={"id": "Q:1", "group": "nightly-42"})
    job = client.simulate_post("/v1/jobs/Q:1/ack", json={"comment": "on it"})
    assert job.status_code == 200, job.text
    assert (job.json["ack"]["by"], job.json["ack"]["comment"]) == ("w", "on it")
    group = client.simulate_post("/v1/groups/nightly-42/ack")  # an empty body
    assert group.status_code == 200, group.text
    assert group.json["ack"]["comment"] is None
    assert client.simulate_get("/v1/jobs/Q:1").json["job"]["ack"] == job.json["ack"]
    assert client.simulate_get("/v1/groups/nightly-42").json["group"]["ack"] == group.json["ack"]
    listed = client.simulate_get("/v1/groups").json["groups"]
    assert listed[0]["ack"] == group.json["ack"]

    for path, field in (("/v1/jobs/Q:2/ack", "job_id"), ("/v1/groups/nope/ack", "group_id")):
        refused = client.simulate_post(path, json={})
        assert refused.status_code == 422, refused.text
        assert refused.json["details"][0]["path"] == field
    assert client.simulate_post("/v1/jobs/Q:1/ack", json={"by": "x"}).status_code == 422


def test_a_group_ack_ends_the_reminders_of_its_group_events(api: Client) -> None:
    client, store = api
    client.simulate_put("/v1/groups/nightly-42", json={"notify": ["hook"]})
    payload = {"type": "group.failed", "timestamp": "t", "data": {"group": "nightly-42"}}
    store.add_event(None, NewEvent("group.failed", payload, ["hook"]), 1000.0)
    [first] = store.deliveries()
    store.start_reminders(first.id, "group", "nightly-42", 1000.0, 1060.0)
    client.simulate_post("/v1/groups/nightly-42/ack", json={})
    plans = {"hook": ReminderPlan(60.0, 6, ("group.failed",))}
    assert store.fire_reminders(10**10, plans, 10) == 0


def test_the_cli_acknowledges_a_group_and_refuses_an_unknown_id(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(BASE + f"state_path: {tmp_path / 'state.db'}\n")
    assert cli(config, "watch", "Q:1", "--group", "nightly-42").returncode == 0
    acked = cli(config, "ack", "nightly-42", "--comment", "known flake")
    assert acked.returncode == 0, acked.stderr
    assert "group nightly-42: acknowledged" in acked.stdout
    shown = json.loads(cli(config, "groups", "nightly-42", "--json").stdout)
    assert shown["group"]["ack"]["comment"] == "known flake"
    unknown = cli(config, "ack", "nope")
    assert unknown.returncode == 2
    assert "no job or group 'nope' is known" in unknown.stderr
