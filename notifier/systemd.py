"""sd_notify over ``NOTIFY_SOCKET`` with the standard library (no libsystemd needed)."""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger(__name__)


class Notifier:
    """Sends state changes to systemd; does nothing when not started by systemd."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = env.get("NOTIFY_SOCKET") or None
        watchdog_usec = env.get("WATCHDOG_USEC", "")
        self.watchdog_interval = int(watchdog_usec) / 2e6 if watchdog_usec.isdigit() else None

    def send(self, *fields: str) -> None:
        """Send ``KEY=value`` lines; failures are logged, never raised."""
        if not self.address:
            return
        address = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto("\n".join(fields).encode(), address)
        except OSError as exc:
            log.debug("cannot notify systemd: %s", exc)

    def ready(self, status: str) -> None:
        """Serving."""
        self.send("READY=1", f"STATUS={status}")

    def reloading(self) -> None:
        """A reload has started (``MONOTONIC_USEC`` is required by Type=notify-reload)."""
        self.send(
            "RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"
        )

    def stopping(self) -> None:
        """Shutting down."""
        self.send("STOPPING=1", "STATUS=stopping")

    def status(self, text: str) -> None:
        """One line for ``systemctl status``."""
        self.send(f"STATUS={text}")

    def watchdog(self) -> None:
        """Still alive."""
        self.send("WATCHDOG=1")
