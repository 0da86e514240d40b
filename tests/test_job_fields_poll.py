"""Issue 21 on the poll path: a job's own timeouts, job.at_risk from the estimate,
routes by label, labels and metadata read into events only when one is recorded, and
the deadline sweep's job.late (at most once; on PostgreSQL, once for two daemons)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from notifier.config import PollingSettings, parse_config
from notifier.jobfields import Deadline
from notifier.poller import Observation, Poller, decide
from notifier.recipients import Recipients, complete, late_event
from notifier.routing import Route, routed
from notifier.store import Instance, WatchedJob
from tests import test_store as contract
from tests.test_store import LEASE, Backend, spec
from tests.test_units import datasaur_job, watched

backend = contract.backend  # the store contract's fixtures: each test runs on both stores
store = contract.store

NOW = 1_700_000_000.0
POLLING = PollingSettings(interval=10, max_interval=80, expire_after=0, stall_after=0)
CONFIG = """
datasaur: {token: "%s"}
callbacks:
  hook: {type: webhook, url: "http://127.0.0.1:9/hook"}
  ml: {type: webhook, url: "http://127.0.0.1:9/ml"}
  ops: {type: webhook, url: "http://127.0.0.1:9/ops", events: [job.late, job.failed]}
routes:
  - {match: {team: ml}, notify: [ml], continue: true}
  - {match: {stage: export}, notify: [ops]}
  - {match: {team: ml}, notify: [hook]}
