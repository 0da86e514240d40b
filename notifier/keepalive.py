"""The poll path's transport: one kept-alive HTTP/1.1 connection, parsed by httptools.

A getJobs exchange happens once per 50 job-polls. Through ``http.client`` it cost
about 60 µs more CPU than the exchange itself (request assembly, and header parsing
that goes through the ``email`` package), as much as decoding the 50 answers. Here
the request is one formatted write and the answer is parsed by httptools (llhttp, the
parser of Node.js and uvicorn): status line, headers, Content-Length or chunked
bodies, interim 1xx answers, and whether the connection may be kept.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

import certifi
import httptools

from notifier.client_cert import ClientCert

Reply = tuple[int, str | None, bytes]  # status, Retry-After, body

READ_SIZE = 256 * 1024
MAX_HEAD = 64 * 1024  # bytes before the end of the header section
MAX_BODY = 64 * 1024 * 1024
_LINE_BREAK = re.compile("[\r\n\0]")


class ProtocolError(http.client.HTTPException):
    """The server's answer is not HTTP/1.1 we can read, or is too large."""


class KeptAlive:
    """POSTs to one URL over one kept-alive connection (TLS for ``https``).

    A connection the server closed while idle (as servers and load balancers do after
    their keep-alive timeout) is reopened and the request sent again once: callers send
    only read-only queries. Any other failure is raised (``OSError`` or
    :class:`http.client.HTTPException`) and the connection is dropped. ``timeout``
    bounds each wait for the server, and the whole answer (checked between reads).
    """

    def __init__(
        self,
        url: str,
        timeout: float,
        bundle: str | None = None,
        client: ClientCert | None = None,
    ) -> None:
        """``bundle``: the CA certificates (a file or a directory) for ``https``, else
        certifi's; ``client``: a client certificate to present. Both are read on first
        connect, so a bad one is a failed request, not a crash."""
        parts = urlsplit(url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        name = f"[{self.host}]" if ":" in self.host else self.host
        self.authority = name if parts.port is None else f"{name}:{parts.port}"
        self.timeout, self.bundle, self.client = timeout, bundle, client
        self.lock = threading.Lock()
        self.sock: socket.socket | None = None
        self.answer = _Answer()

    def post(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        """Send ``body`` with ``headers``; the answer's status, Retry-After and body."""
        request = self._request(body, headers)
        with self.lock:
            reused = self.sock is not None
            try:
                return self._exchange(request)
            except (ConnectionResetError, BrokenPipeError):  # RemoteDisconnected is one
                if not reused:
                    raise
            return self._exchange(request)

    def close(self) -> None:
        """Drop the connection (the next request opens a new one)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _request(self, body: bytes, headers: Mapping[str, str]) -> bytes:
        if _LINE_BREAK.search("".join((*headers, *headers.values()))):
            raise ProtocolError("a request header contains a line break")  # never its value
        fields = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        head = (
            f"POST {self.target} HTTP/1.1\r\nHost: {self.authority}\r\n"
            f"Accept-Encoding: identity\r\nContent-Length: {len(body)}\r\n{fields}\r\n"
        )
        try:
            return head.encode("latin-1") + body
        except UnicodeEncodeError:
            raise ProtocolError("a request header is not Latin-1 text") from None

    def _connect(self) -> socket.socket:
        if self.sock is None:
            sock = socket.create_connection((self.host, self.port), self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.https:
                try:
                    context = tls_context(self.bundle, self.client)
                    sock = context.wrap_socket(sock, server_hostname=self.host)
                except BaseException:
                    sock.close()
                    raise
            self.sock = sock
            self.answer = _Answer()  # a new parser for a new connection
        return self.sock

    def _exchange(self, request: bytes) -> Reply:
        sock = self._connect()
        answer = self.answer
        answer.start()
        deadline = time.monotonic() + self.timeout
        try:
            sock.sendall(request)
            while answer.reply is None:
                answer.feed(sock.recv(READ_SIZE))
                if time.monotonic() > deadline:  # a server dripping its answer
                    raise TimeoutError("timed out")
        except BaseException:
            self.close()
            raise
        if not answer.keep_alive:
            self.close()
        assert answer.reply is not None
        return answer.reply


def tls_context(bundle: str | None, client: ClientCert | None = None) -> ssl.SSLContext:
    """Certificates checked against ``bundle`` (a file or a directory), else certifi's;
    ``client`` presented when the server asks for a certificate."""
    if bundle and os.path.isdir(bundle):
        context = ssl.create_default_context(capath=bundle)
    else:
        context = ssl.create_default_context(cafile=bundle or certifi.where())
    if client is not None:
        client.load_into(context)
    return context


class _Answer:
    """One connection's answers as httptools sees them (its callbacks are the methods)."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.start()

    def start(self) -> None:
        """Ready for the answer to the next request."""
        self.reply: Reply | None = None
        self.status, self.body = 0, list[bytes]()
        self.retry_after: str | None = None
        self.received = self.size = 0
        self.framed = self.headers_done = False
        self.keep_alive = True

    def feed(self, data: bytes) -> None:
        """Parse what the server sent; ``b""`` is the server closing the connection."""
        if not data:
            self._closed()
            return
        self.received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            raise ProtocolError("the server switched protocols") from None
        except httptools.HttpParserError as exc:
            raise ProtocolError(f"not an HTTP/1.1 answer ({exc})") from None
        if not self.headers_done and self.received > MAX_HEAD:
            raise ProtocolError(f"answer headers longer than {MAX_HEAD} bytes")
        if self.size > MAX_BODY:
            raise ProtocolError(f"answer body larger than {MAX_BODY} bytes")

    def _closed(self) -> None:
        if self.headers_done and not self.framed:  # a body delimited by the close
            self._complete(keep_alive=False)
        elif self.received:
            raise ProtocolError("the server closed the connection in the middle of its answer")
        else:
            raise http.client.RemoteDisconnected("the server closed the connection unanswered")

    def _complete(self, keep_alive: bool) -> None:
        self.reply = (self.status, self.retry_after, b"".join(self.body))
        self.keep_alive = keep_alive

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self.reply is not None:  # more after the answer: not a connection to keep
            self.keep_alive = False

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"retry-after":
            self.retry_after = value.decode("latin-1")
        elif name in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.headers_done = True
        self.status = self.parser.get_status_code()

    def on_body(self, chunk: bytes) -> None:
        self.body.append(chunk)
        self.size += len(chunk)

    def on_message_complete(self) -> None:
        if self.reply is not None:  # a second answer to one request: ignored
            return
        if self.status < 200:  # an interim answer (100 Continue): the real one follows
            self.start()
            return
        self._complete(self.parser.should_keep_alive())
