"""Issue 11, end to end: ``type: apprise`` callbacks.

The daemon runs as a subprocess; Apprise's ``json://`` and ``form://`` services post to
a local receiver, which records what arrives. The service URL holds a token (given
through ``${VAR}``): it must never appear in what the daemon or the CLI print.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from notifier.standins.receiver import WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from notifier.store import SqliteStore
from tests.conftest import base_config
from tests.support.daemon import DaemonProcess, cli, write_config
from tests.support.waiting import wait_until

Factory = Callable[..., DaemonProcess]
JOB = "AutoLabelQueue:0000000b-0000-4000-8000-000000000001"
TOKEN = "apprise-t0ken-9f8e7d6c"
ENV = {"NOTIFIER_TEST_APPRISE_TOKEN": TOKEN}


def deliveries(config: Path, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """``deliveries --json`` (the config needs the token's variable)."""
    result = cli(config, "deliveries", "--json", env=env)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout)["deliveries"])


def polled(state_dir: Path) -> str | None:
    """The job's status as the daemon last saw it (read from its state file)."""
    store = SqliteStore(state_dir / "state.db")
    try:
        found = store.jobs(job_id=JOB)
    finally:
        store.close()
    return found[0].status if found else None


def service_url(receiver: WebhookReceiver, scheme: str, path: str, user: str = "") -> str:
    host = receiver.url.removeprefix("http://")
    return f"{scheme}://{user}{host}{path}"


