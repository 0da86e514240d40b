"""Quiet hours as a rule: windows across midnight, on chosen days, through DST changes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from notifier.quiet_hours import QuietHours

BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str) -> float:
    """A Berlin wall-clock time as Unix seconds."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=BERLIN).timestamp()


def quiet(**extra: object) -> QuietHours:
    fields = {"from": "22:00", "to": "07:00", "timezone": "Europe/Berlin", **extra}
    return QuietHours.model_validate(fields)


def test_a_window_across_midnight_holds_until_the_morning() -> None:
    hours = quiet()
    assert hours.ends_at(at("2026-06-10T21:59")) is None
    assert hours.ends_at(at("2026-06-10T22:00")) == at("2026-06-11T07:00")
    assert hours.ends_at(at("2026-06-11T03:00")) == at("2026-06-11T07:00")
    assert hours.ends_at(at("2026-06-11T07:00")) is None


def test_a_window_within_one_day() -> None:
    hours = quiet(**{"from": "12:00", "to": "13:30"})
    assert hours.ends_at(at("2026-06-10T12:15")) == at("2026-06-10T13:30")
    assert hours.ends_at(at("2026-06-10T13:31")) is None


def test_days_name_the_day_a_window_opens() -> None:
    hours = quiet(days=["fri"])  # 2026-06-12 is a Friday
    assert hours.ends_at(at("2026-06-13T06:00")) == at("2026-06-13T07:00")  # Friday night
    assert hours.ends_at(at("2026-06-12T06:00")) is None  # Thursday night's window
    assert hours.ends_at(at("2026-06-13T22:30")) is None  # Saturday


@pytest.mark.parametrize(
    ("night", "hours_long"),
    [("2026-03-28", 8), ("2026-10-24", 10), ("2026-06-10", 9)],  # spring, autumn, summer
)
def test_a_window_spanning_a_daylight_saving_change_follows_the_wall_clock(
    night: str, hours_long: int
) -> None:
    start = at(f"{night}T22:00")
    end = quiet().ends_at(start + 60)
    assert end is not None and end - start == hours_long * 3600
    assert dt.datetime.fromtimestamp(end, BERLIN).strftime("%H:%M") == "07:00"


def test_a_time_the_clocks_skip_is_read_with_the_offset_before_the_change() -> None:
    hours = quiet(**{"from": "02:30", "to": "04:00"})  # 02:30 does not exist on 2026-03-29
    opens = dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC).timestamp()  # 02:30 CET = 03:30 CEST
    assert hours.ends_at(opens - 1) is None
    assert hours.ends_at(opens) == at("2026-03-29T04:00")


def test_overlap_counts_only_the_quiet_seconds() -> None:
    hours = quiet()
    since, until = at("2026-06-10T20:00"), at("2026-06-12T08:00")
    assert hours.overlap(since, until) == 2 * 9 * 3600
    assert hours.overlap(at("2026-06-10T23:00"), at("2026-06-10T23:30")) == 1800
    assert hours.overlap(at("2026-06-11T08:00"), at("2026-06-11T21:00")) == 0


def test_except_events_pass_through() -> None:
    hours = quiet(except_events=["job.failed"])
    assert not hours.holds("job.failed") and hours.holds("job.delivered")


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"from": "7:00"}, "from"),
        ({"to": "24:00"}, "to"),
        ({"timezone": "Europe/Atlantis"}, "timezone"),
        ({"days": ["monday"]}, "days"),
        ({"days": []}, "days"),
        ({"from": "07:00"}, "from"),  # same as 'to'
    ],
)
def test_bad_quiet_hours_name_the_key(fields: dict[str, object], where: str) -> None:
    with pytest.raises(ValidationError) as caught:
        quiet(**fields)
    text = str(caught.value)
    assert where in text
