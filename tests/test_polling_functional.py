"""Issue 5, functionally: batching, the request-rate cap and adaptive intervals.

The real :class:`~notifier.poller.Poller` and :class:`~notifier.store.SqliteStore` (in
``tmp_path``) poll the real simulator over HTTP; the poller's clock is a fake one that
the tests move, so "which jobs are due" is exact. Every assertion is a count of what the
simulator was asked -- requests, job ids per request, polls per simulated second -- never a
duration; the rate-cap test counts requests per 1 s window of the simulator's own clock.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from notifier.config import Config, JobSpec
from notifier.poller import Poller
from notifier.standins.simulator import DatasaurSimulator
from notifier.store import SqliteStore
from tests.conftest import base_config

T0 = 1_700_000_000.0


class FakeClock:
    """The poller's wall clock, moved by the test."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_config(
    sim: DatasaurSimulator,
    state_dir: Path,
    *,
    batch_size: int | None = None,
    rate: float | None = 1000,
    interval: float = 10,
    max_interval: float = 80,
    predictive: bool = True,
) -> Config:
    """``rate`` and ``batch_size`` None keep the defaults (5 requests/s, 50 jobs)."""
    raw = base_config(sim, state_dir)
    datasaur = dict(raw["datasaur"])
    if batch_size is not None:
        datasaur["batch_size"] = batch_size
    if rate is not None:
        datasaur["max_requests_per_second"] = rate
    polling = {
        "interval": f"{interval}s",
        "max_interval": f"{max_interval}s",
        "expire_after": 0,
        "predictive": predictive,
    }
    return Config.model_validate({**raw, "datasaur": datasaur, "polling": polling})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    state = SqliteStore(tmp_path / "state.db")
    yield state
    state.close()


def watch_jobs(
    sim: DatasaurSimulator,
    store: SqliteStore,
    count: int,
    status: str = "IN_PROGRESS",
    now: float = T0,
) -> list[str]:
    """``count`` jobs known to the simulator and watched (due at ``now``)."""
    ids = [f"AutoLabelQueue:job-{index:05d}" for index in range(count)]
    for job_id in ids:
        sim.set_job(job_id, status, 10)
    store.sync_config_jobs([JobSpec(id=job_id) for job_id in ids], now)
    return ids


def poller_for(store: SqliteStore, config: Config, clock: FakeClock) -> Poller:
    return Poller(store, config, clock=clock, rng=random.Random(5))


def requests_since(sim: DatasaurSimulator, before: int) -> list[tuple[float, Any, int]]:
    return sim.stats().requests[before:]


# --- batching ------------------------------------------------------------------------


@pytest.mark.parametrize(("jobs", "batch_size"), [(120, 50), (100, 50), (7, 3), (1, 50), (10, 1)])
def test_one_tick_asks_ceil_due_over_batch_size_requests(
    simulator: DatasaurSimulator, store: SqliteStore, tmp_path: Path, jobs: int, batch_size: int
) -> None:
    watch_jobs(simulator, store, jobs)
    clock = FakeClock(T0 + 1)
    poller = poller_for(store, make_config(simulator, tmp_path, batch_size=batch_size), clock)

    assert poller.tick() == jobs

    stats = simulator.stats()
    assert stats.graphql_requests == math.ceil(jobs / batch_size)
    assert stats.get_jobs_calls == math.ceil(jobs / batch_size)
    assert stats.get_job_calls == 0
    assert stats.job_polls == jobs
    assert stats.max_batch_size == min(jobs, batch_size)
    assert [ids for _, _, ids in stats.requests] == [
        min(batch_size, jobs - start) for start in range(0, jobs, batch_size)
    ]
    # Nothing is due any more at the same instant: the next tick asks nothing.
    assert poller.tick() == 0
    assert simulator.stats().graphql_requests == math.ceil(jobs / batch_size)


