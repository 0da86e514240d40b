"""Issue 3, "Crashes" and "Receivers": the daemon as a subprocess against real local servers.

Every test runs ``datasaur-notifier run`` in a child process, talks to it only through
the simulator, the receivers and the CLI, and synchronises by polling with deadlines.
"""

from __future__ import annotations

import signal
import socket
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import closing
from email.utils import formatdate
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from notifier.backoff import parse_retry_after
from notifier.config import JobSpec
from notifier.standins.receiver import ReceivedWebhook, WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from notifier.store import SqliteStore
from tests.conftest import WEBHOOK_SECRET, base_config, email, webhook
from tests.support.daemon import DaemonProcess, cli, deliveries, status, write_config
from tests.support.smtp import SmtpSink, free_port
from tests.support.waiting import wait_until

Factory = Callable[..., DaemonProcess]


@pytest.fixture
def other_receiver() -> Iterator[WebhookReceiver]:
    """A second webhook endpoint whose answers are programmed independently."""
    with WebhookReceiver(secret=WEBHOOK_SECRET) as server:
        yield server


def jobs(
    sim: DatasaurSimulator, count: int, state: str = "DELIVERED", prefix: str = "job"
) -> list[dict[str, Any]]:
    """``count`` jobs known to the simulator in ``state``, as config entries."""
    ids = [f"{prefix}-{n:02d}" for n in range(count)]
    for job_id in ids:
        sim.set_job(job_id, state, 100 if state == "DELIVERED" else 0)
    return [{"id": job_id} for job_id in ids]


def config_for(
    sim: DatasaurSimulator,
    tmp_path: Path,
    callbacks: dict[str, Any],
    job_list: list[dict[str, Any]],
    **delivery: Any,
) -> dict[str, Any]:
    settings = {"timeout": "2s", "initial_backoff": "0.1s", "max_backoff": "1s", **delivery}
    return base_config(sim, tmp_path, callbacks=callbacks, jobs=job_list, delivery=settings)


def only_delivery(config: Path) -> dict[str, Any]:
    rows = deliveries(config)
    assert len(rows) == 1, rows
    return rows[0]


def wait_delivery(
    config: Path, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15
) -> dict[str, Any]:
    """Poll ``deliveries --json`` until its single row satisfies ``predicate``."""
    seen: list[dict[str, Any]] = []

    def check() -> dict[str, Any] | None:
        seen[:] = deliveries(config)
        return seen[0] if len(seen) == 1 and predicate(seen[0]) else None

    return wait_until(check, timeout, message=f"delivery never matched; last seen {seen}")


def gaps(hooks: list[ReceivedWebhook]) -> list[float]:
    times = [hook.received_at for hook in hooks]
    return [later - earlier for earlier, later in pairwise(times)]


def assert_clean(daemon: DaemonProcess) -> None:
    assert "Traceback" not in daemon.output, daemon.output


# --- Crashes ---------------------------------------------------------------------------


