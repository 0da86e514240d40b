"""End to end: ``datasaur-notifier run`` as a subprocess against real local servers.

The Datasaur simulator validates every query; the webhook receiver checks Standard
Webhooks signatures; email goes to a real SMTP server. Waits have deadlines; nothing
sleeps to synchronise.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from notifier import __version__
from notifier.standins.receiver import ReceivedWebhook, WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from notifier.store import SqliteStore
from tests.conftest import CLIENT_SECRET, WEBHOOK_SECRET, base_config, email, webhook
from tests.support.daemon import DaemonProcess, cli, deliveries, status, write_config
from tests.support.smtp import SmtpSink
from tests.support.waiting import wait_until

Factory = Callable[..., DaemonProcess]
T = TypeVar("T")

JOB_A = "AutoLabelQueue:dcbf6ed3-3841-46c1-8f6a-2affb53ac637"
JOB_B = "ExportQueue:0b1e6a52-4c1c-4d8e-9a57-2b8f6d0e4f11"
JOB_C = "ProjectCreation:7f3c2e1a-0000-4000-8000-000000000003"
JOB_D = "AutoLabelQueue:7f3c2e1a-0000-4000-8000-000000000004"
NAME_A = "autolabel batch 12"

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
PAYLOAD_KEYS = {"type", "timestamp", "data"}
DATA_KEYS = {
    "job_id",
    "name",
    "status",
    "previous_status",
    "progress",
    "result_id",
    "errors",
    "observed_at",
    "job",
    "started_at",
    "duration_s",
    "group",  # the pipeline-run fields every job event carries (issue 21)
    "labels",
    "metadata",
    "deadline",
}
JOB_KEYS = {"id", "name", "status", "progress", "state", "last_polled_at", "next_poll_at"}
JOB_KEYS |= {"last_error"}
DELIVERY_KEYS = {"id", "job_id", "callback", "event", "state", "attempts", "last_error"}
DELIVERY_KEYS |= {"created_at", "delivered_at"}
SECRETS = (CLIENT_SECRET, WEBHOOK_SECRET, WEBHOOK_SECRET.removeprefix("whsec_"))


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Callable[[], SqliteStore]]:
    """Read the daemon's state file directly (to wait on it without spawning CLIs)."""
    opened: list[SqliteStore] = []

    def open_store() -> SqliteStore:
        if not opened:
            opened.append(SqliteStore(tmp_path / "state.db"))
        return opened[0]

    yield open_store
    for store in opened:
        store.close()


def job_state(store: SqliteStore, job_id: str) -> tuple[str, str | None]:
    [job] = store.jobs(job_id=job_id)
    return job.state, job.status


def all_delivered(store: SqliteStore, count: int) -> bool:
    rows = store.deliveries()
    return len(rows) == count and all(row.state == "delivered" for row in rows)


def by_type(received: list[ReceivedWebhook]) -> dict[str, ReceivedWebhook]:
    found: dict[str, ReceivedWebhook] = {}
    for hook in received:
        key = f"{hook.json['type']} {hook.json['data']['job_id']}"
        assert key not in found, f"notified twice: {key}"
        found[key] = hook
    return found


def cli_json(config: Path, command: str, env: dict[str, str]) -> Any:
    """``status --json`` or ``deliveries --json`` with extra environment variables."""
    result = cli(config, command, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)[{"status": "jobs", "deliveries": "deliveries"}[command]]


def in_parallel(*calls: Callable[[], T]) -> list[T]:
    """Run independent CLI invocations at the same time (subprocess start-up dominates)."""
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def assert_queries_valid(simulator: DatasaurSimulator) -> None:
    assert simulator.stats().validation_errors == []


