"""The store's part of reminders and acks, against both backends: a first delivery's
schedule makes reminder 1, 2, ... (each its own outbox row with ``data.reminder`` and
``data.first_sent_at``) up to ``remind_max``; an ack, a re-registration or an unwatch
ends it; two PostgreSQL stores sweeping at once make each reminder once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from notifier.reminders import OCCURRENCE_STEP, Ack, ReminderPlan
from notifier.store import NewEvent
from tests.test_store import NOW, Backend, near, poll, spec

EVERY = 600.0
PLANS = {"hook": ReminderPlan(EVERY, 3, ("job.failed", "group.failed"))}


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    sqlite = request.param == "sqlite"
    location = tmp_path / "state.db" if sqlite else request.getfixturevalue("postgres_url")
    backend = Backend(request.param, location)
    yield backend
    backend.close()


@pytest.fixture
def store(backend: Backend) -> Any:
    return backend.open()


def failed_event(job_id: str, *callbacks: str) -> NewEvent:
    payload = {"type": "job.failed", "timestamp": "t", "data": {"job_id": job_id}}
    return NewEvent(event="job.failed", payload=payload, callbacks=callbacks)


def failed_and_sent(store: Any, job_id: str = "a") -> str:
    """``job_id`` FAILED, its delivery to hook sent at NOW and its reminders scheduled."""
    store.sync_config_jobs([spec(job_id)], NOW)
    poll(store, job_id, failed_event(job_id, "hook"))
    [first] = store.deliveries(job_id=job_id)
    store.start_reminders(first.id, "job", job_id, NOW, NOW + EVERY)
    return str(first.id)


def reminders_of(store: Any, job_id: str = "a") -> list[Any]:
    return [d for d in store.deliveries(job_id=job_id) if d.occurrence >= OCCURRENCE_STEP]


def test_reminders_come_every_interval_up_to_the_maximum(store: Any) -> None:
    first = failed_and_sent(store)
    assert store.fire_reminders(NOW + EVERY - 5, PLANS, 100) == 0  # not due yet
    assert store.fire_reminders(NOW + EVERY + 1, PLANS, 100) == 1
    [one] = reminders_of(store)
    assert one.id != first and one.event == "job.failed" and one.state == "pending"
    assert one.payload["data"]["reminder"] == 1
    assert one.payload["data"]["first_sent_at"].endswith("Z")
    assert one.payload["data"]["job_id"] == "a"
    assert store.fire_reminders(NOW + EVERY + 2, PLANS, 100) == 0  # the next is an interval on
    assert store.fire_reminders(NOW + 2 * EVERY + 2, PLANS, 100) == 1
    assert store.fire_reminders(NOW + 3 * EVERY + 3, PLANS, 100) == 1
    assert store.fire_reminders(NOW + 9 * EVERY, PLANS, 100) == 0  # remind_max: 3
    numbers = sorted(d.payload["data"]["reminder"] for d in reminders_of(store))
    assert numbers == [1, 2, 3]


def test_an_ack_ends_the_reminders_and_is_kept(store: Any) -> None:
    failed_and_sent(store)
    store.fire_reminders(NOW + EVERY + 1, PLANS, 100)
    store.ack(Ack("job", "a", "cli", NOW + EVERY + 10, "on it"))
    assert store.fire_reminders(NOW + 5 * EVERY, PLANS, 100) == 0
    assert len(reminders_of(store)) == 1
    [ack] = store.acks("job", ["a", "b"]).values()
    assert (ack.kind, ack.subject, ack.by, ack.comment) == ("job", "a", "cli", "on it")
    assert near(ack.at, NOW + EVERY + 10)
    store.ack(Ack("job", "a", "ops-token", NOW + EVERY + 20, None))  # the latest one stands
    assert store.acks("job", ["a"])["a"].by == "ops-token"
    assert store.acks("group", ["a"]) == {}


def test_an_ack_before_the_failure_does_not_silence_it(store: Any) -> None:
    store.ack(Ack("job", "a", "cli", NOW - 3600, None))
    failed_and_sent(store)
    assert store.fire_reminders(NOW + EVERY + 1, PLANS, 100) == 1


def test_re_registering_or_unwatching_a_job_ends_its_reminders(store: Any) -> None:
    failed_and_sent(store, "a")
    failed_and_sent(store, "b")
    store.watch(spec("a"), NOW + 1)
    store.unwatch("b")
    assert store.fire_reminders(NOW + 5 * EVERY, PLANS, 100) == 0


def test_a_callback_that_stopped_reminding_ends_the_schedule(store: Any) -> None:
    failed_and_sent(store)
    assert store.fire_reminders(NOW + EVERY + 1, {}, 100) == 0
    assert store.fire_reminders(NOW + 5 * EVERY, PLANS, 100) == 0  # ended, not postponed


def test_a_group_event_is_acknowledged_by_its_group(store: Any) -> None:
    store.sync_config_jobs([spec("a")], NOW)
    payload = {"type": "group.failed", "timestamp": "t", "data": {"group": "nightly"}}
    store.add_event(None, NewEvent("group.failed", payload, ["hook"]), NOW)
    [first] = store.deliveries()
    store.start_reminders(first.id, "group", "nightly", NOW, NOW + EVERY)
    store.start_reminders(first.id, "group", "nightly", NOW + 50, NOW + 50)  # kept as it was
    assert store.fire_reminders(NOW + EVERY + 1, PLANS, 100) == 1
    store.ack(Ack("group", "nightly", "cli", NOW + EVERY + 5, None))
    assert store.fire_reminders(NOW + 5 * EVERY, PLANS, 100) == 0
    assert [d.payload["data"].get("reminder") for d in store.deliveries()] == [None, 1]


def test_two_stores_sweeping_at_once_make_each_reminder_once(backend: Backend, store: Any) -> None:
    if backend.kind != "postgres":
        pytest.skip("one daemon per SQLite file")
    for n in range(40):
        failed_and_sent(store, f"j{n}")
    other = backend.open()
    made: list[int] = []
    start = threading.Barrier(2)

    def sweep(s: Any) -> None:
        start.wait()
        made.append(s.fire_reminders(NOW + EVERY + 1, PLANS, 1000))

    threads = [threading.Thread(target=sweep, args=(s,)) for s in (store, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(made) == 40
    assert sum(len(reminders_of(store, f"j{n}")) for n in range(40)) == 40


def test_import_state_copies_acks_and_schedules(tmp_path: Path, postgres_url: str) -> None:
    old = Backend("sqlite", tmp_path / "old.db")
    sqlite = old.open()
    failed_and_sent(sqlite, "a")
    failed_and_sent(sqlite, "b")
    sqlite.ack(Ack("job", "b", "cli", NOW + 5, "seen"))
    old.close()
    new = Backend("postgres", postgres_url)
    try:
        store = new.open()
        store.import_sqlite(tmp_path / "old.db")
        store.import_sqlite(tmp_path / "old.db")  # twice: nothing more
        assert store.acks("job", ["a", "b"])["b"].comment == "seen"
        assert store.fire_reminders(NOW + EVERY + 1, PLANS, 100) == 1  # a's; b's ended
        assert [d.payload["data"]["reminder"] for d in reminders_of(store, "a")] == [1]
    finally:
        new.close()
