"""The registration API under abuse: floods, slow and idle clients, oversized and malformed
requests, callback URLs aimed at internal addresses, and tokens that must never leak.

The daemon runs as a subprocess; every client is a real socket on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
import urllib3

from notifier import callback_urls
from notifier.api.server import IDLE_TIMEOUT
from notifier.httpserver import LocalHTTPServer, QuietHandler, Reply
from notifier.standins.receiver import WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from tests.conftest import base_config
from tests.support.daemon import DaemonProcess, cli
from tests.support.waiting import wait_until
from tests.test_api_e2e import CALLBACK_SECRET, READ_TOKEN, WRITE_TOKEN, Client, api_section

POLL_INTERVAL = 0.2
NOTIFY_WITHIN = 2.0  # one poll interval, one delivery, and slack for a busy 2-core machine
JSON = {"Content-Type": "application/json"}

StartApi = Callable[..., tuple[DaemonProcess, Client]]


# --- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture
def callback_receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(secret=CALLBACK_SECRET) as server:
        yield server


@pytest.fixture
def start_api(
    tmp_path: Path,
    simulator: DatasaurSimulator,
    daemon_factory: Callable[..., DaemonProcess],
) -> StartApi:
    """``start_api(*prefixes, env=...)``: a daemon with the API on a free loopback port."""

    def start(*prefixes: str, env: dict[str, str] | None = None) -> tuple[DaemonProcess, Client]:
        api = {**api_section(0, *prefixes), "listen": "127.0.0.1:0"}
        polling = {"interval": f"{POLL_INTERVAL}s", "max_interval": f"{POLL_INTERVAL}s"}
        config = base_config(simulator, tmp_path, api=api, polling={**polling, "expire_after": 0})
        daemon = daemon_factory(config, env=env)
        daemon.wait_for_log("api on")
        found = re.search(r"api on (http://127\.0\.0\.1:\d+)", daemon.run_output)
        assert found, daemon.run_output
        return daemon, Client(found.group(1))

    return start


def api_port(client: Client) -> int:
    return int(client.base.rsplit(":", 1)[1])


def job_document(client: Client, job_id: str) -> dict[str, Any]:
    answer = client.call("GET", "/v1/jobs/" + quote(job_id, safe=""))
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["job"])


def for_job(receiver: WebhookReceiver, job_id: str) -> list[Any]:
    return [w for w in receiver.received if (w.json or {}).get("data", {}).get("job_id") == job_id]


def notification_latency(
    client: Client, simulator: DatasaurSimulator, receiver: WebhookReceiver, job_id: str
) -> float:
    """Seconds from the simulator's job turning DELIVERED to its webhook arriving."""
    simulator.set_job(job_id, "IN_PROGRESS", 50)
    answer = client.call(
        "POST", "/v1/jobs", json={"id": job_id, "callback_url": receiver.url + "/cb/" + job_id}
    )
    assert answer.status_code == 201, answer.text
    wait_until(
        lambda: job_document(client, job_id)["status"] == "IN_PROGRESS",
        timeout=10,
        interval=0.05,
        message=f"{job_id} never polled",
    )
    changed = time.time()
    simulator.set_job(job_id, "DELIVERED", 100)
    sent = wait_until(lambda: for_job(receiver, job_id), timeout=10, interval=0.01)
    return float(sent[0].received_at - changed)


def timed(call: Callable[[], requests.Response], status: int) -> float:
    started = time.monotonic()
    answer = call()
    elapsed = time.monotonic() - started
    assert answer.status_code == status, answer.text
    return elapsed


def assert_no_traceback(daemon: DaemonProcess) -> None:
    assert daemon.alive(), daemon.output
    assert "Traceback" not in daemon.output, daemon.output


