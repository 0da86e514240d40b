"""Digests without a daemon: the config's limits (one line naming the key, exit 2), the
webhook-id derived from the members, the summary line and the messages of email and
Apprise, templates that get ``digest`` and ``events``, and a lane that closes windows
and sends each digest once, retrying it like any delivery (a real SQLite store)."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from notifier.channels import Channel, Outcome
from notifier.channels.apprise import notify_type
from notifier.channels.email import EmailChannel, EmailSettings
from notifier.channels.webhook import WebhookSettings
from notifier.config import DeliverySettings
from notifier.delivery import Dispatcher
from notifier.digests import digest_id, digest_payload, summary
from notifier.store import NewEvent, SqliteStore
from tests.support.waiting import wait_until
from tests.test_config import problems, with_token
from tests.test_newcomer_config import check


def member(n: int, kind: str) -> tuple[str, dict[str, Any]]:
    return f"msg_{n}", {"type": kind, "timestamp": f"2026-12-03T08:00:{n:02d}.000Z",
                        "data": {"job_id": f"j{n}", "name": f"export {n}",
                                 "status": kind.partition(".")[2].upper()}}  # fmt: skip


def sample(delivered: int, failed: int) -> dict[str, Any]:
    kinds = ["job.delivered"] * delivered + ["job.failed"] * failed
    return digest_payload([member(n, kind) for n, kind in enumerate(kinds)], 0.0)


@pytest.mark.parametrize(
    ("digest", "expected"),
    [
        ("{window: 500ms}", "callbacks.h.digest.window: must be between 1s and 24h"),
        ("{window: 25h}", "callbacks.h.digest.window: must be between 1s and 24h"),
        ("{window: soon}", "callbacks.h.digest.window: not a duration"),
        ("{window: 5m, max_events: 1}", "callbacks.h.digest.max_events: must be at least 2"),
        ("{window: 5m, max_events: 10001}", "callbacks.h.digest.max_events:"),
        ("{window: 5m, events: [job.done]}", "callbacks.h.digest.events: unknown event"),
        ("{max_events: 5}", "callbacks.h.digest.window: required"),
        ("{window: 5m, maxevents: 5}", "callbacks.h.digest.maxevents: unknown key"),
    ],
)
def test_digest_limits_are_config_errors_naming_the_key(digest: str, expected: str) -> None:
    found = problems(
        with_token(f"callbacks: {{h: {{type: webhook, url: 'http://x', digest: {digest}}}}}")
    )
    assert any(expected in line for line in found), found


def test_check_config_exits_2_on_a_bad_window(tmp_path: Path) -> None:
    lines = check(tmp_path, """\
        datasaur: {token: tttttttttttttttttttttttttttttttttttttttttt}
        callbacks:
          hook: {type: webhook, url: "http://localhost:1/x", digest: {window: 0.5s}}
    """)  # fmt: skip
    assert any("callbacks.hook.digest.window: must be between 1s and 24h" in line for line in lines)


def test_a_body_template_that_cannot_render_a_digest_is_a_config_error() -> None:
    settings = {"type": "email", "smtp_host": "h", "from": "a@b.c", "to": ["d@e.f"],
                "body_template": "{{ job_id }} is {{ status }}",
                "digest": {"window": "1m"}}  # fmt: skip
    with pytest.raises(ValueError, match="body_template: does not render a digest"):
        EmailSettings.model_validate(settings)
    # It renders single events too (test-callback, events the digest does not gather).
    settings["body_template"] = (
        "{% if digest is defined %}{{ digest.count }}: {% for e in events %}{{ e.id }} "
        "{% endfor %}{% else %}{{ job_id }}{% endif %}"
    )
    EmailSettings.model_validate(settings)
    webhook = {"type": "webhook", "url": "http://x", "format": "template",
               "body_template": '{"n": {{ (digest.count if digest is defined else 1) | tojson }}}',
               "digest": {"window": 5}}  # fmt: skip
    WebhookSettings.model_validate(webhook)


def test_the_webhook_id_derives_from_the_members_alone() -> None:
    assert digest_id("hook", ["b", "a"]) == digest_id("hook", ["a", "b"])
    assert digest_id("hook", ["a", "b"]) != digest_id("hook", ["a", "c"])
    assert digest_id("hook", ["a"]) != digest_id("mail", ["a"])
    assert digest_id("hook", ["a"]).startswith("msg_") and len(digest_id("hook", ["a"])) == 36


def test_the_summary_and_the_email_list_failures_first() -> None:
    payload = sample(35, 2)
    assert summary(payload) == "37 jobs ended: 35 delivered, 2 failed"
    mixed = digest_payload([member(1, "job.stalled"), member(2, "job.delivered")], 0.0)
    assert summary(mixed) == "2 events: 1 job.delivered, 1 job.stalled"
    settings = EmailSettings.model_validate(
        {
            "type": "email",
            "smtp_host": "h",
            "from": "a@b.c",
            "to": ["d@e.f"],
            "subject_template": "{{ job_id }}",
            "digest": {"window": "1m"},
        }
    )
    message = EmailChannel("mail", settings, 1.0).message("msg_d", payload)
    assert message["Subject"] == "[datasaur-notifier] 37 jobs ended: 35 delivered, 2 failed"
    body = message.get_content()
    lines = [line for line in body.splitlines() if line.startswith("job.")]
    assert (
        len(lines) == 37 and lines[0].startswith("job.failed") and lines[1].startswith("job.failed")
    )
    assert notify_type(payload) == "failure" and notify_type(sample(3, 0)) == "success"


class Recording(Channel):
    """A channel that fails its first ``failures`` sends, then records each."""

    kind = "recording-test"

    def __init__(self, name: str, settings: Any, failures: int = 0) -> None:
        super().__init__(name, settings, 1.0)
        self.failures = failures
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send(self, delivery_id: str, payload: dict[str, Any]) -> Outcome:
        if self.failures:
            self.failures -= 1
            return Outcome(ok=False, detail="HTTP 500")
        self.sent.append((delivery_id, payload))
        return Outcome(ok=True, detail="HTTP 200")


def test_a_lane_sends_each_digest_once_retrying_it_like_any_delivery(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    settings = WebhookSettings.model_validate(
        {"type": "webhook", "url": "http://x", "digest": {"window": "1s", "max_events": 4}}
    )
    channel = Recording("hook", settings, failures=1)
    delivery = DeliverySettings.model_validate({"initial_backoff": "0.1s", "max_backoff": "0.2s"})
    dispatcher = Dispatcher(store, {"hook": channel}, delivery)
    start = time.time()
    for n in range(6):
        payload = {"type": "job.delivered", "timestamp": "t", "data": {"job_id": f"j{n}"}}
        store.add_event(f"j{n}", NewEvent("job.delivered", payload, ["hook"]), start)
    ops = {"type": "callback.paused", "timestamp": "t", "data": {"callback": "x"}}
    store.add_event(None, NewEvent("callback.paused", ops, ["hook"]), start)  # never gathered
    deadline = time.time() + 10
    while len(channel.sent) < 3 and time.time() < deadline:
        dispatcher.tick()
        time.sleep(0.05)
    dispatcher.close()
    kinds = sorted(payload["type"] for _, payload in channel.sent)
    assert kinds == ["callback.paused", "digest", "digest"], channel.sent
    counts = sorted(p["data"]["count"] for _, p in channel.sent if p["type"] == "digest")
    assert counts == [2, 4]  # max_events at once, the rest after the window
    sent_ids = [ident for ident, p in channel.sent if p["type"] == "digest"]
    events = [e["data"]["job_id"] for _, p in channel.sent if p["type"] == "digest"
              for e in p["data"]["events"]]  # fmt: skip
    assert sorted(events) == [f"j{n}" for n in range(6)]
    rows = {d.id: d for d in store.deliveries()}
    assert all(rows[ident].state == "delivered" for ident in sent_ids)
    assert sum(row.attempts for row in rows.values()) == 4  # the first failed, was retried
    assert len(rows) == 3  # the digests and the alert; the events are in their digests
    store.close()


def drive(dispatcher: Dispatcher, until: Callable[[], bool], timeout: float = 10) -> None:
    """Tick the dispatcher until ``until()`` holds (the sends run on its lanes' threads)."""
    wait_until(lambda: (dispatcher.tick(), until())[1], timeout=timeout)


def lane_for(tmp_path: Path, channel_settings: dict[str, Any], failures: int = 0,
             clock: Callable[[], float] = time.time,
             **delivery: Any) -> tuple[SqliteStore, Recording, Dispatcher]:  # fmt: skip
    store = SqliteStore(tmp_path / "state.db")
    settings = WebhookSettings.model_validate({"type": "webhook", "url": "http://x",
                                               **channel_settings})  # fmt: skip
    channel = Recording("hook", settings, failures=failures)
    timing = {"initial_backoff": "0.1s", "max_backoff": "0.2s", **delivery}
    dispatcher = Dispatcher(store, {"hook": channel}, DeliverySettings.model_validate(timing),
                            clock=clock)  # fmt: skip
    return store, channel, dispatcher


def ended(store: SqliteStore, n: int, kind: str, at: float) -> None:
    payload = {"type": kind, "timestamp": "t", "data": {"job_id": f"j{n}"}}
    store.add_event(f"j{n}", NewEvent(kind, payload, ["hook"]), at)


def test_quiet_hours_close_no_window_and_let_the_excepted_events_out_alone(
    tmp_path: Path,
) -> None:
    night = dt.datetime(2026, 12, 3, 23, 0, tzinfo=dt.UTC).timestamp()
    now = [night]
    quiet = {"from": "22:00", "to": "07:00", "timezone": "UTC", "except_events": ["job.failed"]}
    store, channel, dispatcher = lane_for(
        tmp_path, {"digest": {"window": "1s"}, "quiet_hours": quiet}, clock=lambda: now[0]
    )
    for n, kind in enumerate(["job.delivered", "job.failed", "job.delivered", "job.delivered"]):
        ended(store, n, kind, night)
    now[0] = night + 600  # the window is long over, but it is night
    drive(dispatcher, lambda: "delivered" in {d.state for d in store.deliveries()})
    [(_, alone)] = channel.sent
    assert alone["type"] == "job.failed"
    dispatcher.tick()
    assert [d.event for d in store.deliveries() if d.state == "pending"] == ["job.delivered"] * 3
    now[0] = night + 8 * 3600 + 1  # 07:00:01: one digest with the three that waited
    drive(dispatcher, lambda: len(channel.sent) == 2)
    dispatcher.close()
    digest = channel.sent[1][1]
    assert digest["type"] == "digest" and digest["data"]["count"] == 3
    store.close()


@pytest.mark.parametrize("pause_after", [0, 2])
def test_a_digest_is_given_up_or_pauses_its_callback_like_any_delivery(
    tmp_path: Path, pause_after: int
) -> None:
    store, _, dispatcher = lane_for(
        tmp_path, {"digest": {"window": "1s"}}, failures=10**6, pause_after=pause_after,
        give_up_after="1s",
    )  # fmt: skip
    for n in range(3):
        ended(store, n, "job.failed", time.time() - 5)
    if pause_after:  # paused after 2 failed attempts at the digest (time paused: not given up)
        drive(dispatcher, lambda: any(h.paused_at for h in store.callback_health()))
    else:
        drive(dispatcher, lambda: [d.state for d in store.deliveries()] == ["dead"])
    dispatcher.close()
    [digest] = store.deliveries()
    assert digest.event == "digest" and digest.attempts >= 2
    assert {m.state for m in store.digest_members(digest.id)} == {"digested"}  # none alone
    store.close()


def test_the_events_of_a_delivered_digest_are_reminded_of(tmp_path: Path) -> None:
    store, _, dispatcher = lane_for(tmp_path, {"digest": {"window": "1s"}, "remind_every": "1h"})
    for n, kind in enumerate(["job.failed", "job.delivered", "job.failed"]):
        ended(store, n, kind, time.time() - 5)
    drive(dispatcher, lambda: [d.state for d in store.deliveries()] == ["delivered"])
    dispatcher.close()
    [digest] = store.deliveries()
    failed = {m.id for m in store.digest_members(digest.id) if m.event == "job.failed"}
    with closing(sqlite3.connect(tmp_path / "state.db")) as conn:
        scheduled = {row[0] for row in conn.execute("SELECT delivery_id FROM reminders")}
    assert scheduled == failed and len(failed) == 2
    store.close()
