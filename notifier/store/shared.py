"""What both backends share beyond the columns: the callback-health rule, the retention
query, the watch-list upsert and the read-only summaries whose SQL is the same."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from notifier.config import JobSpec
from notifier.jobfields import GroupConflict
from notifier.store.columns import HEALTH_COLUMNS
from notifier.store.rows import DELIVERY_STATES, CallbackHealth, HealthChange

log = logging.getLogger("notifier.store")


def health_after(
    before: CallbackHealth, ok: bool, detail: str, pause_after: int, now: float
) -> CallbackHealth:
    """A callback's health after one attempt: both backends apply this same rule."""
    if ok:
        return CallbackHealth(before.callback, 0, None, None, None)
    failures = before.consecutive_failures + 1
    paused_at = before.paused_at
    if paused_at is None and pause_after and failures >= pause_after:
        paused_at = now
    return CallbackHealth(before.callback, failures, detail, paused_at, before.last_probe_at)


def change_between(
    before: CallbackHealth, after: CallbackHealth, pending: int
) -> HealthChange | None:
    """``paused`` or ``resumed`` if the attempt flipped the lane, else None."""
    if before.paused_at is None and after.paused_at is not None:
        return HealthChange("paused", after, pending)
    if before.paused_at is not None and after.paused_at is None:
        return HealthChange("resumed", before._replace(consecutive_failures=0), pending)
    return None


PRUNE_BATCH = 500  # jobs per transaction, so pruning never holds the write lock for long
PRUNE_BATCHES = 20  # per housekeeping call; the rest waits for the next one

# Jobs retention may remove: ended, quiet since the cutoff, and no delivery of theirs
# pending or touched since (``{greatest}``: the backend's max of several values).
PRUNABLE_JOBS = """
    SELECT id FROM jobs j
    WHERE state != 'watching' AND coalesce(last_polled_at, registered_at) < {cutoff}
      AND NOT EXISTS (
          SELECT 1 FROM deliveries d WHERE d.job_id = j.id
            AND (d.state IN ('pending', 'silenced')
                 OR {greatest}(d.created_at, d.queued_at, coalesce(d.delivered_at, 0)) >= {cutoff}))
    LIMIT {limit}
"""

# The upsert both backends use for ``watch``/``sync``: ``callback_url`` belongs to API
# registrations, so a CLI or config upsert keeps the one there is.
UPSERT_SET = """
    ON CONFLICT (id) DO UPDATE SET
        name = excluded.name, notify = excluded.notify, on_status = excluded.on_status,
        source = excluded.source, group_id = excluded.group_id, labels = excluded.labels,
        metadata = excluded.metadata, deadline = excluded.deadline,
        expire_after = excluded.expire_after, stall_after = excluded.stall_after,
        callback_url = CASE WHEN excluded.source = 'api' THEN excluded.callback_url
                            ELSE jobs.callback_url END
"""


def check_group(spec: JobSpec, stored_group: str | None) -> None:
    """Refuse to move a job that is in a group to another group (or out of it)."""
    if stored_group is not None and spec.group != stored_group:
        raise GroupConflict(spec.id, stored_group)


def config_spec(spec: JobSpec, stored_group: str | None) -> JobSpec:
    """A config job as synced: one already in another group stays in it (a warning)."""
    if stored_group is None or spec.group == stored_group:
        return spec
    log.warning(
        "config job %s: %s; it stays there (unwatch it, or restore its group)",
        spec.id,
        GroupConflict(spec.id, stored_group),
    )
    return spec.model_copy(update={"group": stored_group})


class Summaries:
    """Read-only summaries whose SQL is the same on both backends (a base of each store)."""

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def counts(self) -> dict[str, dict[str, int]]:
        """Jobs by state and deliveries by state."""
        return {
            "jobs": dict(self._query("SELECT state, count(*) FROM jobs GROUP BY state")),
            "deliveries": dict(
                self._query("SELECT state, count(*) FROM deliveries GROUP BY state")
            ),
        }

    def pending_by_callback(self) -> dict[str, int]:
        """Pending deliveries per callback name."""
        return self._by_callback("pending")

    def dead_by_callback(self) -> dict[str, int]:
        """Dead deliveries per callback name."""
        return self._by_callback("dead")

    def silenced_by_callback(self) -> dict[str, int]:
        """Deliveries a silence holds, per callback name."""
        return self._by_callback("silenced")

    def _by_callback(self, state: str) -> dict[str, int]:
        assert state in DELIVERY_STATES  # a constant, spliced into the SQL
        return dict(
            self._query(
                f"SELECT callback, count(*) FROM deliveries WHERE state = '{state}'"
                " GROUP BY callback"
            )
        )

    def oldest_pending(self) -> float | None:
        """Creation time of the oldest pending delivery."""
        rows = self._query("SELECT min(created_at) FROM deliveries WHERE state = 'pending'")
        return rows[0][0] if rows else None

    def callback_health(self) -> list[CallbackHealth]:
        """Every callback with a recorded failure or pause."""
        rows = self._query(f"SELECT {HEALTH_COLUMNS} FROM callback_health ORDER BY callback")
        return [CallbackHealth(*row) for row in rows]


def display_url(url: str) -> str:
    """``url`` with its password masked, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is not None:
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{host}")
    query = [(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))
