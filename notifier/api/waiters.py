"""Long-polls and streams held open without holding the API's workers.

waitress gives a request a worker thread for its whole life, so a held long-poll or
stream keeps one. The listener therefore runs ``WORKERS + max_waiters`` threads and
admits at most ``max_waiters`` held requests at once (:class:`WaiterSlots`; beyond:
``503`` with ``Retry-After``): however many are held, :data:`~notifier.api.server.WORKERS`
threads stay free for everything else. A held request sleeps on a condition, not on
the database: :class:`FeedWatch` alone (one thread) looks at the log's head, a few
times a second and at once when :meth:`FeedWatch.poke` says this process recorded
something, and wakes the waiters when it moves; another daemon's events (PostgreSQL)
are seen by that same look within :data:`LOOK_EVERY`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

LOOK_EVERY = 0.25  # seconds between looks at the head when nothing pokes
RETRY_AFTER = 2  # seconds, for a 503 when every waiter slot is taken


class WaiterSlots:
    """At most ``limit`` held requests at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        """A slot, if one is free."""
        with self._lock:
            if self.held >= self.limit:
                return False
            self.held += 1
            return True

    def give_back(self) -> None:
        """Free a slot taken by :meth:`take`."""
        with self._lock:
            self.held -= 1


class FeedWatch:
    """One thread following the log's head; held requests wait for it to move."""

    def __init__(self, head: Callable[[], int]) -> None:
        self._read_head = head
        self.head = 0
        self._changed = threading.Condition()
        self._poked = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="feed-watch", daemon=True)

    def start(self) -> None:
        """Start following (the first look is made at once)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop following and wake every waiter."""
        self._stopping.set()
        self._poked.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def poke(self) -> None:
        """Something was recorded here: look at the head now."""
        self._poked.set()

    def wait_beyond(self, cursor: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the head to pass ``cursor``; whether it did."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.head <= cursor and not self._stopping.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return self.head > cursor

    def pause(self, seconds: float) -> None:
        """Sleep up to ``seconds``, less if the watch stops."""
        self._stopping.wait(seconds)

    def _follow(self) -> None:
        while not self._stopping.is_set():
            try:
                head = self._read_head()
            except Exception as exc:  # the store is down: waiters time out, we retry
                log.warning("feed: cannot read the event log's head: %s", exc)
                head = self.head
            if head != self.head:
                with self._changed:
                    self.head = head
                    self._changed.notify_all()
            self._poked.wait(LOOK_EVERY)
            self._poked.clear()
