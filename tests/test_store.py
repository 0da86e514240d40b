"""SqliteStore against a real file: the watch list, atomic outbox rows, redelivery."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from notifier.config import JobSpec
from notifier.store import (
    Attempt,
    JobUpdate,
    NewEvent,
    SqliteStore,
    StoreError,
)

NOW = 1_700_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    db = SqliteStore(tmp_path / "nested" / "dir" / "state.db")
    yield db
    db.close()


def spec(job_id: str, **fields: Any) -> JobSpec:
    return JobSpec.model_validate({"id": job_id, **fields})


def ids(jobs: list[Any]) -> list[str]:
    return [job.id for job in jobs]


def states(store: SqliteStore) -> dict[str, str]:
    return {job.id: job.state for job in store.jobs()}


def update(job_id: str, *events: NewEvent, state: str = "done", at: float = NOW) -> JobUpdate:
    return JobUpdate(
        job_id=job_id,
        state=state,
        status="DELIVERED",
        progress=100,
        job={"id": job_id, "status": "DELIVERED", "progress": 100},
        polled_at=at,
        next_poll_at=None if state != "watching" else at + 1,
        poll_interval=1.0,
        last_error=None,
        events=events,
    )


def delivered_event(job_id: str, *callbacks: str) -> NewEvent:
    payload = {"type": "job.delivered", "timestamp": "t", "data": {"job_id": job_id}}
    return NewEvent(event="job.delivered", payload=payload, callbacks=callbacks)


# --- file and schema -----------------------------------------------------------------


def test_creates_the_file_and_its_directory_with_wal(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "state.db"
    store = SqliteStore(path)
    try:
        assert path.exists()
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert {"jobs", "deliveries", "attempts"} <= tables
        conn.close()
    finally:
        store.close()


def test_reopening_keeps_the_state(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = SqliteStore(path)
    first.sync_config_jobs([spec("a")], NOW)
    first.apply_polls([update("a", delivered_event("a", "hook"))])
    first.close()
    second = SqliteStore(path)
    try:
        assert states(second) == {"a": "done"}
        assert [d.callback for d in second.deliveries()] == ["hook"]
    finally:
        second.close()


def test_corrupt_file_is_a_store_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database, just some junk bytes " * 200)
    with pytest.raises(StoreError) as caught:
        SqliteStore(path)
    assert str(path) in str(caught.value)


def test_unusable_directory_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError) as caught:
        SqliteStore(blocker / "state.db")
    assert str(blocker / "state.db") in str(caught.value)


# --- the watch list ------------------------------------------------------------------


def test_sync_registers_config_jobs_due_at_once(store: SqliteStore) -> None:
    store.sync_config_jobs([spec("a", name="first"), spec("b", notify=["hook"])], NOW)
    a, b = store.jobs()
    assert (a.id, a.name, a.state, a.source) == ("a", "first", "watching", "config")
    assert a.notify is None and a.on_status == ("DELIVERED", "FAILED")
    assert b.notify == ["hook"]
    assert a.next_poll_at == NOW and a.status is None
    assert ids(store.due_jobs(NOW, 10)) == ["a", "b"]
    assert store.due_jobs(NOW - 1, 10) == []
    assert len(store.due_jobs(NOW, 1)) == 1


def test_sync_updates_settings_without_resetting_progress(store: SqliteStore) -> None:
    store.sync_config_jobs([spec("a")], NOW)
    store.apply_polls([update("a", state="watching")])
    store.sync_config_jobs([spec("a", name="renamed", on_status=["IN_PROGRESS"])], NOW + 5)
    [job] = store.jobs()
    assert job.name == "renamed"
    assert job.on_status == ("IN_PROGRESS",)
    assert job.status == "DELIVERED"
    assert job.last_polled_at == NOW
    assert job.registered_at == NOW


def test_job_removed_from_the_config_is_unwatched(store: SqliteStore) -> None:
    store.sync_config_jobs([spec("a"), spec("b"), spec("c")], NOW)
    store.apply_polls([update("c")])  # c is done
    store.sync_config_jobs([spec("a")], NOW + 1)
    assert states(store) == {"a": "watching", "b": "unwatched", "c": "done"}
    assert ids(store.due_jobs(NOW + 100, 10)) == ["a"]
    [b] = store.jobs(job_id="b")
    assert b.next_poll_at is None
    assert store.jobs(state="unwatched") == [b]


def test_job_back_in_the_config_is_watched_again(store: SqliteStore) -> None:
    store.sync_config_jobs([spec("a"), spec("b")], NOW)
    store.sync_config_jobs([spec("a")], NOW + 1)
    store.sync_config_jobs([spec("a"), spec("b")], NOW + 2)
    assert states(store) == {"a": "watching", "b": "watching"}
    assert "b" in ids(store.due_jobs(NOW + 2, 10))


def test_cli_watched_jobs_survive_config_syncs(store: SqliteStore) -> None:
    store.sync_config_jobs([spec("a")], NOW)
    watched = store.watch(spec("cli-job", name="by hand"), NOW + 1)
    assert (watched.source, watched.state) == ("cli", "watching")
    store.sync_config_jobs([], NOW + 2)
    assert states(store) == {"a": "unwatched", "cli-job": "watching"}
    # listing a CLI job in the config later does not take it over
    store.sync_config_jobs([spec("cli-job", name="from config")], NOW + 3)
    store.sync_config_jobs([], NOW + 4)
    [job] = store.jobs(job_id="cli-job")
    assert (job.state, job.source, job.name) == ("watching", "cli", "by hand")


def test_operator_unwatch_is_not_undone_by_a_config_sync(store: SqliteStore) -> None:
    store.sync_config_jobs([spec("a")], NOW)
    unwatched = store.unwatch("a")
    assert unwatched is not None and unwatched.state == "unwatched"
    store.sync_config_jobs([spec("a")], NOW + 1)
    assert states(store) == {"a": "unwatched"}
    # ... but the operator can watch it again
    assert store.watch(spec("a"), NOW + 2).state == "watching"


def test_unwatch_unknown_and_done_jobs(store: SqliteStore) -> None:
    assert store.unwatch("nope") is None
    store.sync_config_jobs([spec("a")], NOW)
    store.apply_polls([update("a")])
    done = store.unwatch("a")
    assert done is not None and done.state == "done"


def test_poll_results_are_not_applied_to_a_job_unwatched_meanwhile(store: SqliteStore) -> None:
    store.sync_config_jobs([spec("a")], NOW)
    store.unwatch("a")
    store.apply_polls([update("a", delivered_event("a", "hook"), state="watching")])
    [job] = store.jobs()
    assert job.state == "unwatched"
    assert job.status is None


# --- the outbox ----------------------------------------------------------------------


def test_poll_and_outbox_rows_are_written_together(store: SqliteStore) -> None:
    store.sync_config_jobs([spec("a"), spec("b")], NOW)
    created = store.apply_polls(
        [update("a", delivered_event("a", "hook", "mail")), update("b", state="watching")]
    )
    assert created == 2
    assert states(store) == {"a": "done", "b": "watching"}
    rows = store.deliveries()
    assert [(d.job_id, d.callback, d.event, d.state) for d in rows] == [
        ("a", "hook", "job.delivered", "pending"),
        ("a", "mail", "job.delivered", "pending"),
    ]
    assert all(d.id.startswith("msg_") for d in rows)
    assert len({d.id for d in rows}) == 2
    assert all(d.attempts == 0 and d.created_at == NOW for d in rows)
    assert rows[0].payload == {"type": "job.delivered", "timestamp": "t", "data": {"job_id": "a"}}
    [job] = store.jobs(job_id="a")
    assert job.job == {"id": "a", "status": "DELIVERED", "progress": 100}


def test_a_failing_transaction_leaves_neither_status_nor_outbox_rows(store: SqliteStore) -> None:
    store.sync_config_jobs([spec("a")], NOW)
    # A payload that cannot be serialised fails in the middle of the transaction.
    bad = NewEvent(event="job.delivered", payload={"x": object()}, callbacks=["hook"])
    with pytest.raises(TypeError):
        store.apply_polls([update("a", delivered_event("a", "mail"), bad)])
    [job] = store.jobs()
    assert (job.state, job.status) == ("watching", None)
    assert store.deliveries() == []


def test_one_row_per_job_callback_and_event(store: SqliteStore) -> None:
    store.sync_config_jobs([spec("a")], NOW)
    assert store.apply_polls([update("a", delivered_event("a", "hook"), state="watching")]) == 1
    again = update("a", delivered_event("a", "hook", "mail"), state="watching", at=NOW + 1)
    assert store.apply_polls([again]) == 1  # only mail is new
    expired = NewEvent(event="job.expired", payload={}, callbacks=["hook"])
    assert store.apply_polls([update("a", expired, state="watching", at=NOW + 2)]) == 1
    keys = [(d.callback, d.event) for d in store.deliveries()]
    assert sorted(keys) == [
        ("hook", "job.delivered"),
        ("hook", "job.expired"),
        ("mail", "job.delivered"),
    ]


def test_unique_constraint_is_in_the_schema(store: SqliteStore) -> None:
    store.sync_config_jobs([spec("a")], NOW)
    store.apply_polls([update("a", delivered_event("a", "hook"))])
    conn = sqlite3.connect(store.path)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO deliveries (id, job_id, callback, event, payload, state, created_at,"
            " queued_at) VALUES ('msg_x', 'a', 'hook', 'job.delivered', '{}', 'pending', 0, 0)"
        )
    conn.close()


def test_due_deliveries_per_callback_excluding_in_flight(store: SqliteStore) -> None:
    store.sync_config_jobs([spec("a"), spec("b")], NOW)
    store.apply_polls(
        [
            update("a", delivered_event("a", "hook", "mail")),
            update("b", delivered_event("b", "hook")),
        ]
    )
    hook = store.due_deliveries("hook", NOW, 10, [])
    assert [d.job_id for d in hook] == ["a", "b"]
    assert store.due_deliveries("hook", NOW - 1, 10, []) == []
    assert [d.job_id for d in store.due_deliveries("hook", NOW, 10, [hook[0].id])] == ["b"]
    assert len(store.due_deliveries("hook", NOW, 1, [])) == 1
    assert [d.callback for d in store.due_deliveries("mail", NOW, 10, [])] == ["mail"]


def attempt(delivery_id: str, ok: bool, state: str, at: float, next_at: float | None) -> Attempt:
    return Attempt(
        delivery_id=delivery_id,
        attempted_at=at,
        duration=0.01,
        ok=ok,
        detail="HTTP 200" if ok else "HTTP 500",
        state=state,
        next_attempt_at=next_at,
    )


def test_attempts_move_a_delivery_through_its_states(store: SqliteStore) -> None:
    store.sync_config_jobs([spec("a")], NOW)
    store.apply_polls([update("a", delivered_event("a", "hook"))])
    [row] = store.deliveries()
    store.record_attempt(attempt(row.id, False, "pending", NOW + 1, NOW + 5))
    [row] = store.deliveries()
    assert (row.state, row.attempts, row.last_error, row.next_attempt_at) == (
        "pending",
        1,
        "HTTP 500",
        NOW + 5,
    )
    assert store.due_deliveries("hook", NOW + 4, 10, []) == []
    store.record_attempt(attempt(row.id, True, "delivered", NOW + 5, None))
    [row] = store.deliveries()
    assert (row.state, row.attempts, row.last_error, row.delivered_at) == (
        "delivered",
        2,
        None,
        NOW + 5,
    )
    assert store.due_deliveries("hook", NOW + 100, 10, []) == []
    assert [ok for _, _, ok, _ in store.attempts(row.id)] == [False, True]
    # a late attempt result cannot change a finished delivery
    store.record_attempt(attempt(row.id, False, "dead", NOW + 6, None))
    [row] = store.deliveries()
    assert (row.state, row.attempts) == ("delivered", 2)


def test_redeliver_queues_again_under_the_same_id(store: SqliteStore) -> None:
    store.sync_config_jobs([spec("a")], NOW)
    store.apply_polls([update("a", delivered_event("a", "hook"))])
    [row] = store.deliveries()
    store.record_attempt(attempt(row.id, False, "dead", NOW + 1, None))
    again = store.redeliver(row.id, NOW + 50)
    assert again is not None
    assert (again.id, again.state, again.next_attempt_at, again.queued_at) == (
        row.id,
        "pending",
        NOW + 50,
        NOW + 50,
    )
    assert [d.id for d in store.due_deliveries("hook", NOW + 50, 10, [])] == [row.id]
    store.record_attempt(attempt(row.id, True, "delivered", NOW + 51, None))
    delivered = store.redeliver(row.id, NOW + 60)
    assert delivered is not None
    assert (delivered.state, delivered.delivered_at) == ("pending", None)
    assert len(store.deliveries()) == 1
    assert store.redeliver("msg_unknown", NOW) is None


def test_filters_and_counts(store: SqliteStore) -> None:
    store.sync_config_jobs([spec("a"), spec("b")], NOW)
    store.apply_polls([update("a", delivered_event("a", "hook", "mail"))])
    [first, _] = store.deliveries()
    store.record_attempt(attempt(first.id, True, "delivered", NOW + 1, None))
    assert len(store.deliveries(state="pending")) == 1
    assert len(store.deliveries(job_id="a")) == 2
    assert store.deliveries(job_id="b") == []
    assert ids(store.deliveries(delivery_id=first.id)) == [first.id]
    assert ids(store.jobs(state="watching")) == ["b"]
    assert store.counts() == {
        "jobs": {"done": 1, "watching": 1},
        "deliveries": {"delivered": 1, "pending": 1},
    }
    assert store.oldest_pending() == NOW


def test_threads_use_their_own_connections(store: SqliteStore) -> None:
    store.sync_config_jobs([spec(f"j{i}") for i in range(8)], NOW)
    errors: list[BaseException] = []

    def poll(job_id: str) -> None:
        try:
            for n in range(20):
                store.apply_polls(
                    [update(job_id, delivered_event(job_id, f"cb{n}"), state="watching")]
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=poll, args=(f"j{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(store.deliveries()) == 8 * 20
