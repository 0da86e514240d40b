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
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from notifier.config import DatasaurSettings
from notifier.datasaur import ApiUnavailable, DatasaurClient

ANSWER = {"data": {"result": [{"id": "a", "status": "QUEUED", "progress": 0}]}}

# What the server does with a connection: given the socket, it answers what it wants.
Behaviour = Callable[[socket.socket], None]


def read_request(conn: socket.socket) -> bytes:
    """One HTTP request (headers and its Content-Length body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += conn.recv(65536)
    return body


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


def client_of(url: str) -> DatasaurClient:
    """A client of ``url``, made after the environment it reads (CA bundle) is set."""
    return DatasaurClient(DatasaurSettings(graphql_url=url, token="t0ken", timeout=5))


def test_queries_share_one_kept_alive_connection(serve: Callable[..., RawServer]) -> None:
    server = serve(answer_kept_alive)
    client = client_of(server.url)
    for _ in range(5):
        assert client.get_jobs(["a"]) == ANSWER["data"]["result"]
    assert server.connections == 1


def test_a_connection_closed_while_idle_is_reopened_and_the_query_sent_again(
    serve: Callable[..., RawServer],
) -> None:
    server = serve(answer_then_close, answer_then_close, answer_then_close)
    client = client_of(server.url)
    for _ in range(3):
        assert client.get_jobs(["a"]) == ANSWER["data"]["result"]
    assert server.connections == 3


def test_a_reset_on_a_new_connection_is_the_api_unavailable_with_no_retry(
    serve: Callable[..., RawServer],
) -> None:
    server = serve(reset_at_once, answer_kept_alive)
    client = client_of(server.url)
    with pytest.raises(ApiUnavailable, match="Datasaur API: "):
        client.get_jobs(["a"])
    assert server.connections == 1
    assert client.get_jobs(["a"]) == ANSWER["data"]["result"]  # the next tick reconnects


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
        assert client.get_jobs(["a"]) == ANSWER["data"]["result"]
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