def test_kill9_repeatedly_loses_no_notification(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, daemon_factory: Factory, tmp_path: Path
) -> None:
    job_list = jobs(simulator, 20, state="IN_PROGRESS")
    callbacks = {"a": webhook(receiver, "/a"), "b": webhook(receiver, "/b")}
    config = config_for(simulator, tmp_path, callbacks, job_list)
    receiver.respond_with(200, delay=0.3)
    daemon = daemon_factory(config)
    wait_until(
        lambda: all(job["status"] == "IN_PROGRESS" for job in status(daemon.config).values()),
        15,
        message="jobs never polled",
    )
    for job in job_list:  # all twenty finish at once
        simulator.set_job(job["id"], "DELIVERED", 100)

    # Kill 1: as soon as the status change is recorded (outbox rows just committed).
    daemon.wait_for_log("job.delivered, notifying")
    daemon.kill9()
    kills = 1
    # Kills 2-5: each while a delivery is in flight (the receiver holds every one 0.3 s).
    for step in (1, 3, 6, 9):
        daemon = daemon_factory(config)
        before = len(receiver.received)
        wait_until(lambda: len(receiver.received) >= before + step, 15)
        daemon.kill9()
        kills += 1
    assert kills == 5
    daemon = daemon_factory(config)

    expected = {(job["id"], path, "job.delivered") for job in job_list for path in ("/a", "/b")}

    def complete() -> list[ReceivedWebhook]:
        # A kill in the middle of writing a request leaves the receiver a truncated body,
        # which no receiver would act on; the delivery is still pending and is sent again.
        return [
            hook
            for hook in receiver.received
            if len(hook.body) == int(hook.headers.get("content-length", -1))
        ]

    def keys() -> set[tuple[str, str, str]]:
        return {(h.json["data"]["job_id"], h.path, h.json["type"]) for h in complete()}

    wait_until(lambda: keys() >= expected, 30, message=f"missing {expected - keys()}")
    rows = wait_until(
        lambda: (
            (rows := deliveries(daemon.config))
            and all(row["state"] == "delivered" for row in rows)
            and rows
        ),
        15,
        message="not every delivery recorded as delivered",
    )
    received = complete()
    truncated = len(receiver.received) - len(received)
    assert keys() == expected
    assert all(hook.signature_ok for hook in received)
    ids_by_key: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for hook in received:
        ids_by_key[(hook.json["data"]["job_id"], hook.path, hook.json["type"])].add(
            hook.headers["webhook-id"]
        )
    # A duplicate (sent again after a crash) carries the original webhook-id.
    assert all(len(ids) == 1 for ids in ids_by_key.values()), ids_by_key
    duplicates = len(received) - len(expected)
    # Four kills landed while a delivery was being received: at least one was sent twice.
    assert duplicates >= 1, "no kill hit a delivery in flight; the test proved nothing"
    # At most one attempt per lane worker (2 lanes x 4 workers) is cut by each kill.
    assert duplicates + truncated <= kills * 2 * 4, (duplicates, truncated, kills)

    assert len(rows) == len(expected) == 40
    by_key = {(row["job_id"], "/" + row["callback"], row["event"]): row for row in rows}
    assert set(by_key) == expected
    for key, row in by_key.items():
        assert ids_by_key[key] == {row["id"]}
        assert row["attempts"] >= 1
    assert_clean(daemon)


def test_second_run_exits_1_naming_the_lock_while_cli_keeps_working(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, daemon_factory: Factory, tmp_path: Path
) -> None:
    config = config_for(simulator, tmp_path, {"hook": webhook(receiver)}, jobs(simulator, 1))
    daemon = daemon_factory(config)
    first = receiver.wait_for(1)[0]

    second = cli(daemon.config, "run", timeout=30)
    assert second.returncode == 1, second
    lock_path = str(tmp_path / "state.db.lock")
    assert lock_path in second.stderr and "lock" in second.stderr, second.stderr
    assert "Traceback" not in second.stderr
    assert daemon.alive()

    # Read-only commands work while the daemon owns the state file.
    assert status(daemon.config)["job-00"]["state"] == "done"
    row = wait_delivery(daemon.config, lambda row: row["state"] == "delivered")
    assert row["id"] == first.headers["webhook-id"]
    table = cli(daemon.config, "deliveries")
    assert table.returncode == 0 and row["id"] in table.stdout, table

    # Enqueueing commands too, and the running daemon acts on them.
    simulator.set_job("added-later", "DELIVERED", 100)
    watched = cli(daemon.config, "watch", "added-later")
    assert watched.returncode == 0, watched.stderr
    receiver.wait_for(lambda h: h.json["data"]["job_id"] == "added-later", timeout=10)
    again = cli(daemon.config, "redeliver", row["id"])
    assert again.returncode == 0, again.stderr

    def sent_twice() -> list[ReceivedWebhook]:
        sent = [h for h in receiver.received if h.headers["webhook-id"] == row["id"]]
        return sent if len(sent) >= 2 else []

    resent = wait_until(sent_twice, 10, message="the redelivery never arrived")
    assert len(resent) == 2
    assert daemon.alive()
    assert daemon.stop() == 0
    assert_clean(daemon)


def garbage(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * 64)


def truncated_sqlite(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + b"\xde\xad\xbe\xef" * 1024)