def raw_exchange(port: int, request: bytes, timeout: float = 10) -> bytes:
    """Send ``request`` on a fresh connection; everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            sock.sendall(request)
        answer = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            answer += chunk
        return answer


def status_of(answer: bytes) -> int:
    found = re.match(rb"HTTP/1\.[01] (\d{3}) ", answer)
    assert found, answer[:200]
    return int(found.group(1))


# --- 1. floods ----------------------------------------------------------------------------


class Flood:
    """Slowloris clients (a header byte a second, never finishing) and garbage connections."""

    def __init__(self, port: int, slowloris: int, garbage: int) -> None:
        self.port = port
        self.slow: list[socket.socket] = []
        self.garbage: list[socket.socket] = []
        self.counts = (slowloris, garbage)
        self.ticks = 0
        self.stop = threading.Event()
        pad = "a" * 400
        self.request = (
            f"GET /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\nX-Pad: {pad}"
        ).encode()  # no blank line: the headers never end
        self.thread = threading.Thread(target=self._drip, name="slowloris", daemon=True)

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.setblocking(False)
        return sock

    def __enter__(self) -> Flood:
        slowloris, garbage = self.counts
        rng = random.Random(1234)
        try:
            self.slow = [self.connect() for _ in range(slowloris)]
            for index in range(garbage):
                sock = self.connect()
                self.garbage.append(sock)
                if index % 2:
                    noise = bytes(b for b in rng.randbytes(600) if b not in b"\r\n")[:512]
                else:
                    noise = rng.choice(
                        [
                            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + rng.randbytes(64),
                            b"SSH-2.0-OpenSSH_9.6\r\n",
                            b"\x00" * 256,
                            b"HELO evil.example\r\nMAIL FROM:<x@y>\r\n\r\n",
                            b"GET / HTTP/9.9\r\n\r\n",
                        ]
                    )
                with contextlib.suppress(BlockingIOError):
                    sock.send(noise)
        except BaseException:
            self.close()
            raise
        self.thread.start()
        return self

    def _drip(self) -> None:
        for tick in range(min(len(self.request), 120)):  # bounded: 2 minutes at most
            for sock in self.slow:
                with contextlib.suppress(OSError):
                    sock.send(self.request[tick : tick + 1])
            self.ticks = tick + 1
            if self.stop.wait(1.0):
                return

    def slow_still_open(self) -> int:
        """How many slowloris connections the server still holds open."""
        count = 0
        for sock in self.slow:
            try:
                if sock.recv(1, socket.MSG_PEEK) == b"":
                    continue  # closed by the server
            except BlockingIOError:
                count += 1  # nothing to read: still open
            except OSError:
                continue
        return count

    def close(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(5)
        for sock in self.slow + self.garbage:
            sock.close()

    def __exit__(self, *exc: object) -> None:
        self.close()


def test_api_answers_and_notifications_flow_during_a_slowloris_and_garbage_flood(
    start_api: StartApi,
    simulator: DatasaurSimulator,
    callback_receiver: WebhookReceiver,
) -> None:
    daemon, client = start_api(callback_receiver.url + "/cb/")
    reader = Client(client.base, token=READ_TOKEN)
    anonymous = Client(client.base, token=None)
    baseline = notification_latency(client, simulator, callback_receiver, "flood-baseline")
    quiet = [timed(lambda: anonymous.call("GET", "/healthz"), 200) for _ in range(3)]

    with Flood(api_port(client), slowloris=50, garbage=200) as flood:
        wait_until(lambda: flood.ticks >= 3, timeout=10, message="slowloris did not start")
        health = []
        jobs = []
        for _ in range(5):
            health.append(timed(lambda: anonymous.call("GET", "/healthz"), 200))
            jobs.append(timed(lambda: reader.call("GET", "/v1/jobs"), 200))
        flooded = notification_latency(client, simulator, callback_receiver, "flood-under")
        held = flood.slow_still_open()

    print(
        f"\nquiet healthz max {max(quiet):.3f}s; under flood: healthz max {max(health):.3f}s,"
        f" GET /v1/jobs max {max(jobs):.3f}s; notification {baseline:.3f}s quiet,"
        f" {flooded:.3f}s under flood; slowloris connections held open: {held}/50"
    )
    assert max(health) < 1.0, health
    assert max(jobs) < 1.0, jobs
    assert flooded < NOTIFY_WITHIN, (baseline, flooded)
    assert held == 50  # the flood was real: the server was still holding every slow client
    assert_no_traceback(daemon)


# --- 2. idle connections ---------------------------------------------------------------


def closed_within(sock: socket.socket, deadline: float) -> bool:
    """Read until the server closes the connection (True) or ``deadline`` passes (False)."""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if sock.recv(4096) == b"":
                return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
    return False


def test_idle_and_stalled_connections_are_cut_after_the_idle_timeout(start_api: StartApi) -> None:
    daemon, client = start_api()
    port = api_port(client)
    with (
        socket.create_connection(("127.0.0.1", port)) as idle,
        socket.create_connection(("127.0.0.1", port)) as stalled,
    ):
        opened = time.monotonic()
        stalled.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # then nothing
        deadline = opened + IDLE_TIMEOUT + 5
        assert closed_within(idle, deadline), "an idle connection stayed open"
        idle_after = time.monotonic() - opened
        assert closed_within(stalled, deadline), "a stalled request stayed open"
    assert IDLE_TIMEOUT - 1 <= idle_after <= IDLE_TIMEOUT + 5, idle_after
    assert Client(client.base, token=None).call("GET", "/healthz").status_code == 200
    assert_no_traceback(daemon)


# --- 3. oversized headers ----------------------------------------------------------------


def test_oversized_headers_get_an_error_answer_and_the_daemon_carries_on(
    start_api: StartApi,
) -> None:
    daemon, client = start_api()
    port = api_port(client)
    big_header = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n"
    many_headers = (
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 40) for i in range(1000))
        + b"\r\n"
    )
    long_line = b"GET /healthz?" + b"q" * 65536 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    statuses = []
    for what, request in (
        ("one 64 KiB header", big_header),
        ("1000 headers (48 KiB)", many_headers),
        ("64 KiB request line", long_line),
    ):
        status = status_of(raw_exchange(port, request))
        statuses.append((what, status))
        assert status in (400, 431), what
    big_token = Client(client.base, token="t" * 65536).call("GET", "/v1/jobs")
    statuses.append(("64 KiB bearer token (requests)", big_token.status_code))
    assert big_token.status_code in (400, 431)
    print("\n" + "\n".join(f"{status}  {what}" for what, status in statuses))
    assert Client(client.base, token=None).call("GET", "/healthz").status_code == 200
    assert Client(client.base, token=READ_TOKEN).call("GET", "/v1/jobs").status_code == 200
    assert_no_traceback(daemon)


# --- 4. SSRF ------------------------------------------------------------------------------


def test_a_prefix_naming_localhost_is_refused_at_delivery_and_retried(
    start_api: StartApi,
    simulator: DatasaurSimulator,
    callback_receiver: WebhookReceiver,
) -> None:
    prefix = f"http://localhost:{callback_receiver.port}/"
    daemon, client = start_api(prefix)
    job_id = "ssrf-localhost"
    simulator.set_job(job_id, "DELIVERED", 100)
    answer = client.call("POST", "/v1/jobs", json={"id": job_id, "callback_url": prefix + "cb"})
    assert answer.status_code == 201, answer.text

    def refused_twice() -> dict[str, Any] | None:
        deliveries = job_document(client, job_id)["deliveries"]
        if deliveries and deliveries[0]["attempts"] >= 2:
            return dict(deliveries[0])
        return None

    delivery = wait_until(refused_twice, timeout=15, interval=0.05)
    assert delivery["state"] == "pending"
    assert delivery["callback"] == f"url:http://localhost:{callback_receiver.port}"
    assert re.search(r"refused.*loopback", delivery["last_error"]), delivery["last_error"]
    assert callback_receiver.received == []
    assert_no_traceback(daemon)


PREFIX = "https://hooks.example.com/team"
OUTSIDE_THE_PREFIX = [
    "https://hooks.example.com.evil.net/team/x",
    "https://hooks.example.com@evil.net/team/x",
    "https://user:secret@hooks.example.com/team/x",
    "https://user@hooks.example.com/team/x",
    "http://hooks.example.com/team/x",
    "https://hooks.example.com:8443/team/x",
    "https://hooks.example.com:443@evil.net/team/x",
    "https://hooks.example.com/teamx",
    "https://hooks.example.com/",
    "https://hooks.example.com/team/../admin",
    "https://hooks.example.com/team/%2e%2e/admin",
    "https://hooks.example.com/team/..%2Fadmin",
    "https://hooks.example.com/team/./../admin",
    "https://hooks.example.com/team/..\\admin",
    "https://hooks.example.com/team/x y",
    "https://hooks.example.com/team/x\tz",
    "https://169.254.169.254/team/x",
    "ftp://hooks.example.com/team/x",
    "//hooks.example.com/team/x",
    "https://hooks.example.com:99999/team/x",
    "https://[::1/team/x",
]


def test_callback_urls_outside_the_allowed_prefix_are_422_at_registration(
    start_api: StartApi,
) -> None:
    daemon, client = start_api(PREFIX)
    for url in OUTSIDE_THE_PREFIX:
        answer = client.call("POST", "/v1/jobs", json={"id": "j", "callback_url": url})
        body = answer.json()
        assert answer.status_code == 422, (url, body)
        assert [d["path"] for d in body["details"]] == ["callback_url"], (url, body)
        print(f"\n422  {url!r}: {body['details'][0]['message']}", end="")
    for url in (PREFIX, PREFIX + "/x", "https://HOOKS.example.com./team/x?y=1"):
        answer = client.call("POST", "/v1/jobs", json={"id": "j", "callback_url": url})
        assert answer.status_code in (200, 201), (url, answer.text)
    assert_no_traceback(daemon)


def test_a_dot_segment_path_cannot_leave_the_prefix_at_delivery(
    start_api: StartApi,
    simulator: DatasaurSimulator,
    callback_receiver: WebhookReceiver,
) -> None:
    prefix = callback_receiver.url + "/cb/"
    daemon, client = start_api(prefix)
    simulator.set_job("dots", "DELIVERED", 100)
    escaping = client.call(
        "POST", "/v1/jobs", json={"id": "dots", "callback_url": prefix + "../admin"}
    )
    assert escaping.status_code == 422, escaping.text
    inside = client.call("POST", "/v1/jobs", json={"id": "dots", "callback_url": prefix + "ok"})
    assert inside.status_code == 201, inside.text
    sent = wait_until(lambda: for_job(callback_receiver, "dots"), timeout=10)
    assert [w.path for w in sent] == ["/cb/ok"]
    assert_no_traceback(daemon)


class _ProxyHandler(QuietHandler):
    """Records each request and forwards absolute-form ``http://`` ones."""

    def _forward(self) -> None:
        proxy = self.owner
        assert isinstance(proxy, RecordingProxy)
        body = self.read_body()
        proxy.record(self.command, self.path)
        if not self.path.startswith("http://"):
            self.reply(Reply(502, b"not forwarded", "text/plain"))
            return
        headers = {
            name: value
            for name, value in self.headers.items()
            if name.lower() not in ("proxy-connection", "connection", "keep-alive")
        }
        try:
            answer = proxy.http.request(
                self.command, self.path, body=body, headers=headers, redirect=False, retries=False
            )
        except urllib3.exceptions.HTTPError:
            self.reply(Reply(502, b"upstream failed", "text/plain"))
            return
        content_type = answer.headers.get("Content-Type", "application/octet-stream")
        self.reply(Reply(answer.status, answer.data, content_type))

    do_GET = do_POST = do_PUT = do_DELETE = do_CONNECT = _forward  # noqa: N815


