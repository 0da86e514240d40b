"""The store contract, against both backends: a real SQLite file and a real PostgreSQL database.

Every test taking ``store`` runs twice (``[sqlite]`` and ``[postgres]``) and states what both
backends must do, written the way the daemon uses them: work is claimed before it is written
(``claim_jobs`` before ``apply_polls``, ``claim_deliveries`` before ``record_attempt``) and the
claim's lease token is passed through to the write. SQLite claims are plain reads (one daemon
per file) and ignore the token; PostgreSQL claims take a lease that a second claim respects.

Times: the tests use a fixed ``NOW``. PostgreSQL stores a caller's time ``t`` as the database's
``now() + (t - time.time())``, so values read back equal the ones written only to within a few
milliseconds (:func:`near`); comparisons between times written by the tests hold exactly.

Then the SQLite-only tests (the file, WAL, threads, ``INDEXED BY``) and the PostgreSQL-only
ones: several stores (daemons) with their own instances on one database.
"""

from __future__ import annotations

import logging
import select
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from notifier.config import JobSpec
from notifier.store import (
    Attempt,
    Delivery,
    Instance,
    JobUpdate,
    NewEvent,
    PollsWritten,
    SqliteStore,
    StoreError,
    WatchedJob,
)
from notifier.store.postgres import PostgresStore
from notifier.store.postgres.connection import check_quiet_socket
from notifier.store.rows import is_quiet
from notifier.store.schema import migrations
from tests.support.smtp import free_port
from tests.support.waiting import wait_until

NOW = 1_700_000_000.0
LEASE = 30.0
INSTANCE = Instance("test", LEASE, "0")
FAR = NOW + 10**6  # everything watched is due by then


class Backend:
    """Opens stores of one kind on one location (a file, or a database URL)."""

    def __init__(self, kind: str, location: Any) -> None:
        self.kind = kind
        self.location = location
        self.opened: list[Any] = []

    def open(self, instance: Instance | None = INSTANCE) -> Any:
        if self.kind == "sqlite":
            store: Any = SqliteStore(self.location, instance)
        else:
            store = PostgresStore(
                self.location, instance, lease=LEASE if instance is None else instance.lease
            )
        self.opened.append(store)
        return store

    def execute(self, sql: str) -> None:
        """One raw statement on a connection of its own."""
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.location)
            try:
                conn.execute(sql)
                conn.commit()
            finally:
                conn.close()
        else:
            with psycopg.connect(self.location, autocommit=True) as pg:
                pg.execute(sql.encode())

    def close(self) -> None:
        for store in self.opened:
            store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        location: Any = tmp_path / "nested" / "dir" / "state.db"
    else:
        location = request.getfixturevalue("postgres_url")
    opened = Backend(request.param, location)
    yield opened
    opened.close()


@pytest.fixture
def store(backend: Backend) -> Any:
    return backend.open()


def spec(job_id: str, **fields: Any) -> JobSpec:
    return JobSpec.model_validate({"id": job_id, **fields})


def ids(rows: list[Any]) -> list[str]:
    return [row.id for row in rows]


def near(value: float, expected: float = NOW) -> bool:
    """``value`` is ``expected`` as read back (PostgreSQL: to within its clock mapping)."""
    return value is not None and abs(value - expected) < 0.5


def states(store: Any) -> dict[str, str]:
    return {job.id: job.state for job in store.jobs()}


def update(
    job_id: str, *events: NewEvent, state: str = "done", at: float = NOW, lease: int = 0
) -> JobUpdate:
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
        lease=lease,
    )


def delivered_event(job_id: str, *callbacks: str) -> NewEvent:
    payload = {"type": "job.delivered", "timestamp": "t", "data": {"job_id": job_id}}
    return NewEvent(event="job.delivered", payload=payload, callbacks=callbacks)


def claim_job(store: Any, job_id: str, now: float = NOW) -> WatchedJob:
    """Claim what is due by ``now``, keep ``job_id`` and give the others back."""
    jobs = store.claim_jobs(now, 1000)
    store.release_jobs([job for job in jobs if job.id != job_id])
    [job] = [job for job in jobs if job.id == job_id] or [None]
    assert job is not None, f"{job_id} not claimable at {now}: got {ids(jobs)}"
    return job


def poll(store: Any, job_id: str, *events: NewEvent, state: str = "done", at: float = NOW) -> int:
    """What the poller does for one job: claim it, then write the poll under its lease."""
    job = claim_job(store, job_id, at)
    return store.apply_polls([update(job_id, *events, state=state, at=at, lease=job.lease)]).created


def claim_delivery(store: Any, delivery_id: str, callback: str, now: float = NOW) -> Delivery:
    due = store.claim_deliveries(callback, now, 1000, [])
    [row] = [d for d in due if d.id == delivery_id] or [None]
    assert row is not None, f"{delivery_id} not claimable at {now}: got {ids(due)}"
    return row


def attempt(delivery: Delivery, ok: bool, state: str, at: float, next_at: float | None) -> Attempt:
    return Attempt(
        delivery_id=delivery.id,
        attempted_at=at,
        duration=0.01,
        ok=ok,
        detail="HTTP 200" if ok else "HTTP 500",
        state=state,
        next_attempt_at=next_at,
        lease=delivery.lease,
    )


# --- schema ----------------------------------------------------------------------------


def test_reopening_keeps_the_state(backend: Backend) -> None:
    first = backend.open()
    first.sync_config_jobs([spec("a")], NOW)
    poll(first, "a", delivered_event("a", "hook"))
    first.close()
    second = backend.open()
    assert states(second) == {"a": "done"}
    assert [d.callback for d in second.deliveries()] == ["hook"]


def test_migrating_again_applies_nothing(store: Any) -> None:
    assert store.migrate() == 0
    assert store.jobs() == [] and store.deliveries() == []


def test_unique_constraint_is_in_the_schema(store: Any, backend: Backend) -> None:
    store.sync_config_jobs([spec("a")], NOW)
    poll(store, "a", delivered_event("a", "hook"))
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.UniqueViolation)):
        backend.execute(
            "INSERT INTO deliveries (id, job_id, callback, event, payload, state, created_at,"
            " queued_at) VALUES ('msg_x', 'a', 'hook', 'job.delivered', '{}', 'pending', 0, 0)"
        )


# --- the watch list ----------------------------------------------------------------------


def test_sync_registers_config_jobs_due_at_once(store: Any) -> None:
    store.sync_config_jobs([spec("a", name="first"), spec("b", notify=["hook"])], NOW)
    a, b = store.jobs()
    assert (a.id, a.name, a.state, a.source) == ("a", "first", "watching", "config")
    assert a.notify is None and a.on_status == ("DELIVERED", "FAILED")
    assert b.notify == ("hook",)
    assert near(a.next_poll_at) and a.status is None and a.owner is None
    assert store.claim_jobs(NOW - 1, 10) == []
    claimed = store.claim_jobs(NOW, 10)
    assert ids(claimed) == ["a", "b"]
    assert claimed[0].name == "first" and claimed[1].notify == ("hook",)
    store.release_jobs(claimed)
    one = store.claim_jobs(NOW, 1)
    assert len(one) == 1


