"""Reminders and acks: the schedule, the sweep that sends reminders, acknowledgements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from notifier.reminders import Ack, ReminderPlan
from notifier.store.reminding import ACK_COLUMNS, DUE_COLUMNS, DUE_FROM, ack_row, fire
from notifier.store.sqlite.connection import SqliteConnection
from notifier.store.sqlite.outbox import insert_deliveries

END_REMINDERS = (
    "UPDATE reminders SET next_at = NULL WHERE kind = ? AND subject = ? AND next_at IS NOT NULL"
)


class SqliteReminders(SqliteConnection):
    """The reminders and acks tables."""

    def start_reminders(
        self, delivery_id: str, kind: str, subject: str, sent_at: float, next_at: float
    ) -> None:
        """Schedule reminders of a delivery first sent at ``sent_at`` (once: a
        redelivery of it keeps the schedule it has)."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO reminders (delivery_id, kind, subject, first_sent_at,"
                " next_at) VALUES (?, ?, ?, ?, ?)",
                (delivery_id, kind, subject, sent_at, next_at),
            )

    def fire_reminders(self, now: float, plans: Mapping[str, ReminderPlan], limit: int) -> int:
        """Queue every reminder due at ``now``; returns how many outbox rows are new."""
        with self._transaction() as conn:
            rows = conn.execute(
                f"SELECT {DUE_COLUMNS} FROM {DUE_FROM} WHERE r.next_at <= ?"
                " ORDER BY r.next_at LIMIT ?",
                (now, limit),
            ).fetchall()
            firings = [fire(row, plans, now) for row in rows]
            conn.executemany(
                "UPDATE reminders SET sent = ?, next_at = ? WHERE delivery_id = ?",
                [(f.sent, f.next_at, f.schedule_id) for f in firings],
            )
            return insert_deliveries(conn, [
                (*f.delivery[:5], now, now, now, *f.delivery[5:])
                for f in firings if f.delivery is not None
            ])  # fmt: skip

    def end_reminders(self, kind: str, subject: str) -> int:
        """Stop the reminders about a job or group; returns how many schedules ended."""
        with self._transaction() as conn:
            return conn.execute(END_REMINDERS, (kind, subject)).rowcount

    def ack(self, ack: Ack) -> None:
        """Record an acknowledgement (replacing an earlier one) and end the reminders."""
        with self._transaction() as conn:
            conn.execute(
                f"INSERT OR REPLACE INTO acks ({ACK_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                (ack.kind, ack.subject, ack.by, ack.at, ack.comment),
            )
            conn.execute(END_REMINDERS, (ack.kind, ack.subject))

    def acks(self, kind: str, subjects: Sequence[str]) -> dict[str, Ack]:
        """The acknowledgements of these jobs (or groups), by id."""
        found: dict[str, Ack] = {}
        for start in range(0, len(subjects), 500):
            chunk = list(subjects[start : start + 500])
            rows = self._query(
                f"SELECT {ACK_COLUMNS} FROM acks WHERE kind = ?"
                f" AND subject IN ({','.join('?' * len(chunk))})",
                [kind, *chunk],
            )
            found.update((row[1], ack_row(row)) for row in rows)
        return found
