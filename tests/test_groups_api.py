"""Groups over the API (the real application on a real SQLite store) and the CLI (as a
subprocess): declare, list, read, seal, delete; bad input answered with its paths."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from falcon import testing

from notifier.api.app import Api
from notifier.config import ConfigError, parse_config
from notifier.config_service import ApiSettings
from notifier.metrics import Health
from notifier.store import SqliteStore
from tests.support.daemon import cli
from tests.test_job_fields import BASE, TOKEN

Client = tuple[testing.TestClient, SqliteStore]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Client]:
    store = SqliteStore(tmp_path / "state.db")
    settings = ApiSettings.model_validate({
        "listen": "127.0.0.1:0", "allow_callback_urls": ["https://hooks.example.com/"],
        "tokens": [{"name": "w", "token": TOKEN, "scope": "write"},
                   {"name": "r", "token": "r" * 40, "scope": "read"}],
    })  # fmt: skip
    app = Api(store, settings, {"hook": None}, Health(stall_after=60)).wsgi()  # type: ignore[dict-item]
    yield testing.TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}), store
    store.close()


def test_put_get_list_seal_delete(api: Client) -> None:
    client, store = api
    answer = client.simulate_put("/v1/groups/nightly-42", json={
        "name": "Nightly", "notify": ["hook"], "expect": 2, "labels": {"team": "ml"},
        "metadata": {"run": "r-1"}, "deadline": "2h"})  # fmt: skip
    assert answer.status_code == 201, answer.text
    group = answer.json["group"]
    assert (group["id"], group["state"], group["expect"], group["ack"]) == (
        "nightly-42", "open", 2, None)  # fmt: skip
    assert group["deadline"].endswith("Z") and group["counts"]["running"] == 0
    assert client.simulate_put("/v1/groups/nightly-42", json={"name": "N"}).status_code == 200
    client.simulate_post("/v1/jobs", json={"id": "Q:1", "group": "nightly-42"})
    detail = client.simulate_get("/v1/groups/nightly-42").json["group"]
    assert detail["name"] == "N" and [m["id"] for m in detail["members"]] == ["Q:1"]
    client.simulate_put("/v1/groups/other", json={"labels": {"team": "web"}})
    listed = client.simulate_get("/v1/groups", params={"label": "team=ml"}).json
    assert [g["id"] for g in listed["groups"]] == ["nightly-42"]
    page = client.simulate_get("/v1/groups", params={"limit": "1"}).json
    assert page["next_cursor"] is not None
    rest = client.simulate_get("/v1/groups", params={"cursor": page["next_cursor"]}).json
    assert [g["id"] for g in rest["groups"]] == ["other"]
    sealed = client.simulate_post("/v1/groups/other/seal").json["group"]
    assert sealed["state"] == "sealed"
    assert client.simulate_get("/v1/groups", params={"state": "sealed"}).json["groups"][0][
        "id"] == "other"  # fmt: skip
    assert client.simulate_delete("/v1/groups/nightly-42").status_code == 200
    assert store.jobs(job_id="Q:1")[0].state == "unwatched"
    assert client.simulate_get("/v1/groups/nightly-42").status_code == 404
    assert client.simulate_post("/v1/groups/nope/seal").status_code == 404


def test_bad_input_names_every_path_and_changes_nothing(api: Client) -> None:
    client, store = api
    answer = client.simulate_put("/v1/groups/g", json={
        "expect": 0, "fail_fast": "yes", "notify": ["nope"], "labels": {"Bad": "x"},
        "metadata": [1], "deadline": "2001-01-01T00:00:00Z", "events": ["group.done"],
        "callback_url": "https://evil.example.net/x"})  # fmt: skip
    assert answer.status_code == 422
    paths = sorted(d["path"].split("[")[0] for d in answer.json["details"])
    assert paths == ["callback_url", "deadline", "events", "expect", "fail_fast", "labels",
                     "metadata", "notify"]  # fmt: skip
    assert client.simulate_put("/v1/groups/a%01b", json={}).status_code == 422
    assert store.groups() == []
    reader = {"Authorization": "Bearer " + "r" * 40}
    assert client.simulate_put("/v1/groups/g", json={}, headers=reader).status_code == 403
    paths_doc = client.simulate_get("/v1/openapi.json").json["paths"]
    assert {"put", "get", "delete"} <= set(paths_doc["/v1/groups/{group_id}"])


def test_joining_an_ended_group_is_409_and_moving_is_422(api: Client) -> None:
    client, store = api
    client.simulate_put("/v1/groups/g", json={"sealed": True})
    client.simulate_post("/v1/jobs", json={"id": "J:1", "group": "g"})
    store.group_filters = {}
    [job] = store.claim_jobs(1e12, 10)
    from notifier.store import JobUpdate

    store.apply_polls([JobUpdate("J:1", "done", "DELIVERED", 100, {"id": "J:1"}, job.registered_at,
                                 None, None, None, group="g")])  # fmt: skip
    assert client.simulate_get("/v1/groups/g").json["group"]["state"] == "completed"
    answer = client.simulate_post("/v1/jobs", json={"id": "J:2", "group": "g"})
    assert answer.status_code == 409 and "has ended" in answer.json["error"]
    assert store.jobs(job_id="J:2") == []
    answer = client.simulate_post("/v1/jobs", json={"id": "J:1", "group": "h"})
    assert answer.status_code == 422


def test_config_groups_are_checked_with_their_key_paths() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + """
groups:
  - {id: a, notify: [nope], expect: 0, fail_fast: maybe}
  - {id: a, sealed: true}