def test_released_jobs_are_claimable_again_at_once(store: Any) -> None:
    store.sync_config_jobs([spec("a"), spec("b")], NOW)
    first = store.claim_jobs(NOW, 10)
    store.release_jobs(first)
    again = store.claim_jobs(NOW, 10)
    assert ids(again) == ["a", "b"]
    # ... and the second claim's tokens are the ones its writes must show
    assert store.apply_polls([update(job.id, lease=job.lease) for job in again]).created == 0
    assert states(store) == {"a": "done", "b": "done"}


def test_sync_updates_settings_without_resetting_progress(store: Any) -> None:
    store.sync_config_jobs([spec("a")], NOW)
    poll(store, "a", state="watching")
    store.sync_config_jobs([spec("a", name="renamed", on_status=["IN_PROGRESS"])], NOW + 5)
    [job] = store.jobs()
    assert job.name == "renamed"
    assert job.on_status == ("IN_PROGRESS",)
    assert job.status == "DELIVERED"
    assert near(job.last_polled_at)
    assert near(job.registered_at)


def test_job_removed_from_the_config_is_unwatched(store: Any) -> None:
    store.sync_config_jobs([spec("a"), spec("b"), spec("c")], NOW)
    poll(store, "c")  # c is done
    store.sync_config_jobs([spec("a")], NOW + 1)
    assert states(store) == {"a": "watching", "b": "unwatched", "c": "done"}
    assert ids(store.claim_jobs(NOW + 100, 10)) == ["a"]
    [b] = store.jobs(job_id="b")
    assert b.next_poll_at is None
    assert store.jobs(state="unwatched") == [b]


def test_job_back_in_the_config_is_watched_again(store: Any) -> None:
    store.sync_config_jobs([spec("a"), spec("b")], NOW)
    store.sync_config_jobs([spec("a")], NOW + 1)
    store.sync_config_jobs([spec("a"), spec("b")], NOW + 2)
    assert states(store) == {"a": "watching", "b": "watching"}
    assert "b" in ids(store.claim_jobs(NOW + 2, 10))


def test_cli_watched_jobs_survive_config_syncs(store: Any) -> None:
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


def test_operator_unwatch_is_not_undone_by_a_config_sync(store: Any) -> None:
    store.sync_config_jobs([spec("a")], NOW)
    unwatched = store.unwatch("a")
    assert unwatched is not None and unwatched.state == "unwatched"
    store.sync_config_jobs([spec("a")], NOW + 1)
    assert states(store) == {"a": "unwatched"}
    # ... but the operator can watch it again
    assert store.watch(spec("a"), NOW + 2).state == "watching"


def test_unwatch_unknown_and_done_jobs(store: Any) -> None:
    assert store.unwatch("nope") is None
    store.sync_config_jobs([spec("a")], NOW)
    poll(store, "a")
    done = store.unwatch("a")
    assert done is not None and done.state == "done"


def test_poll_results_are_not_applied_to_a_job_unwatched_meanwhile(store: Any) -> None:
    store.sync_config_jobs([spec("a")], NOW)
    job = claim_job(store, "a")
    store.unwatch("a")
    written = store.apply_polls(
        [update("a", delivered_event("a", "hook"), state="watching", lease=job.lease)]
    )
    [job] = store.jobs()
    assert job.state == "unwatched"
    assert job.status is None
    # the event it saw is not notified either: the operator asked to stop; the poller is
    # told, so that it does not log a notification that is not coming
    assert (written, store.deliveries()) == (PollsWritten(0, frozenset({"a"})), [])


# --- the outbox ----------------------------------------------------------------------


def test_poll_and_outbox_rows_are_written_together(store: Any) -> None:
    store.sync_config_jobs([spec("a"), spec("b")], NOW)
    a, b = store.claim_jobs(NOW, 10)
    written = store.apply_polls(
        [
            update("a", delivered_event("a", "hook", "mail"), lease=a.lease),
            update("b", state="watching", lease=b.lease),
        ]
    )
    assert written == PollsWritten(2, frozenset())
    assert states(store) == {"a": "done", "b": "watching"}
    rows = store.deliveries()
    assert [(d.job_id, d.callback, d.event, d.state) for d in rows] == [
        ("a", "hook", "job.delivered", "pending"),
        ("a", "mail", "job.delivered", "pending"),
    ]
    assert all(d.id.startswith("msg_") for d in rows)
    assert len({d.id for d in rows}) == 2
    assert all(d.attempts == 0 and near(d.created_at) for d in rows)
    assert rows[0].payload == {"type": "job.delivered", "timestamp": "t", "data": {"job_id": "a"}}
    [job] = store.jobs(job_id="a")
    assert job.job == {"id": "a", "status": "DELIVERED", "progress": 100}


def test_a_failing_transaction_leaves_neither_status_nor_outbox_rows(store: Any) -> None:
    store.sync_config_jobs([spec("a")], NOW)
    job = claim_job(store, "a")
    # A payload that cannot be serialised fails in the middle of the transaction.
    bad = NewEvent(event="job.delivered", payload={"x": object()}, callbacks=["hook"])
    with pytest.raises(TypeError):
        store.apply_polls([update("a", delivered_event("a", "mail"), bad, lease=job.lease)])
    [job] = store.jobs()
    assert (job.state, job.status) == ("watching", None)
    assert store.deliveries() == []


def test_one_row_per_job_callback_and_event(store: Any) -> None:
    store.sync_config_jobs([spec("a")], NOW)
    assert poll(store, "a", delivered_event("a", "hook"), state="watching") == 1
    again = delivered_event("a", "hook", "mail")
    assert poll(store, "a", again, state="watching", at=NOW + 1) == 1  # only mail is new
    expired = NewEvent(event="job.expired", payload={}, callbacks=["hook"])
    assert poll(store, "a", expired, state="watching", at=NOW + 2) == 1
    keys = [(d.callback, d.event) for d in store.deliveries()]
    assert sorted(keys) == [
        ("hook", "job.delivered"),
        ("hook", "job.expired"),
        ("mail", "job.delivered"),
    ]


def test_a_claimed_delivery_is_not_handed_out_twice(store: Any) -> None:
    """The delivery lanes pass the ids they are sending as ``exclude``; on PostgreSQL the
    lease alone keeps the row from a second claim (of this daemon or any other)."""
    store.sync_config_jobs([spec("a"), spec("b")], NOW)
    a, b = store.claim_jobs(NOW, 10)
    store.apply_polls(
        [
            update("a", delivered_event("a", "hook", "mail"), lease=a.lease),
            update("b", delivered_event("b", "hook"), lease=b.lease),
        ]
    )
    assert store.claim_deliveries("hook", NOW - 1, 10, []) == []
    [first] = store.claim_deliveries("hook", NOW, 1, [])
    assert (first.job_id, first.callback) == ("a", "hook")
    [second] = store.claim_deliveries("hook", NOW, 10, [first.id])
    assert second.job_id == "b"
    assert store.claim_deliveries("hook", NOW, 10, [first.id, second.id]) == []
    assert [d.callback for d in store.claim_deliveries("mail", NOW, 10, [])] == ["mail"]


