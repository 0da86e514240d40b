"""Pure logic: durations, backoff, the poll decision, signing, templates, report tables."""

from __future__ import annotations

import email.utils
import json
import random
import re
from typing import Any

import pytest

from notifier import signing, templating
from notifier.backoff import exponential, parse_retry_after
from notifier.channels.webhook import WebhookChannel, WebhookSettings
from notifier.config import JobSpec, PollingSettings
from notifier.durations import format_duration, parse_duration, relative_time
from notifier.events import (
    EXPIRED_EVENT,
    build_payload,
    describe,
    event_type,
    isoformat,
    sample_payload,
)
from notifier.poller import NOT_FOUND, Observation, decide, jitter
from notifier.report import (
    deliveries_table,
    delivery_document,
    job_document,
    jobs_table,
    table,
)
from notifier.store import Delivery, WatchedJob, updated_at_of
from notifier.store.rows import is_quiet

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

# --- durations -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("0.3s", 0.3),
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("7d", 604800.0),
        ("1.5", 1.5),
        (".5s", 0.5),
        (" 10 s ", 10.0),
        (10, 10.0),
        (0.2, 0.2),
        (0, 0.0),
    ],
)
def test_parse_duration_accepts_numbers_and_units(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "abc", "5x", "5 minutes", "-1s", "1e3", None, True, [], "s"])
def test_parse_duration_rejects_garbage(bad: object) -> None:
    with pytest.raises(ValueError, match=r"duration|negative"):
        parse_duration(bad)


def test_parse_duration_rejects_negative_numbers() -> None:
    with pytest.raises(ValueError, match="negative"):
        parse_duration(-1)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.45, "450ms"), (25, "25s"), (59.4, "59s"), (180, "3m"), (7200, "2h"), (4 * 86400, "4d")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_relative_time() -> None:
    assert relative_time(None, 100) == "-"
    assert relative_time(100.4, 100) == "now"
    assert relative_time(99.6, 100) == "0s ago"  # just happened: still in the past
    assert relative_time(125, 100) == "in 25s"
    assert relative_time(100 - 180, 100) == "3m ago"


# --- backoff -------------------------------------------------------------------------


@pytest.mark.parametrize("failures", [1, 2, 3, 5, 10])
def test_exponential_backoff_doubles_with_jitter(failures: int) -> None:
    rng = random.Random(failures)
    base = 2.0 * 2 ** (failures - 1)
    for _ in range(50):
        delay = exponential(failures, 2.0, 1e9, rng)
        assert 0.75 * base <= delay <= base


def test_exponential_backoff_is_capped_and_never_overflows() -> None:
    rng = random.Random(1)
    for failures in (20, 100, 10_000):
        delay = exponential(failures, 5.0, 3600.0, rng)
        assert 0.75 * 3600 <= delay <= 3600
    # zero or negative failure counts behave like the first failure
    assert 0.75 * 5 <= exponential(0, 5.0, 3600.0, rng) <= 5


def test_exponential_backoff_jitter_spreads_senders() -> None:
    rng = random.Random(7)
    delays = {round(exponential(3, 1.0, 60.0, rng), 6) for _ in range(20)}
    assert len(delays) > 10