def test_only_due_jobs_are_asked_for(
    simulator: DatasaurSimulator, store: SqliteStore, tmp_path: Path
) -> None:
    batch_size = 20
    watch_jobs(simulator, store, 300)
    clock = FakeClock(T0)
    config = make_config(simulator, tmp_path, batch_size=batch_size, interval=10, max_interval=80)
    poller = poller_for(store, config, clock)
    assert poller.tick() == 300
    first = simulator.stats().graphql_requests

    # Polls were spread over [8 s, 10 s]: 9 s later only part of the jobs is due.
    clock.now = T0 + 9
    due = sum(1 for job in store.jobs("watching") if job.next_poll_at <= clock.now)
    assert 0 < due < 300
    assert poller.tick() == due
    stats = simulator.stats()
    assert stats.graphql_requests - first == math.ceil(due / batch_size)
    assert stats.max_batch_size <= batch_size


def test_default_settings_make_at_least_25_job_polls_per_request(
    simulator: DatasaurSimulator, store: SqliteStore, tmp_path: Path
) -> None:
    jobs = 490  # ten requests at the default batch size of 50; two at the default 5/s cap
    watch_jobs(simulator, store, jobs)
    config = make_config(simulator, tmp_path, batch_size=None, rate=None)
    assert config.datasaur.batch_size == 50
    assert config.datasaur.max_requests_per_second == 5
    poller = poller_for(store, config, FakeClock(T0 + 1))

    polled = 0
    for _ in range(200):  # the rate cap spreads the work over several ticks
        polled += poller.tick()
        if polled >= jobs:
            break
        time.sleep(0.05)

    stats = simulator.stats()
    assert polled == stats.job_polls == jobs
    assert stats.graphql_requests == math.ceil(jobs / 50)
    assert stats.job_polls / stats.graphql_requests >= 25
    assert stats.max_batch_size <= 50


def test_finished_jobs_are_not_polled_again(
    simulator: DatasaurSimulator, store: SqliteStore, tmp_path: Path
) -> None:
    watch_jobs(simulator, store, 60, status="DELIVERED")
    clock = FakeClock(T0 + 1)
    poller = poller_for(store, make_config(simulator, tmp_path, batch_size=50), clock)
    assert poller.tick() == 60
    asked = simulator.stats().graphql_requests
    assert asked == 3  # two getJobs, then one request for the 60 ended jobs' result

    for step in range(1, 50):
        clock.now = T0 + 1 + step * 60
        assert poller.tick() == 0
    assert simulator.stats().graphql_requests == asked


# --- the request-rate cap ---------------------------------------------------------------