def test_attempts_move_a_delivery_through_its_states(store: Any) -> None:
    store.sync_config_jobs([spec("a")], NOW)
    poll(store, "a", delivered_event("a", "hook"))
    [row] = store.deliveries()
    claimed = claim_delivery(store, row.id, "hook")
    assert store.record_attempt(attempt(claimed, False, "pending", NOW + 1, NOW + 5))
    [row] = store.deliveries()
    assert (row.state, row.attempts, row.last_error) == ("pending", 1, "HTTP 500")
    assert near(row.next_attempt_at, NOW + 5)
    assert store.claim_deliveries("hook", NOW + 4, 10, []) == []
    claimed = claim_delivery(store, row.id, "hook", NOW + 5)
    assert store.record_attempt(attempt(claimed, True, "delivered", NOW + 5, None))
    [row] = store.deliveries()
    assert (row.state, row.attempts, row.last_error) == ("delivered", 2, None)
    assert near(row.delivered_at, NOW + 5)
    assert store.claim_deliveries("hook", NOW + 100, 10, []) == []
    assert [ok for _, _, ok, _ in store.attempts(row.id)] == [False, True]
    # a late attempt result cannot change a finished delivery
    store.record_attempt(attempt(claimed, False, "dead", NOW + 6, None))
    [row] = store.deliveries()
    assert (row.state, row.attempts) == ("delivered", 2)


def test_redeliver_queues_again_under_the_same_id(store: Any) -> None:
    store.sync_config_jobs([spec("a")], NOW)
    poll(store, "a", delivered_event("a", "hook"))
    [row] = store.deliveries()
    store.record_attempt(attempt(claim_delivery(store, row.id, "hook"), False, "dead", NOW, None))
    again = store.redeliver(row.id, NOW + 50)
    assert again is not None
    assert (again.id, again.state) == (row.id, "pending")
    assert near(again.next_attempt_at, NOW + 50) and near(again.queued_at, NOW + 50)
    claimed = store.claim_deliveries("hook", NOW + 50, 10, [])
    assert ids(claimed) == [row.id]
    assert store.record_attempt(attempt(claimed[0], True, "delivered", NOW + 51, None))
    delivered = store.redeliver(row.id, NOW + 60)
    assert delivered is not None
    assert (delivered.state, delivered.delivered_at) == ("pending", None)
    assert len(store.deliveries()) == 1
    assert store.redeliver("msg_unknown", NOW) is None


def test_filters_and_counts(store: Any) -> None:
    store.sync_config_jobs([spec("a"), spec("b")], NOW)
    poll(store, "a", delivered_event("a", "hook", "mail"))
    [first, _] = store.deliveries()
    claimed = claim_delivery(store, first.id, first.callback)
    store.record_attempt(attempt(claimed, True, "delivered", NOW + 1, None))
    assert len(store.deliveries(state="pending")) == 1
    assert len(store.deliveries(job_id="a")) == 2
    assert store.deliveries(job_id="b") == []
    assert ids(store.deliveries(delivery_id=first.id)) == [first.id]
    assert ids(store.jobs(state="watching")) == ["b"]
    assert store.counts() == {
        "jobs": {"done": 1, "watching": 1},
        "deliveries": {"delivered": 1, "pending": 1},
    }
    assert store.pending_by_callback() == {"mail": 1}
    assert near(store.oldest_pending())


def test_pages_follow_the_cursor(store: Any) -> None:
    store.sync_config_jobs([spec(f"j{n}") for n in range(5)], NOW)
    first = store.jobs(limit=2)
    rest = store.jobs(after=(first[-1].registered_at, first[-1].id))
    assert ids(first) + ids(rest) == [f"j{n}" for n in range(5)]


# --- bulk redelivery, stall state and occurrences (issue 11) --------------------------


def outbox_at(store: Any) -> dict[str, Delivery]:
    """Three jobs polled at NOW, NOW+100 and NOW+200, each notifying hook and mail; then
    a's and b's hook deliveries dead, c's hook delivered, every mail one left pending.
    Returns {"<job>-<callback>": delivery}."""
    store.sync_config_jobs([spec("a"), spec("b"), spec("c")], NOW)
    for offset, job in ((0, "a"), (100, "b"), (200, "c")):
        poll(store, job, delivered_event(job, "hook", "mail"), at=NOW + offset)
    claimed = {d.job_id: d for d in store.claim_deliveries("hook", NOW + 300, 10, [])}
    for job, ok, state in (("a", False, "dead"), ("b", False, "dead"), ("c", True, "delivered")):
        assert store.record_attempt(attempt(claimed[job], ok, state, NOW + 300, None))
    return {f"{d.job_id}-{d.callback}": d for d in store.deliveries()}


def test_redeliver_matching_filters_by_state_callback_job_and_creation_time(
    store: Any, backend: Backend
) -> None:
    rows = outbox_at(store)

    def matching(state: str, **filters: Any) -> list[str]:
        found = store.redeliver_matching(state, NOW + 400, dry_run=True, **filters)
        assert not found.queued
        return sorted(f"{d.job_id}-{d.callback}" for d in found.deliveries)

    assert matching("dead") == ["a-hook", "b-hook"]
    assert matching("delivered") == ["c-hook"]
    assert matching("pending", callback="mail") == ["a-mail", "b-mail", "c-mail"]
    assert matching("dead", job_id="b") == ["b-hook"]
    assert matching("dead", callback="mail") == []
    # created at or after created_after, and before created_before
    assert matching("dead", created_after=NOW + 50) == ["b-hook"]
    assert matching("dead", created_after=NOW - 50, created_before=NOW + 50) == ["a-hook"]
    assert matching("pending", created_after=NOW + 50, created_before=NOW + 150) == ["b-mail"]
    assert matching("pending", created_after=NOW + 250) == []
    if backend.kind == "sqlite":  # PostgreSQL maps times to its clock: not to the microsecond
        assert matching("dead", created_after=NOW + 100) == ["b-hook"]
        assert matching("dead", created_before=NOW + 100) == ["a-hook"]
    # a dry run changed nothing
    assert {f"{d.job_id}-{d.callback}": d for d in store.deliveries()} == rows


def test_redeliver_matching_queues_every_match_again_under_the_same_ids(store: Any) -> None:
    rows = outbox_at(store)
    result = store.redeliver_matching("dead", NOW + 500, callback="hook")
    assert result.queued
    assert sorted(d.id for d in result.deliveries) == sorted([rows["a-hook"].id, rows["b-hook"].id])
    for delivery in result.deliveries:
        assert (delivery.state, delivery.delivered_at) == ("pending", None)
        assert delivery.next_attempt_at == NOW + 500 and delivery.queued_at == NOW + 500
    after = {f"{d.job_id}-{d.callback}": d for d in store.deliveries()}
    for key in ("a-hook", "b-hook"):
        assert (after[key].id, after[key].state, after[key].attempts) == (
            rows[key].id,
            "pending",
            1,
        )
        assert near(after[key].next_attempt_at, NOW + 500) and near(after[key].queued_at, NOW + 500)
        assert after[key].payload == rows[key].payload
    assert after["c-hook"] == rows["c-hook"]  # other states are untouched
    assert store.claim_deliveries("hook", NOW + 499, 10, []) == []
    assert sorted(ids(store.claim_deliveries("hook", NOW + 500, 10, []))) == sorted(
        [rows["a-hook"].id, rows["b-hook"].id]
    )
    # a delivered one comes back without its delivered_at; nothing matching is no error
    [delivered] = store.redeliver_matching("delivered", NOW + 600, job_id="c").deliveries
    [row] = store.deliveries(delivery_id=delivered.id)
    assert (row.state, row.delivered_at) == ("pending", None)
    assert store.redeliver_matching("dead", NOW + 700) == ([], True)
    assert len(store.deliveries()) == 6


