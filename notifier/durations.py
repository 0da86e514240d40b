"""Durations in the config (``500ms``, ``30s``, ``5m``, ``2h``, ``7d`` or a number of seconds)
and the relative times the CLI prints (``in 25s``, ``3m ago``)."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(value: object) -> float:
    """Return ``value`` in seconds; raise ValueError with a readable reason."""
    if isinstance(value, bool):
        raise ValueError("not a duration (expected e.g. 30s, 5m, 2h, 7d or seconds)")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _PATTERN.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        raise ValueError(f"not a duration: {value!r} (expected e.g. 500ms, 30s, 5m, 2h, 7d)")
    if seconds < 0:
        raise ValueError("must not be negative")
    return seconds


def format_duration(seconds: float) -> str:
    """Return a short human form: ``450ms``, ``25s``, ``3m``, ``2h``, ``4d``."""
    seconds = abs(seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f}{unit}"
    return f"{seconds:.0f}s"


def relative_time(when: float | None, now: float) -> str:
    """Return ``in 25s`` for a future time, ``3m ago`` for a past one (``0s ago`` within
    the last second), ``now`` for the next second, ``-`` for none."""
    if when is None:
        return "-"
    delta = when - now
    if 0 <= delta < 1:
        return "now"
    if -1 < delta < 0:
        return "0s ago"
    return f"in {format_duration(delta)}" if delta > 0 else f"{format_duration(delta)} ago"
