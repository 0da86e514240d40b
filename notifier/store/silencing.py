"""What both backends share about silences: the columns, the row decoder, the SQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from notifier.silences import Silence

SILENCE_COLUMNS = "id, callback, match_labels, starts_at, ends_at, author, comment"


def silence_row(row: Sequence[Any]) -> Silence:
    """A :data:`SILENCE_COLUMNS` row as a :class:`Silence`."""
    return Silence(
        id=row[0],
        callback=row[1],
        match=None if row[2] is None else json.loads(row[2]),
        starts_at=row[3],
        ends_at=row[4],
        author=row[5],
        comment=row[6],
    )


def silence_values(silence: Silence) -> tuple[Any, ...]:
    """A silence's :data:`SILENCE_COLUMNS` values but its times (each backend's own)."""
    match = None if silence.match is None else json.dumps(silence.match, sort_keys=True)
    return silence.id, silence.callback, match, silence.author, silence.comment


# Whether silence ``s`` holds the delivery ``deliveries`` at time {now}: by callback, or
# every label of its ``match`` in the event's ``data.labels`` ({labels_match}: the
# backend's JSON test). Used by the claim (a held delivery is never claimed, even before
# the sweep marks it) and by the sweep.
HOLDS = """
    s.starts_at <= {now} AND s.ends_at > {now}
    AND (s.callback = deliveries.callback OR (s.match_labels IS NOT NULL AND {labels_match}))
"""
