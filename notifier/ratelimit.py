"""Caps on the request rate to Datasaur: a local token bucket, and the waiting loop.

The cap is Datasaur's per-account limit. One daemon uses :class:`RateLimiter`; daemons
that share a PostgreSQL store share one cap through a row of the database (see
:mod:`notifier.store.postgres.ratelimit`), built on the same :class:`WaitingLimiter`.
"""

from __future__ import annotations

import threading
import time


class WaitingLimiter:
    """``acquire`` waits on ``try_acquire``; subclasses hand out tokens and say when
    to look again."""

    def take(self, wanted: int) -> int:
        """Take up to ``wanted`` tokens now; returns how many were taken."""
        raise NotImplementedError

    def give_back(self, count: int) -> None:
        """Return tokens taken but not used."""
        raise NotImplementedError

    def try_acquire(self) -> bool:
        """Take a token if one is available now."""
        return self.take(1) == 1

    def wait_hint(self) -> float:
        """Seconds until a token is likely available."""
        raise NotImplementedError

    def acquire(self, stopping: threading.Event) -> bool:
        """Wait for a token; False if ``stopping`` is set first."""
        while not stopping.is_set():
            if self.try_acquire():
                return True
            stopping.wait(max(self.wait_hint(), 0.001))
        return False


class RateLimiter(WaitingLimiter):
    """At most ``rate`` requests per second, with bursts of up to ``max(1, rate)``."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._tokens = self.capacity
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def take(self, wanted: int) -> int:
        """Take up to ``wanted`` tokens now; returns how many were taken."""
        with self._lock:
            self._refill()
            taken = min(wanted, int(self._tokens))
            self._tokens -= taken
            return taken

    def give_back(self, count: int) -> None:
        """Return tokens taken but not used."""
        with self._lock:
            self._tokens = min(self.capacity, self._tokens + count)

    def wait_hint(self) -> float:
        """Time for the bucket to hold one whole token."""
        with self._lock:
            return (1 - self._tokens) / self.rate