def test_redeliver_matching_changes_nothing_when_more_than_at_most_match(store: Any) -> None:
    rows = outbox_at(store)
    refused = store.redeliver_matching("pending", NOW + 500, at_most=2)
    assert not refused.queued and len(refused.deliveries) == 3
    assert {f"{d.job_id}-{d.callback}": d for d in store.deliveries()} == rows
    allowed = store.redeliver_matching("pending", NOW + 500, at_most=3)
    assert allowed.queued and len(allowed.deliveries) == 3


def test_a_quiet_poll_moves_the_schedule_and_keeps_the_stored_job(store: Any) -> None:
    store.sync_config_jobs([spec("a")], NOW)
    seen = {"id": "a", "status": "IN_PROGRESS", "progress": 40, "updatedAt": "2026-11-29T00:00:00Z"}
    job = claim_job(store, "a")
    first = update("a", state="watching", lease=job.lease)._replace(
        status="IN_PROGRESS", progress=40, job=seen
    )
    store.apply_polls([first])
    [job] = store.jobs()
    assert (job.job, job.job_updated_at) == (seen, "2026-11-29T00:00:00Z")
    # nothing new: the poll writes its schedule only (a quiet update has no job)
    job = claim_job(store, "a", NOW + 1)
    quiet = first._replace(job=None, polled_at=NOW + 1, next_poll_at=NOW + 3, eta=NOW + 60)
    assert is_quiet(quiet) and store.apply_polls([quiet._replace(lease=job.lease)]).created == 0
    [job] = store.jobs()
    assert (job.job, job.job_updated_at, job.status) == (
        seen,
        "2026-11-29T00:00:00Z",
        "IN_PROGRESS",
    )
    assert near(job.last_polled_at, NOW + 1) and near(job.next_poll_at, NOW + 3)
    assert near(job.eta, NOW + 60)
    # a schedule-only poll writes the schedule and the estimate, nothing else
    job = claim_job(store, "a", NOW + 3)
    moved = quiet._replace(polled_at=NOW + 3, next_poll_at=NOW + 5, poll_interval=2.0,
                           baseline_at=NOW + 3, eta=NOW + 50, schedule_only=True)  # fmt: skip
    assert store.apply_polls([moved._replace(lease=job.lease)]).created == 0
    [job] = store.jobs()
    assert near(job.last_polled_at, NOW + 3) and near(job.next_poll_at, NOW + 5)
    assert near(job.baseline_at, NOW + 3) and near(job.eta, NOW + 50)
    assert (job.poll_interval, job.job, job.status, job.owner) == (2.0, seen, "IN_PROGRESS", None)
    # an expiry after failed polls changes the state but keeps the job Datasaur last sent
    job = claim_job(store, "a", NOW + 5)
    expired = quiet._replace(state="expired", next_poll_at=None, last_error="boom")
    assert not is_quiet(expired)
    store.apply_polls([expired._replace(lease=job.lease)])
    [job] = store.jobs()
    assert (job.state, job.job, job.last_error) == ("expired", seen, "boom")


def test_schedule_only_polls_sharing_a_schedule_are_written_together(store: Any) -> None:
    """The usual request: its jobs share one new schedule (SQLite writes them in one
    statement). A job unwatched meanwhile stays unwatched, with nothing scheduled."""
    store.sync_config_jobs([spec(name) for name in "abcd"], NOW)
    claimed = {job.id: job for job in store.claim_jobs(NOW, 10)}
    store.unwatch("c")
    shared = {"polled_at": NOW + 1, "next_poll_at": NOW + 9, "poll_interval": 8.0,
              "baseline_at": NOW + 1, "eta": None, "schedule_only": True}  # fmt: skip
    polls = [
        update(name, state="watching", lease=claimed[name].lease)._replace(job=None, **shared)
        for name in "abc"
    ]
    polls.append(polls[0]._replace(job_id="d", next_poll_at=NOW + 7, lease=claimed["d"].lease))
    assert store.apply_polls(polls) == PollsWritten(0, frozenset())
    jobs = {job.id: job for job in store.jobs()}
    for name, due in (("a", NOW + 9), ("b", NOW + 9), ("d", NOW + 7)):
        assert near(jobs[name].last_polled_at, NOW + 1) and near(jobs[name].next_poll_at, due)
        assert (jobs[name].poll_interval, jobs[name].state, jobs[name].owner) == (
            8.0, "watching", None)  # fmt: skip
    assert (jobs["c"].state, jobs["c"].next_poll_at, jobs["c"].last_polled_at) == (
        "unwatched", None, None)  # fmt: skip


def test_stall_state_is_written_with_the_poll_and_reset_by_a_rewatch(store: Any) -> None:
    store.sync_config_jobs([spec("a")], NOW)
    job = claim_job(store, "a")
    stalled = NewEvent(event="job.stalled", payload={"n": 1}, callbacks=["hook"], occurrence=1)
    fired = update("a", stalled, state="watching", lease=job.lease)._replace(
        changed_at=NOW - 60, stalls=1, stalled=True
    )
    assert store.apply_polls([fired]).created == 1
    [job] = store.jobs()
    assert near(job.changed_at, NOW - 60) and (job.stalls, job.stalled) == (1, True)
    # the next stall of the same job is its own delivery
    job = claim_job(store, "a", NOW + 1)
    again = NewEvent(event="job.stalled", payload={"n": 2}, callbacks=["hook"], occurrence=2)
    second = update("a", again, stalled, state="watching", at=NOW + 1, lease=job.lease)._replace(
        changed_at=NOW - 30, stalls=2, stalled=True
    )
    assert store.apply_polls([second]).created == 1  # occurrence 1 is there already
    rows = store.deliveries()
    assert [(d.event, d.occurrence, d.payload) for d in rows] == [
        ("job.stalled", 1, {"n": 1}),
        ("job.stalled", 2, {"n": 2}),
    ]
    # watched again after expiring: the clock restarts, the count goes on
    job = claim_job(store, "a", NOW + 2)
    expired = update("a", state="expired", at=NOW + 2, lease=job.lease)
    store.apply_polls([expired._replace(changed_at=NOW - 30, stalls=2, stalled=True)])
    store.watch(spec("a"), NOW + 3)
    [job] = store.jobs()
    assert (job.state, job.changed_at, job.stalls, job.stalled) == ("watching", None, 2, False)


# --- instances and the rate cap ----------------------------------------------------------


def test_heartbeat_lists_the_instance_until_it_retires(store: Any) -> None:
    assert store.instances(NOW) == []
    store.heartbeat(NOW)
    store.heartbeat(NOW + 1)
    [me] = store.instances(NOW + 2)
    assert (me.name, me.version, me.alive) == ("test", "0", True)
    assert near(me.started_at) and near(me.last_seen_at, NOW + 1)
    [later] = store.instances(NOW + 1 + LEASE + 5)
    assert not later.alive  # not seen within one lease
    store.retire()
    assert store.instances(NOW + 2) == []


