"""Issue 21's job fields in the store, against both backends: stored and read back as
registered, merged like the other fields, kept off the poll's claim where they are wide,
and a job in a group never moved to another."""

from __future__ import annotations

import time
from typing import Any

import pytest

from notifier.jobfields import GroupConflict
from tests import test_store as contract
from tests.test_store import spec

backend = contract.backend  # the store contract's fixtures: each test runs on both stores
store = contract.store

FIELDS = {
    "group": "nightly-42",
    "labels": {"team": "ml", "stage": "export"},
    "metadata": {"run": "r-17", "nested": {"b": [1, 2.5, None], "a": "é"}},
    "deadline": "2h",
    "expire_after": "1h",
    "stall_after": "10m",
}


def near(value: float | None, expected: float) -> bool:
    return value is not None and abs(value - expected) < 0.5


def test_fields_are_stored_and_read_back(store: Any) -> None:
    now = time.time()
    job = store.watch(spec("AutoLabelQueue:1", **FIELDS), now)
    assert job.group == "nightly-42"
    assert job.labels == {"queue": "AutoLabelQueue", "team": "ml", "stage": "export"}
    assert job.metadata == FIELDS["metadata"]
    assert near(job.deadline, now + 7200)
    assert (job.expire_after, job.stall_after) == (3600.0, 600.0)
    assert (job.at_risk_at, job.late_at) == (None, None)
    [listed] = store.jobs(job_id="AutoLabelQueue:1")
    assert listed == job


def test_a_claim_reads_the_narrow_fields_only(store: Any) -> None:
    now = time.time()
    store.watch(spec("AutoLabelQueue:1", **FIELDS), now)
    [claimed] = store.claim_jobs(now + 1, 10)
    assert (claimed.group, claimed.expire_after, claimed.stall_after) == ("nightly-42", 3600, 600)
    assert near(claimed.deadline, now + 7200)
    assert (claimed.labels, claimed.metadata) == (None, None)  # read only for an event


def test_a_job_without_fields_has_empty_ones(store: Any) -> None:
    job = store.watch(spec("plain"), time.time())
    assert (job.group, job.labels, job.metadata, job.deadline) == (None, {}, {}, None)


def test_the_queue_label_can_be_overridden(store: Any) -> None:
    job = store.watch(spec("AutoLabelQueue:1", labels={"queue": "mine"}), time.time())
    assert job.labels == {"queue": "mine"}


def test_a_job_in_a_group_is_not_moved_and_nothing_changes(store: Any) -> None:
    now = time.time()
    store.watch(spec("J", group="a", name="first"), now)
    for other in ("b", None):
        with pytest.raises(GroupConflict, match="job J is in group a"):
            store.watch(spec("J", group=other, name="second"), now)
    [job] = store.jobs(job_id="J")
    assert (job.group, job.name) == ("a", "first")
    store.watch(spec("J", group="a", name="second"), now)  # the same group: fine
    assert store.jobs(job_id="J")[0].name == "second"


def test_a_job_without_a_group_may_join_one(store: Any) -> None:
    now = time.time()
    store.watch(spec("J"), now)
    assert store.watch(spec("J", group="g"), now).group == "g"


def test_a_config_jobs_duration_deadline_counts_from_its_first_registration(store: Any) -> None:
    now = time.time()
    store.sync_config_jobs([spec("C", deadline="1h")], now)
    store.sync_config_jobs([spec("C", deadline="1h")], now + 100)  # a reload
    assert near(store.jobs(job_id="C")[0].deadline, now + 3600)
    store.sync_config_jobs([spec("C", deadline="2h")], now + 200)
    assert near(store.jobs(job_id="C")[0].deadline, now + 7200)


def test_a_config_job_keeps_its_group_when_the_file_names_another(store: Any) -> None:
    now = time.time()
    store.sync_config_jobs([spec("C", group="a")], now)
    store.sync_config_jobs([spec("C", group="b", name="renamed")], now + 1)
    [job] = store.jobs(job_id="C")
    assert (job.group, job.name) == ("a", "renamed")


def test_jobs_filter_by_group_and_labels(store: Any) -> None:
    now = time.time()
    store.watch(spec("AutoLabelQueue:1", group="g", labels={"team": "ml", "x.y/z": "1"}), now)
    store.watch(spec("AutoLabelQueue:2", group="g", labels={"team": "web"}), now + 1)
    store.watch(spec("ExportQueue:3", labels={"team": "ml"}), now + 2)

    def found(**filters: Any) -> list[str]:
        return [job.id for job in store.jobs(**filters)]

    assert found(group="g") == ["AutoLabelQueue:1", "AutoLabelQueue:2"]
    assert found(labels=[("team", "ml")]) == ["AutoLabelQueue:1", "ExportQueue:3"]
    assert found(group="g", labels=[("team", "ml")]) == ["AutoLabelQueue:1"]
    assert found(labels=[("team", "ml"), ("x.y/z", "1")]) == ["AutoLabelQueue:1"]
    assert found(labels=[("queue", "ExportQueue")]) == ["ExportQueue:3"]  # the implicit one
    assert found(labels=[("team", "nope")]) == [] and found(group="other") == []
    page = store.jobs(labels=[("team", "ml")], limit=1)
    assert [job.id for job in page] == ["AutoLabelQueue:1"]
    after = (page[0].registered_at, page[0].id)
    assert found(labels=[("team", "ml")], after=after) == ["ExportQueue:3"]