def assert_no_secrets(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def stop_cleanly(daemon: DaemonProcess) -> None:
    assert daemon.stop() == 0, daemon.output
    assert "Traceback" not in daemon.output, daemon.output


# --- notifications -------------------------------------------------------------------


def test_delivered_and_failed_notify_every_target_exactly_once(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    smtp: SmtpSink,
    daemon_factory: Factory,
    tmp_path: Path,
    state: Callable[[], SqliteStore],
) -> None:
    simulator.set_job(JOB_A, "IN_PROGRESS", 40)
    simulator.set_job(JOB_B, "QUEUED", 0)
    config = base_config(
        simulator,
        tmp_path,
        callbacks={
            "hook": webhook(receiver, headers={"X-Team": "data"}),
            "mail": email(smtp),
        },
        jobs=[{"id": JOB_A, "name": NAME_A}, {"id": JOB_B}],
    )
    # Secrets from the environment, one of them through a ${VAR:-default}.
    config["datasaur"]["client_secret"] = "${DSN_TEST_CLIENT_SECRET}"
    config["callbacks"]["hook"]["secret"] = "${DSN_TEST_UNSET_HOOK_SECRET:-" + WEBHOOK_SECRET + "}"
    started = time.time()
    daemon = daemon_factory(config, env={"DSN_TEST_CLIENT_SECRET": CLIENT_SECRET})
    store = state()
    wait_until(
        lambda: (
            job_state(store, JOB_A) == ("watching", "IN_PROGRESS")
            and job_state(store, JOB_B) == ("watching", "QUEUED")
        ),
        message=daemon.output,
    )

    simulator.set_job(JOB_A, "DELIVERED", 100, result_id="result-A")
    failure = [{"id": "err-1", "stack": "Error: out of quota", "args": {"limit": 5}}]
    simulator.set_job(JOB_B, "FAILED", 30, errors=failure)
    receiver.wait_for(2)
    smtp.wait_for(2)
    wait_until(lambda: all_delivered(store, 4), message=daemon.output)
    stop_cleanly(daemon)
    finished = time.time()

    # Webhooks: one per job, signed, with the contract's payload and headers.
    hooks = by_type(receiver.received)
    assert set(hooks) == {f"job.delivered {JOB_A}", f"job.failed {JOB_B}"}
    env = {"DSN_TEST_CLIENT_SECRET": CLIENT_SECRET}
    outbox = {(d["job_id"], d["callback"]): d for d in cli_json(daemon.config, "deliveries", env)}
    assert len(outbox) == 4
    for hook in hooks.values():
        assert hook.signature_ok is True
        assert hook.path == "/hook"
        assert set(hook.json) == PAYLOAD_KEYS
        assert set(hook.json["data"]) == DATA_KEYS
        assert hook.headers["content-type"] == "application/json"
        assert hook.headers["user-agent"] == f"datasaur-notifier/{__version__}"
        assert hook.headers["x-team"] == "data"
        job_id = hook.json["data"]["job_id"]
        assert hook.headers["webhook-id"] == outbox[(job_id, "hook")]["id"]
        assert started - 1 <= int(hook.headers["webhook-timestamp"]) <= finished + 1
        assert ISO_UTC.match(hook.json["timestamp"])
        assert hook.json["data"]["observed_at"] == hook.json["timestamp"]

    delivered = hooks[f"job.delivered {JOB_A}"].json
    job_a = simulator.job(JOB_A)
    assert delivered["type"] == "job.delivered"
    for event in (delivered, hooks[f"job.failed {JOB_B}"].json):  # first seen -> terminal
        started = event["data"].pop("started_at")
        assert started <= event["data"]["observed_at"]
        assert 0 <= event["data"].pop("duration_s") < 30
        queue = event["data"]["job_id"].split(":")[0]  # no run fields given: the defaults
        run_fields = {k: event["data"].pop(k) for k in ("group", "labels", "metadata", "deadline")}
        assert run_fields == {
            "group": None,
            "labels": {"queue": queue},
            "metadata": {},
            "deadline": None,
        }
    assert delivered["data"] == {
        "job_id": JOB_A,
        "name": NAME_A,
        "status": "DELIVERED",
        "previous_status": "IN_PROGRESS",
        "progress": 100,
        "result_id": "result-A",
        "errors": [],
        "observed_at": delivered["timestamp"],
        "job": job_a,
    }
    failed = hooks[f"job.failed {JOB_B}"].json
    assert failed["type"] == "job.failed"
    assert failed["data"] == {
        "job_id": JOB_B,
        "name": None,
        "status": "FAILED",
        "previous_status": "QUEUED",
        "progress": 30,
        "result_id": None,
        "errors": failure,
        "observed_at": failed["timestamp"],
        "job": simulator.job(JOB_B),
    }

    # Email: one per job, subject naming the job and status, Message-ID from the delivery id.
    mails = {m.message["Subject"]: m for m in smtp.messages}
    assert len(smtp.attempts) == 2
    [subject_a] = [s for s in mails if NAME_A in s]
    [subject_b] = [s for s in mails if JOB_B in s]
    assert "DELIVERED" in subject_a and "FAILED" in subject_b
    for subject, job_id, status_text in (
        (subject_a, JOB_A, "DELIVERED"),
        (subject_b, JOB_B, "FAILED"),
    ):
        message = mails[subject]
        assert message.rcpt_tos == ["team@example.com"]
        assert message.mail_from == "notifier@example.com"
        assert outbox[(job_id, "mail")]["id"] in message.message["Message-ID"]
        body = message.message.get_content()
        assert job_id in body and status_text in body
    assert "result-A" in mails[subject_a].message.get_content()
    assert "out of quota" in mails[subject_b].message.get_content()

    # status / deliveries --json: the contract's keys and the final states.
    jobs = {job["id"]: job for job in cli_json(daemon.config, "status", env)}
    assert set(jobs) == {JOB_A, JOB_B}
    for job in jobs.values():
        assert set(job) >= JOB_KEYS
        assert job["state"] == "done"
        assert job["last_error"] is None
        assert ISO_UTC.match(job["last_polled_at"])
        assert job["next_poll_at"] is None
    assert (jobs[JOB_A]["status"], jobs[JOB_A]["progress"], jobs[JOB_A]["name"]) == (
        "DELIVERED",
        100,
        NAME_A,
    )
    assert (jobs[JOB_B]["status"], jobs[JOB_B]["progress"]) == ("FAILED", 30)
    for row in outbox.values():
        assert set(row) >= DELIVERY_KEYS
        assert (row["state"], row["attempts"], row["last_error"]) == ("delivered", 1, None)
        assert row["event"] == ("job.delivered" if row["job_id"] == JOB_A else "job.failed")
        assert ISO_UTC.match(row["created_at"]) and ISO_UTC.match(row["delivered_at"])

    # Both jobs went in one getJobs batch; every query was valid; no secret leaked.
    assert simulator.stats().max_batch_size == 2
    assert_queries_valid(simulator)
    tables = [cli(daemon.config, command, env=env) for command in ("status", "deliveries")]
    assert all(result.returncode == 0 for result in tables)
    assert JOB_A in tables[0].stdout and outbox[(JOB_A, "hook")]["id"] in tables[1].stdout
    documents = json.dumps([jobs, list(outbox.values())])
    assert_no_secrets(daemon.output, documents, *(r.stdout + r.stderr for r in tables))
    assert JOB_A in daemon.output and JOB_B in daemon.output


def test_job_already_delivered_at_registration_notifies_with_a_stable_webhook_id(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
    state: Callable[[], SqliteStore],
) -> None:
    simulator.set_job(JOB_A, "DELIVERED", 100, result_id="r1")
    receiver.respond_with(500, count=1)  # the first attempt fails and is retried
    config = base_config(
        simulator, tmp_path, callbacks={"hook": webhook(receiver)}, jobs=[{"id": JOB_A}]
    )
    daemon = daemon_factory(config)
    first, second = receiver.wait_for(2)
    wait_until(lambda: all_delivered(state(), 1), message=daemon.output)
    stop_cleanly(daemon)

    assert [first.answered_status, second.answered_status] == [500, 200]
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    assert first.signature_ok is True and second.signature_ok is True
    data = second.json["data"]
    assert (second.json["type"], data["status"], data["previous_status"]) == (
        "job.delivered",
        "DELIVERED",
        None,
    )
    [row] = deliveries(daemon.config)
    assert (row["id"], row["state"], row["attempts"]) == (
        first.headers["webhook-id"],
        "delivered",
        2,
    )
    assert len(receiver.received) == 2
    assert_queries_valid(simulator)


def test_notify_and_on_status_filters(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    smtp: SmtpSink,
    daemon_factory: Factory,
    tmp_path: Path,
    state: Callable[[], SqliteStore],
) -> None:
    simulator.set_job(JOB_A, "IN_PROGRESS", 10)
    simulator.set_job(JOB_B, "QUEUED", 0)
    simulator.set_job(JOB_C, "IN_PROGRESS", 10)
    config = base_config(
        simulator,
        tmp_path,
        callbacks={
            "hook-a": webhook(receiver, "/a"),
            "hook-b": webhook(receiver, "/b"),
            "mail": email(smtp),
        },
        jobs=[
            {"id": JOB_A, "notify": ["hook-a"]},
            {"id": JOB_B, "notify": ["hook-b"], "on_status": ["IN_PROGRESS"]},
            {"id": JOB_C, "on_status": ["DELIVERED"]},
        ],
    )
    daemon = daemon_factory(config)
    store = state()
    wait_until(
        lambda: (
            [job_state(store, j)[1] for j in (JOB_A, JOB_B, JOB_C)]
            == ["IN_PROGRESS", "QUEUED", "IN_PROGRESS"]
        ),
        message=daemon.output,
    )

    simulator.set_job(JOB_A, "DELIVERED", 100)
    simulator.set_job(JOB_B, "IN_PROGRESS", 20)
    simulator.set_job(JOB_C, "FAILED", 10)
    wait_until(
        lambda: (
            job_state(store, JOB_A) == ("done", "DELIVERED")
            and job_state(store, JOB_B) == ("watching", "IN_PROGRESS")
            and job_state(store, JOB_C) == ("done", "FAILED")
        ),
        message=daemon.output,
    )
    simulator.set_job(JOB_B, "DELIVERED", 100)
    wait_until(lambda: job_state(store, JOB_B) == ("done", "DELIVERED"), message=daemon.output)
    wait_until(lambda: all_delivered(store, 2), message=daemon.output)
    stop_cleanly(daemon)

    rows = sorted((d["job_id"], d["callback"], d["event"]) for d in deliveries(daemon.config))
    assert rows == sorted(
        [(JOB_A, "hook-a", "job.delivered"), (JOB_B, "hook-b", "job.in_progress")]
    )
    got = sorted(
        (hook.path, hook.json["type"], hook.json["data"]["job_id"]) for hook in receiver.received
    )
    assert got == [("/a", "job.delivered", JOB_A), ("/b", "job.in_progress", JOB_B)]
    in_progress = next(hook for hook in receiver.received if hook.path == "/b").json["data"]
    assert (in_progress["status"], in_progress["previous_status"], in_progress["progress"]) == (
        "IN_PROGRESS",
        "QUEUED",
        20,
    )
    assert smtp.attempts == []
    assert_queries_valid(simulator)


def test_restart_does_not_notify_again_and_unwatches_removed_jobs(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
    state: Callable[[], SqliteStore],
) -> None:
    simulator.set_job(JOB_A, "IN_PROGRESS", 50)
    simulator.set_job(JOB_C, "IN_PROGRESS", 50)
    callbacks = {"hook": webhook(receiver)}
    config = base_config(
        simulator, tmp_path, callbacks=callbacks, jobs=[{"id": JOB_A}, {"id": JOB_C}]
    )
    first = daemon_factory(config)
    store = state()
    wait_until(lambda: job_state(store, JOB_A)[1] == "IN_PROGRESS", message=first.output)
    simulator.set_job(JOB_A, "DELIVERED", 100)
    receiver.wait_for(1)
    wait_until(lambda: all_delivered(store, 1), message=first.output)
    stop_cleanly(first)

    # Restart: JOB_C is no longer in the config, JOB_D is new and already finished.
    simulator.set_job(JOB_D, "DELIVERED", 100)
    config["jobs"] = [{"id": JOB_A}, {"id": JOB_D}]
    second = daemon_factory(config)
    receiver.wait_for(lambda hook: hook.json["data"]["job_id"] == JOB_D)
    wait_until(lambda: all_delivered(store, 2), message=second.output)
    stop_cleanly(second)

    assert sorted(hook.json["data"]["job_id"] for hook in receiver.received) == sorted(
        [JOB_A, JOB_D]
    )
    jobs = status(second.config)
    assert {job_id: job["state"] for job_id, job in jobs.items()} == {
        JOB_A: "done",
        JOB_C: "unwatched",
        JOB_D: "done",
    }
    assert jobs[JOB_C]["next_poll_at"] is None
    assert [row["attempts"] for row in deliveries(second.config)] == [1, 1]
    assert_queries_valid(simulator)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_daemon_with_exit_0(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
    signum: int,
) -> None:
    simulator.set_job(JOB_A, "IN_PROGRESS", 1)
    config = base_config(
        simulator, tmp_path, callbacks={"hook": webhook(receiver)}, jobs=[{"id": JOB_A}]
    )
    daemon = daemon_factory(config)
    wait_until(lambda: simulator.stats().job_polls >= 2, message=daemon.output)
    assert daemon.process is not None
    begun = time.monotonic()
    daemon.signal(signum)
    assert daemon.process.wait(10) == 0, daemon.output
    assert time.monotonic() - begun < 6  # delivery.timeout (2s) plus a few seconds
    assert "shutting down" in daemon.output
    assert "Traceback" not in daemon.output
    assert_no_secrets(daemon.output)


# --- bad configs ---------------------------------------------------------------------


def valid_config(tmp_path: Path) -> dict[str, Any]:
    return {
        "datasaur": {
            "graphql_url": "http://127.0.0.1:9/graphql",
            "client_id": "id",
            "client_secret": CLIENT_SECRET,
        },
        "state_path": str(tmp_path / "state" / "state.db"),
        "callbacks": {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}},
        "jobs": [{"id": JOB_A, "notify": ["hook"]}],
    }


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(config: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = config
        for part in parents:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        node[int(last) if last.isdigit() else last] = value

    return change


BAD_CONFIGS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "unknown key": (_set("polling.intervall", "5s"), "polling.intervall: unknown key"),
    "bad duration": (_set("delivery.timeout", "10 parsecs"), "delivery.timeout: not a duration"),
    "unknown callback in notify": (
        _set("jobs.0.notify", ["hook", "pager"]),
        "jobs[0].notify[1]: unknown callback 'pager'",
    ),
    "duplicate job id": (
        _set("jobs", [{"id": JOB_A}, {"id": JOB_B}, {"id": JOB_A}]),
        f"jobs[2].id: duplicate job id '{JOB_A}'",
    ),
    "empty job id": (_set("jobs", [{"id": ""}]), "jobs[0].id: job id must not be empty"),
    "unknown status": (
        _set("jobs.0.on_status", ["DELIVERED", "FINISHED"]),
        "jobs[0].on_status[1]: unknown status 'FINISHED'",
    ),
    "non-http url": (
        _set("callbacks.hook.url", "ftp://example.com/x"),
        "callbacks.hook.url: not an http(s) URL",
    ),
    "unset variable": (
        _set("datasaur.client_secret", "${DSN_TEST_SURELY_UNSET_VARIABLE}"),
        "datasaur.client_secret: environment variable DSN_TEST_SURELY_UNSET_VARIABLE is not set",
    ),
}


