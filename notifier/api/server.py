"""The API's listener: waitress, on threads of its own.

waitress reads requests asynchronously and hands only complete ones to its worker
threads, so slow clients (slowloris) and floods of idle or garbage connections cost a
socket each, not a worker; it bounds header and body sizes and the number of
connections, and cuts idle connections. Polling and delivery run on other threads and
share none of these limits. The event feed's held long-polls and streams each keep a
thread for their life: the pool has ``waiters`` more threads than :data:`WORKERS`, and
the feed admits at most that many held requests (see :mod:`notifier.api.waiters`).
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from typing import Any

from waitress.server import create_server

log = logging.getLogger(__name__)

WORKERS = 4
CONNECTION_LIMIT = 500
IDLE_TIMEOUT = 10  # seconds without any byte from the client
MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 1024 * 1024  # the application answers 413 above 64 KiB itself


class ApiServer:
    """Serves a WSGI application on ``host:port`` until :meth:`stop`."""

    def __init__(self, app: Any, host: str, port: int, waiters: int = 0) -> None:
        server: Any = create_server(
            app,
            host=host,
            port=port,
            threads=WORKERS + waiters,  # held long-polls never take the WORKERS'
            send_bytes=1,  # a stream's events go out as they are written
            connection_limit=CONNECTION_LIMIT,
            channel_timeout=IDLE_TIMEOUT,
            cleanup_interval=1,
            max_request_header_size=MAX_HEADER_BYTES,
            max_request_body_size=MAX_BODY_BYTES,
            asyncore_use_poll=True,
            expose_tracebacks=False,
            ident="datasaur-notifier",
            clear_untrusted_proxy_headers=True,
        )
        self.server = server  # one listening socket: a TcpWSGIServer
        self.host = host
        self.port: int = server.effective_port
        self._thread = threading.Thread(target=self.server.run, name="api", daemon=True)

    @property
    def url(self) -> str:
        """``http://host:port``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Serve in the background."""
        self._thread.start()
        log.info("api on %s", self.url)
        if not is_loopback(self.host):
            log.warning(
                "api listens on %s: tokens cross the network in clear unless a reverse"
                " proxy terminates TLS in front of it",
                self.host,
            )

    def stop(self) -> None:
        """Stop listening, close every connection and let the workers finish."""
        self.server.close()
        for channel in list(self.server._map.values()):
            channel.close()
        self.server.task_dispatcher.shutdown(timeout=5)
        self._thread.join(timeout=5)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
