"""Silences: an operator holds a callback's deliveries for a while, without losing any.

A silence matches deliveries by their callback (or, with ``match``, by the labels in
the event's ``data.labels``), from ``starts_at`` to ``ends_at``. A matching delivery
waits in state ``silenced`` (not attempted, not counted toward ``give_up_after``,
``pause_after`` or the rate limit) and goes out when the silence ends or is expired.
The CLI (``silence add``) and the API (``POST /v1/silences``) take the same words,
checked by :func:`new_silence`; ended silences are kept :data:`KEEP_ENDED` for the record.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from notifier.config import unknown_callback
from notifier.config_service import Duration
from notifier.events import isoformat

KEEP_ENDED = 7 * 86400.0
MAX_COMMENT = 1000
LABEL_KEY = re.compile(r"^[a-z0-9]([a-z0-9_./-]{0,62})$")
MAX_LABELS = 32
MAX_LABEL_VALUE = 256


@dataclass(frozen=True)
class Silence:
    """A silence as stored: one matcher (``callback`` or ``match``), a span, who and why."""

    id: str
    callback: str | None
    match: dict[str, str] | None
    starts_at: float
    ends_at: float
    author: str
    comment: str

    def active(self, now: float) -> bool:
        """Whether the silence holds deliveries at ``now``."""
        return self.starts_at <= now < self.ends_at


class SilenceRequest(BaseModel):
    """The words of ``silence add`` and of ``POST /v1/silences``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    callback: Annotated[StrictStr, Field(min_length=1, max_length=256)] | None = None
    match: Annotated[dict[StrictStr, StrictStr], Field(max_length=MAX_LABELS)] | None = None
    for_: Duration | None = Field(default=None, alias="for")
    until: dt.datetime | None = None
    comment: Annotated[StrictStr, Field(max_length=MAX_COMMENT)] = ""


Problem = tuple[str, str]  # (field, message)


def _matcher_problems(request: SilenceRequest, callbacks: Iterable[str]) -> list[Problem]:
    if request.callback is None and not request.match:
        return [("callback", "a silence needs a matcher: a callback or match labels")]
    if request.callback is not None and request.match is not None:
        return [("match", "give a callback or match labels, not both")]
    if request.callback is not None:
        problem = unknown_callback(request.callback, callbacks)
        return [] if problem is None else [("callback", problem)]
    problems = []
    for key, value in (request.match or {}).items():
        if not LABEL_KEY.match(key):
            problems.append((f"match.{key}", "not a label key (a-z, 0-9, _ . / -; up to 63)"))
        elif len(value) > MAX_LABEL_VALUE:
            problems.append((f"match.{key}", f"over {MAX_LABEL_VALUE} characters"))
    return problems


def _end_of(request: SilenceRequest, now: float) -> tuple[float | None, list[Problem]]:
    if (request.for_ is None) == (request.until is None):
        return None, [("for", "give how long (for) or until when (until), one of them")]
    if request.for_ is not None:
        if request.for_ <= 0:
            return None, [("for", "must be longer than 0s")]
        return now + request.for_, []
    assert request.until is not None
    until = request.until
    if until.tzinfo is None:  # a time without an offset is UTC
        until = until.replace(tzinfo=dt.UTC)
    end = until.timestamp()
    if end <= now:
        return None, [("until", f"{isoformat(end)} is in the past")]
    return end, []


def new_silence(
    request: SilenceRequest, now: float, author: str, callbacks: Iterable[str]
) -> tuple[Silence | None, list[Problem]]:
    """The silence ``request`` asks for, starting ``now``; or every problem with it."""
    problems = _matcher_problems(request, callbacks)
    end, span_problems = _end_of(request, now)
    problems += span_problems
    if problems or end is None:
        return None, problems
    silence = Silence(
        id=str(uuid.uuid4()),
        callback=request.callback,
        match=None if request.callback is not None else dict(request.match or {}),
        starts_at=now,
        ends_at=end,
        author=author,
        comment=request.comment,
    )
    return silence, []


def silence_document(silence: Silence) -> dict[str, Any]:
    """A silence as the API and ``silence list --json`` show it."""
    matcher: dict[str, Any] = (
        {"callback": silence.callback} if silence.callback is not None else {"match": silence.match}
    )
    return {
        "id": silence.id,
        **matcher,
        "starts_at": isoformat(silence.starts_at),
        "ends_at": isoformat(silence.ends_at),
        "author": silence.author,
        "comment": silence.comment,
    }
