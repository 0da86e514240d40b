"""Chores one daemon does for all: forgetting dead instances, retention."""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from notifier.store.grouping import Tx
from notifier.store.grouping import prune as prune_groups
from notifier.store.postgres.connection import AT, HOUSEKEEPING_LOCK, NOW, PostgresConnection, at
from notifier.store.postgres.feed import prune as prune_events
from notifier.store.rows import PruneCounts
from notifier.store.shared import PRUNABLE_JOBS, PRUNE_BATCH, PRUNE_BATCHES

log = logging.getLogger("notifier.store.postgres")


FORGET_INSTANCES_AFTER = 86_400.0  # a dead daemon's heartbeat row is shown for a day


class PostgresMaintenance(PostgresConnection):
    """Housekeeping under a try-lock: whoever gets it does the chores."""

    def housekeeping(self, now: float, retention: float) -> PruneCounts:
        """Chores that must run once across daemons: whoever gets the lock does them.

        Forgets instances silent for a day, then applies retention in small batches.
        """
        total = PruneCounts()
        for batch in range(PRUNE_BATCHES if retention else 1):
            with self._transaction() as conn:
                got = conn.execute(
                    "SELECT pg_try_advisory_xact_lock(%s)", (HOUSEKEEPING_LOCK,)
                ).fetchone()
                if not got or not got[0]:
                    return total
                if batch == 0:
                    conn.execute(
                        f"DELETE FROM instances WHERE last_seen_at < {NOW} - %s",
                        (FORGET_INSTANCES_AFTER,),
                    )
                if not retention:
                    return total
                counts, more = self._prune(conn, now - retention)
                groups = 0
                if not more:  # ended groups whose members are gone
                    tx = Tx(conn.execute, postgres=True, stamp=at)
                    groups = prune_groups(tx, now - retention)
                events = prune_events(conn, now - retention, PRUNE_BATCH)
            total += counts + PruneCounts(events=events, groups=groups)
            if not more and events < PRUNE_BATCH:
                break
        return total

    def _prune(self, conn: psycopg.Connection[Any], cutoff: float) -> tuple[PruneCounts, bool]:
        select = PRUNABLE_JOBS.format(cutoff=AT, greatest="greatest", limit="%s")
        ids = [row[0] for row in conn.execute(select, (at(cutoff), at(cutoff), PRUNE_BATCH))]
        if not ids:
            return PruneCounts(), False
        counts = PruneCounts(
            attempts=conn.execute(
                "DELETE FROM attempts WHERE delivery_id IN"
                " (SELECT id FROM deliveries WHERE job_id = ANY(%s))",
                (ids,),
            ).rowcount,
            deliveries=conn.execute(
                "DELETE FROM deliveries WHERE job_id = ANY(%s)", (ids,)
            ).rowcount,
            jobs=conn.execute("DELETE FROM jobs WHERE id = ANY(%s)", (ids,)).rowcount,
        )
        return counts, len(ids) == PRUNE_BATCH
