"""The store's part of silences and quiet hours, against both backends: what a silence
holds is never claimed, the sweep marks it ``silenced`` with the silence's id and
releases it (due at once, the time held not counted) when the silence ends; matching by
callback and by the event's labels; ``claim_deliveries(events=...)`` for quiet hours."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from notifier.silences import KEEP_ENDED, Silence
from notifier.store import NewEvent
from tests.test_store import NOW, Backend, delivered_event, ids, near, poll, spec


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A store of each backend (as tests/test_store.py's)."""
    sqlite = request.param == "sqlite"
    location = tmp_path / "state.db" if sqlite else request.getfixturevalue("postgres_url")
    backend = Backend(request.param, location)
    yield backend.open()
    backend.close()


def silence(ident: str, callback: str | None = None, match: dict[str, str] | None = None,
            start: float = NOW, end: float = NOW + 3600) -> Silence:  # fmt: skip
    return Silence(ident, callback, match, start, end, "cli", f"why {ident}")


def labelled(job_id: str, labels: dict[str, str], *callbacks: str) -> NewEvent:
    payload = {"type": "job.failed", "timestamp": "t", "data": {"job_id": job_id,
                                                                "labels": labels}}  # fmt: skip
    return NewEvent(event="job.failed", payload=payload, callbacks=callbacks)


def by_callback(store: Any) -> dict[str, tuple[str, str | None]]:
    return {d.callback: (d.state, d.silence_id) for d in store.deliveries()}


def test_silences_are_added_listed_and_expired(store: Any) -> None:
    store.add_silence(silence("s1", callback="hook"))
    store.add_silence(silence("s2", match={"queue": "ExportQueue", "team": "ml"}, start=NOW + 1))
    assert [s.id for s in store.silences()] == ["s2", "s1"]  # newest first
    [s2, s1] = store.silences()
    assert (s1.callback, s1.match, s1.author, s1.comment) == ("hook", None, "cli", "why s1")
    assert s2.match == {"queue": "ExportQueue", "team": "ml"} and s2.callback is None
    assert near(s1.starts_at) and near(s1.ends_at, NOW + 3600)
    ended = store.expire_silence("s1", NOW + 60)
    assert ended is not None and near(ended.ends_at, NOW + 60) and not ended.active(NOW + 61)
    again = store.expire_silence("s1", NOW + 120)  # an ended silence stays as it ended
    assert again is not None and near(again.ends_at, NOW + 60)
    assert store.expire_silence("nope", NOW) is None


def test_a_silence_holds_its_callback_until_it_ends(store: Any) -> None:
    store.sync_config_jobs([spec("a")], NOW)
    store.add_silence(silence("s1", callback="hook"))
    poll(store, "a", delivered_event("a", "hook", "mail"))
    # Held before the sweep has marked anything: never claimed.
    assert store.claim_deliveries("hook", NOW + 5, 10, []) == []
    assert store.sweep_silences(NOW + 10, []) == 1
    assert by_callback(store) == {"hook": ("silenced", "s1"), "mail": ("pending", None)}
    assert store.silenced_by_callback() == {"hook": 1}
    assert store.counts()["deliveries"] == {"silenced": 1, "pending": 1}
    assert store.sweep_silences(NOW + 20, []) == 0  # nothing new

    store.expire_silence("s1", NOW + 100)
    assert store.sweep_silences(NOW + 110, []) == 1
    [row] = store.claim_deliveries("hook", NOW + 111, 10, [])  # due since NOW + 110
    assert row.state == "pending" and row.silence_id is None
    assert near(row.next_attempt_at, NOW + 110)
    assert near(row.queued_at, NOW + 100)  # the 100 s held do not count toward give-up


def test_a_silence_matches_the_labels_of_the_event(store: Any) -> None:
    store.sync_config_jobs([spec("a"), spec("b")], NOW)
    store.add_silence(silence("s1", match={"queue": "ExportQueue", "team.x/y": "ml"}))
    poll(store, "a", labelled("a", {"queue": "ExportQueue", "team.x/y": "ml", "more": "1"}, "h"))
    poll(store, "b", labelled("b", {"queue": "ExportQueue"}, "h"))
    assert ids(store.claim_deliveries("h", NOW + 5, 10, [])) == [
        d.id for d in store.deliveries(job_id="b")
    ]
    store.sweep_silences(NOW + 10, [])
    assert {d.job_id: d.state for d in store.deliveries()} == {"a": "silenced", "b": "pending"}


def test_the_sweep_leaves_deliveries_being_sent_and_forgets_old_silences(store: Any) -> None:
    store.sync_config_jobs([spec("a")], NOW)
    poll(store, "a", delivered_event("a", "hook"))
    [row] = store.claim_deliveries("hook", NOW, 10, [])
    store.add_silence(silence("s1", callback="hook"))
    store.add_silence(silence("old", callback="x", start=NOW - 10 * 86400,
                              end=NOW - KEEP_ENDED - 1))  # fmt: skip
    store.sweep_silences(NOW + 1, [row.id])
    assert by_callback(store) == {"hook": ("pending", None)}  # its attempt finishes
    assert [s.id for s in store.silences()] == ["s1"]


def test_claims_in_quiet_hours_take_only_the_excepted_events(store: Any) -> None:
    store.sync_config_jobs([spec("a"), spec("b")], NOW)
    poll(store, "a", delivered_event("a", "hook"))
    poll(store, "b", labelled("b", {}, "hook"))
    only = store.claim_deliveries("hook", NOW + 1, 10, [], events=["job.failed"])
    assert [d.event for d in only] == ["job.failed"]
    assert store.claim_deliveries("hook", NOW + 1, 10, [], events=[]) == []