jobs:
  - {id: "Q:1", group: b}
""")  # fmt: skip
    text = "\n".join(caught.value.problems)
    for expected in ("groups[0].notify[0]: unknown callback 'nope'", "groups[0].expect",
                     "groups[0].fail_fast", "groups[1].id: duplicate group id 'a'",
                     "groups[1].sealed: only over the API",
                     "jobs[0].group: group 'b' is not declared"):  # fmt: skip
        assert expected in text, text


def test_cli_groups_seal_and_watch_into_an_ended_group(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(BASE + f"state_path: {tmp_path / 'state.db'}\n")
    assert cli(config, "watch", "Q:1", "Q:2", "--group", "run-1").returncode == 0
    listed = cli(config, "groups")
    assert listed.returncode == 0 and "run-1" in listed.stdout and "0/2" in listed.stdout
    shown: Any = json.loads(cli(config, "groups", "run-1", "--json").stdout)
    assert [m["id"] for m in shown["group"]["members"]] == ["Q:1", "Q:2"]
    assert shown["group"]["state"] == "open"
    sealed = cli(config, "seal", "run-1")
    assert sealed.returncode == 0 and "run-1: sealed" in sealed.stdout
    missing = cli(config, "seal", "nope")
    assert missing.returncode == 2 and "no group 'nope'" in missing.stderr
    assert json.loads(cli(config, "groups", "--state", "open", "--json").stdout)["groups"] == []


def test_a_groups_callback_url_gets_its_events(api: Client) -> None:
    client, store = api
    answer = client.simulate_put("/v1/groups/cb", json={
        "sealed": True, "callback_url": "https://hooks.example.com/runs/cb"})  # fmt: skip
    assert answer.status_code == 201, answer.text
    client.simulate_post("/v1/jobs", json={"id": "C:1", "group": "cb", "notify": []})
    [job] = store.claim_jobs(1e12, 10)
    from notifier.store import JobUpdate

    store.apply_polls([JobUpdate("C:1", "done", "DELIVERED", 100, {"id": "C:1"}, job.registered_at,
                                 None, None, None, group="cb")])  # fmt: skip
    [delivery] = [d for d in store.deliveries() if d.event == "group.completed"]
    assert delivery.callback == "url:https://hooks.example.com:443"
    assert delivery.target_url == "https://hooks.example.com/runs/cb"


def test_ids_with_a_slash_are_addressable_with_their_actions(api: Client) -> None:
    client, _ = api
    assert client.simulate_put("/v1/groups/team%2Fnightly", json={"name": "n"}).status_code == 201
    assert client.simulate_get("/v1/groups/team%2Fnightly").json["group"]["id"] == "team/nightly"
    sealed = client.simulate_post("/v1/groups/team%2Fnightly/seal")
    assert sealed.status_code == 200 and sealed.json["group"]["state"] == "sealed"
    assert client.simulate_post("/v1/groups/team%2Fnightly/ack").status_code == 200
    assert client.simulate_post("/v1/groups/team%2Fnightly/nope").status_code == 404
    client.simulate_post("/v1/jobs", json={"id": "Q:a/b"})
    assert client.simulate_post("/v1/jobs/Q:a%2Fb/ack").json["ack"]["by"] == "w"
    assert client.simulate_delete("/v1/groups/team%2Fnightly").status_code == 200
