"""The event feed end to end: ``GET /v1/events`` and ``/v1/events/stream`` on a running
daemon (a subprocess), the simulator and a real receiver."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from notifier.standins.receiver import WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from tests.conftest import base_config, webhook
from tests.support.daemon import DaemonProcess
from tests.support.waiting import wait_until
from tests.test_api_e2e import READ_TOKEN, Client, api_section, free_port


def feed_daemon(
    tmp_path: Path,
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Callable[..., DaemonProcess],
    **sections: Any,
) -> Client:
    port = free_port()
    api = {**api_section(port), **sections.pop("api", {})}
    config = base_config(
        simulator, tmp_path, callbacks={"hook": webhook(receiver)}, api=api, **sections
    )
    daemon_factory(config).wait_for_log("api on")
    return Client(f"http://127.0.0.1:{port}", READ_TOKEN)


@pytest.fixture
def feed(
    tmp_path: Path,
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Callable[..., DaemonProcess],
) -> Client:
    return feed_daemon(tmp_path, simulator, receiver, daemon_factory)


def register(client: Client, job_id: str, **fields: Any) -> None:
    writer = Client(client.base)
    answer = writer.call("POST", "/v1/jobs", json={"id": job_id, **fields})
    assert answer.status_code in (200, 201), answer.text


def events(client: Client, **params: Any) -> dict[str, Any]:
    answer = client.call("GET", "/v1/events", params=params)
    assert answer.status_code == 200, answer.text
    page: dict[str, Any] = answer.json()
    return page


def test_pages_in_order_resume_from_a_cursor_and_carry_the_webhook_id(
    feed: Client, simulator: DatasaurSimulator, receiver: WebhookReceiver
) -> None:
    for n in range(5):
        simulator.set_job(f"J{n}", "IN_PROGRESS", 10)
        register(feed, f"J{n}", notify=[] if n == 4 else None)
    for n in range(5):
        simulator.set_job(f"J{n}", "FAILED" if n == 3 else "DELIVERED", 100)
    wait_until(lambda: len(events(feed)["events"]) == 5, timeout=20)
    page = events(feed)
    cursors = [e["cursor"] for e in page["events"]]
    assert cursors == sorted(cursors) and page["next_cursor"] == cursors[-1]
    first = page["events"][0]
    assert set(first) == {"cursor", "id", "type", "timestamp", "data"}
    assert {e["data"]["job_id"] for e in page["events"]} == {f"J{n}" for n in range(5)}
    # the id is the webhook-id the callback got; J4 notifies nobody but is in the feed too
    wait_until(lambda: len(receiver.received) == 4, timeout=10)
    sent = {r.headers["webhook-id"]: r.json for r in receiver.received}
    for event in page["events"]:
        if event["data"]["job_id"] != "J4":
            assert sent[event["id"]]["data"] == event["data"]
    # a reader restarting from its last cursor gets the rest, once
    two = events(feed, limit=2)
    rest = events(feed, after=two["next_cursor"])
    assert [e["id"] for e in two["events"] + rest["events"]] == [e["id"] for e in page["events"]]
    assert events(feed, after=page["next_cursor"]) == {"events": [], "next_cursor": cursors[-1]}
    failed = events(feed, type="job.failed")["events"]
    assert [e["data"]["job_id"] for e in failed] == ["J3"]
    both = events(feed, type="job.failed,job.delivered")["events"]
    assert len(both) == 5
    assert events(feed, after="now")["events"] == []


def test_a_long_poll_answers_within_a_second_of_the_event(
    feed: Client, simulator: DatasaurSimulator
) -> None:
    simulator.set_job("LP", "IN_PROGRESS", 10)
    register(feed, "LP")
    head = events(feed, after="now")["next_cursor"]
    answers: list[tuple[float, dict[str, Any]]] = []

    def long_poll() -> None:
        answer = feed.call("GET", "/v1/events", params={"after": head, "wait": "30s"})
        answers.append((time.time(), answer.json()))

    poller = threading.Thread(target=long_poll)
    poller.start()
    time.sleep(1.0)  # the request is being held, not answered
    assert not answers
    simulator.set_job("LP", "DELIVERED", 100)
    poller.join(timeout=30)
    answered_at, page = answers[0]
    [event] = page["events"]
    observed = dt.datetime.fromisoformat(event["data"]["observed_at"].replace("Z", "+00:00"))
    assert answered_at - observed.timestamp() < 1.0  # from the poll that saw it to the answer
    empty = feed.call("GET", "/v1/events", params={"after": "now", "wait": "0.5s"})
    assert empty.json()["events"] == []


def sse(answer: requests.Response) -> Iterator[dict[str, str]]:
    """The Server-Sent Events of a streamed answer, one dict per event (comments as ':')."""
    frame: dict[str, str] = {}
    for raw in answer.iter_lines(decode_unicode=True):
        if raw == "":
            if frame:
                yield frame
            frame = {}
        elif raw.startswith(":"):
            yield {":": raw[1:].strip()}
        else:
            name, _, value = raw.partition(":")
            frame[name] = value.removeprefix(" ")


def test_the_stream_sends_events_and_resumes_from_last_event_id(
    feed: Client, simulator: DatasaurSimulator
) -> None:
    for n in range(3):
        simulator.set_job(f"S{n}", "IN_PROGRESS", 10)
        register(feed, f"S{n}")
    simulator.set_job("S0", "DELIVERED", 100)
    wait_until(lambda: events(feed)["events"], timeout=15)
    headers = {"Authorization": f"Bearer {READ_TOKEN}"}
    with requests.get(feed.base + "/v1/events/stream", headers=headers, stream=True,
                      timeout=20) as answer:  # fmt: skip
        assert answer.status_code == 200
        assert answer.headers["Content-Type"].startswith("text/event-stream")
        frames = (f for f in sse(answer) if "id" in f)
        first = next(frames)
        assert first["event"] == "job.delivered" and '"job_id":"S0"' in first["data"]
        simulator.set_job("S1", "DELIVERED", 100)
        second = next(frames)
        assert '"job_id":"S1"' in second["data"] and int(second["id"]) > int(first["id"])
    simulator.set_job("S2", "FAILED", 100)
    headers["Last-Event-ID"] = second["id"]
    with requests.get(feed.base + "/v1/events/stream", headers=headers, stream=True,
                      timeout=20) as answer:  # fmt: skip
        third = next(f for f in sse(answer) if "id" in f)
        assert third["event"] == "job.failed" and '"job_id":"S2"' in third["data"]


def test_bad_input_is_a_422_naming_the_parameter(feed: Client) -> None:
    for params, name in [
        ({"after": "abc"}, "after"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"wait": "61s"}, "wait"),
        ({"wait": "soon"}, "wait"),
        ({"type": "job.exploded"}, "type"),
        ({"label": "no-equals"}, "label"),
        ({"colour": "red"}, "colour"),
    ]:
        answer = feed.call("GET", "/v1/events", params=params)
        assert answer.status_code == 422, (params, answer.text)
        paths = [d["path"].split("[")[0] for d in answer.json()["details"]]
        assert paths == [name], (params, answer.json())
    stream = feed.call("GET", "/v1/events/stream", headers={"Last-Event-ID": "x"})
    assert stream.status_code == 422
    assert stream.json()["details"][0]["path"] == "Last-Event-ID"
    assert feed.call("GET", "/v1/events", params={"after": "now"}).status_code == 200
    assert Client(feed.base, None).call("GET", "/v1/events").status_code == 401


def test_waiters_beyond_max_waiters_get_503_and_retention_gives_410(
    tmp_path: Path,
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Callable[..., DaemonProcess],
) -> None:
    client = feed_daemon(
        tmp_path, simulator, receiver, daemon_factory, api={"max_waiters": 2}, retention="2s"
    )

    def hold() -> None:  # a probe may take a slot first: then try again
        def held_once() -> bool:
            answer = client.call("GET", "/v1/events", params={"wait": "40s"}, timeout=60)
            return answer.status_code != 503

        wait_until(held_once, timeout=60)

    # held longer than the probing below may take on a loaded machine, and read with a
    # timeout beyond the hold, so neither lets its slot go early
    held = [threading.Thread(target=hold) for _ in range(2)]
    for thread in held:
        thread.start()

    def refused() -> str | None:  # both held (probes go one at a time): their Retry-After
        answer = client.call("GET", "/v1/events", params={"wait": "0.1s"})
        return answer.headers["Retry-After"] if answer.status_code == 503 else None

    assert int(wait_until(refused, timeout=30)) >= 1
    assert client.call("GET", "/v1/events").status_code == 200  # not held: answered
    simulator.set_job("OLD", "DELIVERED", 100)
    register(client, "OLD")
    for thread in held:  # answered by OLD's event
        thread.join()
    first = wait_until(lambda: events(client)["events"], timeout=15)[0]

    def gone() -> dict[str, Any] | None:
        answer = client.call("GET", "/v1/events", params={"after": first["cursor"] - 1})
        return answer.json() if answer.status_code == 410 else None

    body = wait_until(gone, timeout=20)  # retention removed it
    assert body["oldest_cursor"] is None  # nothing kept
    assert events(client, after=first["cursor"])["events"] == []
