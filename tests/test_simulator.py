"""The Datasaur simulator over real HTTP."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from notifier.standins.simulator import DatasaurSimulator
from tests.support.waiting import wait_until

JOB_FIELDS = "id status progress errors { id stack args } resultId createdAt updatedAt result"
GET_JOB = f"query GetJob($jobId: String!) {{ result: getJob(jobId: $jobId) {{ {JOB_FIELDS} }} }}"
GET_JOBS = (
    f"query GetJobs($jobIds: [String!]!) {{ result: getJobs(jobIds: $jobIds) {{ {JOB_FIELDS} }} }}"
)
TOKEN = "static-test-token"


@pytest.fixture
def sim() -> Iterator[DatasaurSimulator]:
    with DatasaurSimulator(static_token=TOKEN) as simulator:
        yield simulator


def post_graphql(
    sim: DatasaurSimulator, query: str, variables: dict[str, Any], token: str | None = TOKEN
) -> requests.Response:
    operation = query.split()[1].split("(")[0]
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    body = {"operationName": operation, "variables": variables, "query": query}
    return requests.post(sim.graphql_url, json=body, headers=headers, timeout=5)


def get_job(sim: DatasaurSimulator, job_id: str, token: str | None = TOKEN) -> requests.Response:
    return post_graphql(sim, GET_JOB, {"jobId": job_id}, token)


def job_status(sim: DatasaurSimulator, job_id: str) -> str | None:
    job = get_job(sim, job_id).json()["data"]["result"]
    return None if job is None else str(job["status"])


def fetch_token(
    sim: DatasaurSimulator, client_id: str = "id", secret: str = "s"
) -> requests.Response:
    form = {"client_id": client_id, "client_secret": secret, "grant_type": "client_credentials"}
    return requests.post(sim.token_url, data=form, timeout=5)


def test_token_flow_and_expiry() -> None:
    with DatasaurSimulator(client_id="cid", client_secret="sec", token_ttl=0.3) as sim:
        sim.set_job("j1", "DELIVERED")
        answer = fetch_token(sim, "cid", "sec").json()
        assert answer["token_type"] == "bearer" and answer["expires_in"] == 1
        assert re.fullmatch(r"[0-9a-f]{40}", answer["access_token"])  # opaque, like Datasaur's
        assert get_job(sim, "j1", answer["access_token"]).json()["data"]["result"]["id"] == "j1"
        assert fetch_token(sim, "cid", "wrong").status_code == 401
        assert fetch_token(sim, "cid", "wrong").json() == {"error": "invalid_client"}
        wait_until(lambda: get_job(sim, "j1", answer["access_token"]).status_code == 401, 3)
        assert sim.stats().token_requests == 3


def test_any_non_empty_credentials_when_none_configured(sim: DatasaurSimulator) -> None:
    assert fetch_token(sim, "anything", "goes").status_code == 200
    assert fetch_token(sim, "", "").status_code == 401


def test_missing_or_unknown_token_gets_401_the_way_datasaur_words_it(
    sim: DatasaurSimulator,
) -> None:
    for token in (None, "nope"):
        answer = get_job(sim, "j", token)
        assert answer.status_code == 401
        assert answer.json() == {
            "errors": [{"message": "Unauthorized", "extensions": {"type": "AuthenticationError"}}],
            "data": None,
            "extensions": {},
        }


def test_revoke_tokens(sim: DatasaurSimulator) -> None:
    token = fetch_token(sim).json()["access_token"]
    assert get_job(sim, "j", token).status_code == 200
    sim.revoke_tokens()
    assert get_job(sim, "j", token).status_code == 401
    assert get_job(sim, "j").status_code == 200


def test_unknown_field_is_a_recorded_validation_error(sim: DatasaurSimulator) -> None:
    answer = post_graphql(sim, 'query Bad { result: getJob(jobId: "x") { nope } }', {})
    assert answer.status_code == 200
    body = answer.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert sim.stats().validation_errors == ["Cannot query field 'nope' on type 'Job'."]


def test_missing_variable_is_recorded_too(sim: DatasaurSimulator) -> None:
    assert post_graphql(sim, GET_JOBS, {}).json()["data"] is None
    assert len(sim.stats().validation_errors) == 1


def test_get_jobs_has_null_for_unknown_ids_and_counts(sim: DatasaurSimulator) -> None:
    sim.set_job("a", "DELIVERED", 100, result_id="r1", result={"labels": [1, 2]})
    sim.set_job("b", "FAILED", errors=[{"id": "e1", "stack": "trace", "args": {"k": "v"}}])
    jobs = post_graphql(sim, GET_JOBS, {"jobIds": ["a", "zzz", "b"]}).json()["data"]["result"]
    assert jobs[1] is None
    assert jobs[0]["result"] == {"labels": [1, 2]} and jobs[0]["resultId"] == "r1"
    assert jobs[2]["errors"] == [{"id": "e1", "stack": "trace", "args": {"k": "v"}}]
    assert jobs[0]["createdAt"].endswith("Z")
    get_job(sim, "a")
    stats = sim.stats()
    assert (stats.get_jobs_calls, stats.get_job_calls, stats.job_polls) == (1, 1, 4)
    assert stats.max_batch_size == 3 and stats.validation_errors == []
    assert [(name, n) for _, name, n in stats.requests] == [("GetJobs", 3), ("GetJob", 1)]
    sim.reset_stats()
    assert sim.stats().graphql_requests == 0


def test_set_remove_and_script_jobs(sim: DatasaurSimulator) -> None:
    sim.set_job("j", "IN_PROGRESS", 40)
    assert sim.job("j") is not None
    sim.remove_job("j")
    assert sim.job("j") is None and job_status(sim, "j") is None
    sim.script_job("s", [(0, "QUEUED", 0), (0.1, "IN_PROGRESS", 50), (0.2, "FAILED", 50)])
    assert job_status(sim, "s") == "QUEUED"
    wait_until(lambda: job_status(sim, "s") == "FAILED", 3)
    job = sim.job("s")
    assert job is not None and job["errors"]
    with pytest.raises(ValueError):
        sim.set_job("x", "DONE")


def test_auto_jobs_finish_on_their_own() -> None:
    with DatasaurSimulator(static_token=TOKEN, auto_jobs=True, auto_finish_after=0.3) as sim:
        assert job_status(sim, "job-1") == "QUEUED"
        assert job_status(sim, "job-fail-2") == "QUEUED"
        wait_until(lambda: job_status(sim, "job-1") == "DELIVERED", 3)
        wait_until(lambda: job_status(sim, "job-fail-2") == "FAILED", 3)


@pytest.mark.parametrize(
    ("kind", "status", "content_type"),
    [
        ("http_500", 500, "text/plain"),
        ("http_503", 503, "text/plain"),
        ("http_429", 429, "text/plain"),
        ("non_json", 200, "text/html"),
        ("http_401", 401, "application/json"),
    ],
)
def test_http_faults(sim: DatasaurSimulator, kind: str, status: int, content_type: str) -> None:
    sim.inject(kind)
    answer = get_job(sim, "j")
    assert answer.status_code == status
    assert answer.headers["Content-Type"] == content_type
    assert get_job(sim, "j").status_code == 200


def test_retry_after_and_fifo_counts(sim: DatasaurSimulator) -> None:
    sim.inject("http_429", 2, retry_after="7")
    sim.inject("http_500")
    assert [get_job(sim, "j").headers.get("Retry-After") for _ in range(2)] == ["7", "7"]
    assert [get_job(sim, "j").status_code for _ in range(2)] == [500, 200]
    assert sim.stats().graphql_requests == 4


@pytest.mark.parametrize(
    ("kind", "code"),
    [("graphql_error", "INTERNAL_SERVER_ERROR"), ("unauthenticated", "UNAUTHENTICATED")],
)
def test_graphql_level_faults(sim: DatasaurSimulator, kind: str, code: str) -> None:
    sim.inject(kind)
    body = get_job(sim, "j").json()
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == code


def test_hang_and_close(sim: DatasaurSimulator) -> None:
    sim.inject("hang", delay=0.3)
    started = time.monotonic()
    assert get_job(sim, "j").status_code == 200
    assert time.monotonic() - started >= 0.3
    sim.inject("close")
    with pytest.raises(requests.ConnectionError):
        get_job(sim, "j")
    sim.inject("hang", delay=0.1)
    sim.clear_faults()
    assert get_job(sim, "j").status_code == 200
    with pytest.raises(ValueError):
        sim.inject("explode")


def test_stop_interrupts_a_hang() -> None:
    sim = DatasaurSimulator(static_token=TOKEN)
    sim.start()
    sim.inject("hang", delay=30)
    stopper = threading.Timer(0.2, sim.stop)
    stopper.start()
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        get_job(sim, "j")
    assert time.monotonic() - started < 5
    stopper.join()


def test_failing_job(sim: DatasaurSimulator) -> None:
    sim.set_job("ok", "DELIVERED")
    sim.fail_job("bad", "kaput")
    batch = post_graphql(sim, GET_JOBS, {"jobIds": ["ok", "bad"]}).json()
    assert batch["data"] is None and batch["errors"][0]["message"] == "kaput"
    single = get_job(sim, "bad").json()
    assert single["data"] == {"result": None} and single["errors"][0]["message"] == "kaput"
    assert sim.stats().validation_errors == []
    sim.clear_faults()
    assert (
        post_graphql(sim, GET_JOBS, {"jobIds": ["ok", "bad"]}).json()["data"]["result"][1] is None
    )


def test_token_faults(sim: DatasaurSimulator) -> None:
    sim.inject_token("http_500")
    sim.inject_token("http_401")
    assert [fetch_token(sim).status_code for _ in range(3)] == [500, 401, 200]


def test_control_api(sim: DatasaurSimulator) -> None:
    put = requests.put(
        f"{sim.url}/_sim/jobs/Queue%3A1", json={"status": "IN_PROGRESS", "progress": 5}, timeout=5
    )
    assert put.json()["status"] == "IN_PROGRESS" and sim.job("Queue:1") is not None
    jobs = [{"id": f"b{i}", "status": "DELIVERED", "progress": 100} for i in range(3)]
    assert requests.post(f"{sim.url}/_sim/jobs", json={"jobs": jobs}, timeout=5).ok
    assert requests.get(f"{sim.url}/_sim/jobs/b2", timeout=5).json()["status"] == "DELIVERED"
    assert requests.get(f"{sim.url}/_sim/jobs/none", timeout=5).status_code == 404
    fault = {"kind": "http_429", "count": 1, "retry_after": "3"}
    assert requests.post(f"{sim.url}/_sim/faults", json=fault, timeout=5).ok
    assert get_job(sim, "b1").headers["Retry-After"] == "3"
    stats = requests.get(f"{sim.url}/_sim/stats", timeout=5).json()
    assert stats["graphql_requests"] == 1 and stats["requests"][0][1] == "GetJob"
    bad = requests.post(f"{sim.url}/_sim/faults", json={"kind": "nope"}, timeout=5)
    assert bad.status_code == 400
    assert (
        requests.put(f"{sim.url}/_sim/jobs/x", json={"status": "??"}, timeout=5).status_code == 400
    )
    assert requests.get(f"{sim.url}/elsewhere", timeout=5).status_code == 404


def test_control_api_breaks_fails_and_revokes(sim: DatasaurSimulator) -> None:
    """The fault modes a test driving ``simulate`` from another process can turn on."""
    for job_id in ("a", "b"):
        sim.set_job(job_id, "IN_PROGRESS", 5)
    control = f"{sim.url}/_sim/"
    assert requests.post(control + "broken", json={"id": "b", "message": "b?"}, timeout=5).ok
    answer = post_graphql(sim, GET_JOBS, {"jobIds": ["a", "b"]}).json()
    assert answer["data"]["result"][1] is None and answer["errors"][0]["path"][:2] == ["result", 1]
    assert requests.post(control + "failing", json={"id": "a"}, timeout=5).ok
    assert post_graphql(sim, GET_JOBS, {"jobIds": ["a"]}).json()["data"] is None
    with DatasaurSimulator(auth_failure_status=200) as other:
        token = fetch_token(other).json()["access_token"]
        assert requests.post(f"{other.url}/_sim/revoke", timeout=5).ok
        refused = get_job(other, "j", token)
        assert refused.status_code == 200 and refused.json()["errors"][0]["message"] == (
            "Unauthorized"
        )


def test_stop_closes_keep_alive_connections() -> None:
    sim = DatasaurSimulator(static_token=TOKEN)
    sim.start()
    with requests.Session() as session:
        assert session.get(f"{sim.url}/_sim/stats", timeout=5).ok
        sim.stop()
        with pytest.raises(requests.ConnectionError):
            session.get(f"{sim.url}/_sim/stats", timeout=5)


def test_answers_are_shaped_like_the_real_servers(sim: DatasaurSimulator) -> None:
    sim.set_job("CabinetReplicationJobQueue:d9163a07", "QUEUED")
    answer = get_job(sim, "CabinetReplicationJobQueue:d9163a07").json()
    assert answer["extensions"] == {}
    job = answer["data"]["result"]
    assert job["errors"] == [] and job["progress"] == 0 and job["resultId"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", job["createdAt"])
    assert job["updatedAt"] == job["createdAt"]
    extra = (
        "query A($id: String!) "
        "{ result: getJob(jobId: $id) { additionalData { automationActivityId } } }"
    )
    assert post_graphql(sim, extra, {"id": "x"}).json()["data"] == {"result": None}
    job_id = "CabinetReplicationJobQueue:d9163a07"
    assert post_graphql(sim, extra, {"id": job_id}).json()["data"]["result"] == {
        "additionalData": None
    }
    sim.set_job("AutoLabelQueue:1", "DELIVERED", 100, additional_data={"automationActivityId": "7"})
    automated = post_graphql(sim, extra, {"id": "AutoLabelQueue:1"}).json()["data"]["result"]
    assert automated == {"additionalData": {"automationActivityId": "7"}}


def test_legacy_schema_has_only_the_old_fields() -> None:
    with DatasaurSimulator(static_token=TOKEN, legacy_schema=True) as legacy:
        assert legacy.job_fields == ["id", "status", "progress", "errors", "resultId", "result"]
        rejected = get_job(legacy, "j").json()
        codes = {error["extensions"]["code"] for error in rejected["errors"]}
        assert codes == {"GRAPHQL_VALIDATION_FAILED"} and "data" not in rejected
        messages = legacy.stats().validation_errors
        assert messages == [
            "Cannot query field 'createdAt' on type 'Job'.",
            "Cannot query field 'updatedAt' on type 'Job'.",
        ]
        old = "query O($id: String!) { result: getJob(jobId: $id) { id status progress result } }"
        legacy.set_job("j", "DELIVERED", 100, result={"rows": 3})
        assert post_graphql(legacy, old, {"id": "j"}).json()["data"]["result"]["result"] == {
            "rows": 3
        }


def test_unauthorized_fault_is_http_200(sim: DatasaurSimulator) -> None:
    sim.inject("unauthorized")
    answer = get_job(sim, "j")
    assert answer.status_code == 200
    assert answer.json()["errors"][0] == {
        "message": "Unauthorized",
        "extensions": {"type": "AuthenticationError"},
    }
    assert get_job(sim, "j").json()["data"] == {"result": None}


def test_broken_job_is_a_null_entry_with_an_error_pointing_at_it(sim: DatasaurSimulator) -> None:
    for job_id in ("a", "b", "c", "d"):
        sim.set_job(job_id, "IN_PROGRESS", 5)
    sim.break_job("d", "cannot load job d")
    answer = post_graphql(sim, GET_JOBS, {"jobIds": ["a", "b", "c", "d"]}).json()
    jobs = answer["data"]["result"]
    assert [job and job["id"] for job in jobs] == ["a", "b", "c", None]
    (error,) = answer["errors"]
    assert error["message"] == "cannot load job d" and error["path"][:2] == ["result", 3]


def test_quirks_omit_unknown_ids_and_reverse_the_order(sim: DatasaurSimulator) -> None:
    sim.set_job("a", "QUEUED")
    sim.set_job("b", "QUEUED")
    sim.set_quirks(unknown_ids="omit", order="reversed")
    jobs = post_graphql(sim, GET_JOBS, {"jobIds": ["a", "ghost", "b"]}).json()["data"]["result"]
    assert [job["id"] for job in jobs] == ["b", "a"]
    reply = requests.post(f"{sim.url}/_sim/quirks", json={"order": "sideways"}, timeout=5)
    assert reply.status_code == 400 and "order" in reply.json()["error"]
    requests.post(
        f"{sim.url}/_sim/quirks", json={"unknown_ids": "null", "order": "asked"}, timeout=5
    )
    jobs = post_graphql(sim, GET_JOBS, {"jobIds": ["a", "ghost", "b"]}).json()["data"]["result"]
    assert [job and job["id"] for job in jobs] == ["a", None, "b"]


def test_extra_statuses_can_be_served() -> None:
    with DatasaurSimulator(static_token=TOKEN, extra_statuses=["CANCELLED"]) as newer:
        newer.set_job("j", "CANCELLED")
        assert get_job(newer, "j").json()["data"]["result"]["status"] == "CANCELLED"
        with pytest.raises(ValueError, match="PAUSED"):
            newer.set_job("j", "PAUSED")
