"""Quiet hours: a daily window, in a named time zone, during which a callback waits.

``quiet_hours: {from: "22:00", to: "07:00", timezone: "Europe/Berlin", days: [...],
except_events: [job.failed]}``. A window opens at ``from`` local time on each of
``days`` and closes at the next ``to`` (the next day when ``to`` is not after
``from``: across midnight). Local times become instants through :mod:`zoneinfo`, so a
window that spans a daylight-saving change is as long as the wall clock says (22:00 to
07:00 is 8 or 10 hours that night); a ``from`` or ``to`` that does not exist that day
(clocks jump over it) is read with the offset before the change, one that occurs twice
with the first.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_clock(value: object) -> dt.time:
    """``"22:00"`` as a time of day; ValueError naming what was expected."""
    match = _CLOCK.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"not a time of day: {value!r} (expected HH:MM, e.g. 22:00)")
    return dt.time(int(match.group(1)), int(match.group(2)))


class QuietHours(BaseModel):
    """A callback's quiet hours (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    start: dt.time = Field(alias="from")
    end: dt.time = Field(alias="to")
    timezone: str
    days: tuple[Day, ...] = DAYS
    except_events: tuple[str, ...] = ()

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock(cls, value: object) -> dt.time:
        return parse_clock(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (expected e.g. Europe/Berlin)") from None
        return value

    @field_validator("days")
    @classmethod
    def _some_day(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("must name at least one day")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("'from' and 'to' are the same time: the window would be empty")
        return self

    def holds(self, event: str) -> bool:
        """Whether the window holds deliveries of ``event`` (not in ``except_events``)."""
        return event not in self.except_events

    def windows(self, since: float, until: float) -> Iterator[tuple[float, float]]:
        """The windows (start, end as Unix seconds) that overlap ``[since, until)``."""
        zone = ZoneInfo(self.timezone)
        day = dt.datetime.fromtimestamp(since, zone).date() - dt.timedelta(days=1)
        while True:
            opens = dt.datetime.combine(day, self.start, zone).timestamp()
            if opens >= until:
                return
            if DAYS[day.weekday()] in self.days:
                closes_on = day if self.end > self.start else day + dt.timedelta(days=1)
                closes = dt.datetime.combine(closes_on, self.end, zone).timestamp()
                if closes > since:
                    yield opens, closes
            day += dt.timedelta(days=1)

    def ends_at(self, now: float) -> float | None:
        """When the window ``now`` is in closes; None outside quiet hours."""
        return next((end for start, end in self.windows(now, now + 1e-6) if start <= now), None)

    def overlap(self, since: float, until: float) -> float:
        """Seconds of ``[since, until)`` spent in quiet hours."""
        return sum(min(end, until) - max(start, since) for start, end in self.windows(since, until))