def test_parse_retry_after() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("", now) is None
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(" 7 ", now) == 7.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now) == pytest.approx(30, abs=1)
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after(past, now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-5", now) is None


# --- the poll decision ---------------------------------------------------------------

POLLING = PollingSettings(interval=10, max_interval=80, expire_after=1000)
NOW = 1_700_000_000.0
TARGETS = ("hook", "mail")


def watched(**fields: Any) -> WatchedJob:
    row: dict[str, Any] = {
        "id": "AutoLabelQueue:1",
        "name": "batch 12",
        "notify": None,
        "on_status": ("DELIVERED", "FAILED"),
        "source": "config",
        "state": "watching",
        "status": None,
        "progress": None,
        "stored_job": None,
        "registered_at": NOW - 100,
        "last_polled_at": None,
        "next_poll_at": NOW,
        "poll_interval": None,
        "last_error": None,
    }
    if "job" in fields:  # stored as the daemon stores it
        job = fields.pop("job")
        row.update(stored_job=json.dumps(job), job_updated_at=updated_at_of(job))
    row.update(fields)
    return WatchedJob(**row)


def datasaur_job(status: str, progress: int | None = 50, **extra: Any) -> dict[str, Any]:
    job = {
        "id": "AutoLabelQueue:1",
        "status": status,
        "progress": progress,
        "errors": None,
        "resultId": None,
        "createdAt": "2024-01-01T00:00:00.000Z",
        "updatedAt": "2024-01-01T00:01:00.000Z",
        "result": None,
    }
    job.update(extra)
    return job


def run_decide(job: WatchedJob, seen: Observation, now: float = NOW, polling: Any = POLLING):
    return decide(job, seen, now, polling, TARGETS, 1.0)


def test_first_poll_uses_the_base_interval_with_spread() -> None:
    update = run_decide(watched(), Observation(job=datasaur_job("IN_PROGRESS")))
    assert update.state == "watching"
    assert (update.status, update.progress) == ("IN_PROGRESS", 50)
    assert update.poll_interval == 10
    assert update.next_poll_at is not None
    assert NOW + 8 <= update.next_poll_at <= NOW + 10
    assert update.events == []
    assert update.last_error is None
    assert update.polled_at == NOW


def test_unchanged_job_is_polled_less_often_up_to_max_interval() -> None:
    job = watched(status="IN_PROGRESS", progress=50, poll_interval=10)
    intervals = []
    for _ in range(5):
        update = run_decide(job, Observation(job=datasaur_job("IN_PROGRESS", 50)))
        intervals.append(update.poll_interval)
        job = watched(status="IN_PROGRESS", progress=50, poll_interval=update.poll_interval)
    assert intervals == [20, 40, 80, 80, 80]


@pytest.mark.parametrize(("status", "progress"), [("IN_PROGRESS", 60), ("QUEUED", 50)])
def test_any_change_resets_to_the_base_interval(status: str, progress: int) -> None:
    job = watched(status="IN_PROGRESS", progress=50, poll_interval=80)
    update = run_decide(job, Observation(job=datasaur_job(status, progress)))
    assert update.poll_interval == 10
    assert update.events == []


@pytest.mark.parametrize("status", ["DELIVERED", "FAILED"])
def test_terminal_status_fires_one_event_and_ends_the_watch(status: str) -> None:
    job = watched(status="IN_PROGRESS", progress=50, poll_interval=20)
    details = datasaur_job(status, 100, resultId="res-1")
    update = run_decide(job, Observation(job=details))
    assert update.state == "done"
    assert update.next_poll_at is None
    assert update.job == details
    [event] = update.events
    assert event.event == "job." + status.lower()
    assert list(event.callbacks) == list(TARGETS)
    assert event.payload == {
        "type": "job." + status.lower(),
        "timestamp": isoformat(NOW),
        "data": {
            "job_id": "AutoLabelQueue:1",
            "name": "batch 12",
            "status": status,
            "previous_status": "IN_PROGRESS",
            "progress": 100,
            "result_id": "res-1",
            "errors": None,
            "observed_at": isoformat(NOW),
            "job": details,
            "started_at": isoformat(NOW),  # first seen by this very poll
            "duration_s": 0.0,
            # Issue 21's registration fields (labels and metadata: read when recorded).
            "group": None,
            "labels": {},
            "metadata": {},
            "deadline": None,
        },
    }


def test_job_already_delivered_at_registration_fires() -> None:
    update = run_decide(watched(), Observation(job=datasaur_job("DELIVERED", 100)))
    assert update.state == "done"
    [event] = update.events
    assert event.event == "job.delivered"
    assert event.payload["data"]["previous_status"] is None


def test_terminal_status_not_in_on_status_ends_the_watch_silently() -> None:
    job = watched(on_status=("DELIVERED",), status="IN_PROGRESS", progress=10)
    update = run_decide(job, Observation(job=datasaur_job("FAILED", 10)))
    assert update.state == "done"
    assert update.events == []


def test_non_terminal_status_in_on_status_fires_once() -> None:
    job = watched(on_status=("IN_PROGRESS",), status="QUEUED", progress=0)
    first = run_decide(job, Observation(job=datasaur_job("IN_PROGRESS", 10)))
    assert [e.event for e in first.events] == ["job.in_progress"]
    assert first.state == "watching"
    again = watched(on_status=("IN_PROGRESS",), status="IN_PROGRESS", progress=10, poll_interval=10)
    second = run_decide(again, Observation(job=datasaur_job("IN_PROGRESS", 70)))
    assert second.events == []
    done = run_decide(again, Observation(job=datasaur_job("DELIVERED", 100)))
    assert (done.state, done.events) == ("done", [])


def test_event_goes_to_the_targets_given() -> None:
    update = decide(
        watched(notify=["hook"]),
        Observation(job=datasaur_job("DELIVERED", 100)),
        NOW,
        POLLING,
        ["hook"],
        1.0,
    )
    assert list(update.events[0].callbacks) == ["hook"]


def test_poll_error_keeps_what_was_known_and_is_asked_again_at_interval() -> None:
    job = watched(
        status="IN_PROGRESS", progress=40, job=datasaur_job("IN_PROGRESS", 40), poll_interval=10
    )
    update = run_decide(job, Observation(error="boom"))
    assert update.state == "watching"
    assert (update.status, update.progress) == ("IN_PROGRESS", 40)
    assert update.job is None  # the stored job stands
    assert update.last_error == "boom"
    assert update.poll_interval == POLLING.interval  # e.g. its entry nulled: not backed off
    assert update.events == []


def test_an_answer_with_nothing_new_is_a_quiet_poll() -> None:
    details = datasaur_job("IN_PROGRESS", 40)
    job = watched(status="IN_PROGRESS", progress=40, job=details, poll_interval=10)
    same = run_decide(job, Observation(job=dict(details)))
    assert same.job is None and is_quiet(same)  # the stored job stands, nothing re-encoded
    assert (same.status, same.progress, same.poll_interval) == ("IN_PROGRESS", 40, 20)
    touched = run_decide(job, Observation(job=details | {"updatedAt": "2024-01-01T00:02:00Z"}))
    assert touched.job == details | {"updatedAt": "2024-01-01T00:02:00Z"}
    assert not is_quiet(touched)
    assert touched.poll_interval == 20  # status and progress did not move: still backing off
    moved = run_decide(job, Observation(job=datasaur_job("IN_PROGRESS", 41)))
    assert moved.job == datasaur_job("IN_PROGRESS", 41) and moved.poll_interval == 10


def test_a_poll_that_moves_only_the_schedule_says_so() -> None:
    details = datasaur_job("IN_PROGRESS", 40)
    job = watched(status="IN_PROGRESS", progress=40, job=details, poll_interval=10,
                  changed_at=NOW - 50, started_at=NOW - 60, baseline_progress=40)  # fmt: skip
    same = run_decide(job, Observation(job=dict(details)))
    assert same.schedule_only and is_quiet(same)
    # the first poll after an upgrade starts the clocks: quiet, but not the schedule alone
    fresh = run_decide(job._replace(changed_at=None), Observation(job=dict(details)))
    assert is_quiet(fresh) and not fresh.schedule_only and fresh.changed_at == NOW
    # a new error is written; the same error again is a schedule change
    failed = run_decide(job, Observation(error="boom"))
    assert is_quiet(failed) and not failed.schedule_only
    again = run_decide(job._replace(last_error="boom"), Observation(error="boom"))
    assert again.schedule_only
    touched = run_decide(job, Observation(job=details | {"updatedAt": "2024-01-01T00:02:00Z"}))
    assert not touched.schedule_only


def test_a_first_answer_is_stored() -> None:
    update = run_decide(watched(), Observation(job=datasaur_job("QUEUED", 0)))
    assert update.job == datasaur_job("QUEUED", 0) and not is_quiet(update)


def test_unknown_job_is_polled_at_max_interval() -> None:
    update = run_decide(watched(), Observation(found=False))
    assert update.state == "watching"
    assert update.last_error == NOT_FOUND
    assert update.poll_interval == 80
    assert update.events == []


def test_job_that_never_ends_expires_with_an_event() -> None:
    job = watched(registered_at=NOW - 1000, status="IN_PROGRESS", progress=5)
    update = run_decide(job, Observation(job=datasaur_job("IN_PROGRESS", 6)))
    assert update.state == "expired"
    assert update.next_poll_at is None
    [event] = update.events
    assert event.event == EXPIRED_EVENT
    assert event.payload["type"] == "job.expired"
    assert event.payload["data"]["status"] == "IN_PROGRESS"


def test_unknown_job_expires_too() -> None:
    update = run_decide(watched(registered_at=NOW - 5000), Observation(found=False))
    assert update.state == "expired"
    assert [e.event for e in update.events] == [EXPIRED_EVENT]
    assert update.events[0].payload["data"]["job"] is None


def test_job_ending_at_the_expiry_deadline_is_done_not_expired() -> None:
    job = watched(registered_at=NOW - 5000, status="IN_PROGRESS", progress=5)
    update = run_decide(job, Observation(job=datasaur_job("DELIVERED", 100)))
    assert update.state == "done"
    assert [e.event for e in update.events] == ["job.delivered"]


def test_expire_after_zero_never_expires() -> None:
    polling = PollingSettings(interval=10, max_interval=80, expire_after=0)
    job = watched(registered_at=NOW - 10**9)
    update = run_decide(job, Observation(job=datasaur_job("QUEUED", 0)), polling=polling)
    assert update.state == "watching"
    assert update.events == []


def test_batches_spread_over_the_last_fifth_of_the_interval() -> None:
    rng = random.Random(3)
    spreads = [jitter(rng) for _ in range(200)]
    assert min(spreads) >= 0.8 and max(spreads) <= 1.0
    assert max(spreads) - min(spreads) > 0.1
    seen = Observation(job=datasaur_job("QUEUED"))
    update = decide(watched(), seen, NOW, POLLING, TARGETS, spreads[0])
    assert update.next_poll_at == NOW + 10 * spreads[0]


# --- per-callback event filters and stalled jobs (issue 11) ---------------------------

STALLING = PollingSettings(interval=10, max_interval=80, expire_after=0, stall_after=100)


def filtered(job: WatchedJob, seen: Observation, filters: dict[str, tuple[str, ...]]) -> Any:
    return decide(job, seen, NOW, POLLING, TARGETS, 1.0, filters)


def test_an_events_filter_keeps_an_event_from_the_callbacks_that_do_not_take_it() -> None:
    job = watched(status="IN_PROGRESS", progress=50)
    only_failures = {"mail": ("job.failed",)}
    delivered = filtered(job, Observation(job=datasaur_job("DELIVERED", 100)), only_failures)
    assert [list(e.callbacks) for e in delivered.events] == [["hook"]]
    failed = filtered(job, Observation(job=datasaur_job("FAILED", 100)), only_failures)
    assert [list(e.callbacks) for e in failed.events] == [["hook", "mail"]]


def test_an_events_filter_applies_to_expiry_too() -> None:
    job = watched(registered_at=NOW - 5000, status="IN_PROGRESS", progress=5)
    update = filtered(job, Observation(found=False), {"hook": ("job.failed",)})
    assert update.state == "expired"
    [event] = update.events
    assert (event.event, list(event.callbacks)) == ("job.expired", ["mail"])


def test_a_filter_on_a_callback_the_job_does_not_notify_changes_nothing() -> None:
    job = watched(notify=["hook"])
    update = decide(
        job,
        Observation(job=datasaur_job("DELIVERED", 100)),
        NOW,
        POLLING,
        ["hook"],
        1.0,
        {"mail": ("job.failed",)},
    )
    assert list(update.events[0].callbacks) == ["hook"]


def stall_poll(job: WatchedJob, seen: Observation, now: float = NOW, **kw: Any) -> Any:
    return decide(job, seen, now, STALLING, TARGETS, 1.0, kw.get("filters"))


def test_the_first_answer_starts_the_stall_clock() -> None:
    update = stall_poll(watched(), Observation(job=datasaur_job("QUEUED", 0)))
    assert (update.changed_at, update.stalls, update.stalled, update.events) == (NOW, 0, False, [])
    # a job that was watched before stall tracking existed: its clock starts now too
    known = watched(status="IN_PROGRESS", progress=50, poll_interval=80)
    update = stall_poll(known, Observation(job=datasaur_job("IN_PROGRESS", 50)))
    assert (update.changed_at, update.events) == (NOW, [])


def test_a_job_unchanged_for_stall_after_fires_job_stalled_once() -> None:
    job = watched(status="IN_PROGRESS", progress=50, poll_interval=80, changed_at=NOW - 99)
    assert stall_poll(job, Observation(job=datasaur_job("IN_PROGRESS", 50))).events == []
    job = watched(status="IN_PROGRESS", progress=50, poll_interval=80, changed_at=NOW - 130)
    update = stall_poll(job, Observation(job=datasaur_job("IN_PROGRESS", 50)))
    assert (update.state, update.changed_at, update.stalls, update.stalled) == (
        "watching",
        NOW - 130,
        1,
        True,
    )
    [event] = update.events
    assert (event.event, event.occurrence, list(event.callbacks)) == (
        "job.stalled",
        1,
        ["hook", "mail"],
    )
    data = event.payload["data"]
    assert event.payload["type"] == "job.stalled"
    assert data["stalled_for_s"] == 130
    assert data["stalled_since"] == isoformat(NOW - 130)
    assert (data["status"], data["previous_status"], data["progress"]) == ("IN_PROGRESS",) * 2 + (
        50,
    )
    # the next poll of the same stall adds nothing
    again = watched(
        status="IN_PROGRESS",
        progress=50,
        poll_interval=80,
        changed_at=NOW - 130,
        stalls=1,
        stalled=True,
    )
    later = stall_poll(again, Observation(job=datasaur_job("IN_PROGRESS", 50)), NOW + 500)
    assert (later.events, later.stalls, later.stalled) == ([], 1, True)


def test_a_job_that_moves_and_stalls_again_fires_a_second_occurrence() -> None:
    stalled = watched(
        status="IN_PROGRESS",
        progress=50,
        poll_interval=80,
        changed_at=NOW - 500,
        stalls=1,
        stalled=True,
    )
    moved = stall_poll(stalled, Observation(job=datasaur_job("IN_PROGRESS", 60)))
    assert (moved.changed_at, moved.stalls, moved.stalled, moved.events) == (NOW, 1, False, [])
    quiet = watched(
        status="IN_PROGRESS",
        progress=60,
        poll_interval=10,
        changed_at=NOW,
        stalls=1,
        stalled=False,
    )
    update = stall_poll(quiet, Observation(job=datasaur_job("IN_PROGRESS", 60)), NOW + 100)
    [event] = update.events
    assert (event.event, event.occurrence, update.stalls) == ("job.stalled", 2, 2)
    assert event.payload["data"]["stalled_for_s"] == 100


def test_no_stall_without_an_answer_after_the_end_or_with_stall_after_zero() -> None:
    old = {"status": "IN_PROGRESS", "progress": 50, "poll_interval": 80, "changed_at": NOW - 500}
    for seen in (Observation(error="boom"), Observation(found=False)):
        update = stall_poll(watched(**old), seen)
        assert (update.events, update.stalled, update.changed_at) == ([], False, NOW - 500)
    done = stall_poll(
        watched(**old), Observation(job=datasaur_job("IN_PROGRESS", 50) | {"status": "FAILED"})
    )
    assert [e.event for e in done.events] == ["job.failed"]
    off = decide(
        watched(**old),
        Observation(job=datasaur_job("IN_PROGRESS", 50)),
        NOW,
        POLLING,
        TARGETS,
        1.0,
    )
    assert off.events == [] and not off.stalled


def test_job_stalled_goes_through_the_events_filters() -> None:
    job = watched(status="IN_PROGRESS", progress=50, poll_interval=80, changed_at=NOW - 500)
    update = stall_poll(
        job, Observation(job=datasaur_job("IN_PROGRESS", 50)), filters={"hook": ("job.failed",)}
    )
    assert [(e.event, list(e.callbacks)) for e in update.events] == [("job.stalled", ["mail"])]


def test_describe_a_stall() -> None:
    payload = build_payload(
        "job.stalled",
        job_id="AutoLabelQueue:1",
        name="batch 12",
        job=datasaur_job("IN_PROGRESS", 40),
        previous_status="IN_PROGRESS",
        observed_at=NOW,
        extra={"stalled_for_s": 7300.0, "stalled_since": isoformat(NOW - 7300)},
    )
    assert describe(payload) == "batch 12: STALLED (IN_PROGRESS, no change for 2h)"


# --- events --------------------------------------------------------------------------


def test_event_names_and_times() -> None:
    assert event_type("DELIVERED") == "job.delivered"
    assert event_type("IN_PROGRESS") == "job.in_progress"
    assert isoformat(0) == "1970-01-01T00:00:00.000Z"
    assert ISO_UTC.match(isoformat(NOW + 0.1234))


def test_payload_without_a_job_object() -> None:
    payload = build_payload(
        "job.expired", job_id="j", name=None, job=None, previous_status="QUEUED", observed_at=NOW
    )
    assert payload["data"] == {
        "job_id": "j",
        "name": None,
        "status": None,
        "previous_status": "QUEUED",
        "progress": None,
        "result_id": None,
        "errors": None,
        "observed_at": isoformat(NOW),
        "job": None,
        "group": None,
        "labels": {},
        "metadata": {},
        "deadline": None,
    }
    assert describe(payload) == "j: EXPIRED"


def test_describe_prefers_the_name() -> None:
    payload = sample_payload(NOW)
    assert describe(payload) == "sample job: DELIVERED"
    payload["data"]["name"] = None
    assert describe(payload) == payload["data"]["job_id"] + ": DELIVERED"


# --- signing -------------------------------------------------------------------------

# The example from the Standard Webhooks specification's reference implementations.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def spec_headers(signature: str = SPEC_SIGNATURE) -> dict[str, str]:
    return {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": signature,
    }


def test_sign_matches_the_standard_webhooks_reference_vector() -> None:
    assert signing.sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_verify_accepts_a_valid_signature_among_several() -> None:
    signing.verify(SPEC_SECRET, spec_headers(), SPEC_BODY, now=SPEC_TIMESTAMP + 10)
    several = "v1,bm90LXRoaXMtb25l " + SPEC_SIGNATURE
    signing.verify(SPEC_SECRET, spec_headers(several), SPEC_BODY, now=SPEC_TIMESTAMP)


ROTATED_SECRET = "whsec_" + "TkVXLXNpZ25pbmcta2V5LTAxMjM0NTY3ODlhYmNkZWY="


def test_sign_all_gives_one_signature_per_secret_each_verifiable_alone() -> None:
    header = signing.sign_all([ROTATED_SECRET, SPEC_SECRET], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    new, old = header.split(" ")
    assert old == SPEC_SIGNATURE
    assert new == signing.sign(ROTATED_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    assert new.startswith("v1,") and new != old
    for secret in (ROTATED_SECRET, SPEC_SECRET):
        signing.verify(secret, spec_headers(header), SPEC_BODY, now=SPEC_TIMESTAMP)
    with pytest.raises(signing.InvalidSignature):
        signing.verify("whsec_" + "QUJD" * 8, spec_headers(header), SPEC_BODY, now=SPEC_TIMESTAMP)


def test_webhook_with_two_secrets_sends_two_signatures() -> None:
    settings = WebhookSettings.model_validate(
        {"type": "webhook", "url": "http://x", "secret": [ROTATED_SECRET, SPEC_SECRET]}
    )
    channel = WebhookChannel("hook", settings, timeout=1)
    headers = channel.headers(SPEC_ID, SPEC_BODY, SPEC_TIMESTAMP)
    assert headers["webhook-signature"] == signing.sign_all(
        [ROTATED_SECRET, SPEC_SECRET], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY
    )
    single = WebhookSettings.model_validate(
        {"type": "webhook", "url": "http://x", "secret": SPEC_SECRET}
    )
    one = WebhookChannel("hook", single, timeout=1).headers(SPEC_ID, SPEC_BODY, SPEC_TIMESTAMP)
    assert one["webhook-signature"] == SPEC_SIGNATURE


@pytest.mark.parametrize(
    ("secret", "headers", "body", "now"),
    [
        (SPEC_SECRET, spec_headers(), b'{"test": 2432232315}', SPEC_TIMESTAMP),
        ("whsec_" + "QUJD" * 8, spec_headers(), SPEC_BODY, SPEC_TIMESTAMP),
        (SPEC_SECRET, spec_headers(), SPEC_BODY, SPEC_TIMESTAMP + 301),
        (SPEC_SECRET, spec_headers(), SPEC_BODY, SPEC_TIMESTAMP - 301),
        (SPEC_SECRET, {**spec_headers(), "webhook-id": "msg_other"}, SPEC_BODY, SPEC_TIMESTAMP),
        (SPEC_SECRET, {"webhook-id": SPEC_ID}, SPEC_BODY, SPEC_TIMESTAMP),
        (SPEC_SECRET, {**spec_headers(), "webhook-timestamp": "x"}, SPEC_BODY, SPEC_TIMESTAMP),
    ],
    ids=["body", "secret", "late", "early", "id", "missing", "timestamp"],
)
def test_verify_rejects(secret: str, headers: dict[str, str], body: bytes, now: float) -> None:
    with pytest.raises(signing.InvalidSignature):
        signing.verify(secret, headers, body, now=now)


@pytest.mark.parametrize(
    "secret", ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_!!not-b64"]
)
def test_decode_secret_rejects_malformed_secrets(secret: str) -> None:
    with pytest.raises(signing.InvalidSecret):
        signing.decode_secret(secret)


# --- templating ----------------------------------------------------------------------


def test_text_template_sees_payload_and_data_keys() -> None:
    payload = sample_payload(NOW)
    text = templating.render_text("{{ type }} {{ name }} {{ data.status }} {{ progress }}", payload)
    assert text == "test sample job DELIVERED 100"


def test_json_template_escapes_values_so_they_cannot_break_out() -> None:
    payload = sample_payload(NOW)
    payload["data"]["name"] = 'evil", "injected": "yes'
    body = templating.render_json('{"text": "{{ name }} is {{ status }}"}', payload)
    assert json.loads(body) == {"text": 'evil", "injected": "yes is DELIVERED'}


@pytest.mark.parametrize(
    "source",
    [
        "{{ no_such_variable }}",
        "{{ name ",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    ],
    ids=["undefined", "syntax", "sandbox"],
)
def test_bad_templates_are_template_problems(source: str) -> None:
    with pytest.raises(templating.TemplateProblem):
        templating.render_text(source, sample_payload(NOW))


def test_json_template_must_render_json() -> None:
    with pytest.raises(templating.TemplateProblem, match="JSON"):
        templating.render_json("job {{ job_id }} done", sample_payload(NOW))


# --- report --------------------------------------------------------------------------

STATUS_KEYS = {
    "id",
    "name",
    "status",
    "progress",
    "state",
    "last_polled_at",
    "next_poll_at",
    "last_error",
}
DELIVERY_KEYS = {
    "id",
    "job_id",
    "callback",
    "event",
    "state",
    "attempts",
    "last_error",
    "created_at",
    "delivered_at",
}


def a_delivery(**fields: Any) -> Delivery:
    row: dict[str, Any] = {
        "id": "msg_1",
        "job_id": "AutoLabelQueue:1",
        "callback": "hook",
        "event": "job.delivered",
        "payload": {},
        "state": "delivered",
        "attempts": 1,
        "last_error": None,
        "created_at": NOW - 60,
        "queued_at": NOW - 60,
        "next_attempt_at": None,
        "delivered_at": NOW - 30,
    }
    row.update(fields)
    return Delivery(**row)


def test_job_document_has_the_contract_keys() -> None:
    job = watched(status="IN_PROGRESS", progress=40, last_polled_at=NOW, next_poll_at=NOW + 5)
    document = job_document(job)
    assert set(document) >= STATUS_KEYS
    assert document["state"] == "watching"
    assert document["status"] == "IN_PROGRESS"
    assert document["last_polled_at"] == isoformat(NOW)
    assert document["next_poll_at"] == isoformat(NOW + 5)
    assert job_document(watched())["last_polled_at"] is None


def test_delivery_document_has_the_contract_keys() -> None:
    document = delivery_document(a_delivery())
    assert set(document) >= DELIVERY_KEYS
    assert document["id"] == "msg_1"
    assert document["created_at"] == isoformat(NOW - 60)
    assert document["delivered_at"] == isoformat(NOW - 30)


def test_table_aligns_columns() -> None:
    text = table(["A", "LONG"], [["xyz", "1"], ["q", "22"]])
    assert text.splitlines() == ["A    LONG", "xyz  1", "q    22"]


def test_jobs_table() -> None:
    assert jobs_table([], now=NOW) == "no watched jobs"
    text = jobs_table(
        [
            watched(
                status="IN_PROGRESS", progress=40, last_polled_at=NOW - 180, next_poll_at=NOW + 25
            )
        ],
        now=NOW,
    )
    header, row = text.splitlines()
    assert header.split()[:4] == ["JOB", "NAME", "STATE", "STATUS"]
    assert "AutoLabelQueue:1" in row and "batch 12" in row and "watching" in row
    assert "3m ago" in row and "in 25s" in row


def test_deliveries_table() -> None:
    assert deliveries_table([], now=NOW) == "no deliveries"
    pending = a_delivery(
        id="msg_2",
        state="pending",
        delivered_at=None,
        next_attempt_at=NOW + 5,
        last_error="HTTP 500",
    )
    lines = deliveries_table([a_delivery(), pending], now=NOW).splitlines()
    assert lines[0].split()[:5] == ["ID", "JOB", "CALLBACK", "EVENT", "STATE"]
    assert "delivered" in lines[1] and "30s ago" in lines[1]
    assert "pending" in lines[2] and "in 5s" in lines[2] and "HTTP 500" in lines[2]


def test_world_readable_config_warns_only_when_it_holds_a_secret(tmp_path, caplog):
    from notifier.config import load_config
    from notifier.config_warnings import warn_if_readable

    path = tmp_path / "config.yaml"
    path.write_text("datasaur: {token: '${TOKEN}'}\nstate_path: s.db\n")
    path.chmod(0o644)
    caplog.set_level("INFO")
    warn_if_readable(path, load_config(path, {"TOKEN": "tok-from-env"}))
    assert [r.levelname for r in caplog.records] == ["INFO"]
    caplog.clear()
    path.write_text("datasaur: {token: literal-token}\nstate_path: s.db\n")
    warn_if_readable(path, load_config(path, {}))
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "readable by other users" in caplog.records[0].getMessage()


def test_pending_deliveries_of_a_removed_callback_are_named(tmp_path, caplog):
    from notifier.config import parse_config
    from notifier.config_warnings import warn_about_orphans
    from notifier.store import JobUpdate, NewEvent, SqliteStore

    store = SqliteStore(tmp_path / "state.db")
    config = parse_config(
        "datasaur: {token: t}\ncallbacks: {kept: {type: webhook, url: 'http://x'}}"
    )
    store.sync_config_jobs(config.jobs, NOW)
    event = NewEvent("job.delivered", {"type": "job.delivered", "data": {}}, ["kept", "gone"])
    update = JobUpdate("j", "watching", None, None, None, NOW, NOW, 1.0, None, [event])
    store.watch(JobSpec(id="j"), NOW)
    store.apply_polls([update])
    caplog.set_level("WARNING")
    warn_about_orphans(store, config)
    [record] = caplog.records
    assert "1 pending deliveries are for callback 'gone'" in record.getMessage()
    store.close()


def test_a_poll_the_store_refused_is_not_logged_as_a_notification(tmp_path, caplog):
    from notifier.config import parse_config
    from notifier.poller import Poller
    from notifier.store import SqliteStore

    store = SqliteStore(tmp_path / "state.db")
    config = parse_config(
        "datasaur: {token: t}\ncallbacks: {hook: {type: webhook, url: 'http://x'}}"
    )
    for job_id in ("a", "b"):
        store.watch(JobSpec(id=job_id), NOW)
    claimed = store.claim_jobs(NOW + 1, 10)
    updates = [
        decide(job, Observation(job=datasaur_job("DELIVERED", 100, id=job.id)), NOW + 1,
               config.polling, ["hook"])
        for job in claimed
    ]  # fmt: skip
    store.unwatch("a")  # between the poll and its write
    caplog.set_level("INFO", logger="notifier.poller")
    Poller(store, config)._write(updates)
    assert [record.getMessage() for record in caplog.records] == [
        "job a: job.delivered not recorded: unwatched meanwhile, or taken over by another "
        "instance (which notifies)",
        "job b: job.delivered, notifying hook",
    ]
    assert [(d.job_id, d.callback) for d in store.deliveries()] == [("b", "hook")]
    store.close()
