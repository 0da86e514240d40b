"""The event log, against both backends: every recorded event appended once, in order,
whether or not a callback takes it; filters; retention's horizon; and on PostgreSQL,
readers that never pass an event still being committed by concurrent writers."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from notifier.store import FeedFilter, NewEvent
from tests import test_store as contract
from tests.test_store import INSTANCE, NOW, Backend, delivered_event, poll, spec

backend = contract.backend  # the store contract's fixtures: each test runs on both stores
store = contract.store

EVERYTHING = FeedFilter()


def labelled(job_id: str, event: str, group: str | None, **labels: str) -> NewEvent:
    data = {"job_id": job_id, "group": group, "labels": labels}
    return NewEvent(event=event, payload={"type": event, "timestamp": "t", "data": data},
                    callbacks=())  # fmt: skip


def test_every_event_is_logged_once_with_its_first_webhook_id(store: Any) -> None:
    store.watch(spec("J1"), NOW)
    store.watch(spec("J2"), NOW)
    poll(store, "J1", delivered_event("J1", "hook", "mail"))
    poll(store, "J2", delivered_event("J2"))  # no callback takes it: logged all the same
    page = store.read_events(0, 100, EVERYTHING)
    assert [(e.type, e.payload["data"]["job_id"]) for e in page.events] == [
        ("job.delivered", "J1"), ("job.delivered", "J2")]  # fmt: skip
    assert page.events[0].cursor < page.events[1].cursor == page.head
    first = [d for d in store.deliveries(job_id="J1") if d.callback == "hook"]
    assert page.events[0].id == first[0].id
    assert store.read_events(page.events[0].cursor, 100, EVERYTHING).events == page.events[1:]
    bounds = store.event_bounds()
    assert (bounds.oldest, bounds.pruned_through, bounds.head) == (
        page.events[0].cursor, 0, page.head)  # fmt: skip


def test_filters_by_type_group_and_labels(store: Any) -> None:
    for n, (event, group, team) in enumerate(
        [("job.delivered", "g1", "a"), ("job.failed", "g1", "b"), ("job.delivered", None, "a")]
    ):
        store.watch(spec(f"J{n}"), NOW)
        poll(store, f"J{n}", labelled(f"J{n}", event, group, team=team, **{"k.x/y": "v"}))

    def jobs(where: FeedFilter) -> list[str]:
        return [e.payload["data"]["job_id"] for e in store.read_events(0, 100, where).events]

    assert jobs(FeedFilter(types=("job.delivered",))) == ["J0", "J2"]
    assert jobs(FeedFilter(group="g1")) == ["J0", "J1"]
    assert jobs(FeedFilter(labels=(("team", "a"),))) == ["J0", "J2"]
    assert jobs(FeedFilter(labels=(("team", "a"), ("k.x/y", "v")))) == ["J0", "J2"]
    assert jobs(FeedFilter(types=("job.failed",), labels=(("team", "a"),))) == []


def test_retention_moves_the_horizon(store: Any) -> None:
    store.watch(spec("OLD"), NOW)
    poll(store, "OLD", delivered_event("OLD", "hook"), at=NOW)
    cutoff_later = NOW + 10_000
    store.watch(spec("NEW"), cutoff_later)
    poll(store, "NEW", delivered_event("NEW", "hook"), at=cutoff_later)
    old, new = store.read_events(0, 100, EVERYTHING).events
    pruned = store.housekeeping(cutoff_later, 5_000)
    assert pruned.events == 1
    bounds = store.event_bounds()
    assert (bounds.oldest, bounds.pruned_through) == (new.cursor, old.cursor)
    assert bounds.head == new.cursor
    assert store.read_events(0, 100, EVERYTHING).events == [new]


def test_concurrent_writers_never_let_a_reader_skip(backend: Backend) -> None:
    """Writers in threads (each its own store on PostgreSQL: like daemons) record events
    as fast as they can while a reader follows the log: it sees each once, in order."""
    writers, per_writer = 4, 60
    stores = [backend.open() for _ in range(writers if backend.kind == "postgres" else 1)]
    seen: list[int] = []
    done = threading.Event()

    def write(index: int) -> None:
        target = stores[index % len(stores)]
        for n in range(per_writer):
            event = NewEvent(event="callback.paused", payload={"data": {"n": n}}, callbacks=())
            target.add_event(None, event, time.time())

    def read() -> None:
        reader, after = backend.open(), 0
        while True:
            finished = done.is_set()
            page = reader.read_events(after, 50, EVERYTHING)
            seen.extend(e.cursor for e in page.events)
            after = page.events[-1].cursor if page.events else after
            if finished and not page.events:
                return

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    follower = threading.Thread(target=read)
    follower.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    follower.join(timeout=60)
    everything = [e.cursor for e in stores[0].read_events(0, 10_000, EVERYTHING).events]
    assert len(everything) == writers * per_writer
    assert seen == everything


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_reader_waits_below_an_append_still_committing(backend: Backend) -> None:
    """A transaction that appended but has not committed holds back later appends: a
    reader never sees a cursor above one that may still appear."""
    first, second = backend.open(), backend.open(INSTANCE)
    with first._transaction() as conn, conn.cursor() as cur:
        from notifier.store.postgres.outbox import enqueue

        enqueue(cur, [(None, NewEvent("callback.paused", {"data": {}}, ()), NOW)])
        other = threading.Thread(
            target=second.add_event, args=(None, NewEvent("callback.resumed", {}, ()), NOW)
        )
        other.start()
        other.join(timeout=1.0)
        assert other.is_alive()  # queued behind the uncommitted append
        assert second.read_events(0, 10, EVERYTHING).events == []
    other.join(timeout=10)
    assert [e.type for e in second.read_events(0, 10, EVERYTHING).events] == [
        "callback.paused", "callback.resumed"]  # fmt: skip