""" % ("x" * 40)


def run(job: WatchedJob, seen: Observation, now: float = NOW) -> Any:
    return decide(job, seen, now, POLLING, ("hook",), 1.0)


# --- the rule for one job --------------------------------------------------------------


def test_a_jobs_own_expire_after_overrides_pollings() -> None:
    running = Observation(job=datasaur_job("IN_PROGRESS", 10))
    assert run(watched(expire_after=50.0), running).state == "expired"
    never = PollingSettings(interval=10, max_interval=80, expire_after=50)
    kept = decide(watched(expire_after=0.0), running, NOW, never, ("hook",), 1.0)
    assert kept.state == "watching"  # 0: never, whatever polling says


def test_a_jobs_own_stall_after_overrides_pollings() -> None:
    job = watched(status="IN_PROGRESS", progress=10, changed_at=NOW - 120, stall_after=60.0)
    update = run(job, Observation(job=datasaur_job("IN_PROGRESS", 10)))
    assert [event.event for event in update.events] == ["job.stalled"]


def slow(**fields: Any) -> WatchedJob:
    """A job at 20 % that gained 10 points in 100 s: its estimate is NOW + 800."""
    return watched(status="IN_PROGRESS", progress=10, baseline_at=NOW - 100, baseline_progress=10,
                   changed_at=NOW - 100, **fields)  # fmt: skip


def test_at_risk_when_the_estimate_passes_the_deadline() -> None:
    update = run(slow(deadline=NOW + 300), Observation(job=datasaur_job("IN_PROGRESS", 20)))
    [event] = update.events
    assert (event.event, update.at_risk) == ("job.at_risk", True)
    assert event.payload["data"]["eta"] == "2023-11-14T22:26:40.000Z"  # NOW + 800
    assert event.payload["data"]["deadline"] == "2023-11-14T22:18:20.000Z"  # NOW + 300


@pytest.mark.parametrize(
    "fields",
    [
        {"deadline": NOW + 900},  # the estimate is before it
        {"deadline": NOW - 1},  # passed: job.late's business
        {"deadline": NOW + 300, "at_risk_at": NOW - 10},  # already said
        {"deadline": NOW + 300, "late_at": NOW - 10},  # never after job.late
        {},  # no deadline
    ],
)
def test_no_at_risk(fields: dict[str, Any]) -> None:
    update = run(slow(**fields), Observation(job=datasaur_job("IN_PROGRESS", 20)))
    assert (update.events, update.at_risk) == ([], False)


# --- routes ----------------------------------------------------------------------------


def test_routes_first_match_and_continue() -> None:
    routes = parse_config(CONFIG).routes
    assert routed(routes, {"team": "ml"}) == ["ml", "hook"]  # continue: the next matching
    assert routed(routes, {"team": "ml", "stage": "export"}) == ["ml", "ops"]
    assert routed(routes, {"stage": "export"}) == ["ops"]
    assert routed(routes, {"team": "web"}) is None


def test_recipients_explicit_notify_wins_and_none_matching_is_everyone() -> None:
    recipients = Recipients.of(parse_config(CONFIG))
    assert recipients.targets(watched(notify=("hook",)), {"team": "ml"}) == ["hook"]
    assert recipients.targets(watched(), {"team": "web"}) == ["hook", "ml", "ops"]
    assert recipients.targets(watched(), {"stage": "export"}) == ["ops"]
    own = watched(callback_url="https://example.com/cb/1")
    assert recipients.targets(own, {"stage": "export"}) == ["ops", "url:https://example.com:443"]
    assert recipients.accepting(["hook", "ops"], "job.delivered") == ["hook"]


def test_route_continue_must_be_a_boolean() -> None:
    with pytest.raises(ValueError, match="continue"):
        Route.model_validate({"match": {"a": "b"}, "notify": ["x"], "continue": "maybe"})


# --- against the stores ----------------------------------------------------------------


def poller(store: Any, text: str = CONFIG) -> Poller:
    return Poller(store, parse_config(text))


def test_events_carry_labels_and_metadata_and_go_where_routes_say(store: Any) -> None:
    now = time.time()
    metadata = {"run": "r-17", "opaque": {"z": [1, "two"], "a": None}}
    store.watch(spec("AutoLabelQueue:1", labels={"team": "ml"}, metadata=metadata,
                     group="nightly", deadline="1h"), now)  # fmt: skip
    store.watch(spec("AutoLabelQueue:2"), now)
    jobs = store.claim_jobs(now + 1, 10)
    assert {job.labels for job in jobs} == {None}  # not on the claim
    recipients = poller(store).recipients
    updates = [
        decide(job, Observation(job=datasaur_job("DELIVERED", 100)), now, POLLING,
               recipients.targets(job), 1.0, recipients.filters)
        for job in jobs
    ]  # fmt: skip
    done = complete(updates, {job.id: job for job in jobs}, store, recipients)
    first, second = (update.events[0] for update in done)
    assert first.payload["data"]["labels"] == {"queue": "AutoLabelQueue", "team": "ml"}
    assert first.payload["data"]["metadata"] == metadata
    assert first.payload["data"]["group"] == "nightly"
    assert first.payload["data"]["deadline"].endswith("Z")
    assert list(first.callbacks) == ["ml", "hook"]  # routed by team=ml
    assert second.payload["data"]["labels"] == {"queue": "AutoLabelQueue"}
    assert second.payload["data"]["metadata"] == {}
    assert list(second.callbacks) == ["hook", "ml"]  # no route: every callback taking it
    store.apply_polls(done)
    assert {d.callback for d in store.deliveries(job_id="AutoLabelQueue:1")} == {"ml", "hook"}


def test_at_risk_is_recorded_with_the_poll(store: Any) -> None:
    now = time.time()
    store.watch(spec("J", deadline="5m"), now)
    [job] = store.claim_jobs(now + 1, 10)
    job = job._replace(status="IN_PROGRESS", progress=10, baseline_at=now - 100,
                       baseline_progress=10, changed_at=now - 100)  # fmt: skip
    update = run(job, Observation(job=datasaur_job("IN_PROGRESS", 20)), now)
    assert update.at_risk
    store.apply_polls([update])
    [stored] = store.jobs(job_id="J")
    assert stored.at_risk_at is not None and abs(stored.at_risk_at - now) < 1
    assert [d.event for d in store.deliveries(job_id="J")] == ["job.at_risk"]


def past_deadline(job_id: str, now: float, **fields: Any) -> Any:
    return spec(job_id, deadline=Deadline(at=now - 5), **fields)


def test_the_sweep_records_job_late_once_without_a_poll(store: Any) -> None:
    now = time.time()
    store.watch(past_deadline("AutoLabelQueue:late", now, labels={"stage": "export"},
                              metadata={"run": 1}), now)  # fmt: skip
    store.watch(spec("AutoLabelQueue:later", deadline="1h"), now)
    sweeper = poller(store)
    assert sweeper.sweep_deadlines(now) == 1
    assert sweeper.sweep_deadlines(now + 1) == 0  # at most once
    [delivery] = store.deliveries(job_id="AutoLabelQueue:late")
    assert (delivery.event, delivery.callback) == ("job.late", "ops")  # routed, filtered
    data = delivery.payload["data"]
    assert data["labels"] == {"queue": "AutoLabelQueue", "stage": "export"}
    assert (
        data["metadata"] == {"run": 1} and data["late_by_s"] > 4.5
    )  # PostgreSQL maps times through its clock
    [late] = store.jobs(job_id="AutoLabelQueue:late")
    assert late.late_at is not None and late.state == "watching"  # still polled
    assert store.deliveries(job_id="AutoLabelQueue:later") == []


def test_the_sweep_leaves_ended_jobs_alone(store: Any) -> None:
    now = time.time()
    store.watch(past_deadline("J", now), now)
    store.unwatch("J")
    assert poller(store).sweep_deadlines(now) == 0
    assert store.deliveries(job_id="J") == []


def test_two_daemons_sweeping_together_record_one_job_late(backend: Backend) -> None:
    if backend.kind != "postgres":
        pytest.skip("one daemon per SQLite file")
    first, second = backend.open(), backend.open(Instance("b", LEASE, "0"))
    now = time.time()
    for n in range(20):
        first.watch(past_deadline(f"J{n}", now), now)
    due_first, due_second = first.deadlines_due(now, 100), second.deadlines_due(now, 100)
    assert len(due_first) == len(due_second) == 20
    recipients = Recipients(("hook",), {})
    a = first.record_late([(j.id, [late_event(j, now, recipients)]) for j in due_first], now)
    b = second.record_late([(j.id, [late_event(j, now, recipients)]) for j in due_second], now)
    assert (a.created, len(b.refused), b.created) == (20, 20, 0)
    assert sum(len(first.deliveries(job_id=f"J{n}")) for n in range(20)) == 20
