"""Issue 11, end to end: per-callback ``events`` filters and stalled jobs.

The daemon runs as a subprocess against the Datasaur simulator, a webhook receiver and
an SMTP sink; waits are on observable effects (the receiver, the state file), with
deadlines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from notifier.standins.receiver import ReceivedWebhook, WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from notifier.store import SqliteStore, WatchedJob
from tests.conftest import base_config, email, webhook
from tests.support.daemon import DaemonProcess, cli, deliveries
from tests.support.smtp import SmtpSink
from tests.support.waiting import wait_until

Factory = Callable[..., DaemonProcess]
DELIVERED_JOB = "AutoLabelQueue:0000000a-0000-4000-8000-000000000001"
FAILED_JOB = "ExportQueue:0000000a-0000-4000-8000-000000000002"
STUCK_JOB = "AutoLabelQueue:0000000a-0000-4000-8000-000000000003"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def stored(tmp_path: Path) -> Iterator[Callable[[str], WatchedJob]]:
    """``stored(job_id)``: the job as the daemon's state file has it now."""
    store = SqliteStore(tmp_path / "state.db")

    def read(job_id: str) -> WatchedJob:
        [job] = store.jobs(job_id=job_id)
        return job

    yield read
    store.close()


def of_type(receiver: WebhookReceiver, event: str) -> list[ReceivedWebhook]:
    return [hook for hook in receiver.received if hook.json and hook.json["type"] == event]


def test_a_callback_with_an_events_filter_receives_only_those_events(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    simulator.set_job(DELIVERED_JOB, "IN_PROGRESS", 40)
    simulator.set_job(FAILED_JOB, "IN_PROGRESS", 40)
    config = base_config(
        simulator,
        tmp_path,
        callbacks={
            "everything": webhook(receiver, "/everything"),
            "failures": webhook(receiver, "/failures", events=["job.failed"]),
        },
        jobs=[{"id": DELIVERED_JOB}, {"id": FAILED_JOB}],
    )
    daemon = daemon_factory(config)
    simulator.set_job(DELIVERED_JOB, "DELIVERED", 100)
    simulator.set_job(FAILED_JOB, "FAILED", 60)
    receiver.wait_for(3)
    wait_until(
        lambda: all(d["state"] == "delivered" for d in deliveries(daemon.config)),
        message=daemon.output,
    )
    outbox = {(d["job_id"], d["callback"], d["event"]) for d in deliveries(daemon.config)}
    assert outbox == {
        (DELIVERED_JOB, "everything", "job.delivered"),
        (FAILED_JOB, "everything", "job.failed"),
        (FAILED_JOB, "failures", "job.failed"),
    }
    got = sorted((hook.path, hook.json["type"]) for hook in receiver.received)
    assert got == [
        ("/everything", "job.delivered"),
        ("/everything", "job.failed"),
        ("/failures", "job.failed"),
    ]
    assert all(hook.signature_ok for hook in receiver.received)
    daemon.wait_for_log(f"job {DELIVERED_JOB}: job.delivered, notifying everything")
    daemon.wait_for_log(f"job {FAILED_JOB}: job.failed, notifying everything, failures")
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.output


def test_a_job_that_stops_moving_fires_job_stalled_once_per_stall(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    smtp: SmtpSink,
    daemon_factory: Factory,
    tmp_path: Path,
    stored: Callable[[str], WatchedJob],
) -> None:
    simulator.set_job(STUCK_JOB, "IN_PROGRESS", 40)
    config = base_config(
        simulator,
        tmp_path,
        polling={
            "interval": "0.2s",
            "max_interval": "0.5s",
            "expire_after": 0,
            "stall_after": "1s",
        },
        callbacks={
            "hook": webhook(receiver),
            # the filter takes job.stalled like any other event
            "mail": email(smtp, events=["job.stalled"]),
            "ends-only": webhook(receiver, "/ends", events=["job.delivered", "job.failed"]),
        },
        jobs=[{"id": STUCK_JOB, "name": "stuck export"}],
    )
    daemon = daemon_factory(config)

    [first] = receiver.wait_for(lambda hook: hook.json["type"] == "job.stalled", timeout=15)
    data = first.json["data"]
    assert first.path == "/hook" and first.signature_ok
    assert (data["job_id"], data["name"], data["status"], data["progress"]) == (
        STUCK_JOB,
        "stuck export",
        "IN_PROGRESS",
        40,
    )
    assert 1.0 <= data["stalled_for_s"] < 5.0
    assert ISO_UTC.match(data["stalled_since"]) and data["stalled_since"] < data["observed_at"]
    [mail] = smtp.wait_for(1)
    subject = str(mail.message["Subject"]).strip()
    assert subject.startswith("[datasaur-notifier] stuck export: STALLED (IN_PROGRESS, no change")
    body = mail.message.get_content()
    assert "Event:     job.stalled" in body and "Stalled:   no change since" in body

    # It keeps being polled, and the same stall is not notified again.
    fired_at = first.received_at
    wait_until(
        lambda: (stored(STUCK_JOB).last_polled_at or 0) > fired_at + 1.5, message=daemon.output
    )
    assert len(of_type(receiver, "job.stalled")) == 1
    job = stored(STUCK_JOB)
    assert (job.state, job.stalls, job.stalled) == ("watching", 1, True)

    # It moves, then stalls again: a second, separate notification.
    simulator.set_job(STUCK_JOB, "IN_PROGRESS", 60)
    wait_until(lambda: stored(STUCK_JOB).progress == 60, message=daemon.output)
    stalls = receiver.wait_for(
        lambda hook: hook.json["type"] == "job.stalled" and hook.json["data"]["progress"] == 60,
        timeout=15,
    )
    [second] = stalls
    assert second.json["data"]["stalled_for_s"] >= 1.0
    assert second.headers["webhook-id"] != first.headers["webhook-id"]
    smtp.wait_for(2)
    wait_until(
        lambda: all(d["state"] == "delivered" for d in deliveries(daemon.config)),
        message=daemon.output,
    )
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.output

    rows = [d for d in deliveries(daemon.config) if d["event"] == "job.stalled"]
    assert sorted((d["callback"], d["occurrence"]) for d in rows) == [
        ("hook", 1),
        ("hook", 2),
        ("mail", 1),
        ("mail", 2),
    ]
    ids = {d["occurrence"]: d["id"] for d in rows if d["callback"] == "hook"}
    assert (ids[1], ids[2]) == (first.headers["webhook-id"], second.headers["webhook-id"])
    assert of_type(receiver, "job.stalled") == [first, second]  # none to /ends
    assert not [hook for hook in receiver.received if hook.path == "/ends"]
    status = json.loads(cli(daemon.config, "status", "--json").stdout)["jobs"]
    assert [(j["id"], j["state"]) for j in status] == [(STUCK_JOB, "watching")]