def test_a_store_opened_without_an_instance_does_not_heartbeat_or_claim(
    store: Any, backend: Backend
) -> None:
    cli = backend.open(instance=None)
    store.sync_config_jobs([spec("a")], NOW)
    assert states(cli) == {"a": "watching"}  # it reads and writes the watch list
    if backend.kind == "postgres":
        with pytest.raises(StoreError):
            cli.claim_jobs(NOW, 10)
    else:
        cli.heartbeat(NOW)  # nothing to record
    assert cli.instances(NOW) == []


def test_rate_limiter_allows_a_burst_then_the_rate(store: Any) -> None:
    limiter = store.rate_limiter(5)
    started = time.monotonic()
    granted = sum(limiter.try_acquire() for _ in range(20))
    refilled = 5 * (time.monotonic() - started)  # 20 calls take a few ms (more when busy)
    assert 5 <= granted <= 5 + refilled + 1e-9  # the burst: one second's worth
    assert limiter.acquire(threading.Event())  # and then one more, soon


def test_rate_limiter_grants_several_tokens_and_takes_back_unused_ones(store: Any) -> None:
    limiter = store.rate_limiter(0.01)  # a token every 100 s: none come back on their own
    assert limiter.take(4) == 1  # the burst is max(1, rate) = 1 token
    assert limiter.take(4) == 0 and not limiter.try_acquire()
    limiter.give_back(1)
    assert limiter.take(4) == 1
    limiter.give_back(0)
    assert limiter.take(1) == 0


def test_rate_limiter_grants_at_most_its_burst_at_once(store: Any) -> None:
    limiter = store.rate_limiter(1000)
    assert 990 <= limiter.take(2000) <= 1000  # one second's worth (less a few ms' rounding)
    limiter.give_back(10)
    assert limiter.take(10) == 10


# --- SQLite only: the file ------------------------------------------------------------


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteStore]:
    db = SqliteStore(tmp_path / "state.db", INSTANCE)
    yield db
    db.close()


def test_sqlite_commits_a_round_of_quiet_polls_without_the_fsync_and_all_else_with_it(
    sqlite_store: SqliteStore,
) -> None:
    """A quiet round (schedules only) at synchronous=NORMAL; any write after it at FULL."""
    sqlite_store.sync_config_jobs([spec("a"), spec("b")], NOW)
    full, normal = 2, 1

    def level() -> int:
        return int(sqlite_store._conn().execute("PRAGMA synchronous").fetchone()[0])

    assert level() == full
    quiet = update("a", state="watching")._replace(job=None, schedule_only=True)
    sqlite_store.apply_polls([quiet])
    assert level() == normal
    assert sqlite_store.jobs()[0].next_poll_at == NOW + 1  # recorded all the same
    sqlite_store.watch(spec("c"), NOW)
    assert level() == full
    sqlite_store.apply_polls([quiet])
    sqlite_store.apply_polls([update("b", delivered_event("b", "hook"))])  # an event
    assert level() == full
    in_group = quiet._replace(group="run-1", eta=NOW + 60)  # may put its group at risk
    sqlite_store.apply_polls([in_group])
    assert level() == full


def test_sqlite_creates_the_file_and_its_directory_with_wal(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "state.db"
    store = SqliteStore(path)
    try:
        assert path.exists()
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert {"jobs", "deliveries", "attempts", "instances"} <= tables
        conn.close()
    finally:
        store.close()


def test_sqlite_corrupt_file_is_a_store_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database, just some junk bytes " * 200)
    with pytest.raises(StoreError) as caught:
        SqliteStore(path)
    assert str(path) in str(caught.value)


def test_sqlite_unusable_directory_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError) as caught:
        SqliteStore(blocker / "state.db")
    assert str(blocker / "state.db") in str(caught.value)


def test_sqlite_threads_use_their_own_connections(sqlite_store: SqliteStore) -> None:
    store = sqlite_store
    store.sync_config_jobs([spec(f"j{i}") for i in range(8)], NOW)
    errors: list[BaseException] = []

    def apply(job_id: str) -> None:
        try:
            for n in range(20):
                store.apply_polls(
                    [update(job_id, delivered_event(job_id, f"cb{n}"), state="watching")]
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=apply, args=(f"j{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(store.deliveries()) == 8 * 20


def test_sqlite_claim_uses_the_partial_due_index(sqlite_store: SqliteStore) -> None:
    """``INDEXED BY jobs_due``: the claim never scans or sorts every watched job."""
    store = sqlite_store
    store.sync_config_jobs([spec(f"j{i}") for i in range(50)], NOW)
    statements: list[str] = []
    conn = store._conn()
    conn.set_trace_callback(statements.append)
    try:
        assert len(store.claim_jobs(NOW, 10)) == 10
    finally:
        conn.set_trace_callback(None)
    [claim] = [sql for sql in statements if "FROM jobs" in sql]
    plan = " ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {claim}"))
    assert "INDEX jobs_due" in plan and "TEMP B-TREE" not in plan, plan


# --- PostgreSQL only: several daemons on one database ------------------------------------


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Callable[..., PostgresStore]]:
    """``pg(name, lease=30.0)``: a store of its own instance on the test's database."""
    opened: list[PostgresStore] = []

    def open_store(name: str = "test", lease: float = LEASE, **kwargs: Any) -> PostgresStore:
        store = PostgresStore(postgres_url, Instance(name, lease, "0"), lease=lease, **kwargs)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


