"""The registration API end to end: `datasaur-notifier run` with an `api:` section.

Real simulator, real receivers, the daemon as a subprocess, requests over loopback.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from openapi_spec_validator import validate

from notifier.standins.receiver import WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from tests.conftest import base_config, webhook
from tests.support.daemon import DaemonProcess, cli
from tests.support.waiting import wait_until

WRITE_TOKEN = "w" * 20 + "-write-token-0123456789"
READ_TOKEN = "r" * 20 + "-read-token-0123456789ab"
CALLBACK_SECRET = "whsec_dGhlLWNhbGxiYWNrLXNlY3JldC1mb3ItdGVzdHM="


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def api_section(port: int, *prefixes: str) -> dict[str, Any]:
    return {
        "listen": f"127.0.0.1:{port}",
        "tokens": [
            {"name": "pipelines", "token": WRITE_TOKEN, "scope": "write"},
            {"name": "dashboards", "token": READ_TOKEN, "scope": "read"},
        ],
        "allow_callback_urls": list(prefixes),
        "callback_secret": CALLBACK_SECRET,
    }


class Client:
    """Requests to the daemon's API with a token."""

    def __init__(self, base: str, token: str | None = WRITE_TOKEN) -> None:
        self.base = base
        self.token = token

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        kwargs.setdefault("timeout", 10)
        return requests.request(method, self.base + path, headers=headers, **kwargs)


@pytest.fixture
def api_daemon(
    tmp_path: Path,
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Callable[..., DaemonProcess],
) -> tuple[DaemonProcess, Client, WebhookReceiver]:
    callback_receiver = WebhookReceiver(secret=CALLBACK_SECRET)
    callback_receiver.start()
    port = free_port()
    config = base_config(
        simulator,
        tmp_path,
        callbacks={"hook": webhook(receiver)},
        api=api_section(port, callback_receiver.url + "/cb/"),
    )
    daemon = daemon_factory(config)
    daemon.wait_for_log("api on")
    yield daemon, Client(f"http://127.0.0.1:{port}"), callback_receiver
    callback_receiver.stop()


def test_register_notify_at_callback_url_and_callbacks_then_get_and_delete(
    api_daemon: tuple[DaemonProcess, Client, WebhookReceiver],
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
) -> None:
    daemon, client, callback_receiver = api_daemon
    job_id = "ExportQueue:api/1"
    simulator.set_job(job_id, "IN_PROGRESS", 40)
    answer = client.call(
        "POST",
        "/v1/jobs",
        json={"id": job_id, "name": "export", "callback_url": callback_receiver.url + "/cb/x"},
    )
    assert answer.status_code == 201, answer.text
    job = answer.json()["job"]
    assert (job["id"], job["name"], job["state"], job["source"]) == (
        job_id,
        "export",
        "watching",
        "api",
    )
    assert job["callback_url"] == callback_receiver.url + "/cb/x"
    status = json.loads(cli(daemon.config, "status", "--json").stdout)["jobs"]
    assert set(status[0]) == set(job)  # the same fields as status --json

    simulator.set_job(job_id, "DELIVERED", 100)
    wait_until(lambda: callback_receiver.received and receiver.received, timeout=15)
    sent = callback_receiver.received[0]
    assert sent.path == "/cb/x"
    assert sent.signature_ok is True
    assert sent.json["type"] == "job.delivered"
    assert sent.json["data"]["job_id"] == job_id
    assert receiver.received[0].json["data"]["job_id"] == job_id

    def done() -> dict[str, Any] | None:
        found = client.call("GET", "/v1/jobs/" + quote(job_id, safe=""))
        document = found.json()["job"]
        delivered = [d for d in document["deliveries"] if d["state"] == "delivered"]
        return document if document["state"] == "done" and len(delivered) == 2 else None

    document = wait_until(done, timeout=10)
    callbacks = sorted(d["callback"] for d in document["deliveries"])
    assert callbacks == ["hook", "url:" + callback_receiver.url.replace("http://", "http://")]
    listed = client.call("GET", "/v1/deliveries", params={"job_id": job_id}).json()
    assert len(listed["deliveries"]) == 2 and listed["next_cursor"] is None

    other = client.call("POST", "/v1/jobs", json={"id": "ProjectCreation:2"})
    assert other.status_code == 201
    deleted = client.call("DELETE", "/v1/jobs/ProjectCreation:2")
    assert deleted.status_code == 200
    assert deleted.json()["job"]["state"] == "unwatched"
    assert "token 'pipelines' registered job ExportQueue:api/1" in daemon.run_output
    assert WRITE_TOKEN not in daemon.output


