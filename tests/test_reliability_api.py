"""Issue 3, end to end: a misbehaving Datasaur API, reloads and lifecycle, hygiene.

The daemon runs as a subprocess against the real local simulator and receivers. The
"no tight loop" checks count requests during a short, bounded observation window: at
the fast test settings (interval 0.2s, scheduler tick 50ms) a poller that did not back
off would make dozens of requests in it, a backing-off one only a handful.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from notifier.standins.receiver import ReceivedWebhook, WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from tests.conftest import CLIENT_ID, CLIENT_SECRET, WEBHOOK_SECRET, base_config, email, webhook
from tests.support.daemon import DaemonProcess, cli, deliveries, status, write_config
from tests.support.smtp import SmtpSink
from tests.support.waiting import wait_until

Factory = Callable[..., DaemonProcess]
PAUSED = "polling paused"
WINDOW = 2.0  # seconds of observation for the "no tight loop" checks
MAX_ATTEMPTS = 8  # backing off from 0.2s to 1s allows ~5 attempts in WINDOW; a loop, ~50


def observe(seconds: float = WINDOW) -> None:
    """A bounded observation window (used for counting, never to wait for a condition)."""
    time.sleep(seconds)


def count_lines(daemon: DaemonProcess, text: str) -> int:
    return sum(text in line for line in daemon.output.splitlines())


def graphql_requests(sim: DatasaurSimulator) -> int:
    return sim.stats().graphql_requests


def wait_polled(sim: DatasaurSimulator, polls: int = 1) -> None:
    """Until the daemon has asked about jobs successfully ``polls`` times in all."""
    wait_until(lambda: sim.stats().job_polls >= polls, 10, message="the daemon never polled")


def job_status(daemon: DaemonProcess, job_id: str) -> dict[str, Any]:
    return status(daemon.config)[job_id]


def of_type(event: str, job_id: str | None = None) -> Callable[[ReceivedWebhook], bool]:
    def matches(hook: ReceivedWebhook) -> bool:
        body = hook.json or {}
        return body.get("type") == event and (
            job_id is None or body.get("data", {}).get("job_id") == job_id
        )

    return matches


def one_job(
    sim: DatasaurSimulator, receiver: WebhookReceiver, tmp_path: Path, **sections: Any
) -> dict[str, Any]:
    """A config watching job ``j1`` and notifying ``receiver``."""
    sections.setdefault("callbacks", {"hook": webhook(receiver)})
    sections.setdefault("jobs", [{"id": "j1"}])
    return base_config(sim, tmp_path, **sections)


def datasaur(sim: DatasaurSimulator, **overrides: Any) -> dict[str, Any]:
    settings = {
        "graphql_url": sim.graphql_url,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "timeout": "2s",
    }
    return {**settings, **overrides}


def finish_and_expect_webhook(
    sim: DatasaurSimulator, receiver: WebhookReceiver, job_id: str = "j1", timeout: float = 15
) -> None:
    sim.set_job(job_id, "DELIVERED", 100)
    receiver.wait_for(of_type("job.delivered", job_id), timeout)


# --- Datasaur API faults ----------------------------------------------------------------

FAULT_LOG = {
    "http_500": "Datasaur API answered HTTP 500",
    "http_503": "Datasaur API answered HTTP 503",
    "non_json": "Datasaur API answered HTTP 200 with a body that is not JSON",
    "graphql_error": "Simulated internal error",
}
# graphql_error: the batch, then one getJob per job in one request = 2 requests per attempt.
REQUESTS_PER_ATTEMPT = {"graphql_error": 2}


@pytest.mark.parametrize("kind", list(FAULT_LOG))
def test_api_fault_backs_off_and_resumes(
    kind: str,
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    simulator.set_job("j1", "IN_PROGRESS", 10)
    daemon = daemon_factory(one_job(simulator, receiver, tmp_path))
    wait_polled(simulator)

    simulator.inject(kind, 10_000)  # until cleared
    daemon.wait_for_log(PAUSED)
    paused = [line for line in daemon.output.splitlines() if PAUSED in line]
    assert FAULT_LOG[kind] in paused[0], paused[0]

    requests, lines = graphql_requests(simulator), count_lines(daemon, PAUSED)
    observe()
    requests = graphql_requests(simulator) - requests
    lines = count_lines(daemon, PAUSED) - lines
    per_attempt = REQUESTS_PER_ATTEMPT.get(kind, 1)
    assert 1 <= lines <= MAX_ATTEMPTS, daemon.output
    assert 1 <= requests <= MAX_ATTEMPTS * per_attempt, f"{requests} requests in {WINDOW}s"
    # The backoff grows with consecutive failures (0.2s, 0.4s, 0.8s, ...).
    assert "(failure 3)" in daemon.output, daemon.output
    assert "answering again" not in daemon.output
    assert daemon.alive()

    simulator.clear_faults()
    finish_and_expect_webhook(simulator, receiver)
    daemon.wait_for_log("Datasaur API is answering again")
    assert len(receiver.received) == 1
    assert daemon.stop() == 0


def _http_date_in(seconds: float) -> str:
    return formatdate(time.time() + seconds, usegmt=True)


@pytest.mark.parametrize(
    ("retry_after", "at_least"),
    # An HTTP date has whole seconds (up to 1 s lost) and the 429 is answered up to a poll
    # interval after the injection: 4 s ahead leaves at least 2.4 s after the 429.
    [(lambda: "2", 1.95), (lambda: _http_date_in(4), 2.4)],
    ids=["seconds", "http-date"],
)
def test_429_retry_after_is_honoured(
    retry_after: Callable[[], str],
    at_least: float,
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    simulator.set_job("j1", "IN_PROGRESS", 10)
    daemon = daemon_factory(one_job(simulator, receiver, tmp_path))
    wait_polled(simulator)
    seen = len(simulator.stats().requests)

    simulator.inject("http_429", 1, retry_after=retry_after())
    daemon.wait_for_log("Datasaur API answered HTTP 429")
    # The 429 is the first request after the injection that asked about no job.
    refused_at = next(t for t, _, ids in simulator.stats().requests[seen:] if ids == 0)
    finish_and_expect_webhook(simulator, receiver)
    later = [t for t, _, _ in simulator.stats().requests if t > refused_at]
    gap = later[0] - refused_at
    assert gap >= at_least, f"next request {gap:.2f}s after a 429 asking for more"
    assert daemon.alive()
    assert daemon.stop() == 0


def test_hanging_request_is_cut_at_timeout_and_sigterm_exits_0(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    simulator.set_job("j1", "IN_PROGRESS", 10)
    config = one_job(simulator, receiver, tmp_path, datasaur=datasaur(simulator, timeout="1s"))
    daemon = daemon_factory(config)
    wait_polled(simulator)

    before = graphql_requests(simulator)
    simulator.inject("hang", 10_000, delay=20)
    wait_until(lambda: graphql_requests(simulator) > before, 5)
    hung_at = time.monotonic()
    daemon.wait_for_log("Datasaur API: timed out", timeout=5)
    cut_after = time.monotonic() - hung_at
    assert 0.8 <= cut_after <= 2.5, f"a hanging request was cut after {cut_after:.1f}s"

    requests = graphql_requests(simulator)
    observe()
    requests = graphql_requests(simulator) - requests
    # Each attempt now takes the 1s timeout plus a backoff.
    assert 1 <= requests <= 4, f"{requests} hanging requests in {WINDOW}s"
    assert daemon.alive()

    simulator.clear_faults()
    finish_and_expect_webhook(simulator, receiver)

    # SIGTERM while a poll hangs: the poll ends by its timeout and the daemon exits 0.
    simulator.set_job("j2", "IN_PROGRESS", 10)
    assert cli(daemon.config, "watch", "j2").returncode == 0
    simulator.inject("hang", 10_000, delay=20)
    before = graphql_requests(simulator)
    wait_until(lambda: graphql_requests(simulator) > before, 5)
    started = time.monotonic()
    assert daemon.stop(timeout=10) == 0
    assert time.monotonic() - started < 5
    assert "stopped:" in daemon.output


def test_connection_refused_backs_off_and_resumes_when_the_api_is_back(
    receiver: WebhookReceiver, daemon_factory: Factory, tmp_path: Path
) -> None:
    first = DatasaurSimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    with first:
        port = first.port
        first.set_job("j1", "IN_PROGRESS", 10)
        daemon = daemon_factory(one_job(first, receiver, tmp_path))
        wait_polled(first)
    # Stopped: nothing listens on the port any more.
    daemon.wait_for_log("Connection refused")
    lines = count_lines(daemon, PAUSED)
    observe()
    lines = count_lines(daemon, PAUSED) - lines
    assert 1 <= lines <= MAX_ATTEMPTS, daemon.output
    assert daemon.alive()

    # The API comes back on the same port: it does not know the old token either.
    with DatasaurSimulator(port=port, client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as second:
        finish_and_expect_webhook(second, receiver)
        assert second.stats().token_requests == 1
        daemon.wait_for_log("Datasaur API is answering again")
        assert daemon.stop() == 0


# --- batches, unknown jobs ----------------------------------------------------------------


def test_rejected_batch_falls_back_to_one_by_one(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    ids = ["job-a", "job-b", "job-c"]
    for job_id in ids:
        simulator.set_job(job_id, "DELIVERED", 100)
    simulator.fail_job("job-b", "job-b is broken")
    config = one_job(simulator, receiver, tmp_path, jobs=[{"id": job_id} for job_id in ids])
    daemon = daemon_factory(config)

    receiver.wait_for(of_type("job.delivered", "job-a"))
    receiver.wait_for(of_type("job.delivered", "job-c"))
    daemon.wait_for_log("polling them one by one, in one request")
    bad = wait_until(lambda: job_status(daemon, "job-b")["last_error"], 10)
    assert "job-b is broken" in bad
    assert job_status(daemon, "job-b")["state"] == "watching"
    operations = [operation for _, operation, _ in simulator.stats().requests]
    assert "GetJob" not in operations, "one request per job"
    # Each rejected GetJobs is followed by one GetJobsEach (its 3 getJob), nothing more.
    for earlier, later in itertools.pairwise(operations):
        assert (earlier, later) != ("GetJobsEach", "GetJobsEach"), operations
    assert simulator.stats().get_job_calls >= 3

    simulator.clear_faults()
    receiver.wait_for(of_type("job.delivered", "job-b"), 10)
    notified = sorted(hook.json["data"]["job_id"] for hook in receiver.received)
    assert notified == ids
    assert daemon.stop() == 0


def test_unknown_job_is_not_found_polled_at_max_interval_then_expires(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    polling = {"interval": "0.2s", "max_interval": "1s", "expire_after": "3.5s"}
    config = one_job(simulator, receiver, tmp_path, jobs=[{"id": "ghost"}], polling=polling)
    started = time.time()
    daemon = daemon_factory(config)

    assert wait_until(lambda: job_status(daemon, "ghost")["last_error"], 10) == "not found"
    assert job_status(daemon, "ghost")["state"] == "watching"

    hook = receiver.wait_for(of_type("job.expired", "ghost"), 15)[0]
    assert time.time() - started >= 3.5
    assert hook.signature_ok
    job = job_status(daemon, "ghost")
    assert job["state"] == "expired" and job["next_poll_at"] is None
    polls = [t for t, _, ids in simulator.stats().requests if ids]
    assert len(polls) >= 3, "an unknown job must keep being polled until it expires"
    gaps = [b - a for a, b in itertools.pairwise(polls)]
    assert min(gaps) >= 0.75, f"an unknown job polled faster than max_interval: {gaps}"
    assert [d["event"] for d in deliveries(daemon.config)] == ["job.expired"]
    assert daemon.stop() == 0


# --- tokens ---------------------------------------------------------------------------


def log_times(daemon: DaemonProcess, text: str) -> list[float]:
    """When (Unix seconds, from the log's timestamps) each line containing ``text`` was logged."""
    return [
        datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()
        for line in daemon.output.splitlines()
        if text in line
    ]


def test_expiring_tokens_are_refreshed_ahead_of_expiry(
    receiver: WebhookReceiver, daemon_factory: Factory, tmp_path: Path
) -> None:
    with DatasaurSimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, token_ttl=5) as sim:
        # Progress moves every 0.1s, so the job is polled at the 0.2s interval throughout
        # (adaptive polling: a predictive one would wait up to max_interval, 1s).
        sim.script_job("j1", [(0.1 * step, "IN_PROGRESS", step) for step in range(100)])
        polling = {"interval": "0.2s", "max_interval": "1s", "expire_after": 0, "predictive": False}
        daemon = daemon_factory(one_job(sim, receiver, tmp_path, polling=polling))
        wait_until(lambda: sim.stats().token_requests >= 2, 10)
        finish_and_expect_webhook(sim, receiver)
        assert daemon.stop() == 0
        stats = sim.stats()
    refused = [entry for entry in stats.requests if entry[2] == 0]
    assert refused == [], f"requests refused (expired token?): {refused}"
    fetched = log_times(daemon, "obtained a Datasaur access token valid for 5s")
    assert len(fetched) == stats.token_requests >= 2
    gaps = [later - earlier for earlier, later in itertools.pairwise(fetched)]
    # Once per lifetime, ahead of the 5s expiry (refresh due at 4.5s, polls every ~0.2s);
    # that no request was refused above is what proves "ahead".
    assert all(4.0 <= gap < 5.0 for gap in gaps), gaps
    assert stats.graphql_requests > 3 * stats.token_requests
    assert "refused" not in daemon.output


