"""What both backends share about digests: when a window closes, and the digest row.

Each backend closes a callback's digests in one transaction (see
:meth:`~notifier.store.base.Store.close_digests`): it looks at the oldest pending,
unheld events the digest gathers (at most ``max_events``), and when the first of them
is ``window`` old or there are ``max_events`` of them, marks them ``digested`` with the
digest's id and inserts the digest -- the same transaction, so an event is in exactly
one digest, and a crash leaves either no digest or the whole one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from notifier.digests import DigestSettings, digest_id, digest_payload, payload_of
from notifier.store.columns import payload_text

# The order members are taken in: the oldest due first (a stable total order).
MEMBER_ORDER = "ORDER BY next_attempt_at, created_at, id"


def closes(count: int, opened_at: float | None, now: float, digest: DigestSettings) -> bool:
    """Whether a window of ``count`` events, the first due at ``opened_at``, closes now."""
    if not count or opened_at is None:
        return False
    return count >= digest.max_events or opened_at + digest.window <= now


def digest_row(callback: str, members: Sequence[Sequence[Any]], now: float) -> tuple[str, str]:
    """The id and stored payload of the digest of ``members`` (``(id, payload)`` rows,
    in :data:`MEMBER_ORDER`)."""
    ident = digest_id(callback, [row[0] for row in members])
    payload = digest_payload([(row[0], payload_of(row[1])) for row in members], now)
    return ident, payload_text(payload)
