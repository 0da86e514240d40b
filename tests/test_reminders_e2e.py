"""Issue 23.4 end to end: a FAILED job is sent again every ``remind_every`` (webhook and
email, each reminder its own delivery with ``data.reminder`` and ``data.first_sent_at``)
until it is acknowledged; an acknowledged job gets none; the ack shows in ``status``,
``status --json`` and the API; an ack of an unknown id is refused.

``remind_every`` cannot be under a minute, so the test waits one real minute: the
SQLite and the PostgreSQL daemons run at the same time to wait it once. The daemons run
as subprocesses against the Datasaur stand-in, a webhook receiver and an SMTP sink.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from notifier.standins.receiver import ReceivedWebhook, WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from tests.conftest import base_config, email, webhook
from tests.support.daemon import DaemonProcess, cli, write_config
from tests.support.smtp import SmtpSink, free_port
from tests.support.waiting import wait_until
from tests.test_api_e2e import Client, api_section

REMINDED = "ExportQueue:00000234-0000-4000-8000-00000000000{}"
ACKED = "ExportQueue:00000234-0000-4000-8000-00000000001{}"


def hooks_of(receiver: WebhookReceiver, job_id: str) -> list[ReceivedWebhook]:
    return [h for h in receiver.received if h.json["data"].get("job_id") == job_id]


def mails_about(smtp: SmtpSink, job_id: str) -> list[str]:
    return [str(m.message["Subject"]) for m in smtp.messages if job_id in m.message.as_string()]


def test_reminders_repeat_until_acknowledged_on_both_stores(
    tmp_path: Path,
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    smtp: SmtpSink,
    postgres_url: str,
) -> None:
    daemons: dict[str, tuple[DaemonProcess, Client]] = {}
    for n, kind in enumerate(("sqlite", "postgres")):
        (tmp_path / kind).mkdir()
        for job_id in (REMINDED.format(n), ACKED.format(n)):
            simulator.set_job(job_id, "IN_PROGRESS", 10)
        port = free_port()
        remind = {"remind_every": "1m", "remind_max": 3}
        config = base_config(
            simulator,
            tmp_path / kind,
            callbacks={"hook": webhook(receiver, **remind), "mail": email(smtp, **remind)},
            jobs=[{"id": REMINDED.format(n)}, {"id": ACKED.format(n)}],
            api=api_section(port),
        )
        if kind == "postgres":
            del config["state_path"]
            config["state_url"] = postgres_url
        path = write_config(tmp_path / kind / "config.yaml", config)
        daemons[kind] = (DaemonProcess(path).start(), Client(f"http://127.0.0.1:{port}"))
    try:
        remind_until_acknowledged(daemons, simulator, receiver, smtp)
    finally:
        for daemon, _ in daemons.values():
            if daemon.alive():
                daemon.stop()


def remind_until_acknowledged(
    daemons: dict[str, tuple[DaemonProcess, Client]],
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    smtp: SmtpSink,
) -> None:
    for daemon, _ in daemons.values():
        daemon.wait_for_log("api on")

    for n in range(2):
        simulator.set_job(REMINDED.format(n), "FAILED", 40)
        simulator.set_job(ACKED.format(n), "FAILED", 40)
    for n, (daemon, client) in enumerate(daemons.values()):
        acked = ACKED.format(n)
        wait_until(lambda: hooks_of(receiver, acked), timeout=20, message=daemon.output)
        if n == 0:
            result = cli(daemon.config, "ack", acked, "--comment", "on it")
            assert result.returncode == 0, result.stderr
            assert "acknowledged" in result.stdout
        else:
            answer = client.call("POST", f"/v1/jobs/{acked}/ack", json={"comment": "on it"})
            assert answer.status_code == 200, answer.text
            assert answer.json()["ack"]["by"] == "pipelines"

    # A minute after the first delivery: reminder 1 of the job nobody acknowledged.
    for n, (daemon, _) in enumerate(daemons.values()):
        job_id = REMINDED.format(n)
        reminded = receiver.wait_for(
            lambda h, j=job_id: h.json["data"].get("job_id") == j and "reminder" in h.json["data"],
            timeout=90,
        )
        first, again = hooks_of(receiver, job_id)[0], reminded[0]
        assert again.json["type"] == "job.failed" and again.json["data"]["reminder"] == 1
        assert again.json["data"]["first_sent_at"].endswith("Z")
        assert again.headers["webhook-id"] != first.headers["webhook-id"]
        assert again.signature_ok
        assert again.received_at - first.received_at >= 59
        wait_until(lambda j=job_id: any(s.startswith("[datasaur-notifier] reminder 1:")
                                        for s in mails_about(smtp, j)), timeout=10)  # fmt: skip
    # Its reminder would have been due within a second or two of the other's.
    since = time.time()
    wait_until(lambda: time.time() >= since + 3, timeout=5)
    for n, (daemon, _) in enumerate(daemons.values()):
        acked = ACKED.format(n)
        assert [d["event"] for d in outbox(daemon.config, acked)] == ["job.failed"] * 2
        assert [h.json["data"].get("reminder") for h in hooks_of(receiver, acked)] == [None]
        assert [s for s in mails_about(smtp, acked) if "reminder" in s] == []

    for n, (daemon, client) in enumerate(daemons.values()):
        acked = ACKED.format(n)
        status = json.loads(cli(daemon.config, "status", "--json").stdout)["jobs"]
        acks = {job["id"]: job["ack"] for job in status}
        assert acks[REMINDED.format(n)] is None
        assert acks[acked]["comment"] == "on it"
        assert acks[acked]["by"] == ("cli" if n == 0 else "pipelines")
        assert "ACK" in cli(daemon.config, "status").stdout
        job = client.call("GET", f"/v1/jobs/{acked}").json()["job"]
        assert job["ack"] == acks[acked]
        unknown = cli(daemon.config, "ack", "ExportQueue:nope")
        assert unknown.returncode == 2 and "no job or group 'ExportQueue:nope'" in unknown.stderr
        missing = client.call("POST", "/v1/jobs/ExportQueue:nope/ack", json={})
        assert missing.status_code == 422, missing.text
        assert missing.json()["details"][0]["path"] == "job_id"
        assert daemon.stop() == 0


def test_reminders_under_a_minute_are_a_config_error(
    tmp_path: Path, simulator: DatasaurSimulator, receiver: WebhookReceiver
) -> None:
    config = base_config(
        simulator, tmp_path, callbacks={"hook": webhook(receiver, remind_every="30s")}
    )
    result = cli(write_config(tmp_path / "config.yaml", config), "check-config")
    assert result.returncode == 2
    assert "callbacks.hook.remind_every" in result.stderr and "at least 1m" in result.stderr
    assert "Traceback" not in result.stderr


def outbox(config: Path, job_id: str) -> list[dict[str, Any]]:
    result = cli(config, "deliveries", "--json", "--job", job_id)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout)["deliveries"])
