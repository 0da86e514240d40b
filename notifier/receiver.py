"""A local webhook endpoint that records what the daemon sends (used by tests and the demo).

Also home of the small threaded-HTTP-server base (:class:`LocalHTTPServer`, :class:`QuietHandler`,
:class:`Reply`) that :mod:`notifier.simulator` builds on.
"""

from __future__ import annotations

import contextlib
import functools
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Self

from notifier import signing


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

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, without a trailing slash."""
        return f"http://{self._host}:{self.port}"

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


@dataclass(frozen=True)
class ReceivedWebhook:
    """One POST the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    received_at: float
    signature_ok: bool | None
    answered_status: int


@dataclass
class _Rule:
    status: int
    count: int | None
    delay: float
    headers: dict[str, str]


class _ReceiverHandler(QuietHandler):
    def do_POST(self) -> None:
        """Record the webhook and answer per the current rule."""
        receiver = self.owner
        assert isinstance(receiver, WebhookReceiver)
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.reply(receiver.handle(self.path, headers, self.read_body()))


class WebhookReceiver(LocalHTTPServer):
    """Accepts POSTs on any path, records them, answers with programmable statuses."""

    handler_class = _ReceiverHandler

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, secret: str | None = None):
        if secret is not None:
            signing.decode_secret(secret)
        super().__init__(host, port)
        self._secret = secret
        self._lock = threading.Lock()
        self._received: list[ReceivedWebhook] = []
        self._rules: list[_Rule] = []
        self.on_receive: Callable[[ReceivedWebhook], None] | None = None

    @property
    def received(self) -> list[ReceivedWebhook]:
        """A copy of everything received so far, oldest first."""
        with self._lock:
            return list(self._received)

    def clear(self) -> None:
        """Forget what was received."""
        with self._lock:
            self._received.clear()

    def respond_with(
        self,
        status: int,
        *,
        count: int | None = None,
        delay: float = 0,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``count`` POSTs (None: all, until changed) with ``status``.

        Rules queue up in order; a new rule replaces a pending "forever" one. With no rule
        left the receiver answers 200.
        """
        with self._lock:
            if self._rules and self._rules[-1].count is None:
                self._rules.pop()
            self._rules.append(_Rule(status, count, delay, dict(headers or {})))

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> Reply | None:
        """Record one POST and return the answer (None if stopped while delaying)."""
        rule = self._next_rule()
        webhook = ReceivedWebhook(
            path=path,
            headers=headers,
            body=body,
            json=_parse_json(body),
            received_at=time.time(),
            signature_ok=self._check_signature(headers, body),
            answered_status=rule.status,
        )
        with self._lock:
            self._received.append(webhook)
        if self.on_receive is not None:
            self.on_receive(webhook)
        if rule.delay and self.pause(rule.delay):
            return None
        return json_reply(rule.status, {"status": rule.status}, rule.headers)

    def wait_for(
        self,
        predicate_or_count: int | Callable[[ReceivedWebhook], bool],
        timeout: float = 10,
    ) -> list[ReceivedWebhook]:
        """Wait for ``count`` webhooks (returns all) or for matches of ``predicate`` (returns them).

        Raises TimeoutError describing what did arrive.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = _select(self.received, predicate_or_count)
            if found:
                return found
            if time.monotonic() >= deadline:
                raise TimeoutError(_timeout_message(predicate_or_count, timeout, self.received))
            time.sleep(0.01)

    def _next_rule(self) -> _Rule:
        with self._lock:
            if not self._rules:
                return _Rule(200, None, 0, {})
            rule = self._rules[0]
            if rule.count is not None:
                rule.count -= 1
                if rule.count <= 0:
                    self._rules.pop(0)
            return rule

    def _check_signature(self, headers: dict[str, str], body: bytes) -> bool | None:
        if self._secret is None:
            return None
        try:
            signing.verify(self._secret, headers, body)
        except signing.InvalidSignature:
            return False
        return True


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _select(
    webhooks: list[ReceivedWebhook],
    predicate_or_count: int | Callable[[ReceivedWebhook], bool],
) -> list[ReceivedWebhook]:
    if isinstance(predicate_or_count, int):
        return webhooks if len(webhooks) >= predicate_or_count else []
    return [webhook for webhook in webhooks if predicate_or_count(webhook)]


def _timeout_message(
    predicate_or_count: int | Callable[[ReceivedWebhook], bool],
    timeout: float,
    webhooks: list[ReceivedWebhook],
) -> str:
    wanted = (
        f"{predicate_or_count} webhook(s)"
        if isinstance(predicate_or_count, int)
        else "a webhook matching the predicate"
    )
    got = [(webhook.path, webhook.answered_status, webhook.json) for webhook in webhooks]
    return f"expected {wanted} within {timeout}s; received {len(webhooks)}: {got!r}"
