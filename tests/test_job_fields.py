"""Issue 21's registration fields where they come in: the config file's ``jobs[]``, the
API's ``POST /v1/jobs`` (the real application over a real SQLite store) and ``watch``
(the CLI as a subprocess). Bad input: one line with its key path, 422 with every
``details[].path``, exit 2; a refused registration changes nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from falcon import testing

from notifier.api.app import Api
from notifier.config import ConfigError, parse_config
from notifier.config_service import ApiSettings
from notifier.metrics import Health
from notifier.store import SqliteStore
from tests.support.daemon import cli

TOKEN = "t" * 40
BASE = """
datasaur: {token: "%s"}
callbacks:
  hook: {type: webhook, url: "http://127.0.0.1:9/hook"}
""" % ("x" * 40)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + text)
    return caught.value.problems


# --- the config file -------------------------------------------------------------------


def test_config_jobs_take_every_field() -> None:
    config = parse_config(
        BASE
        + """
groups: [{id: nightly-42}]
jobs:
  - id: "AutoLabelQueue:1"
    group: nightly-42
    labels: {team: ml, stage/x: "a,b"}
    metadata: {run: r-17, list: [1, 2]}
    deadline: 2h
    expire_after: 1d
    stall_after: 10m
"""
    )
    [job] = config.jobs
    assert job.group == "nightly-42"
    assert job.labels == {"queue": "AutoLabelQueue", "team": "ml", "stage/x": "a,b"}
    assert job.metadata == {"run": "r-17", "list": [1, 2]}
    assert job.deadline is not None and job.deadline.after == 7200
    assert (job.expire_after, job.stall_after) == (86400, 600)


def test_config_deadline_as_a_time_with_a_zone() -> None:
    config = parse_config(BASE + "jobs: [{id: a, deadline: 2999-01-01T00:00:00Z}]")
    assert config.jobs[0].deadline is not None and config.jobs[0].deadline.at == 32472144000


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"labels": {"Bad": "x"}}, "jobs[0].labels: label key 'Bad'"),
        ({"labels": {f"k{i}": "v" for i in range(33)}}, "jobs[0].labels: at most 32 labels"),
        ({"labels": {"k": "v" * 257}}, "jobs[0].labels: label 'k': value over 256"),
        ({"labels": ["a"]}, "jobs[0].labels: expected a mapping"),
        ({"metadata": [1]}, "jobs[0].metadata: expected a JSON object"),
        ({"metadata": {"x": "y" * 9000}}, "jobs[0].metadata: over 8 KiB encoded"),
        ({"deadline": "2001-01-01T00:00:00Z"}, "jobs[0].deadline: 2001-01-01T00:00:00+00:00 is"
                                               " in the past"),
        ({"deadline": "2999-01-01T00:00:00"}, "jobs[0].deadline: 2999-01-01T00:00:00: give a"
                                              " zone"),
        ({"deadline": "soon"}, "jobs[0].deadline: not a time: 'soon'"),
        ({"group": "a\u0007b"}, "jobs[0].group: must not contain control characters"),
        ({"group": " "}, "jobs[0].group: group id must not be empty"),
        ({"expire_after": "often"}, "jobs[0].expire_after: not a duration"),
    ],
)  # fmt: skip
def test_config_bad_fields_name_their_key_path(entry: dict[str, Any], expected: str) -> None:
    text = yaml.safe_dump({"jobs": [{"id": "a", **entry}]})
    found = problems(text)
    assert len(found) == 1 and found[0].startswith(expected), found


# --- the API ---------------------------------------------------------------------------


@pytest.fixture
def api(tmp_path: Path) -> tuple[testing.TestClient, SqliteStore]:
    store = SqliteStore(tmp_path / "state.db")
    settings = ApiSettings.model_validate(
        {"listen": "127.0.0.1:0", "tokens": [{"name": "w", "token": TOKEN, "scope": "write"}]}
    )
    app = Api(store, settings, {"hook": None}, Health(stall_after=60)).wsgi()  # type: ignore[dict-item]
    yield testing.TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}), store
    store.close()


def post(client: testing.TestClient, body: dict[str, Any]) -> testing.Result:
    return client.simulate_post("/v1/jobs", json=body)


def test_api_registers_and_echoes_the_fields(api: tuple[testing.TestClient, Any]) -> None:
    client, _ = api
    metadata = {"z": 1, "a": {"nested": [True, None, 1.5]}, "token": "opaque"}
    body = {"id": "AutoLabelQueue:1", "group": "g", "labels": {"team": "ml"},
            "metadata": metadata, "deadline": "1h", "stall_after": "5m"}  # fmt: skip
    answer = post(client, body)
    assert answer.status_code == 201, answer.text
    job = answer.json["job"]
    assert (job["group"], job["labels"]) == ("g", {"queue": "AutoLabelQueue", "team": "ml"})
    assert job["metadata"] == metadata and list(job["metadata"]) == ["z", "a", "token"]
    assert job["deadline"].endswith("Z") and job["stall_after"] == 300
    # A later registration without the fields keeps them.
    again = post(client, {"id": "AutoLabelQueue:1", "name": "renamed"}).json["job"]
    assert (again["group"], again["metadata"], again["deadline"]) == (
        "g", metadata, job["deadline"])  # fmt: skip


def test_api_reports_every_bad_field_at_once(api: tuple[testing.TestClient, Any]) -> None:
    client, store = api
    answer = post(client, {"id": "x", "group": "a\nb", "labels": {"A": "1"}, "metadata": [],
                           "deadline": "2001-01-01T00:00:00Z", "expire_after": "x"})  # fmt: skip
    assert answer.status_code == 422
    paths = sorted(d["path"] for d in answer.json["details"])
    assert paths == ["deadline", "expire_after", "group", "labels", "metadata"]
    assert store.jobs() == []


def test_api_metadata_over_8_kib_is_refused(api: tuple[testing.TestClient, Any]) -> None:
    client, _ = api
    answer = post(client, {"id": "x", "metadata": {"blob": "x" * 8200}})
    assert answer.status_code == 422
    assert answer.json["details"][0]["path"] == "metadata"


def test_api_refuses_moving_a_job_to_another_group(api: tuple[testing.TestClient, Any]) -> None:
    client, store = api
    assert post(client, {"id": "J", "group": "a", "name": "one"}).status_code == 201
    answer = post(client, {"id": "J", "group": "b", "name": "two"})
    assert answer.status_code == 422
    assert answer.json["details"] == [{"path": "group", "message": "job J is in group a"}]
    assert (store.jobs()[0].group, store.jobs()[0].name) == ("a", "one")


# --- the CLI ---------------------------------------------------------------------------


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(BASE + f"state_path: {tmp_path / 'state.db'}\n")
    return path


def status_of(config: Path, job_id: str) -> dict[str, Any]:
    jobs = json.loads(cli(config, "status", "--json").stdout)["jobs"]
    return next(job for job in jobs if job["id"] == job_id)


def test_watch_flags_register_every_field(config_file: Path) -> None:
    done = cli(config_file, "watch", "AutoLabelQueue:1", "--group", "g", "--label", "team=ml",
               "--label", "teams=a,b,stage=x", "--metadata", '{"run": "r-1"}',
               "--deadline", "2h", "--expire-after", "1d", "--stall-after", "10m")  # fmt: skip
    assert done.returncode == 0, done.stderr
    job = status_of(config_file, "AutoLabelQueue:1")
    assert job["labels"] == {"queue": "AutoLabelQueue", "team": "ml", "teams": "a,b", "stage": "x"}
    assert (job["group"], job["metadata"]) == ("g", {"run": "r-1"})
    assert (job["expire_after"], job["stall_after"]) == (86400, 600)
    deadline = time.time() + 7200
    assert job["deadline"] is not None and abs(_epoch(job["deadline"]) - deadline) < 60


def _epoch(iso: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(iso).timestamp()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (("--label", "Team=x"), "--label: label key 'Team'"),
        (("--label", "team"), "--label 'team': expected KEY=VALUE"),
        (("--metadata", "[1]"), "--metadata: expected a JSON object"),
        (("--metadata", "{nope"), "--metadata: not JSON"),
        (("--deadline", "2001-01-01T00:00:00Z"), "--deadline: 2001-01-01T00:00:00+00:00 is in"),
        (("--group", "a\x01"), "--group: must not contain control characters"),
        (("--stall-after", "x"), "--stall-after: not a duration"),
    ],
)
def test_watch_bad_flags_exit_2_with_one_line(
    config_file: Path, flags: tuple[str, ...], expected: str
) -> None:
    done = cli(config_file, "watch", "J", *flags)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_watch_refuses_another_group_and_changes_nothing(config_file: Path) -> None:
    assert cli(config_file, "watch", "J", "--group", "a").returncode == 0
    done = cli(config_file, "watch", "K", "J", "--group", "b", "--name", "x")
    assert done.returncode == 2
    assert "job J is in group a" in done.stderr
    jobs = {
        job["id"]: job for job in json.loads(cli(config_file, "status", "--json").stdout)["jobs"]
    }
    assert set(jobs) == {"J"} and (jobs["J"]["group"], jobs["J"]["name"]) == ("a", None)


def test_routes_name_unknown_callbacks_and_bad_matches_with_their_key_path() -> None:
    found = problems(
        """
