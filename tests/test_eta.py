"""Predictive polling: the ETA estimate and the schedule it gives (issue 9 part 2)."""

from __future__ import annotations

import random
from typing import Any

from notifier.config import PollingSettings
from notifier.eta import Baseline, estimate, interval_until, next_baseline
from notifier.poller import Observation, decide
from notifier.store import WatchedJob

POLLING = PollingSettings(interval=10, max_interval=300, expire_after=0)


def feed(readings: list[tuple[float, int]]) -> tuple[Baseline, float | None]:
    """The baseline and estimate after each (time, progress) reading in turn."""
    baseline, eta, previous = Baseline(None, None), None, None
    for now, progress in readings:
        baseline = next_baseline(baseline, previous, progress, now)
        eta, previous = estimate(baseline, progress, now), progress
    return baseline, eta


def test_rising_progress_predicts_the_end() -> None:
    _, eta = feed([(0, 0), (100, 10), (200, 20), (300, 30)])
    assert eta is not None and abs(eta - 1000) < 1


def test_flat_progress_has_no_estimate() -> None:
    baseline, eta = feed([(0, 40), (100, 40), (200, 40)])
    assert eta is None
    assert baseline == Baseline(200, 40)  # the last sighting at the starting value


def test_a_queued_start_does_not_make_the_job_look_slow() -> None:
    # Queued at 0 % for 500 s, then running 1 %/s: the estimate errs early, never late.
    _, eta = feed([(0, 0), (250, 0), (500, 0), (510, 10), (520, 20)])
    assert eta is not None and 580 <= eta <= 600


def test_noisy_readings_barely_move_the_estimate() -> None:
    rng = random.Random(7)
    readings = [(t, max(0, round(t / 10 + rng.uniform(-3, 3)))) for t in range(0, 801, 20)]
    _, eta = feed(readings)
    assert eta is not None and abs(eta - 1000) < 100


def test_jumping_progress_averages_the_steps() -> None:
    _, eta = feed([(0, 0), (60, 0), (300, 25), (600, 50)])
    assert eta is not None and 1000 <= eta <= 1300  # 50 % in 540 s since last seen at 0


def test_progress_going_backwards_starts_over() -> None:
    baseline, eta = feed([(0, 0), (100, 50), (150, 5)])
    assert baseline == Baseline(150, 5)
    assert eta is None
    _, eta = feed([(0, 0), (100, 50), (150, 5), (250, 15)])
    assert eta is not None and abs(eta - 1100) < 1


def test_the_schedule_converges_on_the_estimate() -> None:
    assert interval_until(10_000, 0, 10, 300) == 300  # far: max_interval
    assert interval_until(100, 0, 10, 300) == 60  # closing in on the estimate
    assert interval_until(15, 0, 10, 300) == 10  # near: every interval
    assert interval_until(25, 0, 10, 300) == 10  # within 3 intervals: every interval too
    assert interval_until(-50, 0, 10, 300) == 10  # late: every interval until it ends


def job(**fields: Any) -> WatchedJob:
    row: dict[str, Any] = {
        "id": "ExportQueue:e",
        "name": None,
        "notify": None,
        "on_status": ("DELIVERED", "FAILED"),
        "source": "config",
        "state": "watching",
        "status": "IN_PROGRESS",
        "progress": 10,
        "stored_job": None,
        "registered_at": 0.0,
        "last_polled_at": 100.0,
        "next_poll_at": 100.0,
        "poll_interval": 10.0,
        "last_error": None,
        "started_at": 0.0,
        "baseline_at": 0.0,
        "baseline_progress": 0,
    }
    return WatchedJob(**{**row, **fields})


def seen(status: str, progress: int) -> Observation:
    return Observation(job={"id": "ExportQueue:e", "status": status, "progress": progress})


def test_decide_polls_near_the_estimate_and_shows_it() -> None:
    update = decide(job(), seen("IN_PROGRESS", 20), 200.0, POLLING, ["hook"], 1.0)
    assert update.eta is not None and abs(update.eta - 1000) < 1
    assert update.poll_interval == 300  # far from the end: max_interval, not every 10 s
    near = decide(job(), seen("IN_PROGRESS", 90), 900.0, POLLING, ["hook"], 1.0)
    assert near.poll_interval == 60  # closing in on the estimated end
    last = decide(job(), seen("IN_PROGRESS", 99), 990.0, POLLING, ["hook"], 1.0)
    assert last.poll_interval == 10  # then every interval until it ends


def test_predictive_false_keeps_the_adaptive_schedule() -> None:
    adaptive = POLLING.model_copy(update={"predictive": False})
    update = decide(job(), seen("IN_PROGRESS", 20), 200.0, adaptive, ["hook"], 1.0)
    assert update.poll_interval == 10  # progress moved: back to interval
    assert update.eta is not None  # the estimate is still shown


def test_terminal_events_carry_started_at_and_duration() -> None:
    update = decide(
        job(started_at=1_000.0),
        seen("DELIVERED", 100),
        1_250.5,
        POLLING,
        ["hook"],
        1.0,
    )
    data = update.events[0].payload["data"]
    assert data["duration_s"] == 250.5
    assert data["started_at"].startswith("1970-01-01T00:16:40")
    assert update.eta is None
