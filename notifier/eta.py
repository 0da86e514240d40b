"""Predictive polling: when will a job reach 100 %, and when to look again.

Datasaur reports ``progress``. The rate is measured over a long baseline -- from the
last moment the job was seen at its starting progress to now -- so noise in one
reading barely moves it, and progress that moves in steps averages out. The baseline
is the *last* sighting at the starting value, so a job that sat queued before running
is not taken for a slow one (the estimate errs early, which only costs a poll). If
progress goes backwards the job started over: so does the baseline.
"""

from __future__ import annotations

from typing import NamedTuple

NOISE = 5  # a reading this many points below the last one is noise, not a restart
CLOSING_IN = 0.6  # the next poll after this share of the time left to the estimate
# Within this many intervals of the estimate, poll every interval: so close to the end
# the estimate's own error (noise, steps) is larger than the gap CLOSING_IN would leave.
NEAR = 3


class Baseline(NamedTuple):
    """Where the rate is measured from: a time and the progress seen then."""

    at: float | None
    progress: int | None


def next_baseline(
    baseline: Baseline, previous: int | None, progress: int | None, now: float
) -> Baseline:
    """The baseline after seeing ``progress`` at ``now`` (``previous``: the last reading)."""
    if progress is None:
        return baseline
    went_back = progress < (baseline.progress or 0) or (
        previous is not None and progress < previous - NOISE
    )
    if baseline.at is None or baseline.progress is None or went_back:
        return Baseline(now, progress)  # the first reading, or the job started over
    if progress == baseline.progress:
        return Baseline(now, progress)  # not moving yet: the last sighting at the start
    return baseline


def estimate(baseline: Baseline, progress: int | None, now: float) -> float | None:
    """When progress will reach 100 at the rate seen since ``baseline``; None if unknown."""
    if progress is None or baseline.at is None or baseline.progress is None:
        return None
    gained, elapsed = progress - baseline.progress, now - baseline.at
    if gained <= 0 or elapsed <= 0 or progress >= 100:
        return None
    return now + (100 - progress) * elapsed / gained


def interval_until(eta: float, now: float, interval: float, max_interval: float) -> float:
    """How long to wait for the next poll of a job expected to end at ``eta``.

    :data:`CLOSING_IN` of the time left, within [``interval``, ``max_interval``]: far from
    the end one poll per ``max_interval``, then polls that close in on the estimate (each
    re-estimates it, so a job running early is caught early), and every ``interval`` once
    it is within :data:`NEAR` intervals or past, until the job ends.
    """
    if eta - now <= NEAR * interval:
        return interval
    return min(max_interval, max(interval, (eta - now) * CLOSING_IN))