def most_in_any_window(stamps: list[float], window: float = 1.0) -> int:
    """The largest number of stamps within any half-open window of ``window`` seconds."""
    stamps = sorted(stamps)
    most, first = 0, 0
    for last, stamp in enumerate(stamps):
        while stamp - stamps[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


@pytest.mark.parametrize("rate", [5.0, 20.0])
def test_the_rate_cap_holds_with_thousands_of_jobs_due(
    simulator: DatasaurSimulator, store: SqliteStore, tmp_path: Path, rate: float
) -> None:
    watch_jobs(simulator, store, 5_000)
    config = make_config(simulator, tmp_path, batch_size=10, rate=rate)
    poller = poller_for(store, config, FakeClock(T0 + 1))

    # Drive ticks the way the scheduler does (every 50 ms) for a bounded window.
    end = time.monotonic() + 2.5
    while time.monotonic() < end:
        poller.tick()
        time.sleep(0.05)

    stamps = [stamp for stamp, _, _ in simulator.stats().requests]
    burst = max(1.0, rate)  # the token bucket's capacity
    assert len(stamps) > burst, "the poller should have used its burst and kept going"
    assert most_in_any_window(stamps) <= rate + burst
    # 500 requests were needed; the cap left most jobs for later ticks.
    assert simulator.stats().job_polls < 5_000


def test_most_in_any_window_counts_a_sliding_window() -> None:
    assert most_in_any_window([]) == 0
    assert most_in_any_window([0.0, 0.5, 0.99, 1.0, 1.5]) == 3
    assert most_in_any_window([0.0, 1.0, 2.0]) == 1


# --- adaptive intervals -------------------------------------------------------------------


def poll_times(
    simulator: DatasaurSimulator, poller: Poller, clock: FakeClock, until: float, step: float = 1
) -> list[float]:
    """Tick every ``step`` simulated seconds up to ``until``; the instants a poll happened."""
    polled: list[float] = []
    while clock.now < until:
        clock.now += step
        if poller.tick():
            polled.append(clock.now)
    return polled


def next_poll(poller: Poller, clock: FakeClock, limit: float, step: float = 1) -> float:
    """Tick every ``step`` simulated seconds until the job is polled; the instant it was."""
    end = clock.now + limit
    while clock.now < end:
        clock.now += step
        if poller.tick():
            return clock.now
    raise AssertionError(f"not polled within {limit} simulated seconds")


def intervals_of(store: SqliteStore, job_id: str) -> float | None:
    return store.jobs(job_id=job_id)[0].poll_interval


def test_an_unchanged_job_is_polled_less_and_less_often_up_to_max_interval(
    simulator: DatasaurSimulator, store: SqliteStore, tmp_path: Path
) -> None:
    (job_id,) = watch_jobs(simulator, store, 1)
    clock = FakeClock(T0 - 1)
    config = make_config(simulator, tmp_path, interval=10, max_interval=80)
    poller = poller_for(store, config, clock)

    polled = poll_times(simulator, poller, clock, until=T0 + 600)

    gaps = [later - earlier for earlier, later in itertools.pairwise(polled)]
    # The first answer is a change (unknown -> IN_PROGRESS): 10 s, then 20, 40, 80, 80...
    expected = [10, 20, 40] + [80] * (len(gaps) - 3)
    assert len(gaps) >= 8
    for gap, interval in zip(gaps, expected, strict=True):
        assert 0.8 * interval <= gap <= interval + 1  # spread, and 1 s ticks
    assert intervals_of(store, job_id) == 80
    # 600 s at a fixed 10 s would be 60 polls; backing off makes about a dozen.
    assert simulator.stats().job_polls == len(polled) <= 14


def test_a_change_resets_the_interval(
    simulator: DatasaurSimulator, store: SqliteStore, tmp_path: Path
) -> None:
    (job_id,) = watch_jobs(simulator, store, 1)
    clock = FakeClock(T0 - 1)
    adaptive = make_config(simulator, tmp_path, interval=10, max_interval=80, predictive=False)
    poller = poller_for(store, adaptive, clock)
    poll_times(simulator, poller, clock, until=T0 + 300)
    assert intervals_of(store, job_id) == 80

    simulator.set_job(job_id, "IN_PROGRESS", 55)  # progress moved: a change
    after_change = next_poll(poller, clock, limit=81)
    assert intervals_of(store, job_id) == 10

    polled = poll_times(simulator, poller, clock, until=after_change + 10 + 20 + 2)
    assert polled
    assert 8 <= polled[0] - after_change <= 11
    assert intervals_of(store, job_id) in (20, 40)

    simulator.set_job(job_id, "QUEUED", 55)  # a status change resets it too
    next_poll(poller, clock, limit=41)
    assert intervals_of(store, job_id) == 10


def test_jobs_registered_together_are_spread_over_the_interval_request_by_request(
    simulator: DatasaurSimulator, store: SqliteStore, tmp_path: Path
) -> None:
    watch_jobs(simulator, store, 400)
    clock = FakeClock(T0)
    poller = poller_for(
        store, make_config(simulator, tmp_path, interval=10, max_interval=80), clock
    )
    assert poller.tick() == 400  # 8 requests of 50

    next_polls = [job.next_poll_at - T0 for job in store.jobs("watching")]
    assert min(next_polls) >= 8 and max(next_polls) <= 10
    # No herd: each request's jobs are rescheduled together, the requests apart.
    together = Counter(round(offset, 6) for offset in next_polls)
    assert sorted(together.values()) == [50] * 8
    assert max(together) - min(together) > 1

    # So the next ticks, one simulated second apart, each poll only part of them, and
    # every request they make is full again.
    per_tick = []
    for second in (8, 9, 10):
        clock.now = T0 + second
        before = len(simulator.stats().requests)
        per_tick.append(poller.tick())
        assert all(size == 50 for _, _, size in requests_since(simulator, before))
    assert sum(per_tick) == 400
    assert max(per_tick) < 400
