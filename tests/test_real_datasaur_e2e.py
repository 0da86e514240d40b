"""Issue 20, end to end: the daemon against a stand-in that answers like Datasaur's real
server, in each of its odd modes (older schema, token refused Datasaur's way, nulled
entries, omitted ids, another order, unknown statuses, ``result`` fetched on the end).

The daemon runs as a subprocess; every check is made from outside: what the receiver
got, what ``status`` shows, what the stand-in counted.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from notifier.standins.receiver import WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from tests.conftest import base_config, webhook
from tests.support.daemon import DaemonProcess, status, write_config
from tests.support.waiting import wait_until

Factory = Callable[..., DaemonProcess]
NOTIFIED_WITHIN = 5.0  # seconds from the job's end to its webhook, at the 0.2s test interval
RESULT = {"labels": [{"row": row, "label": f"label-{row % 7}", "score": 0.5} for row in range(80)]}


def watching(
    sim: DatasaurSimulator, receiver: WebhookReceiver, tmp_path: Path, ids: list[str]
) -> dict[str, Any]:
    return base_config(
        sim,
        tmp_path,
        callbacks={"hook": webhook(receiver)},
        jobs=[{"id": job_id} for job_id in ids],
    )


def delivered(receiver: WebhookReceiver, job_id: str, timeout: float = 15) -> dict[str, Any]:
    """The ``job.delivered`` payload for ``job_id``, once it arrived."""

    def matches(hook: Any) -> bool:
        body = hook.json or {}
        return body.get("type") == "job.delivered" and body["data"]["job_id"] == job_id

    payload: dict[str, Any] = receiver.wait_for(matches, timeout)[0].json
    return payload


def finish(sim: DatasaurSimulator, job_id: str, result: Any = RESULT) -> float:
    sim.set_job(job_id, "DELIVERED", 100, result_id=f"{job_id}-result", result=result)
    return time.monotonic()


def refused_requests(sim: DatasaurSimulator, since: int = 0) -> int:
    """GraphQL requests that asked about no job (refused token, rejected query)."""
    return sum(ids == 0 for _, _, ids in sim.stats().requests[since:])


def job_row(daemon: DaemonProcess, job_id: str) -> dict[str, Any]:
    return status(daemon.config)[job_id]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_result_is_fetched_once_the_job_ends_and_never_polled(
    backend: str,
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    activity = {"automationActivityId": "4021"}
    simulator.set_job("j1", "IN_PROGRESS", 40, result={"partial": True}, additional_data=activity)
    config = watching(simulator, receiver, tmp_path, ["j1"])
    if backend == "postgres":
        del config["state_path"]
        config["state_url"] = request.getfixturevalue("postgres_url")
        config["datasaur"]["timeout"] = "1s"
        config["delivery"]["timeout"] = "1s"
    daemon = daemon_factory(config)
    wait_until(lambda: simulator.stats().job_polls >= 3, 10)

    simulator.set_job("j1", "DELIVERED", 100, result_id="j1-result", result=RESULT,
                      additional_data=activity)  # fmt: skip
    ended = time.monotonic()
    payload = delivered(receiver, "j1")
    assert time.monotonic() - ended < NOTIFIED_WITHIN
    assert payload["data"]["job"]["result"] == RESULT
    assert payload["data"]["job"]["additionalData"] == activity  # today's fields, all of them
    assert payload["data"]["result_id"] == "j1-result"
    assert "result_error" not in payload["data"]
    operations = [operation for _, operation, _ in simulator.stats().requests]
    assert operations.count("GetJobResults") == 1
    assert set(operations) == {"GetJobs", "GetJobResults"}
    assert simulator.stats().validation_errors == []
    assert daemon.stop() == 0


def test_failed_result_fetch_notifies_anyway_with_result_error(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    simulator.set_job("j1", "IN_PROGRESS", 40)
    daemon = daemon_factory(watching(simulator, receiver, tmp_path, ["j1"]))
    wait_until(lambda: simulator.stats().job_polls >= 1, 10)
    simulator.inject("http_503", operation="GetJobResults")

    finish(simulator, "j1")
    data = delivered(receiver, "j1")["data"]
    assert data["job"]["result"] is None
    assert "HTTP 503" in data["result_error"] and "HTTP 503" in data["job"]["result_error"]
    assert data["status"] == "DELIVERED"
    assert job_row(daemon, "j1")["state"] == "done"
    assert daemon.stop() == 0


def test_legacy_schema_costs_one_rejected_request_in_the_whole_run(
    legacy_simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    sim = legacy_simulator
    for job_id in ("a", "b", "c"):
        sim.set_job(job_id, "IN_PROGRESS", 10)
    daemon = daemon_factory(watching(sim, receiver, tmp_path, ["a", "b", "c"]))
    wait_until(lambda: sim.stats().job_polls >= 9, 10)
    sim.set_job("b", "IN_PROGRESS", 50)  # change detection without updatedAt
    wait_until(lambda: job_row(daemon, "b")["progress"] == 50, 10)

    for job_id in ("a", "b", "c"):
        ended = finish(sim, job_id)
        assert delivered(receiver, job_id)["data"]["job"]["result"] == RESULT
        assert time.monotonic() - ended < NOTIFIED_WITHIN
    assert daemon.stop() == 0
    stats = sim.stats()
    assert refused_requests(sim) == 1, stats.requests[:5]
    assert stats.validation_errors == [
        "Cannot query field 'createdAt' on type 'Job'.",
        "Cannot query field 'updatedAt' on type 'Job'.",
        "Cannot query field 'additionalData' on type 'Job'.",
    ]
    lines = daemon.output.splitlines()
    warnings = [line for line in lines if "does not have the Job field" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0], warnings
    assert "createdAt, updatedAt, additionalData" in warnings[0]
    assert "one by one" not in daemon.output and "rejected" not in daemon.output


@pytest.mark.parametrize(
    "simulator",
    [{"legacy_schema": True, "rejection_status": 500}, {"legacy_schema": True}],
    ids=["rejected-at-http-500", "rejected-at-http-200"],
    indirect=True,
)
def test_stepped_down_selection_survives_sighup_and_a_5xx_rejection_is_no_outage(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    """A selection rejected with HTTP 500 steps down like one rejected with 200 (not read
    as "API down"), and a SIGHUP that rebuilds the client (a Datasaur setting changed,
    the same server) keeps the selection found: no second rejected request."""
    simulator.set_job("a", "IN_PROGRESS", 10)
    config = watching(simulator, receiver, tmp_path, ["a", "b"])
    daemon = daemon_factory(config)
    wait_until(lambda: simulator.stats().job_polls >= 4, 10)
    assert refused_requests(simulator) == 1

    config["datasaur"]["timeout"] = "7s"  # a changed Datasaur section: a new client
    write_config(daemon.config, config)
    daemon.signal(signal.SIGHUP)
    daemon.wait_for_log("reloaded")
    seen = simulator.stats().job_polls
    wait_until(lambda: simulator.stats().job_polls >= seen + 4, 10)
    for job_id in ("a", "b"):
        finish(simulator, job_id)
        assert delivered(receiver, job_id)["data"]["job"]["result"] == RESULT
    assert daemon.stop() == 0
    assert refused_requests(simulator) == 1, simulator.stats().requests[:5]
    assert "polling paused" not in daemon.output and "unavailable" not in daemon.output
    assert "Traceback" not in daemon.output


@pytest.mark.parametrize("simulator", [{"auth_failure_status": 200}], indirect=True)
def test_token_refused_the_datasaur_way_costs_one_extra_request(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    simulator.set_job("j1", "IN_PROGRESS", 10)
    daemon = daemon_factory(watching(simulator, receiver, tmp_path, ["j1"]))
    wait_until(lambda: simulator.stats().job_polls >= 2, 10)
    tokens, seen = simulator.stats().token_requests, len(simulator.stats().requests)

    simulator.revoke_tokens()  # answered HTTP 200, "Unauthorized", AuthenticationError
    ended = finish(simulator, "j1")
    delivered(receiver, "j1")
    assert time.monotonic() - ended < NOTIFIED_WITHIN
    stats = simulator.stats()
    assert stats.token_requests == tokens + 1
    assert refused_requests(simulator, seen) == 1
    assert "polling paused" not in daemon.output
    assert daemon.stop() == 0


@pytest.mark.parametrize("kind", ["unauthorized", "unauthenticated", "http_401"])
def test_every_token_expired_answer_renews_the_token_at_once(
    kind: str,
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    """HTTP 200 "Unauthorized"/AuthenticationError, extensions.code UNAUTHENTICATED, and
    HTTP 401: each a new token and the same request again, once, without a backoff."""
    simulator.set_job("j1", "IN_PROGRESS", 10)
    daemon = daemon_factory(watching(simulator, receiver, tmp_path, ["j1"]))
    wait_until(lambda: simulator.stats().job_polls >= 2, 10)
    tokens, seen = simulator.stats().token_requests, len(simulator.stats().requests)
    simulator.inject(kind, operation="GetJobs")
    wait_until(lambda: simulator.stats().token_requests == tokens + 1, 5)
    ended = finish(simulator, "j1")
    delivered(receiver, "j1")
    assert time.monotonic() - ended < NOTIFIED_WITHIN
    assert simulator.stats().token_requests == tokens + 1
    assert refused_requests(simulator, seen) == 1
    assert "polling paused" not in daemon.output
    assert daemon.stop() == 0


def test_refused_fixed_token_is_one_error_line_naming_the_fix(
    receiver: WebhookReceiver, daemon_factory: Factory, tmp_path: Path
) -> None:
    with DatasaurSimulator(static_token="fixed-token-value-1234") as sim:
        sim.set_job("j1", "IN_PROGRESS", 10)
        config = watching(sim, receiver, tmp_path, ["j1"])
        config["datasaur"] = {"graphql_url": sim.graphql_url, "token": "fixed-token-value-1234"}
        daemon = daemon_factory(config)
        wait_until(lambda: sim.stats().job_polls >= 1, 10)
        sim.inject("unauthorized", 10_000)
        wait_until(lambda: refused_requests(sim) >= 4, 15)  # several backed-off attempts
        lines = [line for line in daemon.output.splitlines() if "datasaur.token" in line]
        assert len(lines) == 1, lines
        assert "ERROR" in lines[0] and "datasaur.client_id" in lines[0]
        assert "fixed-token-value-1234" not in daemon.output
        assert sim.stats().token_requests == 0
        sim.clear_faults()
        finish(sim, "j1")
        delivered(receiver, "j1")
        assert daemon.stop() == 0


def test_nulled_entry_is_that_jobs_poll_error_and_the_rest_is_notified(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    ids = ["a", "b", "c", "d"]
    for job_id in ids:
        simulator.set_job(job_id, "IN_PROGRESS", 10)
    simulator.break_job("d", "Job d could not be loaded")
    daemon = daemon_factory(watching(simulator, receiver, tmp_path, ids))
    error = wait_until(lambda: job_row(daemon, "d")["last_error"], 10)
    assert error == "Job d could not be loaded"
    for job_id in ("a", "b", "c"):
        finish(simulator, job_id)
        delivered(receiver, job_id)
    row = job_row(daemon, "d")
    assert row["state"] == "watching" and row["last_error"] != "not found"
    polls = len(simulator.stats().requests)  # d alone now: 0.2 s apart, not backed off to 1 s
    wait_until(lambda: len(simulator.stats().requests) >= polls + 8, 3)
    assert "polling paused" not in daemon.output
    assert {operation for _, operation, _ in simulator.stats().requests} == {
        "GetJobs",
        "GetJobResults",
    }, "a partial answer is one request"

    simulator.clear_faults()
    finish(simulator, "d")
    assert delivered(receiver, "d")["data"]["job"]["result"] == RESULT
    assert daemon.stop() == 0


@pytest.mark.parametrize("simulator", [{"unknown_ids": "omit", "order": "reversed"}], indirect=True)
def test_omitted_unknown_ids_and_another_order_are_matched_by_id(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    simulator.set_job("a", "IN_PROGRESS", 10)
    simulator.set_job("b", "QUEUED", 0)
    daemon = daemon_factory(watching(simulator, receiver, tmp_path, ["a", "ghost", "b"]))
    assert wait_until(lambda: job_row(daemon, "ghost")["last_error"], 10) == "not found"
    assert job_row(daemon, "a")["progress"] == 10 and job_row(daemon, "b")["status"] == "QUEUED"

    finish(simulator, "b", result={"b": True})
    data = delivered(receiver, "b")["data"]
    assert data["job"]["id"] == "b" and data["job"]["result"] == {"b": True}
    finish(simulator, "a", result={"a": True})
    assert delivered(receiver, "a")["data"]["job"]["result"] == {"a": True}
    assert job_row(daemon, "ghost")["state"] == "watching"
    assert daemon.stop() == 0


@pytest.mark.parametrize("simulator", [{"extra_statuses": ["CANCELLING"]}], indirect=True)
def test_unknown_status_warns_once_and_counts_as_running(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    simulator.set_job("a", "CANCELLING", 10)
    simulator.set_job("b", "CANCELLING", 20)
    daemon = daemon_factory(watching(simulator, receiver, tmp_path, ["a", "b"]))
    wait_until(lambda: job_row(daemon, "b")["status"] == "CANCELLING", 10)
    wait_until(lambda: simulator.stats().job_polls >= 8, 10)
    row = job_row(daemon, "a")
    assert row["status"] == "CANCELLING" and row["state"] == "watching"
    warnings = [line for line in daemon.output.splitlines() if "'CANCELLING'" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0], warnings

    finish(simulator, "a")
    delivered(receiver, "a")
    assert daemon.stop() == 0