def write_bad(tmp_path: Path, case: str) -> Path:
    config = valid_config(tmp_path)
    change, _ = BAD_CONFIGS[case]
    change(config)
    return write_config(tmp_path / "config.yaml", config)


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_is_named_by_check_config_and_refused_by_run(tmp_path: Path, case: str) -> None:
    path = write_bad(tmp_path, case)
    _, expected = BAD_CONFIGS[case]
    checked, ran = in_parallel(lambda: cli(path, "check-config"), lambda: cli(path, "run"))
    assert checked.returncode == 2, checked
    lines = checked.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}: {expected}"), lines
    assert "Traceback" not in checked.stdout + checked.stderr

    assert ran.returncode == 2, ran
    assert any(expected in line for line in ran.stderr.splitlines()), ran.stderr
    assert "Traceback" not in ran.stdout + ran.stderr
    assert not (tmp_path / "state").exists()  # refused before touching the state


def test_yaml_syntax_error_is_reported_with_its_line(tmp_path: Path) -> None:
    text = yaml.safe_dump(valid_config(tmp_path), sort_keys=False)
    lines = text.splitlines()
    lines.insert(3, "  timeout: [10s")  # line 4
    path = tmp_path / "config.yaml"
    path.write_text("\n".join(lines) + "\n")
    for result in in_parallel(lambda: cli(path, "check-config"), lambda: cli(path, "run")):
        assert result.returncode == 2, result
        [line] = result.stderr.strip().splitlines()
        assert line.startswith(f"{path}: line ")
        assert "YAML" in line
        assert "Traceback" not in result.stderr
        match = re.search(r"line (\d+)", line)
        assert match is not None and 4 <= int(match.group(1)) <= 5, line
    assert not (tmp_path / "state").exists()