def test_the_pool_check_passes_a_quiet_connection_and_fails_one_whose_backend_is_gone(
    postgres_url: str,
) -> None:
    """check_quiet_socket: no round trip for a live idle connection; a connection whose
    server went away (here its backend terminated) is refused, so the pool tries another."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        check_quiet_socket(conn)
        conn.execute("SELECT 1").fetchall()
        check_quiet_socket(conn)  # its answers read: quiet again
        with psycopg.connect(postgres_url, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        wait_until(lambda: select.select([conn.fileno()], [], [], 0)[0], message="FATAL read")
        with pytest.raises(psycopg.OperationalError):
            check_quiet_socket(conn)
        with pytest.raises(psycopg.OperationalError):
            check_quiet_socket(conn)  # and stays refused


def outbox(pg: Callable[..., PostgresStore], job_ids: list[str], *callbacks: str) -> None:
    """One pending delivery per job and callback, through a store of its own."""
    writer = pg("writer")
    writer.sync_config_jobs([spec(job_id) for job_id in job_ids], NOW)
    jobs = writer.claim_jobs(NOW, len(job_ids))
    assert len(jobs) == len(job_ids)
    created = writer.apply_polls(
        [update(job.id, delivered_event(job.id, *callbacks), lease=job.lease) for job in jobs]
    ).created
    assert created == len(job_ids) * len(callbacks)


def race(*workers: Callable[[], None]) -> None:
    """Run ``workers`` in threads released together; re-raise the first failure."""
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def run(worker: Callable[[], None]) -> None:
        try:
            barrier.wait(10)
            worker()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a worker hung"
    if errors:
        raise errors[0]


def claimed_once(got: dict[str, list[Any]]) -> set[str]:
    """What two racing stores claimed: each row once, by one of them, and both some."""
    mine, theirs = set(ids(got["first"])), set(ids(got["second"]))
    assert len(mine) == len(got["first"]) and len(theirs) == len(got["second"])
    assert not mine & theirs
    assert mine and theirs, "one store claimed everything: no race happened"
    return mine | theirs


def test_pg_two_instances_never_claim_the_same_job(pg: Callable[..., PostgresStore]) -> None:
    first, second = pg("first"), pg("second")
    first.sync_config_jobs([spec(f"job-{n:03d}") for n in range(300)], NOW)
    got: dict[str, list[WatchedJob]] = {"first": [], "second": []}

    def claimer(store: PostgresStore, name: str) -> Callable[[], None]:
        def work() -> None:
            while batch := store.claim_jobs(NOW, 7):
                got[name].extend(batch)

        return work

    race(claimer(first, "first"), claimer(second, "second"))
    assert claimed_once(got) == {job.id for job in first.jobs()}
    # each claim's write goes through; nothing is left to claim
    assert first.apply_polls([update(j.id, lease=j.lease) for j in got["first"]]).created == 0
    assert second.apply_polls([update(j.id, lease=j.lease) for j in got["second"]]).created == 0
    assert first.counts()["jobs"] == {"done": 300}


def test_pg_two_instances_never_claim_the_same_delivery(
    pg: Callable[..., PostgresStore],
) -> None:
    outbox(pg, [f"job-{n:03d}" for n in range(150)], "hook", "mail")
    first, second = pg("first"), pg("second")
    got: dict[str, list[Delivery]] = {"first": [], "second": []}

    def claimer(store: PostgresStore, name: str) -> Callable[[], None]:
        def work() -> None:
            while True:
                batch = [
                    *store.claim_deliveries("hook", NOW, 4, []),
                    *store.claim_deliveries("mail", NOW, 4, []),
                ]
                if not batch:
                    return
                got[name].extend(batch)

        return work

    race(claimer(first, "first"), claimer(second, "second"))
    assert len(claimed_once(got)) == 300
    for store, name in ((first, "first"), (second, "second")):
        for row in got[name]:
            assert store.record_attempt(attempt(row, True, "delivered", NOW, None))
    assert first.counts()["deliveries"] == {"delivered": 300}


def test_pg_a_claimed_job_waits_for_its_lease_and_owner_is_shown(
    pg: Callable[..., PostgresStore],
) -> None:
    first, second = pg("first"), pg("second")
    first.heartbeat(NOW)
    first.sync_config_jobs([spec("a"), spec("b")], NOW)
    claimed = {job.id: job for job in first.claim_jobs(NOW, 10)}
    assert {job.owner for job in claimed.values()} == {"first"}
    assert second.claim_jobs(NOW + 5, 10) == []
    assert {job.id: job.owner for job in second.jobs()} == {"a": "first", "b": "first"}
    first.apply_polls([update("a", lease=claimed["a"].lease)])  # the write releases "a"
    assert {job.id: job.owner for job in second.jobs()} == {"a": None, "b": "first"}
    first.release_jobs([claimed["b"]])  # and a release gives "b" back at once
    [b] = second.claim_jobs(NOW, 10)
    assert b.id == "b" and b.lease > claimed["b"].lease


def test_pg_a_write_after_the_lease_was_lost_changes_nothing(
    pg: Callable[..., PostgresStore],
) -> None:
    slow, other = pg("slow", lease=0.5), pg("other")
    slow.sync_config_jobs([spec("a")], NOW)
    [stale] = slow.claim_jobs(NOW, 10)
    # The lease expires while "slow" is still polling; "other" takes the job over.
    [fresh] = wait_until(lambda: other.claim_jobs(NOW, 10), 10)
    assert fresh.lease > stale.lease
    late = update("a", delivered_event("a", "hook"), lease=stale.lease)
    assert slow.apply_polls([late]).created == 0
    [job] = other.jobs()
    assert (job.state, job.status, job.last_polled_at) == ("watching", None, None)
    assert other.deliveries() == []
    # The same owner with an older token is refused too (it re-claimed meanwhile).
    other.release_jobs([fresh])
    [again] = slow.claim_jobs(NOW, 10)
    stale_write = slow.apply_polls([update("a", delivered_event("a", "hook"), lease=stale.lease)])
    assert stale_write == PollsWritten(0, frozenset({"a"}))  # the poller logs no notification
    assert other.deliveries() == []
    # The current holder's write goes through, exactly once.
    delivered = update("a", delivered_event("a", "hook"), lease=again.lease)
    assert slow.apply_polls([delivered]) == PollsWritten(1, frozenset())
    assert slow.apply_polls([delivered]).created == 0
    assert states(other) == {"a": "done"}
    assert len(other.deliveries()) == 1


def test_pg_quiet_polls_after_the_lease_was_lost_change_nothing_and_are_counted(
    pg: Callable[..., PostgresStore], caplog: pytest.LogCaptureFixture
) -> None:
    """A round of quiet polls is one statement: the rows whose lease moved on are left
    alone, the others written, and the log says how many were not."""
    slow, other = pg("slow", lease=0.5), pg("other")
    slow.sync_config_jobs([spec("a"), spec("b"), spec("c")], NOW)
    stale = {job.id: job for job in slow.claim_jobs(NOW, 10)}
    taken = wait_until(lambda: other.claim_jobs(NOW, 1), 10)  # one lease runs out, is taken
    quiet = [
        update(job_id, state="watching", lease=stale[job_id].lease)._replace(
            job=None, next_poll_at=NOW + 60, schedule_only=True
        )
        for job_id in sorted(stale)
    ]
    with caplog.at_level(logging.INFO, logger="notifier.store.postgres"):
        assert slow.apply_polls(quiet).created == 0
    assert "1 of 3 polls not recorded" in caplog.text
    rows = {job.id: job for job in other.jobs()}
    assert rows[taken[0].id].next_poll_at is not None and rows[taken[0].id].next_poll_at < NOW + 30
    assert all(near(rows[i].next_poll_at, NOW + 60) for i in rows if i != taken[0].id)


def test_pg_an_attempt_after_the_lease_was_lost_is_not_recorded(
    pg: Callable[..., PostgresStore],
) -> None:
    outbox(pg, ["a"], "hook")
    slow, other = pg("slow", lease=0.5), pg("other")
    [stale] = slow.claim_deliveries("hook", NOW, 10, [])
    [fresh] = wait_until(lambda: other.claim_deliveries("hook", NOW, 10, []), 10)
    assert fresh.id == stale.id and fresh.lease > stale.lease
    assert slow.record_attempt(attempt(stale, True, "delivered", NOW, None)) is False
    [row] = other.deliveries()
    assert (row.state, row.attempts, row.delivered_at) == ("pending", 0, None)
    assert other.attempts(row.id) == []
    assert other.record_attempt(attempt(fresh, True, "delivered", NOW + 1, None)) is True
    assert [ok for _, _, ok, _ in other.attempts(row.id)] == [True]
    assert other.deliveries()[0].state == "delivered"


def test_pg_an_expired_lease_is_taken_over(pg: Callable[..., PostgresStore]) -> None:
    crashed, survivor = pg("crashed", lease=0.5), pg("survivor", lease=0.5)
    outbox(pg, ["a"], "hook")
    crashed.sync_config_jobs([spec("b")], NOW)
    [job] = crashed.claim_jobs(NOW, 10)
    [row] = crashed.claim_deliveries("hook", NOW, 10, [])
    claimed_at = time.monotonic()
    assert survivor.claim_jobs(NOW, 10) == []
    assert survivor.claim_deliveries("hook", NOW, 10, []) == []
    # "crashed" never writes nor renews: within about a lease both are the survivor's.
    [taken] = wait_until(lambda: survivor.claim_jobs(NOW, 10), 10, interval=0.05)
    [sent] = wait_until(lambda: survivor.claim_deliveries("hook", NOW, 10, []), 10)
    took = time.monotonic() - claimed_at
    assert (taken.id, sent.id) == ("b", row.id)
    assert 0.4 <= took < 0.5 + 3, took
    assert survivor.apply_polls([update("b", lease=taken.lease)]).created == 0
    assert survivor.record_attempt(attempt(sent, True, "delivered", NOW, None))
    assert crashed.apply_polls([update("b", state="expired", lease=job.lease)]).created == 0
    assert states(survivor) == {"a": "done", "b": "done"}


def test_pg_renewal_keeps_the_lease(pg: Callable[..., PostgresStore]) -> None:
    holder, other = pg("holder", lease=1.0), pg("other")
    holder.sync_config_jobs([spec("a")], NOW)
    [job] = holder.claim_jobs(NOW, 10)
    until = time.monotonic() + 2.5
    while time.monotonic() < until:  # renewing every third of a lease, as the daemon does
        holder.renew_leases()
        assert other.claim_jobs(NOW, 10) == []
        time.sleep(0.3)
    assert holder.apply_polls([update("a", lease=job.lease)]).created == 0
    assert states(other) == {"a": "done"}


def test_pg_renewal_extends_only_the_claims_not_yet_written(
    pg: Callable[..., PostgresStore],
) -> None:
    holder, other = pg("holder", lease=1.0), pg("other")
    holder.sync_config_jobs([spec("a"), spec("b")], NOW)
    jobs = {job.id: job for job in holder.claim_jobs(NOW, 10)}
    quiet = update("a", state="watching", lease=jobs["a"].lease)
    holder.apply_polls([quiet._replace(job=None, next_poll_at=NOW, schedule_only=True)])
    taken = [job.id for job in other.claim_jobs(NOW, 10)]  # "a" was given back by its write
    until = time.monotonic() + 2.5
    while time.monotonic() < until:  # "b" stays the holder's while it renews
        holder.renew_leases()
        taken += [job.id for job in other.claim_jobs(NOW, 10)]
        time.sleep(0.3)
    holder.release_jobs([jobs["b"]])
    assert taken == ["a"]
    assert [job.id for job in other.claim_jobs(NOW, 10)] == ["b"]


def test_pg_retire_gives_every_lease_back_at_once(pg: Callable[..., PostgresStore]) -> None:
    outbox(pg, ["a", "b"], "hook")
    leaving, staying = pg("leaving"), pg("staying")
    leaving.sync_config_jobs([spec("c"), spec("d")], NOW)
    leaving.heartbeat(NOW)
    staying.heartbeat(NOW)
    assert len(leaving.claim_jobs(NOW, 10)) == 2
    assert len(leaving.claim_deliveries("hook", NOW, 10, [])) == 2
    assert staying.claim_jobs(NOW, 10) == []
    leaving.retire()
    assert ids(staying.claim_jobs(NOW, 10)) == ["c", "d"]
    assert len(staying.claim_deliveries("hook", NOW, 10, [])) == 2
    assert [i.name for i in staying.instances(NOW)] == ["staying"]


def test_pg_one_outbox_row_per_event_when_two_instances_record_it(
    pg: Callable[..., PostgresStore],
) -> None:
    job_ids = [f"job-{n:02d}" for n in range(40)]
    first, second = pg("first"), pg("second")
    first.sync_config_jobs([spec(job_id) for job_id in job_ids], NOW)
    created = Counter[str]()

    def recorder(store: PostgresStore, name: str) -> Callable[[], None]:
        def work() -> None:
            for round_ in range(5):  # every poll sees the job reach DELIVERED "again"
                at = NOW + round_
                while batch := store.claim_jobs(at, 5):
                    updates = [
                        JobUpdate(
                            job_id=job.id,
                            state="watching",
                            status="DELIVERED",
                            progress=100,
                            job=None,
                            polled_at=at,
                            next_poll_at=at + 0.5,
                            poll_interval=1.0,
                            last_error=None,
                            events=[delivered_event(job.id, "hook", "mail")],
                            lease=job.lease,
                        )
                        for job in batch
                    ]
                    created[name] += store.apply_polls(updates).created

        return work

    race(recorder(first, "first"), recorder(second, "second"))
    rows = first.deliveries()
    keys = Counter((d.job_id, d.callback, d.event) for d in rows)
    assert len(keys) == 80 and set(keys.values()) == {1}
    assert created["first"] + created["second"] == 80, created


def test_pg_new_outbox_rows_wake_the_other_instances(pg: Callable[..., PostgresStore]) -> None:
    writer, listener = pg("writer"), pg("listener")
    woken = threading.Event()
    listener.listen(woken.set)
    wait_until(woken.is_set, 10, message="no wake-up after LISTEN")  # the catch-up sweep
    woken.clear()
    writer.sync_config_jobs([spec("a")], NOW)
    poll(writer, "a", state="watching")  # no outbox row: no wake-up
    assert not woken.wait(0.5)
    poll(writer, "a", delivered_event("a", "hook"), at=NOW + 1)
    assert woken.wait(10), "no wake-up for a new outbox row"
    woken.clear()
    [row] = writer.deliveries()
    writer.redeliver(row.id, NOW + 2)
    assert woken.wait(10), "no wake-up for a redelivery"


def test_pg_migrations_run_once_when_daemons_start_together(postgres_url: str) -> None:
    stores = [PostgresStore(postgres_url, migrate=False) for _ in range(3)]
    applied: list[int] = []
    try:
        race(*[lambda store=store: applied.append(store.migrate()) for store in stores])
        steps = migrations("postgres")
        assert sum(applied) == len(steps), applied  # each step by one of them
        with psycopg.connect(postgres_url) as conn:
            versions = conn.execute(
                "SELECT version, count(*) FROM schema_migrations GROUP BY version ORDER BY 1"
            ).fetchall()
            limits = conn.execute("SELECT name FROM rate_limits").fetchall()
        assert versions == [(number, 1) for number, _, _ in steps]
        assert limits == [("datasaur",)]
        assert all(store.migrate() == 0 for store in stores)
    finally:
        for store in stores:
            store.close()


# Each process imports the store, says it is ready, then opens the state file as soon
# as the parent creates the "go" file: all of them at once.
_OPEN_AT_ONCE = """
import sys, time
from pathlib import Path
from notifier.store import SqliteStore
state, ready, go = (Path(arg) for arg in sys.argv[1:])
ready.touch()
while not go.exists():
    time.sleep(0.001)
