"""The event feed's rows: what both backends append to the event log and read back.

Every event the daemon records is appended once, in the transaction that records it,
with the id its first delivery carries as ``webhook-id`` (an event no callback takes
gets an id of its own). A reader follows the log by ``cursor``; both backends make
cursors visible in increasing order, so a reader never passes one still committing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from notifier.store.columns import payload_text
from notifier.store.rows import NewEvent, new_delivery_id

FEED_COLUMNS = "cursor, id, type, payload"


class FeedEvent(NamedTuple):
    """One entry of the event log."""

    cursor: int
    id: str  # the webhook-id of its first delivery
    type: str
    payload: dict[str, Any]  # {"type", "timestamp", "data"}: what callbacks get


@dataclass(frozen=True)
class FeedFilter:
    """Which events a reader wants: any of ``types`` (none: all), in ``group``, with
    every one of ``labels``."""

    types: tuple[str, ...] = ()
    group: str | None = None
    labels: tuple[tuple[str, str], ...] = ()


class FeedPage(NamedTuple):
    """Events after a cursor, and ``head``: the highest cursor final when they were read
    (no event at or below it can appear any more)."""

    events: list[FeedEvent]
    head: int


class FeedBounds(NamedTuple):
    """The log's ends: the oldest kept event's cursor (None: empty), the highest cursor
    retention removed (0: none), and the head."""

    oldest: int | None
    pruned_through: int
    head: int


Recorded = tuple[str | None, NewEvent, float]  # (job id, event, when)


def event_ids(events: Sequence[Recorded]) -> list[str]:
    """One new id per event: its first delivery's ``webhook-id`` and its feed ``id``."""
    return [new_delivery_id() for _ in events]


def log_row(event_id: str, job_id: str | None, event: NewEvent) -> tuple[Any, ...]:
    """``(id, type, job_id, grp, labels, occurrence, payload)`` of the log; ``grp`` and
    ``labels`` come from the payload's ``data`` (a job's group and labels)."""
    data = event.payload.get("data") or {}
    group = data.get("group")
    labels = data.get("labels")
    return (
        event_id,
        event.event,
        job_id,
        group if isinstance(group, str) else None,
        json.dumps(labels) if isinstance(labels, dict) else None,
        event.occurrence,
        payload_text(event.payload),
    )


def feed_event(row: Sequence[Any]) -> FeedEvent:
    """A :data:`FEED_COLUMNS` row."""
    return FeedEvent(int(row[0]), row[1], row[2], json.loads(row[3]))
