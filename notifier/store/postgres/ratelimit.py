"""The Datasaur request cap, shared by every daemon on the database."""

from __future__ import annotations

import logging

from notifier.ratelimit import WaitingLimiter
from notifier.store.postgres.connection import PostgresConnection

log = logging.getLogger("notifier.store.postgres")


class SharedRateLimiter(WaitingLimiter):
    """At most ``rate`` requests per second across every daemon on the database.

    One row per cap holds the next free slot of a virtual schedule (GCRA): a request is
    allowed when taking the next slot keeps it within ``capacity`` slots of now. The
    row lock serialises daemons, and ``clock_timestamp()`` (not ``now()``, which is the
    transaction's start) is the clock.
    """

    def __init__(self, store: PostgresConnection, rate: float, name: str = "datasaur") -> None:
        self.store = store
        self.name = name  # the row is created by the first migration
        self.slot = 1.0 / rate
        self.window = max(1.0, rate) * self.slot

    def take(self, wanted: int) -> int:
        """Take up to ``wanted`` of the next slots that are within the window."""
        rows = self.store._query(
            """
            WITH free AS (
                SELECT least(%s, floor((c.t + %s - greatest(r.next_free, c.t)) / %s + 1e-9))
                       ::int AS n, c.t
                FROM rate_limits r, (SELECT extract(epoch from clock_timestamp()) AS t) AS c
                WHERE r.name = %s
                FOR UPDATE OF r
            )
            UPDATE rate_limits SET next_free = greatest(next_free, free.t) + free.n * %s
            FROM free WHERE name = %s AND free.n > 0
            RETURNING free.n
            """,
            (wanted, self.window, self.slot, self.name, self.slot, self.name),
        )
        return int(rows[0][0]) if rows else 0

    def give_back(self, count: int) -> None:
        """Free ``count`` slots taken but not used."""
        if count > 0:
            self.store._query(
                "UPDATE rate_limits SET next_free = next_free - %s WHERE name = %s RETURNING 1",
                (count * self.slot, self.name),
            )

    def wait_hint(self) -> float:
        """Until the next slot enters the window (at most one slot: others compete)."""
        rows = self.store._query(
            "SELECT next_free - extract(epoch from clock_timestamp()) - %s"
            " FROM rate_limits WHERE name = %s",
            (self.window - self.slot, self.name),
        )
        wait = float(rows[0][0]) if rows else self.slot
        return min(max(wait, 0.001), self.slot)


class PostgresRateLimit(PostgresConnection):
    """Hands out the shared cap."""

    def rate_limiter(self, rate: float) -> SharedRateLimiter:
        """The Datasaur request cap, shared by every daemon on this database."""
        return SharedRateLimiter(self, rate)
