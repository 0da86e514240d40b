"""Digests: a callback's events gathered for a window and sent as one delivery.

``digest: {window: 5m, max_events: 100, events: [job.delivered, job.failed]}`` on a
callback. The first pending event of those types opens a digest; it closes ``window``
after that event, or at once when ``max_events`` are in it. Closing is one store
transaction: it marks each member ``digested`` with the digest's id and inserts the
digest as an ordinary outbox row (event ``digest``), so every event belongs to exactly
one digest and the digest then retries, pauses, is rate limited and gives up like any
delivery. Its ``webhook-id`` is derived from its members (:func:`digest_id`).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from notifier.durations import parse_duration
from notifier.events import isoformat

DIGEST_EVENT = "digest"
MIN_WINDOW = 1.0
MAX_WINDOW = 86400.0
# The event types a digest may gather (every job and group event; never the callback's
# own paused/resumed alerts, which go out at once). Kept here to avoid an import cycle.
_ENDED = ("job.delivered", "job.failed", "job.expired", "job.none")
# Outcomes that are not good news, listed first in a message.
_FAILURES = ("job.failed", "job.expired", "job.stalled", "job.late", "group.failed", "group.late")


# A digest's message body (email, Apprise) unless the callback has a body_template.
DIGEST_BODY = """\
{{ digest.count }} events, {{ digest.first_at }} to {{ digest.last_at }}
{% for event in events %}
{{ event.type }}  {{ event.data.name or event.data.job_id or event.data.group or "-" }}\
  {{ event.data.status or "-" }}  {{ event.timestamp }}
{%- endfor %}
"""


def _window(value: object) -> float:
    seconds = parse_duration(value)
    if not MIN_WINDOW <= seconds <= MAX_WINDOW:
        raise ValueError(f"must be between 1s and 24h (got {value!r})")
    return seconds


class DigestSettings(BaseModel):
    """A callback's ``digest`` (see the module docstring); ``events`` None: every
    job and group event."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    window: Annotated[float, BeforeValidator(_window)]
    max_events: int = Field(default=100, ge=2, le=10000)
    events: tuple[str, ...] | None = None

    @field_validator("events")
    @classmethod
    def _known(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        from notifier.channels.base import EVENT_TYPES  # the channels import this module

        for name in value or ():
            if name not in EVENT_TYPES:
                raise ValueError(f"unknown event {name!r} (known: {', '.join(EVENT_TYPES)})")
        if value is not None and not value:
            raise ValueError("list at least one event (or leave events out: all)")
        return value

    def gathered(self) -> tuple[str, ...]:
        """The event types this digest gathers."""
        from notifier.channels.base import EVENT_TYPES

        return self.events if self.events is not None else tuple(EVENT_TYPES)


def digest_id(callback: str, member_ids: Sequence[str]) -> str:
    """The digest's ``webhook-id``: a hash of its callback and members, so whoever
    closes the same window (any daemon, before or after a restart) names it alike."""
    text = "\n".join([callback, *sorted(member_ids)])
    return "msg_" + hashlib.sha256(text.encode()).hexdigest()[:32]


def digest_payload(members: Sequence[tuple[str, dict[str, Any]]], now: float) -> dict[str, Any]:
    """The digest's body from its members (``(delivery id, payload)``, oldest first):
    each member as it would have been sent alone, with its id."""
    events = [{"id": ident, **payload} for ident, payload in members]
    stamps = sorted(str(payload.get("timestamp")) for _, payload in members)
    counts = Counter(str(payload.get("type")) for _, payload in members)
    return {
        "type": DIGEST_EVENT,
        "timestamp": isoformat(now),
        "data": {
            "count": len(events),
            "first_at": stamps[0] if stamps else None,
            "last_at": stamps[-1] if stamps else None,
            "counts_by_type": dict(sorted(counts.items())),
            "events": events,
        },
    }


def payload_of(text: str | dict[str, Any]) -> dict[str, Any]:
    """A stored payload (JSON text, or jsonb already decoded) as a dict."""
    return dict(json.loads(text) if isinstance(text, str) else text)


def is_digest(payload: dict[str, Any]) -> bool:
    """Whether ``payload`` is a digest's."""
    return payload.get("type") == DIGEST_EVENT


def summary(payload: dict[str, Any]) -> str:
    """One line: ``37 jobs ended: 35 delivered, 2 failed`` (``N events: ...`` when not
    every member is a job's end)."""
    data = payload["data"]
    counts: dict[str, int] = data["counts_by_type"]
    parts = [f"{n} {kind.partition('.')[2].replace('_', ' ')}" for kind, n in _ordered(counts)]
    if all(kind in _ENDED for kind in counts):
        noun = "job ended" if data["count"] == 1 else "jobs ended"
    else:
        noun = "event" if data["count"] == 1 else "events"
        parts = [f"{n} {kind}" for kind, n in _ordered(counts)]
    return f"{data['count']} {noun}: {', '.join(parts)}"


def _ordered(counts: dict[str, int]) -> list[tuple[str, int]]:
    """Good news first in the subject (``35 delivered, 2 failed``), then in type order."""
    order = {"job.delivered": 0, "group.completed": 1}
    return sorted(counts.items(), key=lambda item: (order.get(item[0], 2), item[0]))


def failures_first(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """A digest's members for a message: failures first, each group oldest first."""
    return sorted(events, key=lambda event: event.get("type") not in _FAILURES)


def template_context(payload: dict[str, Any]) -> dict[str, Any]:
    """What a ``body_template`` sees of a digest: ``digest`` (its data), ``events``
    (members, failures first) and the payload's own keys."""
    data = payload["data"]
    return {**data, **payload, "digest": data, "events": failures_first(data["events"])}


def sample_digest(now: float) -> dict[str, Any]:
    """A two-event digest, to check a callback's templates when the config is loaded."""
    from notifier.events import sample_payload

    sample = sample_payload(now)
    delivered = {**sample, "type": "job.delivered"}
    failed = {**delivered, "type": "job.failed", "data": {**delivered["data"], "status": "FAILED"}}
    return digest_payload([("msg_sample1", failed), ("msg_sample2", delivered)], now)
