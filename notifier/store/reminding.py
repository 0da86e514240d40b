"""What both backends share about reminders and acks: columns, decoders, the decision.

A sweep reads the due schedule rows with their first delivery and the subject's ack
(:data:`DUE_COLUMNS`), and :func:`fire` decides for each: end it (the callback no
longer reminds of that event, an ack came after the event, ``remind_max`` reached) or
make reminder ``n`` and schedule the next. Each backend writes the outcome in the same
transaction that read it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from notifier.reminders import OCCURRENCE_STEP, Ack, ReminderPlan, reminder_payload
from notifier.store.columns import payload_text
from notifier.store.rows import new_delivery_id

ACK_COLUMNS = "kind, subject, author, at, comment"
REMINDER_COLUMNS = "delivery_id, kind, subject, first_sent_at, sent, next_at"
# A due schedule row (``r``), its first delivery (``d``) and the subject's ack (``a``).
DUE_COLUMNS = (
    "r.delivery_id, r.sent, r.first_sent_at, d.job_id, d.callback, d.event, d.payload,"
    " d.target_url, d.occurrence, d.created_at, a.at"
)
DUE_FROM = (
    "reminders r JOIN deliveries d ON d.id = r.delivery_id"
    " LEFT JOIN acks a ON a.kind = r.kind AND a.subject = r.subject"
)


def ack_row(row: Sequence[Any]) -> Ack:
    """An :data:`ACK_COLUMNS` row as an :class:`Ack`."""
    return Ack(kind=row[0], subject=row[1], by=row[2], at=row[3], comment=row[4])


@dataclass(frozen=True)
class Firing:
    """What a sweep does with one due schedule row: ``delivery`` (the reminder's outbox
    row: id, job_id, callback, event, payload, target_url, occurrence; None: send none),
    the new ``sent`` count and ``next_at`` (None: the reminders ended)."""

    schedule_id: str
    delivery: tuple[Any, ...] | None
    sent: int
    next_at: float | None


def fire(row: Sequence[Any], plans: Mapping[str, ReminderPlan], now: float) -> Firing:
    """Decide about one :data:`DUE_COLUMNS` row at ``now``."""
    (schedule_id, sent, first_sent_at, job_id, callback, event, payload, target_url,
     occurrence, created_at, acked_at) = row  # fmt: skip
    plan = plans.get(callback)
    acked = acked_at is not None and acked_at >= created_at
    if plan is None or event not in plan.events or acked or sent >= plan.max:
        return Firing(schedule_id, None, sent, None)
    n = sent + 1
    text = payload_text(reminder_payload(json.loads(payload), n, first_sent_at))
    delivery = (new_delivery_id(), job_id, callback, event, text, target_url,
                occurrence + n * OCCURRENCE_STEP)  # fmt: skip
    return Firing(schedule_id, delivery, n, now + plan.every if n < plan.max else None)
