"""Retention and online backups."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from notifier.store.base import StoreError
from notifier.store.grouping import Tx
from notifier.store.grouping import prune as prune_groups
from notifier.store.rows import PruneCounts
from notifier.store.shared import PRUNABLE_JOBS, PRUNE_BATCH, PRUNE_BATCHES
from notifier.store.sqlite.connection import SqliteConnection
from notifier.store.sqlite.feed import prune as prune_events


class SqliteMaintenance(SqliteConnection):
    """Pruning old rows and copying the file while the daemon runs."""

    def housekeeping(self, now: float, retention: float) -> PruneCounts:
        """Apply retention (finished jobs with their deliveries, then the event log), a few
        small transactions at a time."""
        total = PruneCounts()
        if not retention:
            return total
        select = PRUNABLE_JOBS.format(cutoff="?", greatest="max", limit="?")
        for _ in range(PRUNE_BATCHES):
            with self._transaction() as conn:
                ids = [
                    row[0] for row in conn.execute(select, (now - retention,) * 2 + (PRUNE_BATCH,))
                ]
                if not ids:
                    break
                marks = ",".join("?" * len(ids))
                deliveries = f"SELECT id FROM deliveries WHERE job_id IN ({marks})"
                counts = PruneCounts(
                    attempts=conn.execute(
                        f"DELETE FROM attempts WHERE delivery_id IN ({deliveries})", ids
                    ).rowcount,
                    deliveries=conn.execute(
                        f"DELETE FROM deliveries WHERE job_id IN ({marks})", ids
                    ).rowcount,
                    jobs=conn.execute(f"DELETE FROM jobs WHERE id IN ({marks})", ids).rowcount,
                )
            total += counts
            if len(ids) < PRUNE_BATCH:
                break
        with self._transaction() as conn:  # ended groups whose members are gone
            total += PruneCounts(
                groups=prune_groups(Tx(conn.execute, postgres=False), now - retention)
            )
        for _ in range(PRUNE_BATCHES):
            with self._transaction() as conn:
                removed = prune_events(conn, now - retention, PRUNE_BATCH)
            total += PruneCounts(events=removed)
            if removed < PRUNE_BATCH:
                break
        return total

    def backup(self, target: Path) -> None:
        """A consistent copy of the state, taken with SQLite's online backup API while
        the daemon runs; written beside ``target`` and renamed, so a reader never sees
        half a copy."""
        partial = target.with_name(f".{target.name}.partial")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial.unlink(missing_ok=True)
            with closing(sqlite3.connect(partial)) as copy:
                self._conn().backup(copy)
                copy.execute("DELETE FROM instances")  # a copy has no daemon running
                copy.commit()
            partial.replace(target)
        except (OSError, sqlite3.Error) as exc:
            partial.unlink(missing_ok=True)
            raise StoreError(f"cannot back up {self.path} to {target}: {exc}") from None
