"""The getJobs transport: one kept-alive connection, against a real socket server.

A server that closes a kept-alive connection while it is idle (as servers and load
balancers do after their keep-alive timeout) costs nothing but a new connection: the
read-only query is sent again once. A connection that fails in any other way is the
API being unavailable, with no retry (backing off is the poller's decision).
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from notifier.config import DatasaurSettings
from notifier.datasaur import ApiUnavailable, DatasaurClient
from notifier.datasaur_answers import Observation

ANSWER = {"data": {"result": [{"id": "a", "status": "QUEUED", "progress": 0}]}}
POLLED = [Observation(ANSWER["data"]["result"][0])]

# What the server does with a connection: given the socket, it answers what it wants.
Behaviour = Callable[[socket.socket], None]


def read_message(conn: socket.socket) -> tuple[bytes, bytes]:
    """One HTTP request's head and Content-Length body; empty when the client closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b"", b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += conn.recv(65536)
    return head, body


def read_request(conn: socket.socket) -> bytes:
    """One HTTP request's body (empty when the client closed)."""
    return read_message(conn)[1]


def reply(conn: socket.socket, status: str, body: bytes, *headers: str) -> None:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers]
    conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


class RawServer:
    """Accepts connections on 127.0.0.1 and hands each to ``behaviour`` in turn
    (over TLS with ``tls``, as ``localhost``)."""

    def __init__(self, behaviours: Iterator[Behaviour], tls: ssl.SSLContext | None = None):
        self.behaviours = behaviours
        self.tls = tls
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        port = self.listener.getsockname()[1]
        self.url = (
            f"https://localhost:{port}/graphql" if tls else f"http://127.0.0.1:{port}/graphql"
        )
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            try:
                if self.tls is not None:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                with conn:
                    next(self.behaviours)(conn)
            except OSError:  # ssl.SSLError too: a client that refused our certificate
                continue

    def close(self) -> None:
        self.listener.close()


def answer_then_close(conn: socket.socket) -> None:
    """Answer one query (keeping the connection alive, per HTTP/1.1), then drop it."""
    read_request(conn)
    reply(conn, "200 OK", json.dumps(ANSWER).encode(), "Content-Type: application/json")


def answer_kept_alive(conn: socket.socket) -> None:
    """Answer every query on the connection until the client closes it."""
    while read_request(conn):
        reply(conn, "200 OK", json.dumps(ANSWER).encode(), "Content-Type: application/json")


def reset_at_once(conn: socket.socket) -> None:
    """Read the query and reset the connection without answering."""
    read_request(conn)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


def answer_chunked(conn: socket.socket) -> None:
    """Answer every query with a chunked body, in two chunks."""
    while read_request(conn):
        body = json.dumps(ANSWER).encode()
        half = len(body) // 2
        chunks = b"".join(
            b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:half], body[half:])
        )
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
        )


def answer_after_continue(conn: socket.socket) -> None:
    """An interim 100 Continue before every answer."""
    while read_request(conn):
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        reply(conn, "200 OK", json.dumps(ANSWER).encode())


def answer_until_close(conn: socket.socket) -> None:
    """An HTTP/1.0 answer without a length: the body ends where the connection does."""
    read_request(conn)
    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n")
    conn.sendall(json.dumps(ANSWER).encode())


def answer_and_say_close(conn: socket.socket) -> None:
    """Answer with ``Connection: close`` (and wait for the client to go)."""
    read_request(conn)
    reply(conn, "200 OK", json.dumps(ANSWER).encode(), "Connection: close")
    conn.recv(1)