class RecordingProxy(LocalHTTPServer):
    """An HTTP proxy that remembers every request it was asked to make."""

    handler_class = _ProxyHandler

    def __init__(self) -> None:
        super().__init__("127.0.0.1", 0)
        self.http = urllib3.PoolManager(timeout=5)
        self._seen: list[tuple[str, str]] = []
        self._seen_lock = threading.Lock()

    def record(self, method: str, target: str) -> None:
        with self._seen_lock:
            self._seen.append((method, target))

    @property
    def seen(self) -> list[tuple[str, str]]:
        with self._seen_lock:
            return list(self._seen)


def test_proxy_environment_variables_do_not_route_callbacks_around_the_check(
    start_api: StartApi,
    simulator: DatasaurSimulator,
    callback_receiver: WebhookReceiver,
) -> None:
    with RecordingProxy() as proxy:
        env = {
            name: proxy.url
            for base in ("http_proxy", "https_proxy", "all_proxy")
            for name in (base, base.upper())
        }
        env.update(no_proxy="", NO_PROXY="")
        daemon, client = start_api(callback_receiver.url + "/cb/", env=env)
        simulator.set_job("proxied", "DELIVERED", 100)
        answer = client.call(
            "POST",
            "/v1/jobs",
            json={"id": "proxied", "callback_url": callback_receiver.url + "/cb/direct"},
        )
        assert answer.status_code == 201, answer.text
        sent = wait_until(lambda: for_job(callback_receiver, "proxied"), timeout=15)
        seen = proxy.seen
    assert [w.path for w in sent] == ["/cb/direct"]
    assert sent[0].signature_ok is True
    # The daemon did read the variables: its Datasaur polling went through the proxy ...
    assert any(target.startswith(simulator.url) for _, target in seen), seen
    # ... but the callback went straight to the checked address.
    receiver_port = f":{callback_receiver.port}"
    assert not [t for _, t in seen if receiver_port in t or t.startswith("127.0.0.1")], seen
    assert_no_traceback(daemon)


