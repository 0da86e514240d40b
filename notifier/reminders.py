"""Reminders until someone acknowledges: what ``remind_every`` sends, and acks.

A callback with ``remind_every`` gets each of its ``remind_events`` again every
``remind_every`` after the event was first delivered to it, at most ``remind_max``
times, until the job (or group) is acknowledged, re-registered or unwatched. Each
reminder is its own delivery (a new ``webhook-id``) of the first one's payload with
``data.reminder`` (1, 2, ...) and ``data.first_sent_at``; it goes through the outbox
like any delivery (retries, silences, quiet hours), but it is not a new event: the
event feed has the event once.

The schedule lives in the store (the ``reminders`` table: one row per first delivery),
so it survives restarts and is shared by every daemon on PostgreSQL; the reminder's
``occurrence`` (the first one's plus ``n * OCCURRENCE_STEP``) makes a second daemon's
attempt at the same reminder a no-op under the outbox's uniqueness.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from notifier.channels.base import CallbackSettings
from notifier.events import isoformat

if TYPE_CHECKING:
    from notifier.store import Store

OCCURRENCE_STEP = 1_000_000  # reminder n of occurrence k is occurrence k + n * step
GROUP_PREFIX = "group."


@dataclass(frozen=True)
class ReminderPlan:
    """One callback's reminder settings."""

    every: float
    max: int
    events: tuple[str, ...]


@dataclass(frozen=True)
class Ack:
    """Someone acknowledged a job or a group: reminders about it stop."""

    kind: str  # "job" or "group"
    subject: str
    by: str
    at: float
    comment: str | None = None

    def document(self) -> dict[str, Any]:
        """The ``ack`` object of ``status --json`` and the API."""
        return {"by": self.by, "at": isoformat(self.at), "comment": self.comment}


def ack_document(ack: Ack | None) -> dict[str, Any] | None:
    """``ack`` of a job or group object: null when none."""
    return None if ack is None else ack.document()


def plans(callbacks: Mapping[str, CallbackSettings]) -> dict[str, ReminderPlan]:
    """The callbacks that remind, by name."""
    return {
        name: ReminderPlan(settings.remind_every, settings.remind_max, settings.remind_events)
        for name, settings in callbacks.items()
        if settings.remind_every is not None
    }


def subject_of(event: str, job_id: str | None, payload: Mapping[str, Any]) -> tuple[str, str]:
    """``(kind, id)`` that an ack of the event names: the group of a group event, else
    the job."""
    if event.startswith(GROUP_PREFIX):
        return "group", str(payload.get("data", {}).get("group"))
    return "job", str(job_id)


def is_reminder(occurrence: int) -> bool:
    """Whether a delivery with this occurrence is itself a reminder."""
    return occurrence >= OCCURRENCE_STEP


def reminder_payload(payload: Mapping[str, Any], n: int, first_sent_at: float) -> dict[str, Any]:
    """The first delivery's payload as reminder ``n``."""
    again = copy.deepcopy(dict(payload))
    data = dict(again.get("data") or {})
    data["reminder"] = n
    data["first_sent_at"] = isoformat(first_sent_at)
    again["data"] = data
    return again


def acknowledge(
    store: Store, subject: str, by: str, now: float, comment: str | None = None,
    kind: str | None = None,
) -> Ack | None:  # fmt: skip
    """Acknowledge a job or a group (``kind`` None: a job of that id, else a group);
    None when neither is known, and nothing is recorded."""
    if kind in (None, "job") and store.jobs(job_id=subject):
        kind = "job"
    elif kind in (None, "group") and store.groups(group_id=subject):
        kind = "group"
    else:
        return None
    ack = Ack(kind=kind, subject=subject, by=by, at=now, comment=comment or None)
    store.ack(ack)
    return ack