def test_check_config_reports_every_problem_on_its_own_line(tmp_path: Path) -> None:
    config = valid_config(tmp_path)
    for case in ("unknown key", "bad duration", "non-http url", "unset variable"):
        BAD_CONFIGS[case][0](config)
    config["jobs"] = [
        {"id": JOB_A, "notify": ["pager"], "on_status": ["FINISHED"]},
        {"id": JOB_A},
        {"id": " "},
    ]
    path = write_config(tmp_path / "config.yaml", config)
    result = cli(path, "check-config")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    expected = [
        "polling.intervall: unknown key",
        "delivery.timeout: not a duration",
        "callbacks.hook.url: not an http(s) URL",
        "DSN_TEST_SURELY_UNSET_VARIABLE is not set",
        "jobs[0].notify[0]: unknown callback 'pager'",
        "jobs[0].on_status[0]: unknown status 'FINISHED'",
        f"jobs[1].id: duplicate job id '{JOB_A}'",
        "jobs[2].id: job id must not be empty",
    ]
    assert len(lines) == len(expected), lines
    for piece in expected:
        assert sum(piece in line for line in lines) == 1, (piece, lines)
    assert all(line.startswith(f"{path}: ") for line in lines)
    assert_no_secrets(result.stdout, result.stderr)


def test_check_config_accepts_a_good_config_and_variable_defaults(tmp_path: Path) -> None:
    config = valid_config(tmp_path)
    config["datasaur"]["client_secret"] = "${DSN_TEST_SURELY_UNSET_VARIABLE:-" + CLIENT_SECRET + "}"
    config["callbacks"]["hook"]["url"] = "${DSN_TEST_HOOK_BASE:-http://127.0.0.1:9}/hook"
    config["callbacks"]["hook"]["secret"] = WEBHOOK_SECRET
    path = write_config(tmp_path / "config.yaml", config)
    result = cli(path, "check-config")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{path}: ok")
    assert_no_secrets(result.stdout, result.stderr)
    bad = cli(path, "check-config", env={"DSN_TEST_HOOK_BASE": "gopher://x"})
    assert bad.returncode == 2
    assert "callbacks.hook.url: not an http(s) URL" in bad.stderr


