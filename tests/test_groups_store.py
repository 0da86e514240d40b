"""Groups in the store (issue 21.2), against both backends: when a group may end, its
events recorded once with the member status that ends it, and under concurrency on
PostgreSQL (two stores ending the last members of many groups at the same moment)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from notifier.groups import GroupEnded, GroupSpec
from notifier.store import JobUpdate
from notifier.store.feed import FeedFilter
from tests import test_store as contract
from tests.test_store import spec

backend = contract.backend
store = contract.store
pg = contract.pg


def group(group_id: str, **fields: Any) -> GroupSpec:
    return GroupSpec.model_validate({"id": group_id, **fields})


def put(store: Any, group_id: str, **fields: Any) -> Any:
    return store.put_group(group(group_id, **fields), set(fields), time.time())


def finish(store: Any, job_ids: list[str], status: str = "DELIVERED", eta: float | None = None,
           state: str | None = None) -> Any:  # fmt: skip
    """Poll ``job_ids`` once (they must be due) and record them ended with ``status``
    (or, with ``eta``, still running with that estimate)."""
    now = time.time()
    claimed = {job.id: job for job in store.claim_jobs(now + 3600, 1000)}
    running = [job for job_id, job in claimed.items() if job_id not in job_ids]
    if running:
        store.release_jobs(running)
    updates = []
    for job_id in job_ids:
        job = claimed[job_id]
        ended = eta is None
        updates.append(JobUpdate(
            job_id, state or ("done" if ended else "watching"), status if ended else "IN_PROGRESS",
            100 if ended else 10, {"id": job_id, "status": status, "resultId": f"r-{job_id}"},
            now, None if ended else now + 60, 10.0, None, (), job.lease, eta=eta,
            group=job.group,
        ))  # fmt: skip
    return store.apply_polls(updates)


def group_events(store: Any, event: str | None = None) -> list[Any]:
    return [d for d in store.deliveries() if d.event.startswith("group.")
            and (event is None or d.event == event)]  # fmt: skip


def register(store: Any, group_id: str, *job_ids: str) -> None:
    for job_id in job_ids:
        store.watch(spec(job_id, group=group_id), time.time())


def test_a_job_naming_an_undeclared_group_creates_it_open_without_callbacks(store: Any) -> None:
    register(store, "g", "A:1", "A:2")
    [view] = store.groups()
    assert (view.group.id, view.group.state, view.group.source) == ("g", "open", "job")
    assert view.group.notify is None and view.counts.total == 2
    finish(store, ["A:1", "A:2"])
    [view] = store.groups()
    assert view.group.state == "open" and view.counts.delivered == 2  # open: never ends
    assert group_events(store) == []


def test_expect_seals_and_the_last_member_completes_the_group_once(store: Any) -> None:
    put(store, "run", notify=["hook"], expect=3, labels={"team": "ml"}, metadata={"run": 7})
    register(store, "run", "Q:1", "Q:2")
    finish(store, ["Q:1", "Q:2"])
    assert store.groups()[0].group.state == "open" and group_events(store) == []
    register(store, "run", "Q:3")
    assert store.groups()[0].group.state == "sealed"
    written = finish(store, ["Q:3"])
    assert written.created == 1
    [delivery] = group_events(store)
    assert (delivery.event, delivery.callback, delivery.job_id) == ("group.completed", "hook", None)
    data = delivery.payload["data"]
    assert (data["group"], data["state"], data["total"]) == ("run", "completed", 3)
    assert data["counts"] == {"delivered": 3, "failed": 0, "expired": 0, "running": 0}
    assert [j["id"] for j in data["jobs"]] == ["Q:1", "Q:2", "Q:3"]
    assert data["jobs"][0]["result_id"] == "r-Q:1" and data["jobs_truncated"] is False
    assert (data["labels"], data["metadata"]) == ({"team": "ml"}, {"run": 7})
    assert data["slowest"]["id"] in {"Q:1", "Q:2", "Q:3"} and data["ended_at"].endswith("Z")
    assert data["ack"] is None
    [event] = store.read_events(0, 100, FeedFilter(types=("group.completed",))).events
    assert event.id == delivery.id
    with pytest.raises(GroupEnded):
        register(store, "run", "Q:4")  # joining an ended group is refused
    assert [job.id for job in store.jobs()] == ["Q:1", "Q:2", "Q:3"]


def test_fail_fast_fails_at_the_first_failure_and_nothing_follows(store: Any) -> None:
    put(store, "ff", notify=["hook"], fail_fast=True)
    register(store, "ff", "F:1", "F:2", "F:3")
    finish(store, ["F:1"], status="FAILED")
    [failed] = group_events(store)
    assert failed.event == "group.failed"
    assert failed.payload["data"]["counts"]["failed"] == 1
    finish(store, ["F:2", "F:3"])
    assert group_events(store) == [failed]


def test_a_sealed_group_fails_when_all_ended_and_one_expired(store: Any) -> None:
    put(store, "s", notify=["hook", "ops"], sealed=True)
    register(store, "s", "S:1", "S:2")
    finish(store, ["S:1"])
    finish(store, ["S:2"], state="expired", status="IN_PROGRESS")
    assert sorted(d.callback for d in group_events(store, "group.failed")) == ["hook", "ops"]


def test_sealing_a_group_whose_members_all_ended_completes_it_at_once(store: Any) -> None:
    register(store, "late-seal", "L:1")
    put(store, "late-seal", notify=["hook"])
    finish(store, ["L:1"])
    assert group_events(store) == []
    sealed = store.seal_group("late-seal", time.time())
    assert sealed.state == "completed" and len(group_events(store, "group.completed")) == 1
    assert store.seal_group("nope", time.time()) is None


def test_config_groups_are_sealed_and_callback_filters_apply(store: Any) -> None:
    store.group_filters = {"hook": ("group.failed",)}
    store.sync_config_groups([group("cfg", notify=["hook", "ops"], deadline="1h")], time.time())
    store.sync_config_jobs([spec("C:1", group="cfg"), spec("C:2", group="cfg")], time.time())
    [view] = store.groups()
    assert view.group.state == "sealed" and view.group.source == "config"
    assert view.group.deadline is not None
    finish(store, ["C:1", "C:2"])
    assert [d.callback for d in group_events(store)] == ["ops"]  # hook takes failures only


def test_at_risk_before_the_deadline_then_late_each_once(store: Any) -> None:
    put(store, "d", notify=["hook"], deadline="1h")
    register(store, "d", "D:1", "D:2")
    now = time.time()
    finish(store, ["D:1"], eta=now + 600)  # before the deadline: not at risk
    assert group_events(store) == []
    finish(store, ["D:2"], eta=now + 7200)
    [risk] = group_events(store)
    assert risk.event == "group.at_risk" and risk.payload["data"]["eta"] is not None
    finish(store, ["D:1"], eta=now + 9000)
    assert len(group_events(store)) == 1  # at most once
    assert store.record_groups_late(now + 60) == 0
    assert store.record_groups_late(now + 3700) == 1
    assert store.record_groups_late(now + 3800) == 0
    late = group_events(store, "group.late")
    assert len(late) == 1 and late[0].payload["data"]["late_by_s"] > 0
    finish(store, ["D:1", "D:2"])
    assert store.groups()[0].group.state == "open"  # open: late, never ended


def test_groups_list_filters_and_pages(store: Any) -> None:
    put(store, "a", labels={"team": "ml"})
    put(store, "b", labels={"team": "web"}, sealed=True)
    put(store, "c", labels={"team": "ml"})
    assert [v.group.id for v in store.groups(labels=[("team", "ml")])] == ["a", "c"]
    assert [v.group.id for v in store.groups(state="sealed")] == ["b"]
    first = store.groups(limit=2)
    after = (first[-1].group.created_at, first[-1].group.id)
    assert [v.group.id for v in store.groups(after=after)] == ["c"]
    register(store, "a", "X:1")
    deleted = store.delete_group("a")
    assert deleted.id == "a" and store.jobs(job_id="X:1")[0].state == "unwatched"
    assert store.delete_group("a") is None


def test_put_merges_the_fields_given(store: Any) -> None:
    put(store, "m", name="first", notify=["hook"], expect=4)
    updated = put(store, "m", name="second")
    assert (updated.name, updated.notify, updated.expect) == ("second", ("hook",), 4)


# --- PostgreSQL only: two daemons ending the last members of many groups together -------


def test_two_stores_ending_the_last_two_members_together_give_one_event(
    pg: Callable[..., Any],
) -> None:
    groups, rounds = 20, 3
    one, two = pg("one"), pg("two")
    for attempt in range(rounds):
        ids = [f"r{attempt}g{g}" for g in range(groups)]
        for group_id in ids:
            one.put_group(group(group_id, notify=["hook"], sealed=True), {"notify", "sealed"},
                          time.time())  # fmt: skip
            register(one, group_id, f"{group_id}:a", f"{group_id}:b")
        claimed = {job.id: job for job in one.claim_jobs(time.time() + 3600, 1000)}
        mine = {name: [j for j in claimed.values() if j.id.endswith(end)]
                for name, end in (("one", ":a"), ("two", ":b"))}  # fmt: skip
        one.release_jobs(mine["two"])
        again = {job.id: job for job in two.claim_jobs(time.time() + 3600, 1000)}
        mine["two"] = [again[j.id] for j in mine["two"]]
        barrier = threading.Barrier(2)

        def end(store: Any, jobs: list[Any]) -> None:
            barrier.wait()
            for job in jobs:  # one transaction per member: the races are per group
                store.apply_polls([JobUpdate(
                    job.id, "done", "DELIVERED", 100, {"id": job.id, "status": "DELIVERED"},
                    time.time(), None, 10.0, None, (), job.lease, group=job.group)])  # fmt: skip

        threads = [threading.Thread(target=end, args=(one, mine["one"])),
                   threading.Thread(target=end, args=(two, mine["two"]))]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        completed = [d for d in group_events(one, "group.completed") if d.payload["data"]
                     ["group"] in ids]  # fmt: skip
        assert sorted(d.payload["data"]["group"] for d in completed) == sorted(ids)


def test_import_state_copies_groups(pg: Callable[..., Any], tmp_path: Any) -> None:
    from notifier.store import SqliteStore

    source = SqliteStore(tmp_path / "state.db")
    source.put_group(group("imported", notify=["hook"], fail_fast=True, labels={"a": "b"}),
                     {"notify", "fail_fast", "labels"}, time.time())  # fmt: skip
    register(source, "imported", "I:1")
    register(source, "implicit", "I:2")
    source.close()
    target = pg("importer")
    target.import_sqlite(tmp_path / "state.db")
    views = {v.group.id: v.group for v in target.groups()}
    assert views["imported"].fail_fast and views["imported"].notify == ("hook",)
    assert views["imported"].labels == {"a": "b"} and views["implicit"].state == "open"
    target.import_sqlite(tmp_path / "state.db")  # twice: nothing changes
    assert len(target.groups()) == 2


def test_retention_forgets_an_ended_group_once_its_members_are_gone(store: Any) -> None:
    put(store, "old", notify=["hook"], sealed=True)
    put(store, "running", sealed=True)
    register(store, "old", "O:1")
    register(store, "running", "R:1")
    finish(store, ["O:1"])
    later = time.time() + 10 * 86400
    pruned = store.housekeeping(later, 86400)
    assert (pruned.jobs, pruned.groups) == (1, 1)
    assert [v.group.id for v in store.groups()] == ["running"]
    assert store.jobs(job_id="O:1") == []
