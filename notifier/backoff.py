"""Retry timing: exponential backoff with jitter, and ``Retry-After`` headers."""

from __future__ import annotations

import email.utils
import random

# First and longest wait after a failed call to the state store (the daemon's ticks,
# ``wait``'s looks at the state).
STORE_BACKOFF = (0.5, 10.0)


def exponential(
    failures: int, initial: float, maximum: float, rng: random.Random | None = None
) -> float:
    """Delay before the next try after ``failures`` consecutive failures (>= 1).

    ``initial * 2**(failures-1)``, capped at ``maximum``, then scaled by a random
    factor in [0.75, 1.0] so that many failing senders do not retry in lock-step.
    """
    exponent = min(max(failures - 1, 0), 62)
    delay = min(maximum, initial * (2.0**exponent))
    return delay * (rng or random).uniform(0.75, 1.0)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)