def test_revoked_token_is_refreshed_once(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    simulator.set_job("j1", "IN_PROGRESS", 10)
    daemon = daemon_factory(one_job(simulator, receiver, tmp_path))
    wait_polled(simulator)
    tokens, seen = simulator.stats().token_requests, len(simulator.stats().requests)

    simulator.revoke_tokens()
    finish_and_expect_webhook(simulator, receiver)
    stats = simulator.stats()
    assert stats.token_requests == tokens + 1
    assert sum(ids == 0 for _, _, ids in stats.requests[seen:]) == 1  # the one 401
    assert PAUSED not in daemon.output
    assert daemon.stop() == 0


def test_failing_token_endpoint_backs_off(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    simulator.set_job("j1", "IN_PROGRESS", 10)
    daemon = daemon_factory(one_job(simulator, receiver, tmp_path))
    wait_polled(simulator)

    simulator.inject_token("http_500", 10_000)
    simulator.revoke_tokens()
    daemon.wait_for_log("answered HTTP 500")
    tokens = simulator.stats().token_requests
    observe()
    tokens = simulator.stats().token_requests - tokens
    assert 1 <= tokens <= MAX_ATTEMPTS, f"{tokens} token requests in {WINDOW}s"
    assert daemon.alive()

    simulator.clear_faults()
    finish_and_expect_webhook(simulator, receiver)
    assert daemon.stop() == 0


def test_wrong_client_secret_is_one_line_per_backoff_and_never_shown(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    wrong = "wrong-secret-Zq81xK"
    simulator.set_job("j1", "DELIVERED", 100)
    config = one_job(
        simulator, receiver, tmp_path, datasaur=datasaur(simulator, client_secret=wrong)
    )
    daemon = daemon_factory(config)
    refused = "refused the client credentials"
    daemon.wait_for_log(refused)

    lines, tokens = count_lines(daemon, refused), simulator.stats().token_requests
    observe()
    lines = count_lines(daemon, refused) - lines
    tokens = simulator.stats().token_requests - tokens
    assert 1 <= lines <= MAX_ATTEMPTS, daemon.output
    assert 1 <= tokens <= MAX_ATTEMPTS
    assert abs(lines - tokens) <= 1, "one error line per token attempt"
    assert "check client_id and client_secret" in daemon.output
    assert daemon.alive()
    assert receiver.received == []

    # Fixed by a reload: the client is rebuilt with the right secret.
    write_config(daemon.config, one_job(simulator, receiver, tmp_path))
    daemon.signal(signal.SIGHUP)
    receiver.wait_for(of_type("job.delivered", "j1"), 15)
    assert daemon.stop() == 0
    for text in (daemon.output, cli(daemon.config, "status").stdout):
        assert wrong not in text and CLIENT_SECRET not in text


# --- reload and lifecycle -------------------------------------------------------------


def test_sighup_applies_a_valid_config(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    simulator.set_job("old", "IN_PROGRESS", 10)
    simulator.set_job("new", "IN_PROGRESS", 10)
    daemon = daemon_factory(
        one_job(simulator, receiver, tmp_path, jobs=[{"id": "old"}, {"id": "kept"}])
    )
    wait_until(lambda: job_status(daemon, "old")["status"] == "IN_PROGRESS", 10)

    with WebhookReceiver(secret=WEBHOOK_SECRET) as moved:
        # Same callback name, new URL; "old" dropped, "new" added.
        reloaded = one_job(
            simulator,
            moved,
            tmp_path,
            callbacks={"hook": webhook(moved, "/moved")},
            jobs=[{"id": "kept"}, {"id": "new"}],
        )
        write_config(daemon.config, reloaded)
        daemon.signal(signal.SIGHUP)
        daemon.wait_for_log("reloaded ")
        jobs = status(daemon.config)
        assert jobs["old"]["state"] == "unwatched"
        assert jobs["new"]["state"] == "watching"

        simulator.set_job("old", "DELIVERED", 100)
        finish_and_expect_webhook(simulator, moved, "new")
        hook = moved.received[0]
        assert hook.path == "/moved" and hook.signature_ok
        assert receiver.received == []
        assert [d["job_id"] for d in deliveries(daemon.config)] == ["new"]
        assert job_status(daemon, "old")["state"] == "unwatched"
        assert daemon.alive()
        assert daemon.stop() == 0


def test_sighup_with_an_invalid_config_keeps_the_old_one(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    simulator.set_job("j1", "IN_PROGRESS", 10)
    daemon = daemon_factory(one_job(simulator, receiver, tmp_path))
    wait_polled(simulator)

    broken = one_job(
        simulator,
        receiver,
        tmp_path,
        polling={"interval": "soon"},
        callbacks={"hook": {**webhook(receiver), "url": "ftp://example.com/hook"}},
        jobs=[{"id": "j1", "notify": ["nobody"]}],
    )
    write_config(daemon.config, broken)
    daemon.signal(signal.SIGHUP)
    daemon.wait_for_log("keeping the previous one")
    reload_lines = [line for line in daemon.output.splitlines() if "reload: " in line]
    for problem in ("polling.interval", "callbacks.hook.url", "jobs[0].notify[0]"):
        assert any(problem in line for line in reload_lines), (problem, reload_lines)
    assert daemon.alive()

    finish_and_expect_webhook(simulator, receiver)
    assert receiver.received[0].path == "/hook"
    # SIGINT ends the daemon like SIGTERM.
    daemon.signal(signal.SIGINT)
    assert daemon.stop() == 0


class NotifySocket:
    """A systemd-style ``NOTIFY_SOCKET``: an AF_UNIX datagram socket collecting messages."""

    def __init__(self) -> None:
        self.directory = tempfile.TemporaryDirectory(prefix="notify-")  # short: sun_path limit
        self.path = os.path.join(self.directory.name, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.messages: list[str] = []

    def drain(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return self.messages

    def wait_for(self, predicate: Callable[[list[str]], Any], timeout: float = 10) -> Any:
        try:
            return wait_until(lambda: predicate(self.drain()), timeout)
        except AssertionError:
            raise AssertionError(f"not notified; got {self.messages}") from None

    def index(self, first_line: str, start: int = 0) -> int:
        """Wait for a message whose first line is ``first_line`` at ``start`` or later."""

        def find(messages: list[str]) -> int | None:
            for index in range(start, len(messages)):
                if messages[index].splitlines()[0] == first_line:
                    return index + 1
            return None

        return int(self.wait_for(find)) - 1

    def close(self) -> None:
        self.sock.close()
        self.directory.cleanup()


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    sock = NotifySocket()
    yield sock
    sock.close()


def test_systemd_notify_protocol(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    notify_socket: NotifySocket,
    tmp_path: Path,
) -> None:
    simulator.set_job("j1", "IN_PROGRESS", 10)
    env = {"NOTIFY_SOCKET": notify_socket.path, "WATCHDOG_USEC": "1000000"}
    daemon = daemon_factory(one_job(simulator, receiver, tmp_path), env=env)

    ready = notify_socket.index("READY=1")
    ready_fields = notify_socket.messages[ready].splitlines()
    assert "STATUS=watching 1 jobs, 0 deliveries pending" in ready_fields
    # WATCHDOG_USEC=1s: pings every half of it, and a STATUS= summary line.
    notify_socket.wait_for(lambda m: m[ready:].count("WATCHDOG=1") >= 3, 5)
    summary = notify_socket.wait_for(
        lambda m: [x for x in m if x.startswith("STATUS=") and "deliveries pending" in x]
    )
    assert "jobs" in summary[0]

    mark = len(notify_socket.drain())
    daemon.signal(signal.SIGHUP)
    reloading = notify_socket.index("RELOADING=1", mark)
    assert any(
        field.startswith("MONOTONIC_USEC=")
        for field in notify_socket.messages[reloading].splitlines()
    )
    notify_socket.index("READY=1", reloading + 1)

    finish_and_expect_webhook(simulator, receiver)
    mark = len(notify_socket.drain())
    assert daemon.stop() == 0
    notify_socket.index("STOPPING=1", mark)
    assert "readable by other users" not in daemon.output  # written 0600 by the fixture


# --- hygiene --------------------------------------------------------------------------


def test_no_secret_in_any_output_after_a_run_with_faults(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    smtp: SmtpSink,
    tmp_path: Path,
) -> None:
    smtp_password = "smtp-pa55word-9Kq2"
    config = one_job(
        simulator,
        receiver,
        tmp_path,
        callbacks={
            "hook": webhook(receiver),
            # The sink offers no AUTH: every attempt fails and is retried, with errors.
            "mail": email(smtp, username="mailer", password=smtp_password),
        },
    )
    path = write_config(tmp_path / "config.yaml", config)
    path.chmod(0o644)
    simulator.set_job("j1", "IN_PROGRESS", 10)
    receiver.respond_with(500, count=2)
    daemon = DaemonProcess(path).start()
    tokens: set[str] = set()

    def remember_tokens() -> None:
        tokens.update(simulator.tokens.issued())

    outputs: list[str] = []
    try:
        daemon.wait_ready()
        wait_polled(simulator)
        remember_tokens()
        # An API that echoes secrets in its error texts: logs and `status` must hide them.
        simulator.fail_job("j1", f"upstream echoed {CLIENT_SECRET} / {smtp_password}")
        daemon.wait_for_log("upstream echoed")
        wait_until(lambda: job_status(daemon, "j1")["last_error"], 10)
        outputs += [cli(path, "status", *extra).stdout for extra in ((), ("--json",))]
        assert "upstream echoed ***" in outputs[-1]
        simulator.clear_faults()
        for kind in ("unauthenticated", "http_500", "http_401"):
            simulator.inject(kind)
        remember_tokens()
        simulator.revoke_tokens()
        simulator.inject_token("http_401", 1)
        simulator.inject_token("http_500", 1)
        daemon.wait_for_log("refused the client credentials")
        finish_and_expect_webhook(simulator, receiver)
        remember_tokens()
        mail = wait_until(
            lambda: [d for d in deliveries(path) if d["callback"] == "mail" and d["attempts"] >= 2],
            15,
        )[0]
        assert "AUTH" in mail["last_error"], mail  # the sink offers no AUTH
    finally:
        assert daemon.stop() == 0
    assert tokens, "no access token was issued"

    outputs.append(daemon.output)
    for command in ("status", "deliveries"):
        for extra in ((), ("--json",)):
            result = cli(path, command, *extra)
            outputs += [result.stdout, result.stderr]
    everything = "\n".join(outputs)
    assert "delivery" in everything and "polling paused" in everything  # faults were logged
    secrets = {
        "client secret": CLIENT_SECRET,
        "webhook secret": WEBHOOK_SECRET,
        "webhook key": WEBHOOK_SECRET.removeprefix("whsec_"),
        "SMTP password": smtp_password,
        **{f"access token {n}": token for n, token in enumerate(sorted(tokens))},
    }
    for name, secret in secrets.items():
        assert secret not in everything, f"the {name} leaked"

    warning = [line for line in daemon.output.splitlines() if "readable by other users" in line]
    assert len(warning) == 1 and str(path) in warning[0] and "WARNING" in warning[0]
