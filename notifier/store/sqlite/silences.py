"""Silences: adding, listing, expiring, and the sweep that holds and releases deliveries."""

from __future__ import annotations

from collections.abc import Iterable

from notifier.silences import KEEP_ENDED, Silence
from notifier.store.silencing import HOLDS, SILENCE_COLUMNS, silence_row, silence_values
from notifier.store.sqlite.connection import SqliteConnection

# Every label of the silence's match, with its value, in the event's data.labels.
_LABELS_MATCH = """NOT EXISTS (
    SELECT 1 FROM json_each(s.match_labels) m
    WHERE json_extract(deliveries.payload, '$.data.labels."' || m.key || '"') IS NOT m.value)"""
HELD = (
    f"EXISTS (SELECT 1 FROM silences s WHERE {HOLDS.format(now='?', labels_match=_LABELS_MATCH)})"
)
_HOLDER = (
    f"SELECT s.id FROM silences s WHERE {HOLDS.format(now='?', labels_match=_LABELS_MATCH)}"
    " ORDER BY s.ends_at DESC, s.id LIMIT 1"
)


class SqliteSilences(SqliteConnection):
    """The silences table and the deliveries it holds."""

    def add_silence(self, silence: Silence) -> None:
        """Store a new silence (the next sweep holds what it matches)."""
        ident, callback, match, author, comment = silence_values(silence)
        with self._transaction() as conn:
            conn.execute(
                f"INSERT INTO silences ({SILENCE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (ident, callback, match, silence.starts_at, silence.ends_at, author, comment),
            )

    def silences(self) -> list[Silence]:
        """Every silence kept (active, and ended within :data:`KEEP_ENDED`), newest first."""
        rows = self._query(f"SELECT {SILENCE_COLUMNS} FROM silences ORDER BY starts_at DESC, id")
        return [silence_row(row) for row in rows]

    def expire_silence(self, silence_id: str, now: float) -> Silence | None:
        """End a silence at ``now`` (an ended one stays as it is); None if unknown."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE silences SET ends_at = min(ends_at, ?) WHERE id = ?", (now, silence_id)
            )
            row = conn.execute(
                f"SELECT {SILENCE_COLUMNS} FROM silences WHERE id = ?", (silence_id,)
            ).fetchone()
        return None if row is None else silence_row(row)

    def sweep_silences(self, now: float, busy: Iterable[str]) -> int:
        """Release the deliveries of silences that ended, hold the pending ones an active
        silence matches (but ``busy``: being sent), forget silences ended long ago.
        Returns how many deliveries changed state."""
        busy = list(busy)
        marks = ",".join("?" * len(busy))
        with self._transaction() as conn:
            wanted = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM silences WHERE starts_at <= ? AND ends_at > ?),"
                " EXISTS (SELECT 1 FROM deliveries WHERE state = 'silenced')",
                (now, now),
            ).fetchone()
            if not any(wanted):
                return 0
            released = conn.execute(
                f"""
                UPDATE deliveries SET state = 'pending', silence_id = NULL, held_at = NULL,
                    next_attempt_at = ?, queued_at = queued_at + (? - held_at)
                WHERE state = 'silenced'
                  AND NOT EXISTS (SELECT 1 FROM silences s
                                  WHERE s.id = deliveries.silence_id AND {
                    HOLDS.format(now="?", labels_match=_LABELS_MATCH)
                })
                """,
                (now, now, now, now),
            ).rowcount
            held = conn.execute(
                f"""
                UPDATE deliveries SET state = 'silenced', held_at = ?, silence_id = ({_HOLDER})
                WHERE state = 'pending' AND id NOT IN ({marks}) AND {HELD}
                """,
                (now, now, now, *busy, now, now),
            ).rowcount
            conn.execute("DELETE FROM silences WHERE ends_at < ?", (now - KEEP_ENDED,))
        return released + held
