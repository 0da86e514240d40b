"""Reading Datasaur's answers: refused tokens, rejected selections, job lists matched by id."""

from __future__ import annotations

from typing import Any

import pytest

from notifier.config import DatasaurSettings
from notifier.datasaur import DatasaurClient, QueryRejected
from notifier.datasaur_answers import (
    NOT_FOUND,
    Observation,
    alias_slot,
    list_slot,
    match_jobs,
    rejected_fields,
    token_refused,
)
from notifier.standins.simulator import DatasaurSimulator

UNAUTHORIZED = {"message": "Unauthorized", "extensions": {"type": "AuthenticationError"}}


@pytest.mark.parametrize(
    ("status", "body", "refused"),
    [
        (401, {}, True),
        (200, {"errors": [UNAUTHORIZED], "data": None}, True),
        (200, {"errors": [{"message": "x", "extensions": {"code": "UNAUTHENTICATED"}}]}, True),
        (200, {"errors": [{"message": "Unauthorized"}]}, False),
        (200, {"errors": [{"message": "boom", "extensions": {"type": "Other"}}]}, False),
        (200, {"data": {"result": []}}, False),
    ],
)
def test_token_refused_as_datasaurs_own_client_reads_it(
    status: int, body: dict[str, Any], refused: bool
) -> None:
    assert token_refused(status, body) is refused


def test_rejected_fields_name_the_missing_job_fields() -> None:
    double = {"errors": [{"message": 'Cannot query field "createdAt" on type "Job".'}]}
    single = {"errors": [{"message": "Cannot query field 'updatedAt' on type 'Job'."}]}
    coded = {"errors": [{"message": "?", "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}]}
    assert rejected_fields(double) == ["createdAt"]
    assert rejected_fields(single) == ["updatedAt"]
    assert rejected_fields(coded) == []
    assert rejected_fields({"errors": [{"message": "boom"}], "data": None}) is None
    assert rejected_fields({"data": {"result": None}, "errors": double["errors"]}) is None


def job(job_id: str) -> dict[str, Any]:
    return {"id": job_id, "status": "QUEUED", "progress": 0}


def test_jobs_are_matched_by_id_in_any_order_and_omitted_ids_are_not_found() -> None:
    ids = ["a", "b", "c"]
    entries = [job("c"), job("a")]
    seen = match_jobs(ids, entries, {}, list_slot(ids, entries))
    assert seen == [Observation(job("a")), NOT_FOUND, Observation(job("c"))]


def test_a_nulled_entry_is_its_jobs_error_never_not_found() -> None:
    ids = ["a", "b", "c"]
    entries = [job("a"), None, job("c")]
    body = {"errors": [{"message": "cannot load", "path": ["result", 1, "id"]}]}
    seen = match_jobs(ids, entries, body, list_slot(ids, entries))
    assert seen == [Observation(job("a")), Observation(error="cannot load"), Observation(job("c"))]


def test_a_missing_id_with_unattributed_errors_is_an_error() -> None:
    ids = ["a", "b"]
    entries = [job("a")]  # b omitted, and an error the path of which points nowhere useful
    body = {"errors": [{"message": "partial failure", "path": ["result"]}]}
    seen = match_jobs(ids, entries, body, list_slot(ids, entries))
    assert seen == [Observation(job("a")), Observation(error="partial failure")]
    named = {"errors": [{"message": "job b is broken"}]}
    assert match_jobs(["a", "b", "c"], entries, named, list_slot(ids, entries))[1:] == [
        Observation(error="job b is broken"),
        NOT_FOUND,
    ]


def test_positions_count_only_while_the_answer_keeps_the_order_asked() -> None:
    ids = ["a", "b"]
    reordered = [None, job("a")]  # b first (nulled), then a: position 0 is not "a"
    body = {"errors": [{"message": "bad", "path": ["result", 0]}]}
    seen = match_jobs(ids, reordered, body, list_slot(ids, reordered))
    assert seen == [Observation(job("a")), Observation(error="bad")]  # unattributed: b


def test_alias_slots() -> None:
    assert alias_slot(["j12", "status"]) == 12
    assert alias_slot(["result", 0]) is None and alias_slot([]) is None


def test_client_steps_down_once_and_keeps_the_selection() -> None:
    with DatasaurSimulator(static_token="t" * 20, legacy_schema=True) as sim:
        sim.set_job("a", "DELIVERED", 100, result={"n": 1})
        client = DatasaurClient(DatasaurSettings(graphql_url=sim.graphql_url, token="t" * 20))
        for _ in range(3):
            (seen,) = client.get_jobs(["a"])
            assert seen.job is not None and seen.job["status"] == "DELIVERED"
        assert client.tier == 1 and "createdAt" not in client.fields
        assert client.get_job("a") is not None and client.get_jobs_each(["a", "zz"])[1] == NOT_FOUND
        assert sim.stats().graphql_requests == 6  # one rejected request in all
        jobs = [{"id": "a"}, {"id": "zz"}]
        client.attach_results(jobs)
        assert jobs[0]["result"] == {"n": 1} and "result_error" in jobs[1]


@pytest.mark.parametrize("status", [400, 500])
def test_a_rejected_selection_steps_down_at_any_http_status(status: int) -> None:
    with DatasaurSimulator(
        static_token="t" * 20, legacy_schema=True, rejection_status=status
    ) as sim:
        sim.set_job("a", "QUEUED")
        client = DatasaurClient(DatasaurSettings(graphql_url=sim.graphql_url, token="t" * 20))
        assert client.get_jobs(["a"])[0].job == {
            "id": "a", "status": "QUEUED", "progress": 0, "errors": [], "resultId": None
        }  # fmt: skip
        assert client.tier == 1 and sim.stats().graphql_requests == 2


def test_a_whole_batch_failure_is_query_rejected() -> None:
    with DatasaurSimulator(static_token="t" * 20) as sim:
        sim.fail_job("b", "kaput")
        client = DatasaurClient(DatasaurSettings(graphql_url=sim.graphql_url, token="t" * 20))
        with pytest.raises(QueryRejected, match="kaput"):
            client.get_jobs(["a", "b"])
        assert client.get_jobs_each(["a", "b"]) == [NOT_FOUND, Observation(error="kaput")]
