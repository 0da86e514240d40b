"""The event stream's two timers, through the real listener (waitress on 127.0.0.1) and a
real state: a comment line keeps an idle stream open, and a reader that takes nothing
while unread bytes pile up is cut and its waiter slot given back.

The timers are the module's constants (15 s and 30 s in service); they are shortened
here so that the behaviour, not the waiting, is what the test spends its time on.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from notifier.api import feed
from notifier.api.app import Api
from notifier.api.server import ApiServer
from notifier.config_service import ApiSettings
from notifier.metrics import Health
from notifier.store import NewEvent, SqliteStore
from tests.support.waiting import wait_until
from tests.test_store import INSTANCE, poll, spec

TOKEN = "stream-test-token-0123456789abcdef"
BLOB = "x" * 60_000  # per event: a few hundred of them outgrow any socket buffer


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Api, str]]:
    monkeypatch.setattr(feed, "KEEPALIVE", 0.5)
    monkeypatch.setattr(feed, "SLOW_READER", 2.0)
    store = SqliteStore(tmp_path / "state.db", INSTANCE)
    settings = ApiSettings.model_validate(
        {"listen": "127.0.0.1:0", "tokens": [{"name": "r", "token": TOKEN, "scope": "read"}]}
    )
    api = Api(store, settings, {}, Health(stall_after=60))
    server = ApiServer(api.wsgi(), "127.0.0.1", 0, waiters=4)
    server.start()
    try:
        yield api, server.url
    finally:
        api.feed.stop()
        server.stop()
        store.close()


def record(api: Api, count: int, size: str = "") -> None:
    """``count`` delivered jobs, each event carrying ``size`` as padding."""
    for n in range(count):
        job_id = f"J{api.store.event_bounds().head}-{n}"
        api.store.watch(spec(job_id), 1_700_000_000.0)
        data = {"job_id": job_id, "padding": size}
        event = NewEvent("job.delivered", {"type": "job.delivered", "data": data}, ())
        poll(api.store, job_id, event)
        api.feed.poke()


def test_an_idle_stream_gets_keep_alive_comments_then_its_events(served: tuple[Api, str]) -> None:
    api, url = served
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with requests.get(url + "/v1/events/stream", headers=headers, stream=True, timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        lines = r.iter_lines(decode_unicode=True)
        assert wait_until(lambda: next(lines) == ": keep-alive", timeout=10)
        assert wait_until(lambda: next(lines) == ": keep-alive", timeout=10)  # and again
        record(api, 1)
        assert wait_until(lambda: next(lines).startswith("event: job.delivered"), timeout=10)


def test_a_reader_that_takes_nothing_is_cut_and_frees_its_slot(served: tuple[Api, str]) -> None:
    api, url = served
    host, port = url.removeprefix("http://").split(":")
    reader = socket.socket()
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader.connect((host, int(port)))
    reader.sendall(
        f"GET /v1/events/stream HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {TOKEN}\r\n\r\n".encode()
    )
    try:
        wait_until(lambda: api.feed.slots.held == 1, timeout=10)
        record(api, 300, BLOB)  # ~18 MB: more than the kernel holds for a reader not reading
        wait_until(lambda: api.feed.slots.held == 0, timeout=30, message="slow reader not cut")
        reader.settimeout(10)
        received = 0
        while chunk := reader.recv(1 << 20):  # what was in flight, then the close
            received += len(chunk)
        assert 0 < received < 300 * len(BLOB)
    finally:
        reader.close()
    # the API is not hurt: a new stream is admitted and reads from the start
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with requests.get(url + "/v1/events/stream", headers=headers, stream=True, timeout=10) as r:
        lines = r.iter_lines(decode_unicode=True)
        assert wait_until(lambda: next(lines).startswith("id: "), timeout=10)