routes:
  - {match: {team: ml}, notify: [hook, nope]}
  - {match: {Team: ml}, notify: [hook], continue: maybe}
  - {notify: [hook]}
"""
    )
    assert "routes[0].notify[1]: unknown callback 'nope' (known: hook)" in found
    assert any(p.startswith("routes[1].match: label key 'Team'") for p in found), found
    assert any(p.startswith("routes[1].continue: ") for p in found), found
    assert "routes[2].match: required" in found
    assert len(found) == 4, found


def test_check_config_names_an_unknown_callback_in_a_route(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(BASE + "routes: [{match: {team: ml}, notify: [gone]}]\n")
    done = cli(path, "check-config")
    assert done.returncode == 2
    assert "routes[0].notify[0]: unknown callback 'gone' (known: hook)" in done.stderr


def test_api_lists_jobs_by_group_and_labels(api: tuple[testing.TestClient, Any]) -> None:
    client, _ = api
    post(client, {"id": "Q:1", "group": "g", "labels": {"team": "ml", "env": "prod"}})
    post(client, {"id": "Q:2", "group": "g", "labels": {"team": "web"}})
    post(client, {"id": "R:3", "labels": {"team": "ml"}})

    def listed(query: str) -> list[str]:
        answer = client.simulate_get("/v1/jobs", query_string=query)
        assert answer.status_code == 200, answer.text
        return [job["id"] for job in answer.json["jobs"]]

    assert listed("group=g") == ["Q:1", "Q:2"]
    assert listed("label=team=ml") == ["Q:1", "R:3"]
    assert listed("label=team=ml&label=env=prod") == ["Q:1"]
    assert listed("group=g&label=queue=Q") == ["Q:1", "Q:2"]
    assert listed("label=team=ml&label=team=web") == []
    bad = client.simulate_get("/v1/jobs", query_string="label=Team&group=a&group=b")
    assert bad.status_code == 422
    assert sorted(d["path"] for d in bad.json["details"]) == ["group", "label"]


def test_status_filters_by_group_and_labels(config_file: Path) -> None:
    cli(config_file, "watch", "Q:1", "--group", "g", "--label", "team=ml")
    cli(config_file, "watch", "Q:2", "--label", "team=ml")
    cli(config_file, "watch", "R:3", "--group", "g")

    def listed(*flags: str) -> list[str]:
        done = cli(config_file, "status", "--json", *flags)
        assert done.returncode == 0, done.stderr
        return [job["id"] for job in json.loads(done.stdout)["jobs"]]

    assert listed("--group", "g") == ["Q:1", "R:3"]
    assert listed("--label", "team=ml") == ["Q:1", "Q:2"]
    assert listed("--group", "g", "--label", "team=ml", "--label", "queue=Q") == ["Q:1"]
    table = cli(config_file, "status", "--group", "g").stdout
    assert table.splitlines()[0].split()[:3] == ["JOB", "NAME", "GROUP"]
    bad = cli(config_file, "status", "--label", "nokey")
    assert bad.returncode == 2 and "--label 'nokey': expected KEY=VALUE" in bad.stderr