# --- 4. callback_urls, as a unit ----------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("172.31.255.254", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),
        ("100.64.0.1", True),
        ("fd00::1", True),
        ("fe80::1", True),
        ("::ffff:127.0.0.1", True),
        ("::ffff:10.0.0.1", True),
        ("::ffff:169.254.169.254", True),
        ("0.0.0.0", True),
        ("::", True),
        ("224.0.0.1", True),
        ("255.255.255.255", True),
        ("93.184.216.34", False),
        ("::ffff:93.184.216.34", False),
        ("172.32.0.1", False),
        ("2606:2800:220:1:248:1893:25c8:1946", False),
    ],
)
def test_forbidden_addresses(address: str, refused: bool) -> None:
    assert callback_urls.forbidden(ipaddress.ip_address(address)) is refused


def test_parse_normalises_and_refuses_what_is_not_a_plain_http_url() -> None:
    target = callback_urls.parse("HTTPS://Hooks.Example.COM./a?b=1")
    assert (target.scheme, target.host, target.port, target.path, target.query) == (
        "https",
        "hooks.example.com",
        443,
        "/a",
        "b=1",
    )
    assert callback_urls.parse("http://[::1]:8080").origin == "http://[::1]:8080"
    assert callback_urls.parse("http://[::1]:8080").path == "/"
    for bad in (
        "hooks.example.com/x",
        "ftp://hooks.example.com/",
        "https://u:p@hooks.example.com/",
        "https://hooks.example.com:bad/",
        "https://hooks.example.com/a b",
        "https://hooks.example.com/a\x00",
        "https:///nohost",
        "https://hooks.example.com/a/../b",
        "https://hooks.example.com/a/%2E%2E/b",
        "https://hooks.example.com/a/..\\b",
        "https://hooks.example.com/a/.",
    ):
        with pytest.raises(callback_urls.Refused):
            callback_urls.parse(bad)


