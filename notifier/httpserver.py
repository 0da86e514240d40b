"""A small threaded HTTP server base for the local servers: the Datasaur simulator,
the webhook receiver and the metrics endpoint."""

from __future__ import annotations

import contextlib
import functools
import json
import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Self


@dataclass(frozen=True)
class Reply:
    """One HTTP answer."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    """A JSON answer."""
    return Reply(status, json.dumps(payload).encode(), headers=headers or {})


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 handler bound to its :class:`LocalHTTPServer`, logging nothing."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def __init__(self, owner: LocalHTTPServer, *args: Any) -> None:
        self.owner = owner
        super().__init__(*args)

    def setup(self) -> None:
        """Register the connection so ``stop()`` can close it."""
        super().setup()
        self.owner.track(self.connection)

    def finish(self) -> None:
        """Forget the connection."""
        self.owner.untrack(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""

    def read_body(self) -> bytes:
        """The request body (Content-Length framed)."""
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, reply: Reply | None) -> None:
        """Send ``reply``; ``None`` closes the connection without an answer."""
        if reply is None:
            self.close_connection = True
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)


class LocalHTTPServer:
    """A ThreadingHTTPServer on a daemon thread; ``stop()`` also ends keep-alive connections."""

    handler_class: ClassVar[type[QuietHandler]]

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), functools.partial(self.handler_class, self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None
        self._scheme = "http"

    def use_tls(self, context: ssl.SSLContext) -> None:
        """Serve HTTPS with ``context`` (call before :meth:`start`); with
        ``context.verify_mode = ssl.CERT_REQUIRED`` clients must present a certificate."""
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._scheme = "https"

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, without a trailing slash."""
        return f"{self._scheme}://{self._host}:{self.port}"

    def start(self) -> None:
        """Serve on a daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop serving, close open connections and the socket; idempotent."""
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._close_connections()
        self._httpd.server_close()

    def wait(self) -> None:
        """Block until :meth:`stop` or :meth:`request_stop` is called."""
        while not self._stopping.wait(0.5):
            pass

    def request_stop(self) -> None:
        """Make :meth:`wait` return; safe in a signal handler. Call :meth:`stop` afterwards."""
        self._stopping.set()

    def pause(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when interrupted by :meth:`stop`."""
        return self._stopping.wait(seconds)

    def track(self, connection: socket.socket) -> None:
        """Remember an open connection."""
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        """Forget a closed connection."""
        with self._connections_lock:
            self._connections.discard(connection)

    def _close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def parse_json(body: bytes) -> Any:
    """A request body as JSON; None when it is empty or not JSON."""
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None