SqliteStore(state).close()
"""


def _open_at_once(state: Path, processes: int) -> list[tuple[int, str]]:
    """Open ``state`` from ``processes`` processes at once; their exit codes and stderr."""
    go = state.with_name("go")
    started = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _OPEN_AT_ONCE,
                str(state),
                str(state.with_name(f"ready{n}")),
                str(go),
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    try:
        wait_until(
            lambda: all(state.with_name(f"ready{n}").exists() for n in range(processes)),
            timeout=60,
        )
        go.touch()
        return [(p.wait(timeout=60), p.communicate()[1]) for p in started]
    finally:
        for p in started:
            p.kill()


def _schema(path: Path) -> tuple[int, list[Any]]:
    conn = sqlite3.connect(path)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        return version, conn.execute(
            "SELECT type, name, sql FROM sqlite_master ORDER BY name"
        ).fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("steps_done", [0, 4])
def test_sqlite_migrations_run_once_when_processes_open_the_file_together(
    tmp_path: Path, steps_done: int
) -> None:
    """A daemon and ``status`` runs opening a new (or older) state file at once: each
    step is applied once, by whichever gets the write lock first, and none fails."""
    reference = tmp_path / "reference" / "state.db"
    SqliteStore(reference).close()
    state = tmp_path / "race" / "state.db"
    state.parent.mkdir()
    if steps_done:
        conn = sqlite3.connect(state, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")  # as every state file the daemon made
        for number, _, sql in migrations("sqlite")[:steps_done]:
            conn.executescript(f"{sql}\nPRAGMA user_version = {number};")
        conn.close()
    results = _open_at_once(state, 8)
    assert [code for code, _ in results] == [0] * 8, [err for _, err in results]
    assert _schema(state) == _schema(reference)
    assert _schema(state)[0] == migrations("sqlite")[-1][0]


def test_pg_the_rate_cap_is_shared_by_all_instances(pg: Callable[..., PostgresStore]) -> None:
    limiters = [pg("first").rate_limiter(5), pg("second").rate_limiter(5)]
    granted: list[float] = []
    lock = threading.Lock()
    seconds = 2.0

    def taker(limiter: Any) -> Callable[[], None]:
        def work() -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                if limiter.try_acquire():
                    with lock:
                        granted.append(time.monotonic())
                time.sleep(0.005)

        return work

    started = time.monotonic()
    race(*(taker(limiter) for limiter in limiters))
    elapsed = time.monotonic() - started
    # 5/s for the run, plus the burst of one second's worth (5), plus one at the edge.
    print(f"shared limiter: {len(granted)} granted in {elapsed:.2f}s at 5/s for two stores")
    assert len(granted) <= 5 * elapsed + 5 + 1, (len(granted), elapsed)
    assert len(granted) >= 5 * seconds * 0.6, len(granted)  # and it does hand them out


def test_pg_unreachable_database_is_a_store_error_without_the_password() -> None:
    url = f"postgresql://notifier:hunter2secret@127.0.0.1:{free_port()}/state"
    started = time.monotonic()
    with pytest.raises(StoreError) as caught:
        PostgresStore(url)
    message = str(caught.value)
    assert "127.0.0.1" in message and "hunter2secret" not in message, message
    assert time.monotonic() - started < 10


def test_pg_import_sqlite_copies_the_state_once(tmp_path: Path, postgres_url: str) -> None:
    path = tmp_path / "old.db"
    old = SqliteStore(path)
    old.sync_config_jobs([spec("a", name="first"), spec("b", notify=["hook"]), spec("c")], NOW)
    old.watch(spec("by-hand"), NOW + 1)
    old.unwatch("c")
    poll(old, "a", delivered_event("a", "hook", "mail"))
    poll(old, "b", state="watching")
    hook, mail = old.deliveries()
    old.record_attempt(attempt(hook, False, "pending", NOW + 1, NOW + 2))
    old.record_attempt(attempt(hook, True, "delivered", NOW + 2, None))
    old.record_attempt(attempt(mail, False, "dead", NOW + 3, None))
    expected_jobs, expected_deliveries = old.jobs(), old.deliveries()
    expected_attempts = {d.id: old.attempts(d.id) for d in expected_deliveries}
    old.close()

    store = PostgresStore(postgres_url, INSTANCE)
    try:
        counts = store.import_sqlite(path)
        assert (counts.jobs, counts.deliveries, counts.attempts) == (4, 2, 3)
        assert (counts.skipped_jobs, counts.skipped_deliveries) == (0, 0)
        assert store.jobs() == expected_jobs
        assert store.deliveries() == expected_deliveries
        assert {d.id: store.attempts(d.id) for d in expected_deliveries} == expected_attempts
        before = store.counts()

        again = store.import_sqlite(path)
        assert (again.jobs, again.deliveries, again.attempts) == (0, 0, 0)
        assert (again.skipped_jobs, again.skipped_deliveries) == (4, 2)
        assert store.counts() == before
        assert sum(len(store.attempts(d.id)) for d in expected_deliveries) == 3

        # The imported rows are ordinary work: the watched ones are claimable, and an
        # unwatched job stays unwatched across a config sync.
        assert ids(store.claim_jobs(FAR, 10)) == ["b", "by-hand"]
        store.sync_config_jobs([spec("a"), spec("b"), spec("c")], NOW + 10)
        assert states(store)["c"] == "unwatched"
    finally:
        store.close()
    source = SqliteStore(path)  # left as it was
    try:
        assert source.counts()["jobs"] == {"done": 1, "watching": 2, "unwatched": 1}
    finally:
        source.close()


def test_pg_a_bulk_redelivery_wakes_the_other_instances(pg: Callable[..., PostgresStore]) -> None:
    writer, listener = pg("writer"), pg("listener")
    writer.sync_config_jobs([spec("a")], NOW)
    poll(writer, "a", delivered_event("a", "hook"))
    [row] = writer.claim_deliveries("hook", NOW, 10, [])
    writer.record_attempt(attempt(row, False, "dead", NOW, None))
    woken = threading.Event()
    listener.listen(woken.set)
    wait_until(woken.is_set, 10, message="no wake-up after LISTEN")  # the catch-up sweep
    woken.clear()
    assert not writer.redeliver_matching("dead", NOW + 1, dry_run=True).queued
    assert not woken.wait(0.5)  # a dry run changes nothing and wakes nobody
    assert writer.redeliver_matching("dead", NOW + 1).queued
    assert woken.wait(10), "no wake-up for a bulk redelivery"


def test_pg_import_sqlite_keeps_stall_state_and_occurrences(
    tmp_path: Path, postgres_url: str
) -> None:
    path = tmp_path / "old.db"
    old = SqliteStore(path)
    old.sync_config_jobs([spec("a")], NOW)
    for n in (1, 2):
        job = claim_job(old, "a", NOW + n)
        event = NewEvent(event="job.stalled", payload={"n": n}, callbacks=["hook"], occurrence=n)
        polled = update("a", event, state="watching", at=NOW + n, lease=job.lease)
        old.apply_polls([polled._replace(changed_at=NOW - 60, stalls=n, stalled=True)])
    expected_jobs, expected_deliveries = old.jobs(), old.deliveries()
    old.close()
    store = PostgresStore(postgres_url, INSTANCE)
    try:
        counts = store.import_sqlite(path)
        assert (counts.jobs, counts.deliveries) == (1, 2)
        assert store.jobs() == expected_jobs
        assert [(j.stalls, j.stalled) for j in store.jobs()] == [(2, True)]
        assert store.deliveries() == expected_deliveries
        assert [d.occurrence for d in store.deliveries()] == [1, 2]
    finally:
        store.close()