def test_matching_prefix_compares_scheme_host_port_and_path_segments() -> None:
    prefixes = ["https://hooks.example.com/team", "http://127.0.0.1:9000/cb/"]
    assert callback_urls.matching_prefix("https://hooks.example.com/team", prefixes).port == 443
    assert callback_urls.matching_prefix("https://hooks.example.com:443/team/a", prefixes)
    assert callback_urls.matching_prefix("http://127.0.0.1:9000/cb/x", prefixes).literal_ip
    for url in (
        "https://hooks.example.com/teamx",
        "https://hooks.example.com.evil.net/team",
        "http://hooks.example.com/team",
        "https://hooks.example.com:444/team",
        "http://127.0.0.1:9000/cb",
        "http://127.0.0.1:9001/cb/x",
        "http://localhost:9000/cb/x",
    ):
        with pytest.raises(callback_urls.Refused):
            callback_urls.matching_prefix(url, prefixes)


def test_resolve_checked_refuses_a_name_for_loopback_but_not_the_literal_prefix() -> None:
    with pytest.raises(callback_urls.Refused, match="loopback"):
        callback_urls.resolve_checked("http://localhost:9000/x", ["http://localhost:9000/"])
    target, address = callback_urls.resolve_checked(
        "http://127.0.0.1:9000/x", ["http://127.0.0.1:9000/"]
    )
    assert (target.host, address) == ("127.0.0.1", "127.0.0.1")


