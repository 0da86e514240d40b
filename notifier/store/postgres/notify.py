"""Wake-ups: ``LISTEN`` for the outbox rows other daemons add."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg

from notifier.backoff import exponential
from notifier.store.postgres.connection import (
    CHANNEL,
    CONNECTION_OPTIONS,
    PostgresConnection,
    describe,
)

log = logging.getLogger("notifier.store.postgres")


class PostgresListener(PostgresConnection):
    """A thread of its own that listens, reconnecting with a backoff."""

    def listen(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` whenever any daemon adds outbox rows (and after reconnecting)."""
        self._listener = threading.Thread(
            target=self._listen_loop, args=(wake,), name="pg-listen", daemon=True
        )
        self._listener.start()

    def _listen_loop(self, wake: Callable[[], None]) -> None:
        failures = 0
        while not self._closing.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, **CONNECTION_OPTIONS) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    if failures:
                        log.info("listening for new deliveries again")
                    failures = 0
                    _wake_safely(wake)  # sweep: rows added while we were not listening
                    while not self._closing.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            _wake_safely(wake)
                        conn.execute("SELECT 1")  # a silently dead connection raises here
            except psycopg.Error as exc:
                failures += 1
                delay = exponential(failures, 0.5, 10.0)
                log.warning(
                    "LISTEN connection lost (%s); reconnecting in %.1fs", describe(exc), delay
                )
                self._closing.wait(delay)


def _wake_safely(wake: Callable[[], None]) -> None:
    try:
        wake()
    except Exception as exc:
        log.error("waking the delivery lanes failed: %s", exc)
