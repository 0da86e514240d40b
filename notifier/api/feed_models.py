"""The event feed's query strings and answers (``GET /v1/events``, ``/v1/events/stream``)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from notifier.channels.base import EVENT_TYPES
from notifier.config_service import Duration

FEED_TYPES = (*EVENT_TYPES, "callback.paused", "callback.resumed")
MAX_WAIT = 60.0
MAX_EVENTS = 1000
# A label filter: key=value, the key as issue 21's labels have them.
LABEL = re.compile(r"^([a-z0-9][a-z0-9_./-]{0,62})=(.{0,256})$", re.DOTALL)

FeedType = Literal[FEED_TYPES]  # type: ignore[valid-type]


def parse_cursor(value: str) -> int | Literal["now"]:
    """``now`` or a cursor this feed gave out (a non-negative integer)."""
    if value == "now":
        return "now"
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        raise ValueError("not a cursor this feed gave out (expected an integer or now)")
    return int(value)


class LabelFilters(BaseModel):
    """``group`` and ``label`` (``key=value``, repeatable: all must match) of a query:
    the feed's and ``GET /v1/jobs``'s."""

    model_config = ConfigDict(extra="forbid")

    group: StrictStr | None = Field(default=None, description="only those of this group")
    label: list[StrictStr] | None = Field(
        default=None, description="key=value; repeatable: all must match"
    )

    @field_validator("label")
    @classmethod
    def _labels(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            if not LABEL.match(item):
                raise ValueError(f"{item!r}: expected key=value (key: a-z, 0-9, _./-)")
        return value

    def labels(self) -> tuple[tuple[str, str], ...]:
        """The label filters as ``(key, value)`` pairs."""
        pairs = []
        for item in self.label or []:
            key, _, value = item.partition("=")
            pairs.append((key, value))
        return tuple(pairs)


class StreamQuery(LabelFilters):
    """What a reader wants from the feed; every filter given must match."""

    after: StrictStr | None = Field(
        default=None,
        description="a cursor: events after it; absent: from the oldest kept; now: only new ones",
    )
    type: list[FeedType] | None = Field(  # type: ignore[valid-type]
        default=None, description="event types (repeat the parameter, or separate by commas)"
    )

    @field_validator("after")
    @classmethod
    def _cursor(cls, value: str | None) -> str | None:
        if value is not None:
            parse_cursor(value)
        return value


class EventsQuery(StreamQuery):
    """``GET /v1/events``: a page, held up to ``wait`` while there is none."""

    limit: Annotated[int, Field(ge=1, le=MAX_EVENTS)] = 100
    wait: Annotated[Duration, Field(ge=0, le=MAX_WAIT)] = Field(
        default=0.0, description="hold the request up to this long (at most 60s) for an event"
    )


class FeedEventDocument(BaseModel):
    """One event: ``id`` is its ``webhook-id``, ``data`` what callbacks get."""

    cursor: int
    id: str
    type: str
    timestamp: str | None
    data: dict[str, Any]


class EventPage(BaseModel):
    """Events in order; ``next_cursor`` is the ``after`` of the next request."""

    events: list[FeedEventDocument]
    next_cursor: int


class Gone(BaseModel):
    """The cursor is older than the oldest event kept (retention)."""

    error: str
    details: list[dict[str, str]]
    oldest_cursor: int | None