def test_registering_a_known_id_updates_the_given_fields_only(
    api_daemon: tuple[DaemonProcess, Client, WebhookReceiver],
) -> None:
    _, client, _ = api_daemon
    first = client.call(
        "POST", "/v1/jobs", json={"id": "j1", "name": "first", "on_status": ["FAILED"]}
    )
    assert first.status_code == 201
    second = client.call("POST", "/v1/jobs", json={"id": "j1", "notify": ["hook"]})
    assert second.status_code == 200
    job = second.json()["job"]
    assert (job["name"], job["notify"], job["on_status"]) == ("first", ["hook"], ["FAILED"])
    cleared = client.call("POST", "/v1/jobs", json={"id": "j1", "name": None, "on_status": None})
    job = cleared.json()["job"]
    assert (job["name"], job["notify"], job["on_status"]) == (
        None,
        ["hook"],
        ["DELIVERED", "FAILED"],
    )


def test_pages_of_jobs_with_a_cursor(
    api_daemon: tuple[DaemonProcess, Client, WebhookReceiver],
) -> None:
    _, client, _ = api_daemon
    for index in range(5):
        assert client.call("POST", "/v1/jobs", json={"id": f"page-{index}"}).status_code == 201
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "state": "watching"}
        if cursor:
            params["cursor"] = cursor
        page = client.call("GET", "/v1/jobs", params=params).json()
        seen += [job["id"] for job in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == [f"page-{i}" for i in range(5)]


def error(answer: requests.Response) -> tuple[int, str, list[str]]:
    body = answer.json()
    assert set(body) == {"error", "details"}, body
    assert all(set(d) == {"path", "message"} and d["message"] for d in body["details"]), body
    return answer.status_code, body["error"], [d["path"] for d in body["details"]]


def test_every_error_status_is_json_with_its_details(
    api_daemon: tuple[DaemonProcess, Client, WebhookReceiver],
) -> None:
    daemon, client, _callback_receiver = api_daemon
    anonymous = Client(client.base, token=None)
    reader = Client(client.base, token=READ_TOKEN)

    missing = anonymous.call("GET", "/v1/jobs")
    assert error(missing)[0] == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert error(Client(client.base, token="x" * 40).call("GET", "/v1/jobs"))[0] == 401
    assert error(reader.call("POST", "/v1/jobs", json={"id": "r"}))[0] == 403
    assert reader.call("GET", "/v1/jobs").status_code == 200

    assert error(client.call("POST", "/v1/jobs", data=b"{not json", headers=json_type()))[0] == 400
    assert error(client.call("POST", "/v1/jobs", data=b'{"id": "a"}'))[0] == 415
    big = json.dumps({"id": "a", "name": "x" * 70_000}).encode()
    assert error(client.call("POST", "/v1/jobs", data=big, headers=json_type()))[0] == 413
    deep = b"[" * 5000 + b"]" * 5000
    assert error(client.call("POST", "/v1/jobs", data=deep, headers=json_type()))[0] == 400

    cases = {
        "on_status[0]": {"id": "a", "on_status": ["DONE"]},
        "notify[1]": {"id": "a", "notify": ["hook", "nope"]},
        "surprise": {"id": "a", "surprise": 1},
        "id": {"id": ""},
        "callback_url": {"id": "a", "callback_url": "https://hooks.example.com.evil.net/x"},
    }
    for path, body in cases.items():
        status, _, paths = error(client.call("POST", "/v1/jobs", json=body))
        assert (status, paths) == (422, [path]), body
    assert error(client.call("POST", "/v1/jobs", json={"id": "a\x07b"}))[2] == ["id"]
    assert error(client.call("POST", "/v1/jobs", json={"id": "x" * 300}))[2] == ["id"]
    assert error(client.call("GET", "/v1/jobs", params={"state": "nope"}))[2] == ["state"]
    assert error(client.call("GET", "/v1/jobs", params={"cursor": "zzz"}))[2] == ["cursor"]

    assert error(client.call("GET", "/v1/jobs/unknown"))[0] == 404
    assert error(client.call("DELETE", "/v1/jobs/unknown"))[0] == 404
    assert error(client.call("POST", "/v1/deliveries/msg_nope/redeliver"))[0] == 404
    assert error(client.call("GET", "/v1/nothing-here"))[0] == 404
    assert error(client.call("PUT", "/v1/jobs"))[0] == 405
    assert "Traceback" not in daemon.output


def test_every_invalid_field_of_a_request_is_reported_at_once(
    api_daemon: tuple[DaemonProcess, Client, WebhookReceiver],
) -> None:
    daemon, client, _ = api_daemon
    body = {
        "id": "",
        "name": 5,
        "notify": ["hook", "nope", 7],
        "on_status": ["DONE", "FAILED"],
        "callback_url": "https://hooks.example.com.evil.net/x",
        "surprise": 1,
    }
    status, _, paths = error(client.call("POST", "/v1/jobs", json=body))
    assert status == 422
    assert sorted(paths) == sorted(
        ["id", "name", "notify[1]", "notify[2]", "on_status[0]", "callback_url", "surprise"]
    )
    # The daemon's own checks (callback names, URL prefixes) come with the model's.
    known = {"id": "a", "notify": ["nope"], "callback_url": "https://elsewhere.example/x"}
    assert sorted(error(client.call("POST", "/v1/jobs", json=known))[2]) == [
        "callback_url",
        "notify[0]",
    ]
    queries = {
        "/v1/jobs?limit=0&state=nope&cursor=zzz&surprise=1": [
            "limit", "state", "cursor", "surprise"
        ],
        "/v1/deliveries?limit=x&state=nope&job_id=a&job_id=b&cursor=zzz&surprise=1": [
            "limit", "state", "job_id", "cursor", "surprise"
        ],
        # Endpoints that take no query string name each parameter instead of ignoring it.
        "/v1/callbacks?state=dead&callback=hook": ["state", "callback"],
        "/v1/whoami?as=admin": ["as"],
        "/v1/jobs/a?include=deliveries&limit=5": ["include", "limit"],
    }  # fmt: skip
    for path, expected in queries.items():
        status, _, paths = error(client.call("GET", path))
        assert (status, sorted(paths)) == (422, sorted(expected)), path
    assert client.call("POST", "/v1/jobs", json={"id": "kept"}).status_code == 201
    refused = client.call("DELETE", "/v1/jobs/kept?force=1&all=1")
    assert (refused.status_code, sorted(error(refused)[2])) == (422, ["all", "force"])
    assert client.call("GET", "/v1/jobs/kept").json()["job"]["state"] == "watching"
    status, _, paths = error(client.call("POST", "/v1/deliveries/msg_x/redeliver?now=1"))
    assert (status, paths) == (422, ["now"])
    assert "Traceback" not in daemon.output


def json_type() -> dict[str, str]:
    return {"Content-Type": "application/json"}


def test_failed_authentications_are_throttled_per_address(
    api_daemon: tuple[DaemonProcess, Client, WebhookReceiver],
) -> None:
    daemon, client, _ = api_daemon
    wrong = Client(client.base, token="wrong-" + "y" * 40)
    for _ in range(10):
        assert wrong.call("GET", "/v1/jobs").status_code == 401
    throttled = wrong.call("GET", "/v1/jobs")
    assert error(throttled)[0] == 429
    assert int(throttled.headers["Retry-After"]) >= 1
    assert "wrong-" not in daemon.output


def test_openapi_document_validates_and_lists_every_endpoint(
    api_daemon: tuple[DaemonProcess, Client, WebhookReceiver],
) -> None:
    _, client, _ = api_daemon
    document = client.call("GET", "/v1/openapi.json").json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    operations = {(path, method) for path, item in document["paths"].items() for method in item}
    assert operations >= {
        ("/v1/jobs", "post"),
        ("/v1/jobs", "get"),
        ("/v1/jobs/{job_id}", "get"),
        ("/v1/jobs/{job_id}", "delete"),
        ("/v1/deliveries", "get"),
        ("/v1/deliveries/{delivery_id}/redeliver", "post"),
        ("/v1/callbacks", "get"),
        ("/v1/openapi.json", "get"),
        ("/healthz", "get"),
    }


def test_healthz_needs_no_token(api_daemon: tuple[DaemonProcess, Client, WebhookReceiver]) -> None:
    _, client, _ = api_daemon
    answer = Client(client.base, token=None).call("GET", "/healthz")
    assert (answer.status_code, answer.text) == (200, "ok\n")


FAILED_JOB = "ExportQueue:api-failed"
DATASAUR_ERROR = {
    "id": "ExportQueue:api-failed:error:1",
    "stack": "Error: export quota exceeded\n    at exporter (export.js:12:7)",
    "args": {"limit": 5},
}


def test_datasaur_errors_of_a_job_show_in_the_api_and_in_status(
    api_daemon: tuple[DaemonProcess, Client, WebhookReceiver],
    simulator: DatasaurSimulator,
) -> None:
    daemon, client, _ = api_daemon
    simulator.set_job(FAILED_JOB, "FAILED", 30, errors=[DATASAUR_ERROR])
    simulator.set_job("ExportQueue:api-fine", "DELIVERED", 100)
    for job_id in (FAILED_JOB, "ExportQueue:api-fine"):
        assert client.call("POST", "/v1/jobs", json={"id": job_id}).status_code == 201

    def finished(job_id: str) -> dict[str, Any] | None:
        job = client.call("GET", "/v1/jobs/" + quote(job_id, safe="")).json()["job"]
        return job if job["state"] == "done" else None

    failed = wait_until(lambda: finished(FAILED_JOB), timeout=15)
    expected = [{"id": DATASAUR_ERROR["id"], "stack": DATASAUR_ERROR["stack"]}]
    assert failed["errors"] == expected  # id and stack; args are left out
    assert wait_until(lambda: finished("ExportQueue:api-fine"))["errors"] == []
    listed = {job["id"]: job for job in client.call("GET", "/v1/jobs").json()["jobs"]}
    assert listed[FAILED_JOB]["errors"] == expected

    status = json.loads(cli(daemon.config, "status", "--json").stdout)["jobs"]
    by_id = {job["id"]: job for job in status}
    assert by_id[FAILED_JOB]["errors"] == expected
    assert by_id["ExportQueue:api-fine"]["errors"] == []
    table = cli(daemon.config, "status").stdout.splitlines()
    header = table[0].split()
    assert header[-1] == "ERROR", table[0]
    row = next(line for line in table if line.startswith(FAILED_JOB + " "))
    error_column = row[table[0].index("ERROR") :]
    assert error_column == f"{DATASAUR_ERROR['id']}: Error: export quota exceeded"
    fine = next(line for line in table if line.startswith("ExportQueue:api-fine "))
    assert len(fine) <= table[0].index("ERROR")  # nothing in its ERROR column


def test_callbacks_say_where_they_point_by_host_only(
    tmp_path: Path,
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Callable[..., DaemonProcess],
) -> None:
    port = free_port()
    hook = webhook(receiver, "/hooks/T0KEN-in-the-path?sig=s3cr3t")
    hook["url"] = hook["url"].replace("http://", "http://ops:pa55word@")
    mail = {
        "type": "email",
        "smtp_host": "smtp.example.com",
        "smtp_port": 2525,
        "username": "mailer",
        "password": "smtp-pa55word",
        "from": "notifier@example.com",
        "to": ["team@example.com"],
    }
    chat = {"type": "apprise", "url": "json://127.0.0.1:9/ch4t-s3cr3t"}
    config = base_config(
        simulator,
        tmp_path,
        callbacks={"hook": hook, "mail": mail, "chat": chat},
        api=api_section(port),
    )
    daemon = daemon_factory(config)
    daemon.wait_for_log("api on")
    answer = Client(f"http://127.0.0.1:{port}", token=READ_TOKEN).call("GET", "/v1/callbacks")
    pointing = {c["name"]: (c["type"], c["target"]) for c in answer.json()["callbacks"]}
    assert pointing == {
        "hook": ("webhook", f"127.0.0.1:{receiver.port}"),
        "mail": ("email", "smtp.example.com:2525"),
        "chat": ("apprise", "json://"),
    }
    for secret in ("T0KEN", "s3cr3t", "pa55word", "ops", "mailer", "ch4t"):
        assert secret not in answer.text, secret