def directory(path: Path) -> None:
    path.mkdir()


def corrupt_pages(path: Path) -> None:
    """A real state file whose header is intact but whose data pages are overwritten."""
    store = SqliteStore(path)
    store.sync_config_jobs([JobSpec(id=f"old-{n}") for n in range(200)], time.time())
    store.close()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
    data = path.read_bytes()
    assert len(data) > 3 * 4096
    path.write_bytes(data[:4096] + b"\xab" * (len(data) - 4096))


@pytest.mark.parametrize("spoil", [garbage, truncated_sqlite, directory, corrupt_pages])
def test_unusable_state_file_is_one_clear_line(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    tmp_path: Path,
    spoil: Callable[[Path], None],
) -> None:
    config = config_for(simulator, tmp_path, {"hook": webhook(receiver)}, jobs(simulator, 1))
    path = write_config(tmp_path / "config.yaml", config)
    state = tmp_path / "state.db"
    spoil(state)
    commands = [("run",), ("status", "--json"), ("watch", "new-job")]
    for command in commands:
        result = cli(path, *command, timeout=30)
        output = (result.stdout + result.stderr).strip()
        assert result.returncode == 1, (command, output)
        assert "Traceback" not in output, output
        lines = output.splitlines()
        assert len(lines) == 1, (command, output)
        assert str(state) in lines[0], (command, output)
    assert receiver.received == []


# --- Receivers: backoff, Retry-After, 410, 3xx ----------------------------------------------


def test_backoff_counts_attempts_and_records_last_error_until_success(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, daemon_factory: Factory, tmp_path: Path
) -> None:
    receiver.respond_with(500)
    config = config_for(
        simulator,
        tmp_path,
        {"hook": webhook(receiver)},
        jobs(simulator, 1),
        initial_backoff="0.2s",
        max_backoff="0.5s",
    )
    daemon = daemon_factory(config)
    failing = wait_delivery(
        daemon.config, lambda row: row["attempts"] >= 2 and row["last_error"] == "HTTP 500"
    )
    assert failing["state"] == "pending" and failing["next_attempt_at"] is not None
    receiver.wait_for(5)
    receiver.respond_with(200)
    done = wait_delivery(daemon.config, lambda row: row["state"] == "delivered")
    received = receiver.received
    assert done["attempts"] == len(received) >= 6
    assert done["last_error"] is None
    assert {hook.headers["webhook-id"] for hook in received} == {done["id"]}
    # Exponential from initial_backoff (jitter scales by 0.75-1.0), capped at max_backoff.
    waits = gaps(received)
    assert waits[0] >= 0.75 * 0.2 and waits[1] >= 0.75 * 0.4, waits
    assert all(wait >= 0.75 * 0.5 for wait in waits[2:]), waits
    assert all(wait <= 0.5 + 1.0 for wait in waits), waits
    assert_clean(daemon)


def test_give_up_after_makes_the_delivery_dead(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, daemon_factory: Factory, tmp_path: Path
) -> None:
    receiver.respond_with(500)
    config = config_for(
        simulator,
        tmp_path,
        {"hook": webhook(receiver)},
        jobs(simulator, 1),
        initial_backoff="0.2s",
        max_backoff="0.4s",
        give_up_after="1.5s",
    )
    daemon = daemon_factory(config)
    dead = wait_delivery(daemon.config, lambda row: row["state"] == "dead")
    assert dead["attempts"] >= 3 and dead["last_error"] == "HTTP 500", dead
    assert dead["next_attempt_at"] is None
    received = receiver.received
    assert len(received) == dead["attempts"]
    assert received[-1].received_at - received[0].received_at < 1.5 + 1.0
    daemon.wait_for_log(f"delivery {dead['id']}")
    assert "dead after" in daemon.output
    assert_clean(daemon)


