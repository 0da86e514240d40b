"""Silences: adding, listing, expiring, and the sweep that holds and releases deliveries."""

from __future__ import annotations

import time
from collections.abc import Iterable

from notifier.silences import KEEP_ENDED, Silence
from notifier.store.postgres.connection import AT, NOW, PostgresConnection, at
from notifier.store.silencing import HOLDS, SILENCE_COLUMNS, silence_row, silence_values

# Every label of the silence's match, with its value, in the event's data.labels.
_LABELS_MATCH = "(deliveries.payload::jsonb -> 'data' -> 'labels') @> s.match_labels::jsonb"
_HOLDS_AT = HOLDS.format(now=AT, labels_match=_LABELS_MATCH)
HELD = f"EXISTS (SELECT 1 FROM silences s WHERE {_HOLDS_AT})"
_SWEEP = f"""
    WITH released AS (
        UPDATE deliveries SET state = 'pending', silence_id = NULL, held_at = NULL,
            next_attempt_at = {AT}, queued_at = queued_at + ({AT} - held_at)
        WHERE state = 'silenced'
          AND NOT EXISTS (SELECT 1 FROM silences s
                          WHERE s.id = deliveries.silence_id AND {_HOLDS_AT})
        RETURNING id
    )
    SELECT count(*) FROM released
"""
_HOLD = f"""
    UPDATE deliveries SET state = 'silenced', held_at = {AT}, silence_id = (
        SELECT s.id FROM silences s WHERE {_HOLDS_AT} ORDER BY s.ends_at DESC, s.id LIMIT 1)
    WHERE state = 'pending' AND NOT (id = ANY(%s))
      AND (lease_until IS NULL OR lease_until < {NOW}) AND {HELD}
"""


class PostgresSilences(PostgresConnection):
    """The silences table and the deliveries it holds, shared by every daemon."""

    def add_silence(self, silence: Silence) -> None:
        """Store a new silence (the next sweep holds what it matches)."""
        ident, callback, match, author, comment = silence_values(silence)
        with self._transaction() as conn:
            conn.execute(
                f"INSERT INTO silences ({SILENCE_COLUMNS})"
                f" VALUES (%s, %s, %s, {AT}, {AT}, %s, %s)",
                (ident, callback, match, at(silence.starts_at), at(silence.ends_at), author,
                 comment),
            )  # fmt: skip

    def silences(self) -> list[Silence]:
        """Every silence kept (active, and ended within a week), newest first."""
        rows = self._query(f"SELECT {SILENCE_COLUMNS} FROM silences ORDER BY starts_at DESC, id")
        return [silence_row(row) for row in rows]

    def expire_silence(self, silence_id: str, now: float) -> Silence | None:
        """End a silence at ``now`` (an ended one stays as it is); None if unknown."""
        with self._transaction() as conn:
            row = conn.execute(
                f"UPDATE silences SET ends_at = least(ends_at, {AT}) WHERE id = %s"
                f" RETURNING {SILENCE_COLUMNS}",
                (at(now), silence_id),
            ).fetchone()
        return None if row is None else silence_row(row)

    def sweep_silences(self, now: float, busy: Iterable[str]) -> int:
        """Release the deliveries of silences that ended, hold the pending ones an active
        silence matches (but those being sent), forget silences ended long ago."""
        offset = now - time.time()  # as at(now), not optional
        with self._transaction() as conn:
            wanted = conn.execute(
                f"SELECT EXISTS (SELECT 1 FROM silences WHERE starts_at <= {AT}"
                f" AND ends_at > {AT}), EXISTS (SELECT 1 FROM deliveries WHERE state = 'silenced')",
                (offset, offset),
            ).fetchone()
            if wanted is None or not any(wanted):
                return 0
            row = conn.execute(_SWEEP, (offset, offset, offset, offset)).fetchone()
            released = 0 if row is None else int(row[0])
            held = conn.execute(
                _HOLD, (offset, offset, offset, list(busy), offset, offset)
            ).rowcount
            conn.execute(f"DELETE FROM silences WHERE ends_at < {AT}", (offset - KEEP_ENDED,))
        return released + held
