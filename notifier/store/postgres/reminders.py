"""Reminders and acks: the schedule, the sweep that sends reminders, acknowledgements.

Daemons sweep the same schedule: a due row is taken ``FOR UPDATE SKIP LOCKED``, so
each reminder is made by one daemon (and the outbox's uniqueness on the reminder's
occurrence would refuse a second one anyway).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from notifier.reminders import Ack, ReminderPlan
from notifier.store.postgres.connection import AT, PostgresConnection, at
from notifier.store.postgres.outbox import insert_deliveries
from notifier.store.reminding import ACK_COLUMNS, DUE_COLUMNS, DUE_FROM, ack_row, fire

END_REMINDERS = (
    "UPDATE reminders SET next_at = NULL WHERE kind = %s AND subject = %s AND next_at IS NOT NULL"
)


class PostgresReminders(PostgresConnection):
    """The reminders and acks tables, shared by every daemon."""

    def start_reminders(
        self, delivery_id: str, kind: str, subject: str, sent_at: float, next_at: float
    ) -> None:
        """Schedule reminders of a delivery first sent at ``sent_at`` (once: a
        redelivery of it keeps the schedule it has)."""
        with self._transaction() as conn:
            conn.execute(
                f"INSERT INTO reminders (delivery_id, kind, subject, first_sent_at, next_at)"
                f" VALUES (%s, %s, %s, {AT}, {AT}) ON CONFLICT (delivery_id) DO NOTHING",
                (delivery_id, kind, subject, at(sent_at), at(next_at)),
            )

    def fire_reminders(self, now: float, plans: Mapping[str, ReminderPlan], limit: int) -> int:
        """Queue every reminder due at ``now``; returns how many outbox rows are new."""
        with self._transaction() as conn:
            base = time.time()
            rows = conn.execute(
                f"SELECT {DUE_COLUMNS} FROM {DUE_FROM} WHERE r.next_at <= {AT}"
                " ORDER BY r.next_at LIMIT %s FOR UPDATE OF r SKIP LOCKED",
                (at(now, base), limit),
            ).fetchall()
            if not rows:
                return 0
            firings = [fire(row, plans, now) for row in rows]
            with conn.cursor() as cur:
                cur.executemany(
                    f"UPDATE reminders SET sent = %s, next_at = {AT} WHERE delivery_id = %s",
                    [(f.sent, at(f.next_at, base), f.schedule_id) for f in firings],
                )
                made = [
                    (*f.delivery[:5], at(now, base), at(now, base), at(now, base),
                     *f.delivery[5:])
                    for f in firings if f.delivery is not None
                ]  # fmt: skip
                return insert_deliveries(cur, made) if made else 0

    def end_reminders(self, kind: str, subject: str) -> int:
        """Stop the reminders about a job or group; returns how many schedules ended."""
        with self._transaction() as conn:
            return conn.execute(END_REMINDERS, (kind, subject)).rowcount

    def ack(self, ack: Ack) -> None:
        """Record an acknowledgement (replacing an earlier one) and end the reminders."""
        with self._transaction() as conn:
            conn.execute(
                f"INSERT INTO acks ({ACK_COLUMNS}) VALUES (%s, %s, %s, {AT}, %s)"
                " ON CONFLICT (kind, subject) DO UPDATE SET author = excluded.author,"
                " at = excluded.at, comment = excluded.comment",
                (ack.kind, ack.subject, ack.by, at(ack.at), ack.comment),
            )
            conn.execute(END_REMINDERS, (ack.kind, ack.subject))

    def acks(self, kind: str, subjects: Sequence[str]) -> dict[str, Ack]:
        """The acknowledgements of these jobs (or groups), by id."""
        rows = self._query(
            f"SELECT {ACK_COLUMNS} FROM acks WHERE kind = %s AND subject = ANY(%s)",
            (kind, list(subjects)),
        )
        return {row[1]: ack_row(row) for row in rows}