@pytest.mark.parametrize("code", [429, 503])
def test_retry_after_seconds_is_honoured(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
    code: int,
) -> None:
    receiver.respond_with(code, count=1, headers={"Retry-After": "2"})
    config = config_for(simulator, tmp_path, {"hook": webhook(receiver)}, jobs(simulator, 1))
    daemon = daemon_factory(config)
    first, second = receiver.wait_for(2, timeout=10)[:2]
    assert first.answered_status == code and second.answered_status == 200
    # initial_backoff is 0.1 s: only Retry-After explains the wait.
    assert second.received_at - first.received_at >= 2.0
    done = wait_delivery(daemon.config, lambda row: row["state"] == "delivered")
    assert done["attempts"] == 2
    assert len(receiver.received) == 2
    assert_clean(daemon)


def test_parse_retry_after_http_date_and_seconds() -> None:
    now = time.time()
    in_30s = formatdate(now + 30, usegmt=True)
    assert 29.0 <= parse_retry_after(in_30s, now) <= 30.0  # type: ignore[operator]
    assert parse_retry_after(formatdate(now - 60, usegmt=True), now) == 0.0
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(" 7 ", now) == 7.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("", now) is None
    assert parse_retry_after(None, now) is None


def test_410_gone_is_dead_at_once_and_logged(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, daemon_factory: Factory, tmp_path: Path
) -> None:
    receiver.respond_with(410)
    config = config_for(simulator, tmp_path, {"hook": webhook(receiver)}, jobs(simulator, 1))
    daemon = daemon_factory(config)
    dead = wait_delivery(daemon.config, lambda row: row["state"] == "dead")
    assert dead["attempts"] == 1 and dead["last_error"].startswith("HTTP 410"), dead
    assert len(receiver.received) == 1
    daemon.wait_for_log("asked to be removed")
    line = next(line for line in daemon.output.splitlines() if "asked to be removed" in line)
    assert dead["id"] in line and "410" in line
    assert_clean(daemon)


def test_redirect_is_a_failure_and_not_followed(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, daemon_factory: Factory, tmp_path: Path
) -> None:
    receiver.respond_with(307, headers={"Location": receiver.url + "/moved"})
    config = config_for(simulator, tmp_path, {"hook": webhook(receiver)}, jobs(simulator, 1))
    daemon = daemon_factory(config)
    failing = wait_delivery(
        daemon.config, lambda row: row["attempts"] >= 2 and row["last_error"] == "HTTP 307"
    )
    assert failing["state"] == "pending"
    receiver.respond_with(200)
    wait_delivery(daemon.config, lambda row: row["state"] == "delivered")
    assert {hook.path for hook in receiver.received} == {"/hook"}
    assert_clean(daemon)


# --- Receivers: timeouts and isolation -------------------------------------------------


