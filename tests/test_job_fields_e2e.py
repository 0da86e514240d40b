"""Issue 21 (parts 1 and 3) end to end, on both stores: labels (with the implicit
``queue``) and metadata arrive verbatim in every payload; routes choose the callbacks by
label (first match, ``continue``, an explicit ``notify`` wins, no match: everyone) and a
SIGHUP's routes apply to the events recorded after it; a job whose progress predicts it
will miss its deadline gets ``job.at_risk`` before the deadline and ``job.late`` after.

The daemon runs as a subprocess against the Datasaur stand-in and a webhook receiver.
"""

from __future__ import annotations

import datetime as dt
import signal
from collections.abc import Callable
from typing import Any

from notifier.standins.receiver import ReceivedWebhook, WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from tests.conftest import webhook
from tests.support.daemon import DaemonProcess, cli, write_config
from tests.support.waiting import wait_until
from tests.test_noise_e2e import store_config

__all__ = ["store_config"]  # the fixture: both stores

Factory = Callable[..., DaemonProcess]
METADATA = {"run": "nightly-42", "project": {"id": 7, "tags": ["a", "b"]}, "token": None}
ROUTES = [
    {"match": {"team": "ml"}, "notify": ["ml"]},
    {"match": {"queue": "ExportQueue"}, "notify": ["exports"], "continue": True},
    {"match": {"queue": "ExportQueue"}, "notify": ["archive"]},
]


def paths_for(receiver: WebhookReceiver, job_id: str, event: str) -> list[str]:
    return sorted(
        h.path for h in receiver.received
        if h.json["data"].get("job_id") == job_id and h.json["type"] == event
    )  # fmt: skip


def one(receiver: WebhookReceiver, job_id: str, event: str) -> ReceivedWebhook:
    [hook] = receiver.wait_for(
        lambda h: h.json["data"].get("job_id") == job_id and h.json["type"] == event,
        timeout=30,
    )
    return hook


def test_labels_metadata_routes_and_deadlines_reach_the_receivers(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    store_config: Callable[..., dict[str, Any]],
) -> None:
    callbacks = {name: webhook(receiver, f"/{name}") for name in ("ml", "exports", "archive")}
    jobs = [
        {"id": "AutoLabelQueue:ml-1", "labels": {"team": "ml"}, "metadata": METADATA},
        {"id": "ExportQueue:exp-1"},
        {"id": "ExportQueue:exp-2", "labels": {"team": "ml"}, "notify": ["archive"]},
        {"id": "ProjectCreation:other-1"},
        # 5 % a second from 5 %: ends in about 19 s, after its 6 s deadline.
        {"id": "ExportQueue:slow-1", "deadline": "6s", "notify": ["ml"]},
    ]
    for job in jobs[:4]:
        simulator.set_job(job["id"], "IN_PROGRESS", 10)
    simulator.script_job(
        "ExportQueue:slow-1", [(n * 1.0, "IN_PROGRESS", 5 + 5 * n) for n in range(19)]
    )
    config = store_config(simulator, callbacks=callbacks, jobs=jobs, routes=ROUTES)
    daemon = daemon_factory(config)

    for job in jobs[:4]:
        simulator.set_job(job["id"], "DELIVERED", 100)
    ml = one(receiver, "AutoLabelQueue:ml-1", "job.delivered")
    assert ml.path == "/ml"
    assert ml.json["data"]["labels"] == {"team": "ml", "queue": "AutoLabelQueue"}
    assert ml.json["data"]["metadata"] == METADATA
    assert list(ml.json["data"]["metadata"]) == list(METADATA)  # key order kept
    assert ml.json["data"]["group"] is None and ml.json["data"]["deadline"] is None
    expected = {"ExportQueue:exp-1": 2, "ExportQueue:exp-2": 1, "ProjectCreation:other-1": 3}
    wait_until(
        lambda: all(
            len(paths_for(receiver, job_id, "job.delivered")) >= count
            for job_id, count in expected.items()
        ),
        timeout=30,
        message=daemon.output,
    )

    # The slow job: at risk before its deadline, late after it.
    risk = one(receiver, "ExportQueue:slow-1", "job.at_risk")
    late = one(receiver, "ExportQueue:slow-1", "job.late")
    deadline = dt.datetime.fromisoformat(risk.json["data"]["deadline"]).timestamp()
    assert risk.received_at < deadline <= late.received_at + 0.5
    assert dt.datetime.fromisoformat(risk.json["data"]["eta"]).timestamp() > deadline
    assert late.json["data"]["late_by_s"] >= 0
    assert (risk.path, late.path) == ("/ml", "/ml")

    # Every job's events went where its labels (or its own notify) said, once each.
    assert paths_for(receiver, "ExportQueue:exp-1", "job.delivered") == ["/archive", "/exports"]
    assert paths_for(receiver, "ExportQueue:exp-2", "job.delivered") == ["/archive"]
    assert paths_for(receiver, "AutoLabelQueue:ml-1", "job.delivered") == ["/ml"]
    assert paths_for(receiver, "ProjectCreation:other-1", "job.delivered") == [
        "/archive", "/exports", "/ml",
    ]  # fmt: skip

    # New routes on SIGHUP apply to the events recorded after it.
    write_config(daemon.config, {**config, "routes": [{"match": {"queue": "ExportQueue"},
                                                       "notify": ["ml"]}]})  # fmt: skip
    daemon.signal(signal.SIGHUP)
    daemon.wait_for_log("reloaded")
    simulator.set_job("ExportQueue:exp-3", "DELIVERED", 100)
    assert cli(daemon.config, "watch", "ExportQueue:exp-3").returncode == 0
    one(receiver, "ExportQueue:exp-3", "job.delivered")
    assert paths_for(receiver, "ExportQueue:exp-3", "job.delivered") == ["/ml"]
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.output