def truncate_answer(conn: socket.socket) -> None:
    """Promise a longer body than is sent, then close."""
    read_request(conn)
    conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{"data"')


def answer_not_http(conn: socket.socket) -> None:
    read_request(conn)
    conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")


def answer_endless_headers(conn: socket.socket) -> None:
    """A header section that never ends (until the client gives up)."""
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    for _ in range(200):
        conn.sendall(b"X-Padding: " + b"x" * 1000 + b"\r\n")


def drip_answer(conn: socket.socket) -> None:
    """Send the answer a byte at a time, each well within the client's timeout."""
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
    try:
        while True:
            conn.sendall(b" ")
            time.sleep(0.1)
    except OSError:  # the client gave up
        return


def busy(conn: socket.socket) -> None:
    read_request(conn)
    reply(conn, "503 Service Unavailable", b"busy", "Retry-After: 7")


@pytest.fixture
def serve() -> Iterator[Callable[..., RawServer]]:
    """Start servers answering with the given behaviours (closed after the test)."""
    servers: list[RawServer] = []

    def start(*behaviours: Behaviour, tls: ssl.SSLContext | None = None) -> RawServer:
        servers.append(RawServer(iter(behaviours), tls))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def client_of(url: str, token: str = "t0ken", timeout: float = 5) -> DatasaurClient:
    """A client of ``url``, made after the environment it reads (CA bundle) is set."""
    return DatasaurClient(DatasaurSettings(graphql_url=url, token=token, timeout=timeout))


def test_queries_share_one_kept_alive_connection(serve: Callable[..., RawServer]) -> None:
    server = serve(answer_kept_alive)
    client = client_of(server.url)
    for _ in range(5):
        assert client.get_jobs(["a"]) == POLLED
    assert server.connections == 1


def test_a_connection_closed_while_idle_is_reopened_and_the_query_sent_again(
    serve: Callable[..., RawServer],
) -> None:
    server = serve(answer_then_close, answer_then_close, answer_then_close)
    client = client_of(server.url)
    for _ in range(3):
        assert client.get_jobs(["a"]) == POLLED
    assert server.connections == 3


def test_a_reset_on_a_new_connection_is_the_api_unavailable_with_no_retry(
    serve: Callable[..., RawServer],
) -> None:
    server = serve(reset_at_once, answer_kept_alive)
    client = client_of(server.url)
    with pytest.raises(ApiUnavailable, match="Datasaur API: "):
        client.get_jobs(["a"])
    assert server.connections == 1
    assert client.get_jobs(["a"]) == POLLED  # the next tick reconnects


@pytest.mark.parametrize(
    ("behaviours", "connections"),
    [
        ((answer_chunked,), 1),
        ((answer_after_continue,), 1),
        ((answer_until_close,) * 3, 3),
        ((answer_and_say_close,) * 3, 3),
    ],
    ids=["chunked", "interim-100", "delimited-by-close", "connection-close"],
)
def test_every_framing_of_an_answer_is_read(
    serve: Callable[..., RawServer], behaviours: tuple[Behaviour, ...], connections: int
) -> None:
    """Chunked and interim answers keep the connection; the others end it, as they say."""
    server = serve(*behaviours)
    client = client_of(server.url)
    for _ in range(3):
        assert client.get_jobs(["a"]) == POLLED
    assert server.connections == connections


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        (truncate_answer, "closed the connection in the middle of its answer"),
        (answer_not_http, "not an HTTP/1.1 answer"),
        (answer_endless_headers, "answer headers longer than 65536 bytes"),
    ],
    ids=["truncated", "not-http", "endless-headers"],
)
def test_a_broken_answer_is_the_api_unavailable_and_the_next_query_reconnects(
    serve: Callable[..., RawServer], behaviour: Behaviour, reason: str
) -> None:
    server = serve(behaviour, answer_kept_alive)
    client = client_of(server.url)
    with pytest.raises(ApiUnavailable, match=f"Datasaur API: .*{reason}"):
        client.get_jobs(["a"])
    assert client.get_jobs(["a"]) == POLLED
    assert server.connections == 2


def test_an_answer_dripping_in_times_out_as_a_whole(serve: Callable[..., RawServer]) -> None:
    client = client_of(serve(drip_answer).url, timeout=1)
    started = time.monotonic()
    with pytest.raises(ApiUnavailable, match="timed out"):
        client.get_jobs(["a"])
    assert time.monotonic() - started < 5  # not 100,000 x 0.1 s


def test_the_request_names_its_host_and_length_and_never_sends_a_header_split(
    serve: Callable[..., RawServer],
) -> None:
    heads: list[bytes] = []

    def record(conn: socket.socket) -> None:
        conn.settimeout(5)
        head, body = read_message(conn)
        heads.append(head)
        assert json.loads(body)["variables"] == {"jobIds": ["a"]}
        reply(conn, "200 OK", json.dumps(ANSWER).encode())

    server = serve(record, answer_kept_alive)
    assert client_of(server.url).get_jobs(["a"]) == POLLED
    head = heads[0].decode().split("\r\n")
    port = server.url.split(":")[2].split("/")[0]
    assert head[0] == "POST /graphql HTTP/1.1"
    assert f"Host: 127.0.0.1:{port}" in head
    assert "Authorization: Bearer t0ken" in head
    with pytest.raises(ApiUnavailable, match="line break") as failure:
        client_of(server.url, token="s3cret\r\nX-Injected: 1").get_jobs(["a"])
    assert "s3cret" not in str(failure.value)
    assert server.connections == 1  # the split header was never sent


def test_retry_after_is_read_from_an_overloaded_api(serve: Callable[..., RawServer]) -> None:
    client = client_of(serve(busy).url)
    with pytest.raises(ApiUnavailable, match="HTTP 503") as failure:
        client.get_jobs(["a"])
    assert failure.value.retry_after == 7


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for ``localhost`` and its key."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_server(certificate: tuple[Path, Path], serve: Callable[..., RawServer]) -> RawServer:
    """A TLS server for ``localhost`` answering every query."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return serve(answer_kept_alive, tls=context)


def test_tls_with_the_ca_bundle_requests_would_use(
    tls_server: RawServer, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    client = client_of(tls_server.url)
    for _ in range(3):
        assert client.get_jobs(["a"]) == POLLED
    assert tls_server.connections == 1


def test_tls_refuses_a_certificate_it_cannot_verify(
    tls_server: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with pytest.raises(ApiUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        client_of(tls_server.url).get_jobs(["a"])


def test_a_missing_ca_bundle_is_a_failed_request_not_a_crash(
    tls_server: RawServer,
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(ApiUnavailable, match="No such file"):
        client_of(tls_server.url).get_jobs(["a"])
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0].parent))  # a directory
    with pytest.raises(ApiUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        client_of(tls_server.url).get_jobs(
            ["a"]
        )  # no hashed names in it: nothing trusted, nothing broken


def test_an_unreachable_api_is_unavailable() -> None:
    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}/graphql"
    with pytest.raises(ApiUnavailable, match="refused"):
        client_of(url).get_jobs(["a"])