def test_apprise_json_sends_title_and_body_and_retries_a_failure_quietly(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    simulator.set_job(JOB, "IN_PROGRESS", 40)
    url = service_url(receiver, "json", "/apprise", "notifier:${NOTIFIER_TEST_APPRISE_TOKEN}@")
    config = base_config(
        simulator,
        tmp_path,
        callbacks={"chat": {"type": "apprise", "url": url}},
        jobs=[{"id": JOB, "name": "autolabel batch 12"}],
    )
    receiver.respond_with(500, count=1)
    daemon = daemon_factory(config, env=ENV)
    wait_until(lambda: polled(tmp_path) == "IN_PROGRESS", message=daemon.output)
    simulator.set_job(JOB, "DELIVERED", 100, result_id="result-1")

    failed, sent = receiver.wait_for(2)
    assert (failed.answered_status, sent.answered_status) == (500, 200)
    assert failed.body == sent.body  # the outbox retried the same message
    assert sent.path == "/apprise"
    assert sent.headers["content-type"].startswith("application/json")
    basic = sent.headers["authorization"].removeprefix("Basic ")
    assert base64.b64decode(basic).decode() == f"notifier:{TOKEN}"  # ${VAR} was expanded
    message = sent.json
    assert message["title"] == "[datasaur-notifier] autolabel batch 12: DELIVERED"
    assert message["type"] == "success"
    body = message["message"]
    assert f"Job:       {JOB}" in body and "Status:    DELIVERED (previously IN_PROGRESS)" in body
    assert "Result id: result-1" in body

    wait_until(
        lambda: [d["state"] for d in deliveries(daemon.config, env=ENV)] == ["delivered"],
        message=daemon.output,
    )
    [row] = deliveries(daemon.config, env=ENV)
    assert (row["callback"], row["event"], row["attempts"]) == ("chat", "job.delivered", 2)
    history = cli(daemon.config, "deliveries", "--id", row["id"], env=ENV)
    assert history.returncode == 0, history.stderr
    assert "failed   JSON: not sent:" in history.stdout and "error=500" in history.stdout
    assert "ok       sent (JSON)" in history.stdout
    daemon.wait_for_log(f"delivery {row['id']} (job.delivered for job {JOB} to chat): failed")
    tested = cli(daemon.config, "test-callback", "chat", env=ENV)
    assert (tested.returncode, tested.stdout.split(" (")[0]) == (0, "callback chat: ok: sent")
    receiver.wait_for(3)
    assert daemon.stop() == 0

    # Neither the URL nor its token, nor any of Apprise's own log lines, reach the output.
    for text in (daemon.output, history.stdout, history.stderr, tested.stdout, tested.stderr):
        assert TOKEN not in text and "json://" not in text
    assert "Traceback" not in daemon.output
    assert "Sent JSON" not in daemon.output and "Loaded JSON URL" not in daemon.output
    # Apprise's reason for the failure is only in the attempt's detail, never a line of its own
    failures = [line for line in daemon.output.splitlines() if "Failed to send" in line]
    assert len(failures) == 1 and f"delivery {row['id']} " in failures[0], failures


def test_apprise_form_renders_the_callbacks_templates(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    simulator.set_job(JOB, "IN_PROGRESS", 40)
    config = base_config(
        simulator,
        tmp_path,
        callbacks={
            "form": {
                "type": "apprise",
                "url": service_url(receiver, "form", "/form"),
                "title_template": "{{ name or job_id }} is {{ status | lower }}",
                "body_template": "{{ job_id }} ended at {{ progress }}% ({{ type }})",
                "events": ["job.failed"],
            }
        },
        jobs=[{"id": JOB, "name": 'export "nightly" & co'}],
    )
    daemon = daemon_factory(config)
    wait_until(lambda: polled(tmp_path) == "IN_PROGRESS", message=daemon.output)
    simulator.set_job(JOB, "FAILED", 70)
    [posted] = receiver.wait_for(1)
    assert posted.path == "/form"
    assert posted.headers["content-type"] == "application/x-www-form-urlencoded"
    assert posted.json is None  # not JSON: the form fields are in the raw body
    form = {key: values[0] for key, values in parse_qs(posted.body.decode()).items()}
    assert form["title"] == 'export "nightly" & co is failed'
    assert form["message"] == f"{JOB} ended at 70% (job.failed)"
    assert form["type"] == "failure"
    wait_until(
        lambda: [d["state"] for d in deliveries(daemon.config)] == ["delivered"],
        message=daemon.output,
    )
    assert daemon.stop() == 0


def test_apprise_config_problems_name_the_key_and_never_show_the_url(
    simulator: DatasaurSimulator, tmp_path: Path
) -> None:
    secret_url = f"nosuchservice://{TOKEN}@example.com/x"
    config = base_config(
        simulator,
        tmp_path,
        callbacks={
            "unknown": {"type": "apprise", "url": secret_url},
            "broken": {
                "type": "apprise",
                "url": "json://127.0.0.1:9/x",
                "body_template": "{{ job_id",
                "title_template": "{{ nope }}",
            },
            "fine": {
                "type": "apprise",
                "url": "json://notifier:${NOTIFIER_TEST_APPRISE_TOKEN}@h/x",
            },
        },
    )
    path = write_config(tmp_path / "config.yaml", config)
    result = cli(path, "check-config", env=ENV)
    assert result.returncode == 2
    problems = sorted(line.split(": ", 1)[1] for line in result.stderr.splitlines())
    assert problems == [
        "callbacks.broken.body_template: template error: unexpected end of template,"
        " expected 'end of print statement'.",
        "callbacks.broken.title_template: template error: 'nope' is undefined",
        "callbacks.unknown.url: not a URL Apprise can use (scheme nosuchservice://; the URL is"
        " not shown: it may hold a token)",
    ]
    assert TOKEN not in result.stdout + result.stderr
    del config["callbacks"]["unknown"], config["callbacks"]["broken"]
    write_config(path, config)
    ok = cli(path, "check-config", env=ENV)
    assert ok.returncode == 0, ok.stderr
    assert TOKEN not in ok.stdout + ok.stderr
    read = cli(path, "deliveries", "--json", env=ENV)  # a read of a fresh state creates none
    assert read.returncode == 1 and "no state" in read.stderr, read.stderr
    assert TOKEN not in read.stdout + read.stderr