# --- 5. tokens never leak ------------------------------------------------------------------


def test_no_token_appears_in_the_log_or_the_operator_commands(
    start_api: StartApi,
    simulator: DatasaurSimulator,
    callback_receiver: WebhookReceiver,
) -> None:
    daemon, client = start_api(callback_receiver.url + "/cb/")
    wrong_token = "wr0ng-" + os.urandom(12).hex()
    wrong = Client(client.base, token=wrong_token)
    assert wrong.call("GET", "/v1/jobs").status_code == 401
    assert wrong.call("POST", "/v1/jobs", json={"id": "leak"}).status_code == 401
    doubled = Client(client.base, token=f"Bearer {wrong_token}")
    assert doubled.call("GET", "/v1/jobs").status_code == 401
    assert client.call("GET", f"/v1/jobs?token={wrong_token}").status_code == 422
    simulator.set_job("leak", "DELIVERED", 100)
    answer = client.call(
        "POST", "/v1/jobs", json={"id": "leak", "callback_url": callback_receiver.url + "/cb/l"}
    )
    assert answer.status_code == 201, answer.text
    wait_until(lambda: for_job(callback_receiver, "leak"), timeout=10)
    wait_until(
        lambda: job_document(client, "leak")["deliveries"][0]["state"] == "delivered", timeout=10
    )
    outputs = {"log": daemon.output}
    for args in (("status",), ("status", "--json"), ("deliveries",), ("deliveries", "--json")):
        result = cli(daemon.config, *args)
        assert result.returncode == 0, result.stderr
        outputs[" ".join(args)] = result.stdout + result.stderr
    assert "leak" in outputs["deliveries --json"]
    for name, text in outputs.items():
        for token in (wrong_token, WRITE_TOKEN, READ_TOKEN):
            assert token not in text, (name, token)
    assert "authentication failed" in outputs["log"]
    assert_no_traceback(daemon)


# --- 6. malformed bodies -------------------------------------------------------------------


