"""The store's part of digests, against both backends: a window closes ``window`` after
its first event or at ``max_events``; every event lands in exactly one digest, marked
``digested`` in the transaction that inserts the digest; the digest's id derives from
its members; the gathered events are never claimed alone; silenced events wait and go
into a later digest; ``deliveries`` shows the digest, ``digest_members`` its events;
redelivering a digest (or one of its events) queues the digest whole; two PostgreSQL
stores closing the same window at once make one digest."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from notifier.digests import DigestSettings, digest_id
from notifier.silences import Silence
from notifier.store import NewEvent
from tests.test_store import NOW, Backend, Instance, attempt, backend, ids, near, store

__all__ = ["backend", "store"]  # the fixtures, on both stores

DIGEST = DigestSettings(window=3.0, max_events=5)


def event(store: Any, n: int, at: float, kind: str = "job.delivered", *callbacks: str) -> None:
    """Job ``j<n>`` ended at ``at``: one outbox row per callback (default ``hook``)."""
    data = {"job_id": f"j{n}", "labels": {"team": "ml" if n % 2 else "ops"}}
    payload = {"type": kind, "timestamp": f"2023-11-14T22:13:{n:02d}.000Z", "data": data}
    store.add_event(f"j{n}", NewEvent(kind, payload, callbacks or ("hook",)), at)


def digests(store: Any) -> list[Any]:
    return [d for d in store.deliveries() if d.event == "digest"]


def test_a_window_closes_after_its_first_event(store: Any) -> None:
    for n in range(3):
        event(store, n, NOW + n)
    assert store.close_digests("hook", NOW + 2.9, DIGEST) == 0  # the first is 2.9 s old
    # The gathered events are never claimed alone.
    assert store.claim_deliveries("hook", NOW + 5, 10, [], skip=DIGEST.gathered()) == []
    assert store.close_digests("hook", NOW + 3.05, DIGEST) == 1
    [digest] = digests(store)
    members = store.digest_members(digest.id)
    assert [m.job_id for m in members] == ["j0", "j1", "j2"]
    assert {(m.state, m.digest_id) for m in members} == {("digested", digest.id)}
    assert digest.id == digest_id("hook", [m.id for m in members])
    assert (digest.state, digest.job_id, digest.callback) == ("pending", None, "hook")
    data = digest.payload["data"]
    assert data["count"] == 3 and data["counts_by_type"] == {"job.delivered": 3}
    assert data["first_at"] == "2023-11-14T22:13:00.000Z"
    assert data["last_at"] == "2023-11-14T22:13:02.000Z"
    first = members[0]
    assert data["events"][0] == {"id": first.id, **first.payload}  # as sent alone
    # deliveries shows the digest as one delivery; asked by job, the event says where.
    assert ids(store.deliveries()) == [digest.id]
    assert [(d.state, d.digest_id) for d in store.deliveries(job_id="j1")] == [
        ("digested", digest.id)
    ]
    [claimed] = store.claim_deliveries("hook", NOW + 3.5, 10, [], skip=DIGEST.gathered())
    assert claimed.id == digest.id and claimed.payload == digest.payload
    # Nothing is left to gather: the next event opens a new window.
    assert store.close_digests("hook", NOW + 100, DIGEST) == 0
    event(store, 9, NOW + 10)
    assert store.close_digests("hook", NOW + 12, DIGEST) == 0
    assert store.close_digests("hook", NOW + 13.05, DIGEST) == 1


def test_max_events_close_a_window_at_once_and_every_event_is_in_one_digest(
    store: Any,
) -> None:
    for n in range(12):
        event(store, n, NOW + n / 100, "job.failed" if n % 4 == 0 else "job.delivered")
    assert store.close_digests("hook", NOW + 0.5, DIGEST) == 2  # two full ones; 2 wait
    assert store.close_digests("hook", NOW + 2.0, DIGEST) == 0
    assert store.close_digests("hook", NOW + 3.2, DIGEST) == 1
    made = sorted(digests(store), key=lambda d: d.payload["data"]["first_at"])
    assert [d.payload["data"]["count"] for d in made] == [5, 5, 2]
    members = [m.job_id for d in made for m in store.digest_members(d.id)]
    assert sorted(members) == sorted(f"j{n}" for n in range(12))  # each exactly once
    assert made[0].payload["data"]["counts_by_type"] == {"job.delivered": 3, "job.failed": 2}
    assert store.counts()["deliveries"] == {"digested": 12, "pending": 3}


def test_only_the_digest_events_are_gathered(store: Any) -> None:
    only_failed = DigestSettings(window=1.0, max_events=10, events=("job.failed",))
    event(store, 1, NOW, "job.failed")
    event(store, 2, NOW, "job.delivered")
    event(store, 3, NOW, "job.failed", "other")  # another callback's
    assert store.close_digests("hook", NOW + 1.05, only_failed) == 1
    [digest] = digests(store)
    assert [m.job_id for m in store.digest_members(digest.id)] == ["j1"]
    claimed = store.claim_deliveries("hook", NOW + 2, 10, [], skip=only_failed.gathered())
    assert sorted(d.event for d in claimed) == ["digest", "job.delivered"]


def test_silenced_events_wait_and_go_into_a_later_digest(store: Any) -> None:
    store.add_silence(Silence("s1", None, {"team": "ml"}, NOW, NOW + 60, "cli", "quiet"))
    for n in range(4):  # j1, j3 are team ml
        event(store, n, NOW)
    # Held before the sweep marks them: never gathered.
    assert store.close_digests("hook", NOW + 3.05, DIGEST) == 1
    [first] = digests(store)
    assert sorted(m.job_id for m in store.digest_members(first.id)) == ["j0", "j2"]
    store.sweep_silences(NOW + 4, [])
    store.expire_silence("s1", NOW + 10)
    assert store.sweep_silences(NOW + 11, []) == 2  # released: due at NOW + 11
    assert store.close_digests("hook", NOW + 13, DIGEST) == 0
    assert store.close_digests("hook", NOW + 14.05, DIGEST) == 1
    second = [d for d in digests(store) if d.id != first.id]
    assert sorted(m.job_id for m in store.digest_members(second[0].id)) == ["j1", "j3"]


def test_redelivering_a_digest_or_one_of_its_events_queues_the_digest_whole(
    store: Any,
) -> None:
    for n in range(2):
        event(store, n, NOW)
    store.close_digests("hook", NOW + 3.05, DIGEST)
    [digest] = digests(store)
    claimed = store.claim_deliveries("hook", NOW + 3.5, 10, [], skip=DIGEST.gathered())
    assert store.record_attempt(attempt(claimed[0], True, "delivered", NOW + 4, None))
    assert store.deliveries(delivery_id=digest.id)[0].state == "delivered"
    again = store.redeliver(digest.id, NOW + 10)
    assert again is not None and again.id == digest.id and again.state == "pending"
    assert again.payload == digest.payload and near(again.next_attempt_at, NOW + 10)
    member = store.digest_members(digest.id)[0]
    store.record_attempt(
        attempt(store.claim_deliveries("hook", NOW + 11, 10, [])[0], True, "delivered", NOW + 11,
                None)
    )  # fmt: skip
    by_member = store.redeliver(member.id, NOW + 20)
    assert by_member is not None and by_member.id == digest.id and by_member.state == "pending"
    assert {m.state for m in store.digest_members(digest.id)} == {"digested"}


def test_two_postgres_stores_closing_one_window_make_one_digest(
    backend: Backend,
) -> None:
    if backend.kind != "postgres":
        pytest.skip("several daemons share PostgreSQL only")
    first = backend.open(Instance("a", 30.0, "0"))
    second = backend.open(Instance("b", 30.0, "0"))
    for n in range(40):
        event(first, n, NOW + n / 1000)
    wide = DigestSettings(window=3.0, max_events=100)
    made: list[int] = []
    start = threading.Barrier(2)

    def close(store: Any) -> None:
        start.wait()
        made.append(store.close_digests("hook", NOW + 3.1, wide))

    threads = [threading.Thread(target=close, args=(s,)) for s in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(made) == [0, 1]
    [digest] = digests(first)
    assert len(first.digest_members(digest.id)) == 40
    assert first.close_digests("hook", NOW + 4, wide) == 0
    assert second.close_digests("hook", NOW + 4, wide) == 0
