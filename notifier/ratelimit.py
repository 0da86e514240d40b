"""A token bucket capping requests per second to Datasaur."""

from __future__ import annotations

import threading
import time


class RateLimiter:
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

    def try_acquire(self) -> bool:
        """Take a token if one is available now."""
        with self._lock:
            self._refill()
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False

    def acquire(self, stopping: threading.Event) -> bool:
        """Wait for a token; False if ``stopping`` is set first."""
        while not stopping.is_set():
            if self.try_acquire():
                return True
            with self._lock:
                wait = (1 - self._tokens) / self.rate
            stopping.wait(max(wait, 0.001))
        return False