def test_missing_config_file_is_exit_2(tmp_path: Path) -> None:
    result = cli(tmp_path / "absent.yaml", "check-config")
    assert result.returncode == 2
    assert "cannot read the config file" in result.stderr
    assert "Traceback" not in result.stderr


# --- entry points --------------------------------------------------------------------


def test_console_script_and_python_m_are_the_same_cli(tmp_path: Path) -> None:
    script = shutil.which("datasaur-notifier", path=str(Path(sys.executable).parent))
    assert script is not None, "console script not installed next to the interpreter"
    path = write_config(tmp_path / "config.yaml", valid_config(tmp_path))
    prefixes = ([script], [sys.executable, "-m", "notifier"])

    def run(*args: str) -> Callable[[], subprocess.CompletedProcess[str]]:
        return lambda: subprocess.run(args, capture_output=True, text=True, timeout=30)

    script_check, module_check, script_version, module_version, usage = in_parallel(
        *(run(*prefix, "-c", str(path), "check-config") for prefix in prefixes),
        *(run(*prefix, "--version") for prefix in prefixes),
        run(script),
    )
    for result in (script_check, module_check):
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"{path}: ok")
    assert script_check.stdout == module_check.stdout
    for result in (script_version, module_version):
        assert result.returncode == 0
        assert result.stdout.strip() == f"datasaur-notifier {__version__}"
    assert usage.returncode == 2  # no command: the help, on stdout
    assert usage.stdout.startswith("usage: datasaur-notifier") and "check-config" in usage.stdout


def test_status_and_deliveries_json_on_a_fresh_state(tmp_path: Path) -> None:
    path = write_config(tmp_path / "config.yaml", valid_config(tmp_path))
    result = cli(path, "status", "--json")  # a read creates no state: one line, exit 1
    assert result.returncode == 1 and "no state file at" in result.stderr
    assert not (tmp_path / "state").exists()
    assert cli(path, "migrate").returncode == 0
    result = cli(path, "status", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"jobs": [], "paused_callbacks": []}
    result = cli(path, "deliveries", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"deliveries": [], "paused_callbacks": []}
