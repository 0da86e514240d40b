"""``notifier.client`` against the real API (the daemon as a subprocess), and its
retries against a real local HTTP server that answers what the test needs."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from notifier.client import (
    Client,
    Forbidden,
    JobFailed,
    NotFound,
    NotifierError,
    Timeout,
    Unauthorized,
)
from notifier.standins.receiver import WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from tests.support.daemon import DaemonProcess
from tests.test_api_e2e import READ_TOKEN, WRITE_TOKEN
from tests.test_feed_e2e import feed_daemon

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture
def base(
    tmp_path: Path,
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Callable[..., DaemonProcess],
) -> str:
    return feed_daemon(tmp_path, simulator, receiver, daemon_factory).base


def test_watch_read_list_unwatch_and_errors(base: str, simulator: DatasaurSimulator) -> None:
    client = Client(base, WRITE_TOKEN)
    simulator.set_job("C:1", "IN_PROGRESS", 5)
    job = client.watch("C:1", name="first", notify=["hook"])
    assert (job["id"], job["name"], job["source"]) == ("C:1", "first", "api")
    for n in range(3):
        client.watch(f"C:more/{n}")
    assert client.job("C:1")["name"] == "first"
    assert [j["id"] for j in client.jobs(limit=2)][:1] == ["C:1"]
    assert len(list(client.jobs(limit=2))) == 4  # every page
    assert client.unwatch("C:more/0")["state"] == "unwatched"
    with pytest.raises(NotFound) as missing:
        client.job("C:nope")
    assert missing.value.status == 404
    with pytest.raises(NotifierError) as invalid:
        client.watch("C:2", notify=["no-such-callback"])
    assert invalid.value.status == 422 and invalid.value.details[0]["path"] == "notify[0]"
    with pytest.raises(Forbidden):
        Client(base, READ_TOKEN).watch("C:3")
    with pytest.raises(Unauthorized):
        Client(base, "wrong-token-" * 3).job("C:1")
    assert "wrong" not in repr(Client(base, "wrong-token"))


def test_wait_for_jobs_and_follow_events(base: str, simulator: DatasaurSimulator) -> None:
    client = Client(base, WRITE_TOKEN)
    for job_id in ("W:1", "W:2", "W:bad"):
        simulator.set_job(job_id, "IN_PROGRESS", 10)
        client.watch(job_id)
    with pytest.raises(Timeout):
        client.wait(["W:1"], timeout=0.5)
    finished: list[dict[str, Any]] = []
    waiter = threading.Thread(
        target=lambda: finished.append(client.wait(["W:1", "W:2"], timeout=30))
    )
    waiter.start()
    simulator.set_job("W:1", "DELIVERED", 100)
    simulator.set_job("W:2", "DELIVERED", 100)
    waiter.join(timeout=40)
    assert [j["status"] for j in finished[0]["jobs"]] == ["DELIVERED", "DELIVERED"]
    simulator.set_job("W:bad", "FAILED", 100)
    with pytest.raises(JobFailed) as failed:
        client.wait(["W:bad", "W:1"], timeout=30)
    assert "W:bad" in str(failed.value) and len(failed.value.final["jobs"]) == 2
    feed = client.events(wait=1.0)
    seen = [next(feed)["data"]["job_id"] for _ in range(3)]
    assert sorted(seen) == ["W:1", "W:2", "W:bad"]
    feed.close()
    failures = list(_take(client.events(types=["job.failed"], wait=0.5), 1))
    assert failures[0]["type"] == "job.failed"
    with pytest.raises(ValueError):
        client.wait()


def _take(events: Iterator[dict[str, Any]], count: int) -> Iterator[dict[str, Any]]:
    for _, event in zip(range(count), events, strict=False):
        yield event


class Scripted(ThreadingHTTPServer):
    """Answers each request with the next (status, body) of ``script``; counts them."""

    def __init__(self, script: list[tuple[int, str]]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = script
        self.requests = 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Scripted

    def do_GET(self) -> None:
        server = self.server
        status, body = server.script[min(server.requests, len(server.script) - 1)]
        server.requests += 1
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        pass


def test_retries_503_and_connection_errors_never_a_4xx() -> None:
    busy = Scripted([(503, '{"error": "busy"}'), (503, "{}"), (200, '{"job": {"id": "x"}}')])
    assert Client(busy.url, "t").job("x") == {"id": "x"} and busy.requests == 3
    never = Scripted([(503, '{"error": "busy"}')])
    with pytest.raises(NotifierError) as exc:
        Client(never.url, "t").job("x")
    assert exc.value.status == 503 and never.requests == 4  # bounded
    missing = Scripted([(404, '{"error": "no job", "details": []}')])
    with pytest.raises(NotFound):
        Client(missing.url, "t").job("x")
    assert missing.requests == 1
    for server in (busy, never, missing):
        server.shutdown()
        server.server_close()
    with pytest.raises(NotifierError, match="cannot reach"):
        Client(busy.url, "t", timeout=1).job("x")  # nothing listens any more


def test_the_readme_example_runs(base: str, simulator: DatasaurSimulator) -> None:
    block = re.search(r"```python\n(from notifier.client import.*?)```", README.read_text(), re.S)
    assert block, "the README's client example is missing"
    namespace: dict[str, Any] = {}
    exec(block.group(1), namespace)

    def start_export(project: str) -> str:
        job_id = f"ExportQueue:{project}"
        simulator.set_job(job_id, "IN_PROGRESS", 10)
        threading.Timer(1.0, simulator.set_job, (job_id, "DELIVERED", 100)).start()
        return job_id

    state, final = namespace["export_and_wait"](base, WRITE_TOKEN, start_export, "run-1")
    assert state == "completed", final