def test_hanging_receiver_is_cut_at_timeout_and_does_not_delay_other_callbacks(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    other_receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    hanging, prompt = other_receiver, receiver
    hanging.respond_with(200, delay=60)
    job_list = jobs(simulator, 4, state="IN_PROGRESS")
    callbacks = {"slow": webhook(hanging, "/slow"), "fast": webhook(prompt, "/fast")}
    config = config_for(simulator, tmp_path, callbacks, job_list, timeout="1.5s", concurrency=2)
    daemon = daemon_factory(config)
    wait_until(
        lambda: all(job["status"] == "IN_PROGRESS" for job in status(daemon.config).values()),
        15,
    )
    for job in job_list:
        simulator.set_job(job["id"], "DELIVERED", 100)

    # Callback "fast" hears about all four jobs well before even one attempt at "slow" ends.
    fast = prompt.wait_for(4, timeout=10)
    slow_first = hanging.wait_for(1)[0]
    started = min(fast[0].received_at, slow_first.received_at)
    assert fast[-1].received_at - started < 1.4, [h.received_at - started for h in fast]
    assert {hook.json["data"]["job_id"] for hook in fast} == {job["id"] for job in job_list}

    # "slow" is cut at delivery.timeout: attempts are recorded as timed out, and retried.
    def timed_out() -> list[dict[str, Any]]:
        rows = [row for row in deliveries(daemon.config) if row["callback"] == "slow"]
        return [row for row in rows if row["last_error"] == "timed out after 1.5s"]

    cut = wait_until(lambda: len(timed_out()) >= 2 and timed_out(), 15)
    assert all(row["state"] == "pending" for row in cut)
    # The bounded pool: never more than `concurrency` attempts at "slow" at the same time.
    slow = hanging.received
    first = slow[0].received_at
    assert sum(hook.received_at < first + 1.5 - 0.3 for hook in slow) <= 2, gaps(slow)
    # Each timed-out delivery is tried again, after at least the timeout.
    retried = wait_until(lambda: [hooks for hooks in _ids(hanging).values() if len(hooks) >= 2], 15)
    assert all(hooks[1].received_at - hooks[0].received_at >= 1.5 for hooks in retried)
    assert_clean(daemon)


def _ids(server: WebhookReceiver) -> dict[str, list[ReceivedWebhook]]:
    grouped: dict[str, list[ReceivedWebhook]] = defaultdict(list)
    for hook in server.received:
        grouped[hook.headers["webhook-id"]].append(hook)
    return grouped


# --- redeliver -------------------------------------------------------------------------


def test_redeliver_resends_delivered_and_dead_under_the_same_webhook_id(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, daemon_factory: Factory, tmp_path: Path
) -> None:
    job_list = jobs(simulator, 1) + jobs(simulator, 1, state="IN_PROGRESS", prefix="later")
    config = config_for(simulator, tmp_path, {"hook": webhook(receiver)}, job_list)
    daemon = daemon_factory(config)
    original = receiver.wait_for(1)[0]
    delivered = wait_until(
        lambda: [row for row in deliveries(daemon.config) if row["state"] == "delivered"], 15
    )[0]
    assert delivered["id"] == original.headers["webhook-id"]

    result = cli(daemon.config, "redeliver", delivered["id"])
    assert result.returncode == 0 and delivered["id"] in result.stdout, result
    queued_at = time.time()
    again = receiver.wait_for(2, timeout=5)[1]
    assert again.received_at - queued_at < 2.0  # within a tick, not a restart
    assert again.headers["webhook-id"] == original.headers["webhook-id"]
    assert again.body == original.body and again.signature_ok

    # A dead delivery comes back too.
    receiver.respond_with(410, count=1)
    simulator.set_job("later-00", "DELIVERED", 100)
    dead = wait_until(
        lambda: [row for row in deliveries(daemon.config) if row["state"] == "dead"], 15
    )[0]
    assert cli(daemon.config, "redeliver", dead["id"]).returncode == 0
    revived = wait_until(
        lambda: [
            row
            for row in deliveries(daemon.config)
            if row["id"] == dead["id"] and row["state"] == "delivered"
        ],
        15,
    )[0]
    assert revived["attempts"] == 2
    answers = [
        h.answered_status for h in receiver.received if h.headers["webhook-id"] == dead["id"]
    ]
    assert answers == [410, 200]

    unknown = cli(daemon.config, "redeliver", "msg_does_not_exist")
    assert unknown.returncode == 1 and "msg_does_not_exist" in unknown.stderr
    assert_clean(daemon)


# --- SMTP ------------------------------------------------------------------------------


def test_smtp_temporary_failure_retries_then_succeeds(
    simulator: DatasaurSimulator, smtp: SmtpSink, daemon_factory: Factory, tmp_path: Path
) -> None:
    smtp.reply_with("451 4.3.0 Try again later", count=2)
    config = config_for(simulator, tmp_path, {"mail": email(smtp)}, jobs(simulator, 1))
    daemon = daemon_factory(config)
    message = smtp.wait_for(1)[0]
    done = wait_delivery(daemon.config, lambda row: row["state"] == "delivered")
    assert done["attempts"] == 3
    assert [attempt.reply[:3] for attempt in smtp.attempts] == ["451", "451", "250"]
    assert message.message["Message-ID"] == f"<{done['id']}@datasaur-notifier>"
    assert_clean(daemon)


def test_smtp_connection_refused_retries_until_the_server_is_up(
    simulator: DatasaurSimulator, daemon_factory: Factory, tmp_path: Path
) -> None:
    port = free_port()
    callback = {**email(SmtpSink(port=port)), "smtp_port": port}
    config = config_for(simulator, tmp_path, {"mail": callback}, jobs(simulator, 1))
    daemon = daemon_factory(config)
    failing = wait_delivery(daemon.config, lambda row: row["attempts"] >= 2)
    assert failing["state"] == "pending" and "refused" in failing["last_error"], failing
    with SmtpSink(port=port) as sink:
        sink.wait_for(1)
        wait_delivery(daemon.config, lambda row: row["state"] == "delivered")
    assert_clean(daemon)


def test_smtp_server_that_never_answers_is_cut_at_timeout_and_retried(
    simulator: DatasaurSimulator, daemon_factory: Factory, tmp_path: Path
) -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never sends a greeting
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        callback = {**email(SmtpSink(port=port)), "smtp_port": port}
        config = config_for(
            simulator, tmp_path, {"mail": callback}, jobs(simulator, 1), timeout="1s"
        )
        daemon = daemon_factory(config)
        failing = wait_delivery(daemon.config, lambda row: row["attempts"] >= 2)
    assert failing["state"] == "pending", failing
    assert failing["last_error"] == "timed out after 1s", failing
    assert_clean(daemon)


def test_smtp_permanent_failure_is_dead(
    simulator: DatasaurSimulator, smtp: SmtpSink, daemon_factory: Factory, tmp_path: Path
) -> None:
    smtp.reply_with("550 5.1.1 Mailbox unavailable", count=1)
    config = config_for(simulator, tmp_path, {"mail": email(smtp)}, jobs(simulator, 1))
    daemon = daemon_factory(config)
    dead = wait_delivery(daemon.config, lambda row: row["state"] == "dead")
    assert dead["attempts"] == 1 and dead["last_error"].startswith("SMTP 550"), dead
    assert len(smtp.attempts) == 1 and smtp.messages == []
    assert_clean(daemon)


def test_starttls_required_never_sends_plain_text(
    simulator: DatasaurSimulator, smtp: SmtpSink, daemon_factory: Factory, tmp_path: Path
) -> None:
    callback = email(smtp, security="starttls")
    config = config_for(simulator, tmp_path, {"mail": callback}, jobs(simulator, 1))
    daemon = daemon_factory(config)
    failing = wait_delivery(daemon.config, lambda row: row["attempts"] >= 2)
    assert failing["state"] == "pending", failing
    assert "STARTTLS" in failing["last_error"], failing
    assert smtp.attempts == []
    assert_clean(daemon)


# --- SIGTERM ---------------------------------------------------------------------------


def test_sigterm_with_delivery_in_flight_exits_0_and_keeps_it_pending(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, daemon_factory: Factory, tmp_path: Path
) -> None:
    receiver.respond_with(200, delay=60)
    config = config_for(
        simulator, tmp_path, {"hook": webhook(receiver)}, jobs(simulator, 3), concurrency=1
    )
    daemon = daemon_factory(config)
    in_flight = receiver.wait_for(1)[0]
    asked = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.process is not None
    assert daemon.process.wait(2 + 5) == 0
    assert time.monotonic() - asked < 2 + 3
    daemon.wait_for_log("stopped:")
    rows = deliveries(daemon.config)
    assert len(rows) == 3 and all(row["state"] == "pending" for row in rows), rows
    assert len(receiver.received) == 1

    receiver.respond_with(200)
    restarted = daemon_factory(config)
    receiver.wait_for(4)
    rows = wait_until(
        lambda: (
            (rows := deliveries(restarted.config))
            and all(row["state"] == "delivered" for row in rows)
            and rows
        ),
        15,
    )
    assert len(rows) == 3
    ids = [hook.headers["webhook-id"] for hook in receiver.received]
    assert ids.count(in_flight.headers["webhook-id"]) == 2 and len(set(ids)) == 3
    assert_clean(restarted)


def test_sigterm_lets_a_delivery_in_flight_finish(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, daemon_factory: Factory, tmp_path: Path
) -> None:
    receiver.respond_with(200, delay=1.0)
    config = config_for(simulator, tmp_path, {"hook": webhook(receiver)}, jobs(simulator, 1))
    daemon = daemon_factory(config)
    receiver.wait_for(1)
    assert daemon.stop() == 0
    row = only_delivery(daemon.config)
    assert row["state"] == "delivered" and row["attempts"] == 1, row
    assert_clean(daemon)
