"""Issue 4, end to end: the operator CLI, templates, metrics and JSON logs.

The commands run as ``python -m notifier`` subprocesses against real local servers (the
Datasaur simulator, the webhook receiver, the SMTP sink), with the daemon as a real
process; waits are on observable effects, with deadlines. Exceptions, for speed: the
``--help`` checks and the read-only ``status``/``deliveries`` filter variants call
``cli.main`` in-process, and ``/healthz`` going 503 is checked on an in-process
:class:`MetricsServer` (a real scheduler stall is hard to provoke from outside).
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from notifier import cli as cli_module
from notifier.metrics import Health, MetricsServer
from notifier.standins.receiver import WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from notifier.store import SqliteStore, WatchedJob
from tests.conftest import base_config, email, webhook
from tests.support.daemon import DaemonProcess, cli, deliveries, status, write_config
from tests.support.smtp import SmtpSink, free_port
from tests.support.waiting import wait_until

DaemonFactory = Callable[..., DaemonProcess]
FINISHED = "DELIVERED"


def config_file(tmp_path: Path, config: dict[str, Any]) -> Path:
    """Where ``daemon_factory`` writes its config too."""
    return write_config(tmp_path / "config.yaml", config)


def stored_job(tmp_path: Path, job_id: str) -> WatchedJob | None:
    """Read the daemon's state file directly: cheap enough to poll in ``wait_until``."""
    store = SqliteStore(tmp_path / "state.db")
    try:
        found = store.jobs(job_id=job_id)
    finally:
        store.close()
    return found[0] if found else None


def stored_delivery_states(tmp_path: Path) -> dict[str, str]:
    """{job id: delivery state}, read directly from the state file."""
    store = SqliteStore(tmp_path / "state.db")
    try:
        return {d.job_id: d.state for d in store.deliveries()}
    finally:
        store.close()


