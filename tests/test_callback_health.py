"""Callback health and throttling end to end (issue 11 parts 3 and 4).

A receiver failing then recovering pauses and resumes its callback's lane, the team's
email hears of both, and the backlog drains with nothing lost; a `rate_limit` spaces
the sends measured at the receiver; a throttled lane stops at once on SIGTERM.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from notifier.standins.receiver import WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from tests.conftest import base_config, email, webhook
from tests.support.daemon import DaemonProcess, cli, deliveries
from tests.support.smtp import SmtpSink
from tests.support.waiting import wait_until

Factory = Callable[..., DaemonProcess]


def test_failing_receiver_pauses_its_lane_alerts_and_drains_after_recovery(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    smtp: SmtpSink,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    receiver.respond_with(503)
    ids = [f"AutoLabelQueue:p-{n}" for n in range(5)]
    for job_id in ids:
        simulator.set_job(job_id, "DELIVERED", 100)
    config = base_config(
        simulator,
        tmp_path,
        callbacks={"flaky": webhook(receiver), "team": email(smtp)},
        jobs=[{"id": job_id, "notify": ["flaky"]} for job_id in ids],
        delivery={
            "timeout": "2s",
            "initial_backoff": "0.1s",
            "max_backoff": "1s",
            "pause_after": 3,
            "alert_via": ["team", "flaky"],
        },
    )
    daemon = daemon_factory(config)
    daemon.wait_for_log("callback flaky paused after 3 consecutive failed attempts")
    paused_message = smtp.wait_for(1, timeout=10)[0]
    assert paused_message.message["Subject"] == "[datasaur-notifier] callback flaky paused"
    assert "Failures:  3 consecutive failed attempts" in paused_message.message.get_content()

    status = cli(daemon.config, "status")
    assert "callback flaky paused" in status.stdout
    listed = json.loads(cli(daemon.config, "deliveries", "--json").stdout)
    assert [p["callback"] for p in listed["paused_callbacks"]] == ["flaky"]
    alerts = [d for d in listed["deliveries"] if d["event"] == "callback.paused"]
    assert [(a["job_id"], a["callback"]) for a in alerts] == [(None, "team")]  # not to flaky

    # While paused: about one probe per max_backoff (1 s), not one attempt per delivery.
    before = len(receiver.received)
    started = time.monotonic()
    wait_until(lambda: len(receiver.received) >= before + 2, timeout=10)
    assert time.monotonic() - started >= 0.8
    assert len(receiver.received) <= before + 3

    receiver.respond_with(200)
    daemon.wait_for_log("callback flaky resumed")
    resumed = smtp.wait_for(2, timeout=10)[1]
    assert resumed.message["Subject"] == "[datasaur-notifier] callback flaky resumed"

    def drained() -> bool:
        rows = [d for d in deliveries(daemon.config) if d["callback"] == "flaky"]
        return len(rows) == len(ids) and all(d["state"] == "delivered" for d in rows)

    wait_until(drained, timeout=15)
    delivered_jobs = {
        w.json["data"]["job_id"] for w in receiver.received if w.answered_status == 200
    }
    assert delivered_jobs == set(ids)
    assert "callback flaky paused" not in cli(daemon.config, "status").stdout


def test_rate_limit_spaces_the_sends(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    ids = [f"ExportQueue:t-{n}" for n in range(20)]
    for job_id in ids:
        simulator.set_job(job_id, "DELIVERED", 100)
    config = base_config(
        simulator,
        tmp_path,
        callbacks={"hook": webhook(receiver, rate_limit="5/s")},
        jobs=[{"id": job_id} for job_id in ids],
    )
    daemon_factory(config)
    wait_until(lambda: len(receiver.received) == len(ids), timeout=30)
    times = sorted(w.received_at for w in receiver.received)
    # A bucket of 5 allows a burst of 5, then 5 per second: 15 more take >= 3 s.
    assert times[-1] - times[0] >= 2.7, times
    for index in range(len(times) - 10):  # no 10 sends within 1 s after the first burst
        assert times[index + 10] - times[index] >= 0.9 or index < 5, times


def test_a_throttled_lane_stops_at_once_on_sigterm(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    ids = [f"ExportQueue:s-{n}" for n in range(10)]
    for job_id in ids:
        simulator.set_job(job_id, "DELIVERED", 100)
    config = base_config(
        simulator,
        tmp_path,
        callbacks={"hook": webhook(receiver, rate_limit="1/m")},
        jobs=[{"id": job_id} for job_id in ids],
    )
    daemon = daemon_factory(config)
    wait_until(lambda: receiver.received, timeout=15)
    started = time.monotonic()
    assert daemon.stop(timeout=10) == 0
    assert time.monotonic() - started < 5
    assert len(receiver.received) == 1
