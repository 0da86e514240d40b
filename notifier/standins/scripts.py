"""Scripted jobs for the stand-in: how an automatic or a workload job moves over time."""

from __future__ import annotations

import random

Step = tuple[float, str, int]


def auto_steps(job_id: str, duration: float) -> list[Step]:
    """QUEUED, IN_PROGRESS with rising progress, then DELIVERED (FAILED if the id says "fail")."""
    rising = [(duration * share, "IN_PROGRESS", round(share * 100)) for share in (0.1, 0.3, 0.6)]
    final: Step = (duration, "FAILED", 60) if "fail" in job_id else (duration, "DELIVERED", 100)
    return [(0.0, "QUEUED", 0), *rising, final]


def progress_steps(
    kind: str, duration: float, rng: random.Random, noise: float = 3.0
) -> list[Step]:
    """A job that runs ``duration`` seconds and then is DELIVERED, for workloads.

    ``linear``: progress rises steadily, reported a hundred times with +-``noise``
    points of jitter (never past 99 before the end). ``step``: progress moves in three
    to six jumps at random moments. Both start QUEUED and end at 100.
    """
    steps: list[Step] = [(0.0, "QUEUED", 0)]
    if kind == "linear":
        for index in range(1, 100):
            share = index / 100
            jitter = rng.uniform(-noise, noise)
            steps.append(
                (duration * share, "IN_PROGRESS", max(0, min(99, round(share * 100 + jitter))))
            )
    elif kind == "step":
        moments = sorted(rng.uniform(0.05, 0.95) for _ in range(rng.randint(3, 6)))
        for number, share in enumerate(moments, start=1):
            steps.append(
                (duration * share, "IN_PROGRESS", round(100 * number / (len(moments) + 1)))
            )
    else:
        raise ValueError(f"unknown workload kind {kind!r}; expected linear or step")
    steps.append((duration, "DELIVERED", 100))
    return steps