def in_process(
    capsys: pytest.CaptureFixture[str], config: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """Like ``cli`` without the interpreter start-up, for the cheap read-only commands."""
    capsys.readouterr()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        code = cli_module.main(["-c", str(config), *args])
    except SystemExit as exit_:  # argparse errors
        code = int(exit_.code or 0)
    finally:  # main() points the root logger at this test's captured stderr
        root.handlers[:], root.level = handlers, level
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


def polled_since(tmp_path: Path, job_id: str, since: float) -> bool:
    job = stored_job(tmp_path, job_id)
    return job is not None and job.last_polled_at is not None and job.last_polled_at >= since


def assert_aligned(table: str, headers: list[str]) -> list[str]:
    """The table starts with ``headers``, each at the column its values start at."""
    lines = table.splitlines()
    header = lines[0]
    offsets = [header.index(name) for name in headers]
    assert offsets == sorted(offsets), header
    for row in lines[1:]:
        for offset in offsets[1:]:
            if offset < len(row):  # trailing empty cells are stripped
                # Every cell starts where its header does, after a two-space gap.
                assert row[offset - 2 : offset] == "  " and row[offset] != " ", (header, row)
    return lines[1:]


# --- watch ----------------------------------------------------------------------


def test_watch_without_a_daemon_then_the_daemon_polls_and_notifies(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: DaemonFactory,
    tmp_path: Path,
) -> None:
    simulator.set_job("job-w1", "IN_PROGRESS", 40)
    config = base_config(
        simulator,
        tmp_path,
        callbacks={"hook": webhook(receiver), "other": webhook(receiver, "/other")},
    )
    path = config_file(tmp_path, config)

    result = cli(
        path, "watch", "job-w1", "--name", "nightly batch", "--notify", "hook",
        "--on-status", "DELIVERED",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "watching job-w1" in result.stdout
    job = status(path)["job-w1"]
    assert (job["state"], job["name"], job["source"]) == ("watching", "nightly batch", "cli")
    assert (job["notify"], job["on_status"], job["last_polled_at"]) == (["hook"], [FINISHED], None)

    daemon_factory(config)
    wait_until(lambda: polled_since(tmp_path, "job-w1", 0), message="job-w1 never polled")
    simulator.set_job("job-w1", FINISHED, 100, result_id="r-1")
    [hook] = receiver.wait_for(lambda w: w.path == "/hook", timeout=10)
    assert hook.signature_ok
    assert hook.json["type"] == "job.delivered"
    assert hook.json["data"]["name"] == "nightly batch"
    assert hook.json["data"]["result_id"] == "r-1"
    wait_until(lambda: status(path)["job-w1"]["state"] == "done", timeout=10)
    assert [d["callback"] for d in deliveries(path)] == ["hook"]  # --notify hook only
    assert [w.path for w in receiver.received] == ["/hook"]


def test_watch_while_running_survives_reload_and_restart(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: DaemonFactory,
    tmp_path: Path,
) -> None:
    interval = 2.0
    simulator.set_job("job-live", "IN_PROGRESS", 10)
    simulator.set_job("job-config", "IN_PROGRESS", 10)
    config = base_config(
        simulator,
        tmp_path,
        polling={"interval": f"{interval}s", "max_interval": f"{interval}s", "expire_after": 0},
        callbacks={"hook": webhook(receiver)},
        jobs=[{"id": "job-config"}],
    )
    daemon = daemon_factory(config)
    path = tmp_path / "config.yaml"

    result = cli(path, "watch", "job-live")
    assert result.returncode == 0, result.stderr
    watched_at = time.time()
    wait_until(
        lambda: polled_since(tmp_path, "job-live", watched_at - 1),
        timeout=interval,
        message=f"a running daemon did not poll job-live within polling.interval ({interval}s)",
    )

    # SIGHUP with a config that lists neither job: the config job goes, the watched stays.
    write_config(path, {**config, "jobs": []})
    daemon.signal(signal.SIGHUP)
    daemon.wait_for_log("reloaded")
    jobs = status(path)
    assert jobs["job-live"]["state"] == "watching"
    assert jobs["job-config"]["state"] == "unwatched"

    assert daemon.stop() == 0
    daemon = daemon_factory({**config, "jobs": []})
    assert status(path)["job-live"]["state"] == "watching"
    simulator.set_job("job-live", FINISHED, 100)
    [hook] = receiver.wait_for(1, timeout=3 * interval + 5)
    assert hook.json["data"]["job_id"] == "job-live"
    assert hook.json["type"] == "job.delivered"


def test_watch_rejects_unknown_callback_and_status(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    path = config_file(
        tmp_path, base_config(simulator, tmp_path, callbacks={"hook": webhook(receiver)})
    )

    result = cli(path, "watch", "job-x", "--notify", "hook", "--notify", "nope")
    assert result.returncode == 2
    assert "unknown callback 'nope'" in result.stderr and "hook" in result.stderr
    assert "Traceback" not in result.stderr

    result = cli(path, "watch", "job-x", "--on-status", "FINISHED")
    assert result.returncode == 2
    assert "invalid choice: 'FINISHED'" in result.stderr
    assert "DELIVERED" in result.stderr  # lists the valid statuses

    assert not (tmp_path / "state.db").exists()  # refused before the state was opened


# --- unwatch --------------------------------------------------------------------


def test_unwatch_stops_polling_but_pending_deliveries_still_go_out(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: DaemonFactory,
    tmp_path: Path,
) -> None:
    simulator.set_job("job-u", "IN_PROGRESS", 5)
    receiver.respond_with(503)  # until changed: the job.in_progress event stays pending
    config = base_config(
        simulator,
        tmp_path,
        polling={"interval": "0.2s", "max_interval": "0.2s", "expire_after": 0},
        delivery={"timeout": "2s", "initial_backoff": "0.1s", "max_backoff": "0.3s"},
        callbacks={"hook": webhook(receiver)},
    )
    path = config_file(tmp_path, config)
    assert (
        cli(
            path, "watch", "job-u", "--on-status", "IN_PROGRESS", "--on-status", "DELIVERED"
        ).returncode
        == 0
    )
    daemon_factory(config)
    receiver.wait_for(1)
    [pending] = deliveries(path)
    assert pending["state"] == "pending"

    result = cli(path, "unwatch", "job-u")
    assert result.returncode == 0, result.stderr
    assert "unwatched" in result.stdout
    # Let a poll that was already in flight land, then count: a few more failed
    # attempts (backoff 0.1s to 0.3s) span several poll intervals of 0.2s.
    receiver.wait_for(len(receiver.received) + 1, timeout=10)
    polls = simulator.stats().job_polls
    receiver.wait_for(len(receiver.received) + 3, timeout=10)
    receiver.respond_with(200)
    wait_until(lambda: stored_delivery_states(tmp_path) == {"job-u": "delivered"}, timeout=10)
    assert simulator.stats().job_polls == polls, "an unwatched job was polled"
    job = status(path)["job-u"]
    assert job["state"] == "unwatched" and job["next_poll_at"] is None

    result = cli(path, "unwatch", "no-such-job")
    assert result.returncode == 1
    assert "no watched job 'no-such-job'" in result.stderr


# --- test-callback --------------------------------------------------------------


def test_test_callback_webhook(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    closed = free_port()
    callbacks = {
        "hook": webhook(receiver),
        "closed": {"type": "webhook", "url": f"http://127.0.0.1:{closed}/hook"},
    }
    path = config_file(tmp_path, base_config(simulator, tmp_path, callbacks=callbacks))

    result = cli(path, "test-callback", "hook")
    assert result.returncode == 0, result.stderr
    assert "hook: ok: HTTP 200" in result.stdout
    assert result.stdout.rstrip().endswith("ms)")
    [sent] = receiver.received
    assert sent.signature_ok
    assert sent.json["type"] == "test"
    assert sent.json["data"]["job"]["id"] == sent.json["data"]["job_id"]
    assert sent.json["data"]["status"] == FINISHED

    receiver.respond_with(500, count=1)
    result = cli(path, "test-callback", "hook")
    assert result.returncode == 1
    assert "hook: failed: HTTP 500" in result.stderr

    result = cli(path, "test-callback", "closed")
    assert result.returncode == 1
    assert "closed: failed: connection failed" in result.stderr
    assert "refused" in result.stderr.lower()
    assert "Traceback" not in result.stderr

    result = cli(path, "test-callback", "nope")
    assert result.returncode == 2
    assert "unknown callback 'nope'" in result.stderr


def test_test_callback_email(simulator: DatasaurSimulator, smtp: SmtpSink, tmp_path: Path) -> None:
    path = config_file(tmp_path, base_config(simulator, tmp_path, callbacks={"mail": email(smtp)}))
    result = cli(path, "test-callback", "mail")
    assert result.returncode == 0, result.stderr
    assert "mail: ok: SMTP 250 Message accepted" in result.stdout and "ms)" in result.stdout
    [message] = smtp.wait_for(1)
    assert message.rcpt_tos == ["team@example.com"]
    assert "sample job" in message.message["Subject"]

    smtp.reply_with("550 5.1.1 mailbox unavailable")
    result = cli(path, "test-callback", "mail")
    assert result.returncode == 1
    assert "mail: failed: SMTP 550" in result.stderr


# --- get-job --------------------------------------------------------------------


def test_get_job(simulator: DatasaurSimulator, tmp_path: Path) -> None:
    simulator.set_job("job-g", FINISHED, 100, result_id="res-9")
    path = config_file(tmp_path, base_config(simulator, tmp_path))

    result = cli(path, "get-job", "job-g")
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert (job["id"], job["status"], job["progress"], job["resultId"]) == (
        "job-g", FINISHED, 100, "res-9",
    )  # fmt: skip

    result = cli(path, "get-job", "job-missing")
    assert result.returncode == 1
    assert "job job-missing not found" in result.stderr
    assert result.stdout == ""

    down = base_config(simulator, tmp_path)
    down["datasaur"] = {
        **down["datasaur"],
        "graphql_url": f"http://127.0.0.1:{free_port()}/graphql",
    }
    result = cli(config_file(tmp_path, down), "get-job", "job-g")
    assert result.returncode == 1
    assert "cannot get job job-g" in result.stderr
    assert "refused" in result.stderr.lower()
    assert "Traceback" not in result.stderr

    wrong = base_config(simulator, tmp_path)
    wrong["datasaur"] = {**wrong["datasaur"], "client_secret": "not-the-secret"}
    result = cli(config_file(tmp_path, wrong), "get-job", "job-g")
    assert result.returncode == 1
    assert "refused the client credentials" in result.stderr
    assert "not-the-secret" not in result.stderr
    assert "Traceback" not in result.stderr


# --- status and deliveries ------------------------------------------------------


def test_status_and_deliveries_tables_and_filters(
    capsys: pytest.CaptureFixture[str],
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    smtp: SmtpSink,
    daemon_factory: DaemonFactory,
    tmp_path: Path,
) -> None:
    simulator.set_job("job-a", FINISHED, 100)
    simulator.set_job("job-b", "IN_PROGRESS", 50)
    simulator.set_job("job-e", FINISHED, 100)
    smtp.reply_with("550 5.7.1 rejected")  # a permanent failure: that delivery is dead
    config = base_config(
        simulator,
        tmp_path,
        polling={"interval": "5s", "max_interval": "5s", "expire_after": 0},
        callbacks={"hook": webhook(receiver), "mail": email(smtp)},
        jobs=[
            {"id": "job-a", "name": "alpha", "notify": ["hook"]},
            {"id": "job-b", "notify": ["hook"]},
            {"id": "job-e", "notify": ["mail"]},
        ],
    )
    path = config_file(tmp_path, config)
    assert cli(path, "watch", "job-c").returncode == 0
    assert cli(path, "unwatch", "job-c").returncode == 0
    daemon_factory(config)

    settled = {"job-a": "delivered", "job-e": "dead"}
    wait_until(lambda: stored_delivery_states(tmp_path) == settled, timeout=10)

    # Relative times: wait (with a deadline) until the first polls are a second old.
    def table_with_ago() -> str:
        out = cli(path, "status").stdout
        return out if "ago" in out else ""

    table = wait_until(table_with_ago, timeout=10, interval=0.1)
    headers = ["JOB", "NAME", "STATE", "STATUS", "PROGRESS", "POLLED", "NEXT POLL", "ERROR"]
    rows = {row.split()[0]: row for row in assert_aligned(table, headers)}
    assert set(rows) == {"job-a", "job-b", "job-c", "job-e"}
    polled_col = table.splitlines()[0].index("POLLED")
    next_col = table.splitlines()[0].index("NEXT POLL")
    assert "alpha" in rows["job-a"] and "done" in rows["job-a"]
    assert rows["job-a"][polled_col:].split("  ")[0].endswith("ago")
    assert rows["job-b"][next_col:].startswith("in ")  # polled again within 5s
    assert "unwatched" in rows["job-c"]

    result = in_process(capsys, path, "status", "--state", "done")
    assert sorted(line.split()[0] for line in result.stdout.splitlines()[1:]) == ["job-a", "job-e"]
    result = in_process(capsys, path, "status", "--job", "job-b", "--json")
    assert [job["id"] for job in json.loads(result.stdout)["jobs"]] == ["job-b"]
    result = in_process(capsys, path, "status", "--state", "expired")
    assert result.returncode == 0 and result.stdout.strip() == "no watched jobs"

    table = cli(path, "deliveries").stdout
    headers = ["ID", "JOB", "CALLBACK", "EVENT", "STATE", "ATTEMPTS", "CREATED", "DELIVERED/NEXT"]
    rows = {row.split()[1]: row for row in assert_aligned(table, [*headers, "LAST ERROR"])}
    assert set(rows) == {"job-a", "job-e"}
    assert "job.delivered" in rows["job-a"] and "ago" in rows["job-a"]
    assert "dead" in rows["job-e"] and "SMTP 550" in rows["job-e"]

    result = in_process(capsys, path, "deliveries", "--state", "dead", "--json")
    [dead] = json.loads(result.stdout)["deliveries"]
    assert (dead["job_id"], dead["callback"], dead["attempts"]) == ("job-e", "mail", 1)
    result = in_process(capsys, path, "deliveries", "--job", "job-a")
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and lines[1].split()[1] == "job-a"
    result = in_process(capsys, path, "deliveries", "--state", "pending")
    assert result.stdout.strip() == "no deliveries"
    result = in_process(capsys, path, "deliveries", "--state", "bogus")
    assert result.returncode == 2 and "invalid choice" in result.stderr


# --- simulate -------------------------------------------------------------------


def test_deliveries_id_shows_every_attempt(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: DaemonFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    simulator.set_job("job-h", FINISHED, 100)
    receiver.respond_with(500, count=2)
    config = base_config(simulator, tmp_path, callbacks={"hook": webhook(receiver)})
    config["jobs"] = [{"id": "job-h"}]
    daemon = daemon_factory(config)
    wait_until(lambda: stored_delivery_states(tmp_path).get("job-h") == "delivered", timeout=15)
    daemon.stop()
    [delivery] = deliveries(daemon.config)

    result = in_process(capsys, daemon.config, "deliveries", "--id", delivery["id"], "--json")
    assert result.returncode == 0, result.stderr
    [document] = json.loads(result.stdout)["deliveries"]
    history = document["history"]
    assert [(a["ok"], a["detail"]) for a in history] == [
        (False, "HTTP 500"),
        (False, "HTTP 500"),
        (True, "HTTP 200"),
    ]
    assert all(a["duration_ms"] >= 0 and a["attempted_at"].endswith("Z") for a in history)

    table = in_process(capsys, daemon.config, "deliveries", "--id", delivery["id"])
    assert table.returncode == 0
    assert "ATTEMPTED" in table.stdout and table.stdout.count("HTTP 500") >= 2
    missing = in_process(capsys, daemon.config, "deliveries", "--id", "msg_nope")
    assert missing.returncode == 1 and "no delivery 'msg_nope'" in missing.stderr


@pytest.fixture
def simulate_process() -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "notifier", "simulate", "--port", str(port), "--finish-after", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield process, port
    if process.poll() is None:
        process.kill()
        process.wait(10)
    if process.stdout is not None:
        process.stdout.close()


def test_simulate_serves_datasaur_for_get_job_and_the_daemon(
    simulate_process: tuple[subprocess.Popen[str], int],
    receiver: WebhookReceiver,
    daemon_factory: DaemonFactory,
    tmp_path: Path,
) -> None:
    process, port = simulate_process
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(url + "/_sim/stats", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    wait_until(up, timeout=15, interval=0.05, message="simulate did not start listening")
    config: dict[str, Any] = {
        "datasaur": {"graphql_url": url + "/graphql", "client_id": "me", "client_secret": "any"},
        "state_path": str(tmp_path / "state.db"),
        "polling": {"interval": "0.2s", "max_interval": "0.5s", "expire_after": 0},
        "delivery": {"timeout": "2s", "initial_backoff": "0.1s", "max_backoff": "1s"},
        "callbacks": {"hook": webhook(receiver)},
        "jobs": [{"id": "sim-job-1", "name": "simulated"}],
    }
    path = config_file(tmp_path, config)
    result = cli(path, "get-job", "sim-job-0")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["id"] == "sim-job-0"

    daemon_factory(config)
    [hook] = receiver.wait_for(1, timeout=15)
    assert hook.json["type"] == "job.delivered"
    assert hook.json["data"]["name"] == "simulated"

    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0
    assert process.stdout is not None
    output = process.stdout.read()
    assert f"listening on {url}" in output
    assert "Traceback" not in output


# --- templates ------------------------------------------------------------------

SLACK_BODY = """\
{
  "text": "{{ name }} is {{ status }}",
  "blocks": [
    {"type": "section",
     "text": {"type": "mrkdwn", "text": "*{{ name }}*: {{ status }} ({{ progress }}%)"}}
  ],
  "progress": {{ progress }},
  "job_id": "{{ job_id }}"
}
"""


def test_template_webhook_and_email_render_the_event(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    smtp: SmtpSink,
    daemon_factory: DaemonFactory,
    tmp_path: Path,
) -> None:
    name = 'the "big" batch\nline two\\ end'
    simulator.set_job("job-t", "IN_PROGRESS", 90)
    config = base_config(
        simulator,
        tmp_path,
        callbacks={
            "slack": webhook(receiver, "/slack", format="template", body_template=SLACK_BODY),
            "mail": email(
                smtp,
                subject_template="[{{ status }}] {{ job_id }}",
                body_template="Job {{ job_id }} ended {{ status }} at {{ progress }}%.\n",
            ),
        },
    )
    path = config_file(tmp_path, config)
    check = cli(path, "check-config")
    assert check.returncode == 0, check.stderr
    assert cli(path, "watch", "job-t", "--name", name).returncode == 0
    daemon_factory(config)
    simulator.set_job("job-t", FINISHED, 100)

    [slack] = receiver.wait_for(1)
    assert slack.signature_ok
    assert slack.headers["content-type"] == "application/json"
    body = json.loads(slack.body)
    assert body["text"] == f"{name} is {FINISHED}"
    assert body["blocks"][0]["text"]["text"] == f"*{name}*: {FINISHED} (100%)"
    assert (body["progress"], body["job_id"]) == (100, "job-t")

    [mail] = smtp.wait_for(1)
    assert mail.message["Subject"] == "[DELIVERED] job-t"
    assert mail.message.get_content().strip() == "Job job-t ended DELIVERED at 100%."

    # test-callback goes through the same template, with the sample job.
    result = cli(path, "test-callback", "slack")
    assert result.returncode == 0, result.stderr
    [test] = receiver.wait_for(lambda w: w is not slack and w.path == "/slack")
    assert json.loads(test.body)["text"] == "sample job is DELIVERED"


BODY_TEMPLATE = "callbacks.slack.body_template: "


@pytest.mark.parametrize(
    ("callback", "problem"),
    [
        (
            {"format": "template", "body_template": '{"text": "{{ name "}'},
            BODY_TEMPLATE + "template error",
        ),
        ({"format": "template", "body_template": "text={{ name }}"}, BODY_TEMPLATE + "template"),
        ({"format": "template", "body_template": '{"t": "{{ nope }}"}'}, "'nope' is undefined"),
        ({"format": "template", "body_template": '{"t": {{ 1 / 0 }}}'}, "ZeroDivisionError"),
        ({"format": "template"}, "callbacks.slack: format: template needs a body_template"),
    ],
)
def test_check_config_reports_template_problems_with_the_key_path(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    tmp_path: Path,
    callback: dict[str, Any],
    problem: str,
) -> None:
    callbacks = {"slack": webhook(receiver, **callback)}
    path = config_file(tmp_path, base_config(simulator, tmp_path, callbacks=callbacks))
    result = cli(path, "check-config")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"{path}: callbacks.slack"), line
    assert problem in line, line
    if "body_template" in callback:
        assert line.startswith(f"{path}: {BODY_TEMPLATE}"), line


@pytest.mark.parametrize("key", ["subject_template", "body_template"])
def test_check_config_reports_email_template_problems_with_the_key_path(
    simulator: DatasaurSimulator, smtp: SmtpSink, tmp_path: Path, key: str
) -> None:
    callbacks = {"mail": email(smtp, **{key: "{% if %}"})}
    path = config_file(tmp_path, base_config(simulator, tmp_path, callbacks=callbacks))
    result = cli(path, "check-config")
    assert result.returncode == 2
    assert result.stderr.startswith(f"{path}: callbacks.mail.{key}: template error: ")
    assert len(result.stderr.splitlines()) == 1, result.stderr


def test_check_config_warns_about_jobs_that_notify_nobody(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    jobs = [{"id": "job-a"}, {"id": "job-b", "notify": []}]
    path = config_file(tmp_path, base_config(simulator, tmp_path, jobs=jobs))
    result = cli(path, "check-config")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{path}: ok (0 callbacks, 2 jobs"), result.stdout
    assert result.stderr.splitlines() == [
        "WARNING: jobs[0] ('job-a'): notifies nobody: no callback is configured",
        "WARNING: jobs[1] ('job-b'): notifies nobody: its notify list is empty",
    ]

    callbacks = {"hook": webhook(receiver)}
    jobs = [{"id": "job-a"}, {"id": "job-b", "notify": []}, {"id": "job-c", "notify": ["hook"]}]
    config_file(tmp_path, base_config(simulator, tmp_path, callbacks=callbacks, jobs=jobs))
    result = cli(path, "check-config")
    assert result.returncode == 0, result.stderr
    assert "ok (1 callbacks, 3 jobs" in result.stdout
    assert result.stderr.splitlines() == [
        "WARNING: jobs[1] ('job-b'): notifies nobody: its notify list is empty"
    ]

    del jobs[1]
    config_file(tmp_path, base_config(simulator, tmp_path, callbacks=callbacks, jobs=jobs))
    result = cli(path, "check-config")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr


# --- metrics --------------------------------------------------------------------


def scrape(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """``/metrics`` as {sample name: {sorted labels: value}}."""
    response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_metrics_port_serves_prometheus_metrics_and_healthz(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: DaemonFactory,
    tmp_path: Path,
) -> None:
    simulator.set_job("job-m", "IN_PROGRESS", 10)
    simulator.inject("http_500")  # one failed poll
    port = free_port()
    config = base_config(
        simulator, tmp_path, callbacks={"hook": webhook(receiver)}, jobs=[{"id": "job-m"}]
    )
    daemon_factory(config, args=("--metrics-port", str(port)))
    wait_until(lambda: simulator.stats().job_polls >= 1)
    simulator.set_job("job-m", FINISHED, 100)
    receiver.wait_for(1)

    def delivered_metrics() -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
        samples = scrape(port)
        done = samples.get("notifier_deliveries_total", {})
        counted = done.get((("callback", "hook"), ("state", "delivered")))
        # The counters move just before the outbox row is written: wait for both.
        stored = samples["notifier_outbox"][(("state", "delivered"),)]
        return samples if counted and stored else {}

    samples = wait_until(delivered_metrics, timeout=10, interval=0.05)
    assert samples["notifier_jobs"][(("state", "done"),)] == 1
    assert samples["notifier_jobs"][(("state", "watching"),)] == 0
    assert samples["notifier_job_polls_total"][()] >= 1
    assert sum(samples["notifier_poll_errors_total"].values()) >= 1
    ok = {labels: v for labels, v in samples["notifier_graphql_requests_total"].items()}
    assert any(("outcome", "ok") in labels for labels in ok)
    assert any(v > 0 for v in samples["notifier_graphql_request_seconds_count"].values())
    assert "notifier_graphql_request_seconds_bucket" in samples
    assert (
        samples["notifier_delivery_attempts_total"][(("callback", "hook"), ("outcome", "ok"))] == 1
    )
    assert samples["notifier_outbox"][(("state", "delivered"),)] == 1
    assert samples["notifier_outbox"][(("state", "pending"),)] == 0
    assert samples["notifier_outbox_oldest_pending_seconds"][()] == 0
    assert samples["notifier_notification_latency_seconds_count"][(("callback", "hook"),)] == 1
    assert "notifier_notification_latency_seconds_bucket" in samples

    health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    assert health.status_code == 200
    assert requests.get(f"http://127.0.0.1:{port}/nope", timeout=5).status_code == 404


def test_metrics_port_from_the_config_and_backlog_age(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: DaemonFactory,
    tmp_path: Path,
) -> None:
    simulator.set_job("job-p", FINISHED, 100)
    receiver.respond_with(503)  # stays pending
    port = free_port()
    config = base_config(
        simulator,
        tmp_path,
        callbacks={"hook": webhook(receiver)},
        jobs=[{"id": "job-p"}],
        metrics={"port": port},
    )
    daemon_factory(config)
    receiver.wait_for(1)

    def backlog() -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
        samples = scrape(port)
        attempts = samples.get("notifier_delivery_attempts_total", {})
        failed = attempts.get((("callback", "hook"), ("outcome", "failed")), 0)
        aged = samples["notifier_outbox_oldest_pending_seconds"][()] > 0
        return samples if failed and aged else {}

    samples = wait_until(backlog, timeout=10, interval=0.05)
    assert samples["notifier_outbox"][(("state", "pending"),)] == 1
    assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200


def test_healthz_answers_503_when_the_scheduler_stalls(tmp_path: Path) -> None:
    health = Health(stall_after=60)
    server = MetricsServer(health, "127.0.0.1", 0)
    server.start()
    url = f"http://127.0.0.1:{server.port}/healthz"
    try:
        assert requests.get(url, timeout=5).status_code == 200
        health.stall_after = 0.05  # no tick for longer than that: stalled
        wait_until(lambda: requests.get(url, timeout=5).status_code == 503, timeout=5)
        assert not health.healthy()
        assert "stalled" in requests.get(url, timeout=5).text
        health.stall_after = 60
        health.ticked()
        assert requests.get(url, timeout=5).status_code == 200
        health.store_error = "state database: connection refused"
        reply = requests.get(url, timeout=5)
        assert (reply.status_code, reply.text) == (503, "state store unavailable\n")
    finally:
        server.stop()


# --- logs and help --------------------------------------------------------------


def test_log_format_json_makes_every_daemon_line_json(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: DaemonFactory,
    tmp_path: Path,
) -> None:
    simulator.set_job("job-l", FINISHED, 100)
    receiver.respond_with(500, count=1)  # a warning-level retry line too
    config = base_config(
        simulator, tmp_path, callbacks={"hook": webhook(receiver)}, jobs=[{"id": "job-l"}]
    )
    daemon = daemon_factory(config, args=("--log-format", "json"))
    receiver.wait_for(2)
    path = tmp_path / "config.yaml"
    wait_until(lambda: stored_delivery_states(tmp_path) == {"job-l": "delivered"})
    write_config(path, {**config, "polling": "bad"})
    daemon.signal(signal.SIGHUP)
    daemon.wait_for_log("keeping the previous one")
    assert daemon.stop() == 0

    lines = daemon.output.splitlines()
    assert len(lines) >= 5
    levels = set()
    for line in lines:
        entry = json.loads(line)
        assert {"time", "level", "message"} <= set(entry), line
        assert entry["time"].endswith("Z")
        levels.add(entry["level"])
    assert {"info", "error"} <= levels
    messages = " ".join(json.loads(line)["message"] for line in lines)
    assert "running:" in messages and "stopped" in messages
    assert WEBHOOK_SECRET_FRAGMENT not in daemon.output


WEBHOOK_SECRET_FRAGMENT = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

COMMANDS = [
    "run",
    "check-config",
    "status",
    "deliveries",
    "watch",
    "unwatch",
    "redeliver",
    "test-callback",
    "get-job",
    "demo",
    "simulate",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_for_every_command(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_module.main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: datasaur-notifier {command}")
    assert "-c CONFIG, --config CONFIG" in out and "--log-format" in out
    # The description is the one-line summary also shown in the top-level help.
    assert len(out.split("\n\n")) >= 3


def test_top_level_help_lists_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = cli(tmp_path / "unused.yaml", "--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert f"    {command}" in result.stdout, command
    for command, option in [
        ("run", "--metrics-port PORT"),
        ("watch", "--on-status STATUS"),
        ("watch", "--notify CALLBACK"),
        ("watch", "--name NAME"),
        ("status", "--state {watching,done,expired,unwatched}"),
        ("deliveries", "--job JOB_ID"),
        ("deliveries", "--json"),
        ("simulate", "--port PORT"),
    ]:
        with pytest.raises(SystemExit):
            cli_module.main([command, "--help"])
        assert option in capsys.readouterr().out, (command, option)


def test_bash_completion_offers_commands_and_their_options(tmp_path: Path) -> None:
    script = tmp_path / "completion.bash"
    result = subprocess.run(
        [sys.executable, "-m", "notifier", "completion"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    script.write_text(result.stdout)

    def complete(*words: str) -> set[str]:
        probe = (
            f"source {script}; COMP_WORDS=(datasaur-notifier {' '.join(words)}); "
            f"COMP_CWORD={len(words)}; _datasaur_notifier; echo ${{COMPREPLY[@]}}"
        )
        done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
        return set(done.stdout.split())

    assert {"status", "simulate"} <= complete("s")
    assert complete("-c", "cfg.yaml", "deliveries", "--") >= {"--json", "--state", "--job", "--id"}
    assert complete("run", "--m") == {"--metrics-port"}