def test_malformed_bodies_get_json_errors_and_no_traceback(start_api: StartApi) -> None:
    daemon, client = start_api()

    def post(data: Any, headers: dict[str, str] | None = None) -> requests.Response:
        return client.call("POST", "/v1/jobs", data=data, headers=headers or JSON)

    def chunks(total: int) -> Iterator[bytes]:
        yield b'{"id": "chunked", "name": "'
        for _ in range(total // 4096):
            yield b"x" * 4096
        yield b'"}'

    deepest = 32_000  # the deepest array nesting that fits in 64 KiB
    cases: list[tuple[str, Any, int, list[str] | None]] = [
        # (what, body, expected status, expected detail paths or None: not checked)
        (f"arrays nested {deepest} deep", b"[" * deepest + b"]" * deepest, 400, []),
        ("objects nested 10,000 deep", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, 400, []),
        ("arrays nested 100,000 deep (200 KB)", b"[" * 100_000 + b"]" * 100_000, 413, []),
        ("invalid UTF-8", b'{"id": "\xff\xfe"}', 400, []),
        ("UTF-8-encoded surrogate", b'{"id": "\xed\xa0\x80"}', 400, []),
        ("lone surrogate escape", b'{"id": "\\ud800"}', 422, ["id"]),
        ("lone surrogate in name", b'{"id": "a", "name": "\\udfff"}', 422, ["name"]),
        ("lone surrogate in notify", b'{"id": "a", "notify": ["\\ud800"]}', 422, ["notify[0]"]),
        ("empty body", b"", 400, []),
        ("whitespace body", b"   ", 400, []),
        ("NaN", b"NaN", 422, [""]),
        ("array", b"[]", 422, [""]),
        ("array of an object", b'[{"id": "a"}]', 422, [""]),
        ("string", b'"just a string"', 422, [""]),
        ("null", b"null", 422, [""]),
        ("trailing garbage", b'{"id": "a"} trailing', 400, []),
        ("duplicate key, last wins", b'{"id": "a", "id": {"x": 1}}', 422, ["id"]),
        ("chunked 70 KiB, no Content-Length", chunks(70 * 1024), 413, []),
        ("chunked 2 MiB (over waitress's limit)", chunks(2 * 1024 * 1024), 413, None),
    ]
    results = []
    for what, body, expected, paths in cases:
        answer = post(body)
        results.append((what, answer.status_code))
        assert answer.status_code == expected, (what, answer.text[:300])
        if paths is not None:
            document = answer.json()
            assert set(document) == {"error", "details"}, (what, document)
            assert [d["path"] for d in document["details"]] == paths, (what, document)
        if what.startswith("chunked"):
            assert "Content-Length" not in answer.request.headers
            assert answer.request.headers["Transfer-Encoding"] == "chunked"
    plain = post(b'{"id": "a"}', {"Content-Type": "text/plain"})
    results.append(("text/plain content type", plain.status_code))
    assert plain.status_code == 415
    small_chunked = post(iter([b'{"id": ', b'"chunked-ok"}']))
    results.append(("small chunked body", small_chunked.status_code))
    assert small_chunked.status_code == 201, small_chunked.text

    port = api_port(client)
    head = (
        b"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nAuthorization: Bearer " + WRITE_TOKEN.encode()
    )
    raw = [
        ("Content-Length 100 MB, 2 bytes sent", b"\r\nContent-Length: 100000000\r\n\r\n{}", 413),
        ("Content-Length: -1", b"\r\nContent-Length: -1\r\n\r\n{}", 400),
        ("Content-Length: abc", b"\r\nContent-Length: abc\r\n\r\n{}", 400),
        ("bad chunk size", b"\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 400),
        (
            "Content-Length and chunked (empty chunked body wins)",
            b"\r\nContent-Length: 11\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
    ]
    for what, rest, expected in raw:
        status = status_of(raw_exchange(port, head + rest))
        results.append((what, status))
        assert status == expected, what
    reader = Client(client.base, token=READ_TOKEN)
    queries = [
        ("GET /v1/jobs/%ff", "/v1/jobs/%ff", 404),
        ("GET /v1/jobs/%00", "/v1/jobs/%00", 404),
        ("GET /v1/jobs?limit=0", "/v1/jobs?limit=0", 422),
        ("GET /v1/jobs?limit=1&limit=2", "/v1/jobs?limit=1&limit=2", 422),
        ("GET /v1/jobs?limit=10**23", "/v1/jobs?limit=" + "9" * 23, 422),
        ("GET /v1/jobs?cursor=%ff", "/v1/jobs?cursor=%ff", 422),
        ("GET /v1/jobs?state=%ff%fe", "/v1/jobs?state=%ff%fe", 422),
    ]
    for what, path, expected in queries:
        answer = reader.call("GET", path)
        results.append((what, answer.status_code))
        assert answer.status_code == expected, (what, answer.text)
        assert set(answer.json()) == {"error", "details"}
    print("\n" + "\n".join(f"{status}  {what}" for what, status in results))
    assert client.call("GET", "/healthz").status_code == 200
    assert_no_traceback(daemon)
