"""Issue 8, end to end: several ``datasaur-notifier run`` processes sharing one PostgreSQL.

Every daemon is a subprocess with a config of its own (its ``cluster.instance_name``, the
same ``state_url``) against the in-process Datasaur simulator and webhook receiver, and a
throwaway PostgreSQL server that the tests restart and stop. The tests look at what the
receiver got, at the daemons' logs, at the CLI's output and, to time take-overs, straight
at the database's lease columns. Synchronisation is by polling with deadlines.

Short leases (3 s) with 1 s Datasaur and delivery timeouts keep each test within seconds.
``run`` against an unreachable database gives up only after its 30 s of retries, so that
process is started when the module starts (:func:`unreachable_run`) and checked last.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from notifier.config import JobSpec
from notifier.standins.receiver import ReceivedWebhook, WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from notifier.store import Attempt, JobUpdate, NewEvent, SqliteStore
from notifier.store.schema import migrations
from tests.conftest import base_config, webhook
from tests.support.daemon import DaemonProcess, cli, deliveries, status, write_config
from tests.support.postgres import PostgresServer
from tests.support.smtp import free_port
from tests.support.waiting import wait_until

LEASE = 3.0
READY = 40.0  # a daemon's start-up on a busy two-core machine
Key = tuple[str, str, str]


class Cluster:
    """Daemons on one test database, each with its own config file and log."""

    def __init__(self, tmp_path: Path, url: str, sim: DatasaurSimulator) -> None:
        self.tmp_path = tmp_path
        self.url = url
        self.sim = sim
        self.daemons: list[DaemonProcess] = []

    def config(
        self,
        name: str,
        callbacks: dict[str, Any],
        jobs: list[dict[str, Any]] | None = None,
        **datasaur: Any,
    ) -> dict[str, Any]:
        config = base_config(self.sim, self.tmp_path, callbacks=callbacks, jobs=jobs or [])
        del config["state_path"]
        config["state_url"] = self.url
        config["cluster"] = {"lease": f"{LEASE:g}s", "instance_name": name}
        config["datasaur"].update(
            {"timeout": "1s", "max_requests_per_second": 50, "batch_size": 50, **datasaur}
        )
        config["delivery"] = {"timeout": "1s", "initial_backoff": "0.1s", "max_backoff": "1s"}
        return config

    def path(self, name: str) -> Path:
        return self.tmp_path / f"{name}.yaml"

    def start(
        self, name: str, config: dict[str, Any], wait: bool = True, args: tuple[str, ...] = ()
    ) -> DaemonProcess:
        daemon = DaemonProcess(write_config(self.path(name), config), args=args).start()
        self.daemons.append(daemon)
        if wait:
            daemon.wait_ready(READY)
        return daemon

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            return conn.execute(sql.encode(), params).fetchall()

    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.query(sql, params)[0][0]

    def stop_all(self) -> None:
        for daemon in self.daemons:
            if daemon.alive():
                try:
                    daemon.stop(20)
                except subprocess.TimeoutExpired:
                    daemon.kill9()


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str, simulator: DatasaurSimulator) -> Iterator[Cluster]:
    """Stops its daemons before the test's database is dropped."""
    running = Cluster(tmp_path, postgres_url, simulator)
    yield running
    running.stop_all()


def in_progress(sim: DatasaurSimulator, count: int, prefix: str = "job") -> list[str]:
    """``count`` jobs the simulator has running."""
    ids = [f"{prefix}-{n:03d}" for n in range(count)]
    for job_id in ids:
        sim.set_job(job_id, "IN_PROGRESS", 10)
    return ids


def finish_over(sim: DatasaurSimulator, ids: list[str], start: float, spread: float) -> None:
    """The jobs reach DELIVERED one after the other, from ``start`` s to ``start + spread`` s."""
    for n, job_id in enumerate(ids):
        sim.script_job(job_id, [(start + spread * n / len(ids), "DELIVERED", 100)])


def wait_all_polled(cluster: Cluster, count: int, timeout: float = 30) -> None:
    try:
        wait_until(
            lambda: (
                cluster.scalar("SELECT count(*) FROM jobs WHERE status = 'IN_PROGRESS'") == count
            ),
            timeout,
            interval=0.1,
        )
    except AssertionError:
        seen = cluster.query("SELECT state, status, count(*) FROM jobs GROUP BY 1, 2")
        logs = "\n".join(f"--- {d.log_path.name}\n{d.output[-3000:]}" for d in cluster.daemons)
        raise AssertionError(f"the {count} jobs were never all polled: {seen}\n{logs}") from None


def complete(receiver: WebhookReceiver) -> list[ReceivedWebhook]:
    """What arrived whole (a kill while writing a request leaves a truncated body)."""
    return [
        hook
        for hook in receiver.received
        if len(hook.body) == int(hook.headers.get("content-length", -1))
    ]


def key_of(hook: ReceivedWebhook) -> Key:
    return (hook.json["data"]["job_id"], hook.path, hook.json["type"])


def wait_received(receiver: WebhookReceiver, expected: set[Key], timeout: float) -> None:
    def missing() -> set[Key]:
        return expected - {key_of(hook) for hook in complete(receiver)}

    wait_until(lambda: not missing(), timeout, interval=0.1, message=f"never received {missing()}")


def wait_all_delivered(cluster: Cluster, count: int, timeout: float = 20) -> None:
    wait_until(
        lambda: (
            cluster.query("SELECT state, count(*) FROM deliveries GROUP BY state")
            == [("delivered", count)]
        ),
        timeout,
        interval=0.1,
        message="not every delivery recorded as delivered",
    )


def check_received(cluster: Cluster, receiver: WebhookReceiver, expected: set[Key]) -> int:
    """Every key received, signed, under its outbox row's webhook-id only; the duplicates."""
    received = complete(receiver)
    assert {key_of(hook) for hook in received} == expected
    assert all(hook.signature_ok for hook in received)
    ids_by_key: dict[Key, set[str]] = defaultdict(set)
    for hook in received:
        ids_by_key[key_of(hook)].add(hook.headers["webhook-id"])
    rows = cluster.query("SELECT id, job_id, callback, event FROM deliveries")
    assert len(rows) == len(expected)
    for row_id, job_id, callback, event in rows:
        assert ids_by_key[(job_id, "/" + callback, event)] == {row_id}
    return len(received) - len(expected)


def count_lines(daemon: DaemonProcess, text: str) -> int:
    return sum(text in line for line in daemon.output.splitlines())


def assert_clean(*daemons: DaemonProcess) -> None:
    for daemon in daemons:
        assert "Traceback" not in daemon.output, daemon.output


# --- sharing the work ------------------------------------------------------------------


def test_two_instances_share_200_jobs_and_notify_every_event_once(
    cluster: Cluster, simulator: DatasaurSimulator, receiver: WebhookReceiver
) -> None:
    ids = in_progress(simulator, 200)
    callbacks = {"a": webhook(receiver, "/a"), "b": webhook(receiver, "/b")}
    job_list = [{"id": job_id} for job_id in ids]
    daemons = [
        cluster.start(name, cluster.config(name, callbacks, job_list), wait=False)
        for name in ("one", "two")
    ]
    for daemon in daemons:
        daemon.wait_ready(READY)
    wait_all_polled(cluster, 200)
    finish_over(simulator, ids, 0.2, 5.0)

    expected = {(job_id, path, "job.delivered") for job_id in ids for path in ("/a", "/b")}
    wait_received(receiver, expected, 40)
    wait_all_delivered(cluster, 400)
    assert check_received(cluster, receiver, expected) == 0  # no crash: exactly once
    assert len(receiver.received) == 400

    polled = [count_lines(daemon, ": job.delivered, notifying a, b") for daemon in daemons]
    sent = [count_lines(daemon, ": delivered, HTTP 200") for daemon in daemons]
    print(f"\n200 jobs on 2 instances: events recorded {polled}, webhooks sent {sent}")
    assert all(polled) and all(sent), (polled, sent)  # both did some of each
    assert sum(polled) >= 200 and sum(sent) == 400
    assert cluster.scalar("SELECT count(*) FROM jobs WHERE state = 'done'") == 200
    assert_clean(*daemons)


def test_kill9_of_one_of_three_mid_delivery_loses_nothing_and_others_take_over(
    cluster: Cluster, simulator: DatasaurSimulator, receiver: WebhookReceiver
) -> None:
    ids = in_progress(simulator, 60)
    callbacks = {"hook": webhook(receiver)}
    job_list = [{"id": job_id} for job_id in ids]
    daemons = {
        name: cluster.start(name, cluster.config(name, callbacks, job_list), wait=False)
        for name in ("k-1", "k-2", "k-3")
    }
    for daemon in daemons.values():
        daemon.wait_ready(READY)
    wait_all_polled(cluster, 60)
    # Slow polls (0.3 s) and a slow receiver (0.5 s): leases are held most of the time.
    simulator.inject("hang", count=100_000, delay=0.3)
    receiver.respond_with(200, delay=0.5)
    finish_over(simulator, ids, 0.5, 4.0)

    # The victim: an instance holding a job lease and a delivery lease right now.
    live = "lease_until > extract(epoch from now())"
    holder = f"""
        SELECT i.name, i.id FROM instances i
        WHERE EXISTS (SELECT 1 FROM jobs WHERE lease_owner = i.id AND {live})
          AND EXISTS (SELECT 1 FROM deliveries WHERE lease_owner = i.id AND {live})
        LIMIT 1
    """
    name, victim_id = wait_until(lambda: (rows := cluster.query(holder)) and rows[0], 20)
    daemons[name].kill9()
    killed_at = time.time()
    survivors = [daemon for other, daemon in daemons.items() if other != name]

    # Whatever the victim still holds is orphaned until its lease runs out.
    orphans = {
        table: dict(cluster.query(f"SELECT id, lease_until FROM {table} WHERE lease_owner = %s",
                                  (victim_id,)))
        for table in ("jobs", "deliveries")
    }  # fmt: skip
    assert orphans["jobs"] or orphans["deliveries"], "the kill hit no lease"
    taken: dict[str, float] = {}  # row id: seconds from the kill until another holds it
    orphan_ids = [row_id for rows in orphans.values() for row_id in rows]

    def taken_over() -> bool:
        rows = cluster.query(
            "SELECT id FROM jobs WHERE id = ANY(%s) AND lease_owner IS DISTINCT FROM %s"
            " UNION ALL"
            " SELECT id FROM deliveries WHERE id = ANY(%s) AND lease_owner IS DISTINCT FROM %s",
            (orphan_ids, victim_id, orphan_ids, victim_id),
        )
        now = time.time() - killed_at
        for (row_id,) in rows:
            taken.setdefault(row_id, now)
        return len(taken) == len(orphan_ids)

    wait_until(taken_over, LEASE + 15, interval=0.05, message=f"not taken over: {orphans}")
    expiry = max(until for rows in orphans.values() for until in rows.values()) - killed_at
    job_times = [taken[i] for i in orphans["jobs"]]
    delivery_times = [taken[i] for i in orphans["deliveries"]]
    print(
        f"\nkill -9 of {name}: {len(job_times)} jobs taken over after "
        f"{max(job_times, default=0):.2f}s, {len(delivery_times)} deliveries after "
        f"{max(delivery_times, default=0):.2f}s; its leases ran {expiry:.2f}s past the kill;"
        f" lease {LEASE:g}s"
    )
    assert expiry <= LEASE + 0.5  # renewed leases reach at most one lease ahead
    assert max(taken.values()) <= LEASE + 2.0, taken  # one lease, plus a tick or two

    expected = {(job_id, "/hook", "job.delivered") for job_id in ids}
    wait_received(receiver, expected, 40)
    wait_all_delivered(cluster, 60)
    duplicates = check_received(cluster, receiver, expected)
    truncated = len(receiver.received) - len(complete(receiver))
    print(
        f"kill -9: lost 0 of {len(expected)}, duplicates {duplicates} (same webhook-id),"
        f" truncated {truncated}, deliveries orphaned {len(orphans['deliveries'])}"
    )
    # Only what the victim had in flight may be sent again: one per lane worker at most.
    assert duplicates + truncated <= 4, (duplicates, truncated)
    assert all(daemon.alive() for daemon in survivors)
    assert_clean(*survivors)

    # The dead instance is listed, no longer alive once a lease has passed since its last
    # heartbeat; the others are.
    def alive() -> dict[str, bool]:
        listed = json.loads(cli(survivors[0].config, "instances", "--json").stdout)
        return {entry["name"]: entry["alive"] for entry in listed["instances"]}

    expected_alive = {**{other: True for other in daemons if other != name}, name: False}
    wait_until(lambda: alive() == expected_alive, LEASE + 10, interval=0.2)


# --- the database's outages ------------------------------------------------------------


def healthz(port: int) -> int:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=3).status_code
    except requests.RequestException:
        return 0


def test_postgres_restart_and_outage_are_survived_without_loss(
    cluster: Cluster,
    postgres_server: PostgresServer,
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
) -> None:
    if not postgres_server.controllable:
        pytest.skip("cannot restart an external PostgreSQL server")
    ids = in_progress(simulator, 40)
    callbacks = {"hook": webhook(receiver)}
    job_list = [{"id": job_id} for job_id in ids]
    port = free_port()
    daemons = [
        cluster.start("r-1", cluster.config("r-1", callbacks, job_list), wait=False,
                      args=("--metrics-port", str(port))),
        cluster.start("r-2", cluster.config("r-2", callbacks, job_list), wait=False),
    ]  # fmt: skip
    for daemon in daemons:
        daemon.wait_ready(READY)
    wait_all_polled(cluster, 40)
    assert healthz(port) == 200
    receiver.respond_with(200, delay=0.1)
    finish_over(simulator, ids, 0.3, 8.0)
    wait_until(lambda: len(receiver.received) >= 5, 20)

    postgres_server.restart("fast")
    retry_lines = ("retrying in", "reconnecting in")
    wait_until(
        lambda: any(line in d.output for d in daemons for line in retry_lines),
        15,
        message="no retry line after the restart",
    )
    assert all(daemon.alive() for daemon in daemons)

    # A short outage: /healthz says so while it lasts, and recovers after.
    postgres_server.stop("fast")
    stopped = time.monotonic()
    try:
        wait_until(lambda: healthz(port) == 503, 30, interval=0.1, message="/healthz never 503")
        unhealthy_after = time.monotonic() - stopped
        body = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=3).text
        wait_until(lambda: "retrying in" in daemons[0].output, 15)
    finally:
        postgres_server.start()
    started = time.monotonic()
    wait_until(lambda: healthz(port) == 200, 40, interval=0.1, message="/healthz never 200 again")
    healthy_after = time.monotonic() - started
    assert "state store unavailable" in body, body
    assert all(daemon.alive() for daemon in daemons)

    expected = {(job_id, "/hook", "job.delivered") for job_id in ids}
    wait_received(receiver, expected, 40)
    wait_all_delivered(cluster, 40)
    duplicates = check_received(cluster, receiver, expected)
    retries = [sum(count_lines(d, line) for line in retry_lines) for d in daemons]
    print(
        f"\nPostgreSQL restart + outage: lost 0 of {len(expected)}, duplicates {duplicates}"
        f" (same webhook-id); /healthz 503 {unhealthy_after:.1f}s after the stop, 200"
        f" {healthy_after:.1f}s after the start; retry lines per daemon {retries}"
    )
    # At most the attempts in flight (4 per daemon) at each of the two interruptions.
    assert duplicates <= 2 * 2 * 4, duplicates
    assert_clean(*daemons)


# --- starting together, the shared cap -------------------------------------------------


def test_three_instances_started_at_once_on_an_empty_database(
    cluster: Cluster, receiver: WebhookReceiver
) -> None:
    callbacks = {"hook": webhook(receiver)}
    daemons = [
        cluster.start(name, cluster.config(name, callbacks), wait=False)
        for name in ("s-1", "s-2", "s-3")
    ]
    for daemon in daemons:
        daemon.wait_ready(READY)
    steps = migrations("postgres")
    versions = cluster.query(
        "SELECT version, count(*) FROM schema_migrations GROUP BY version ORDER BY version"
    )
    assert versions == [(number, 1) for number, _, _ in steps]
    applied = sum(count_lines(daemon, "applied migration") for daemon in daemons)
    assert applied == len(steps)
    names = wait_until(
        lambda: sorted(row[0] for row in cluster.query("SELECT name FROM instances")) or None, 10
    )
    assert names == ["s-1", "s-2", "s-3"]
    assert all(daemon.alive() for daemon in daemons)
    assert_clean(*daemons)


def test_the_request_rate_cap_holds_across_instances(
    cluster: Cluster, simulator: DatasaurSimulator
) -> None:
    cap = 4
    ids = in_progress(simulator, 60)
    job_list = [{"id": job_id} for job_id in ids]
    # One job per request and short intervals: the three want far more than the cap.
    daemons = []
    for name in ("q-1", "q-2", "q-3"):
        config = cluster.config(name, {}, job_list, max_requests_per_second=cap, batch_size=1)
        config["polling"] = {"interval": "0.2s", "max_interval": "0.4s", "expire_after": 0}
        daemons.append(cluster.start(name, config, wait=False))
    for daemon in daemons:
        daemon.wait_ready(READY)
    wait_until(lambda: len(simulator.stats().requests) >= 2 * cap, 20)
    window = 4.0
    start = time.monotonic()
    wait_until(lambda: time.monotonic() >= start + window, window + 1, interval=0.1)
    times = [at for at, _, _ in simulator.stats().requests if start <= at <= start + window]
    rate = len(times) / window
    print(f"\nshared cap {cap}/s over 3 instances: {len(times)} requests in {window:g}s"
          f" = {rate:.2f}/s")  # fmt: skip
    assert len(times) <= cap * window + cap + 1  # the rate, one burst, one at the edge
    assert len(times) >= cap * window * 0.6  # and the cap is what limits them
    assert all(daemon.alive() for daemon in daemons)
    assert_clean(*daemons)


# --- the CLI on a shared state ---------------------------------------------------------


def test_watch_from_another_host_is_picked_up(
    cluster: Cluster, simulator: DatasaurSimulator, receiver: WebhookReceiver
) -> None:
    daemon = cluster.start("w-1", cluster.config("w-1", {"hook": webhook(receiver)}))
    # The operator's host: a config of its own naming only the API and the database.
    elsewhere = write_config(
        cluster.tmp_path / "operator.yaml",
        {"datasaur": {"graphql_url": simulator.graphql_url, "token": "x" * 40},
         "state_url": cluster.url},
    )  # fmt: skip
    simulator.set_job("added-elsewhere", "DELIVERED", 100)
    watched = cli(elsewhere, "watch", "added-elsewhere", "--name", "from the laptop")
    assert watched.returncode == 0, watched.stderr
    [hook] = receiver.wait_for(lambda h: h.json["data"]["job_id"] == "added-elsewhere", 20)
    assert hook.json["type"] == "job.delivered" and hook.json["data"]["name"] == "from the laptop"
    job = wait_until(
        lambda: (job := status(elsewhere)["added-elsewhere"])["state"] == "done" and job, 10
    )
    assert job["owner"] is None  # no lease held once polled
    [row] = deliveries(elsewhere)
    assert row["id"] == hook.headers["webhook-id"]
    assert_clean(daemon)


def test_instances_lists_running_daemons_until_they_stop(
    cluster: Cluster,
    receiver: WebhookReceiver,
    simulator: DatasaurSimulator,
    daemon_factory: Any,
    tmp_path: Path,
) -> None:
    callbacks = {"hook": webhook(receiver)}
    first = cluster.start("h-1", cluster.config("h-1", callbacks), wait=False)
    second = cluster.start("h-2", cluster.config("h-2", callbacks), wait=False)
    for daemon in (first, second):
        daemon.wait_ready(READY)

    def listed() -> list[dict[str, Any]]:
        result = cli(first.config, "instances", "--json")
        assert result.returncode == 0, result.stderr
        return list(json.loads(result.stdout)["instances"])

    both = listed()
    assert sorted(entry["name"] for entry in both) == ["h-1", "h-2"]
    assert all(entry["alive"] for entry in both)
    assert all(entry["version"] and entry["started_at"] and entry["last_seen_at"] for entry in both)
    second.signal(signal.SIGTERM)
    assert second.process is not None and second.process.wait(20) == 0
    [remaining] = listed()
    assert (remaining["name"], remaining["alive"]) == ("h-1", True)

    # On SQLite: the one daemon that owns the file.
    sqlite_config = base_config(simulator, tmp_path, callbacks=callbacks)
    sqlite_config["cluster"] = {"instance_name": "only-one"}
    alone = daemon_factory(sqlite_config)
    result = cli(alone.config, "instances", "--json")
    assert result.returncode == 0, result.stderr
    [entry] = json.loads(result.stdout)["instances"]
    assert (entry["name"], entry["alive"]) == ("only-one", True)
    assert_clean(first, second, alone)


def sqlite_state(path: Path) -> None:
    """A SQLite state file as an earlier single daemon left it."""
    now = time.time()
    old = SqliteStore(path)
    try:
        old.sync_config_jobs([JobSpec(id="done-1"), JobSpec(id="done-2"), JobSpec(id="open")], now)
        payload = {"type": "job.delivered", "data": {"job_id": "x"}}
        updates = [
            JobUpdate(job_id, "done", "DELIVERED", 100, {"id": job_id}, now, None, 1.0, None,
                      [NewEvent("job.delivered", payload, ["hook"])])
            for job_id in ("done-1", "done-2")
        ]  # fmt: skip
        old.apply_polls(updates)
        first, second = old.deliveries()
        old.record_attempt(Attempt(first.id, now, 0.01, True, "HTTP 200", "delivered", None))
        old.record_attempt(Attempt(second.id, now, 0.01, False, "HTTP 503", "pending", now + 60))
    finally:
        old.close()


def test_import_state_and_migrate_from_the_cli(
    cluster: Cluster, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    config = write_config(
        cluster.path("import"), cluster.config("import", {"hook": webhook(receiver)})
    )
    migrated = cli(config, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "schema up to date" in migrated.stdout
    assert cluster.scalar("SELECT count(*) FROM schema_migrations") == len(migrations("postgres"))

    path = tmp_path / "old-state.db"
    sqlite_state(path)
    first = cli(config, "import-state", str(path))
    assert first.returncode == 0, first.stderr
    assert "imported 3 jobs, 2 deliveries and 2 attempts" in first.stdout, first.stdout
    again = cli(config, "import-state", str(path))
    assert again.returncode == 0, again.stderr
    assert "imported 0 jobs, 0 deliveries and 0 attempts" in again.stdout, again.stdout
    assert "already present: 3 jobs, 2 deliveries" in again.stdout, again.stdout

    jobs = status(config)
    assert {job_id: job["state"] for job_id, job in jobs.items()} == {
        "done-1": "done",
        "done-2": "done",
        "open": "watching",
    }
    rows = deliveries(config)
    assert sorted(row["state"] for row in rows) == ["delivered", "pending"]
    assert cluster.scalar("SELECT count(*) FROM attempts") == 2
    assert cli(config, "migrate").returncode == 0

    # Into a SQLite config it is a usage error.
    sqlite_config = write_config(
        tmp_path / "sqlite.yaml", base_config(cluster.sim, tmp_path, callbacks={})
    )
    refused = cli(sqlite_config, "import-state", str(path))
    assert refused.returncode == 2 and "state_url" in refused.stderr, refused


# --- configs that can't run ------------------------------------------------------------


@dataclass
class UnreachableRun:
    process: subprocess.Popen[bytes]
    started: float
    log: Path
    port: int
    exited: float | None = None  # time.monotonic() when it ended

    def watch(self) -> None:
        self.process.wait()
        self.exited = time.monotonic()


@pytest.fixture(scope="module", autouse=True)
def unreachable_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UnreachableRun]:
    """``run`` against a closed port, started with the module: it retries for 30 s."""
    folder = tmp_path_factory.mktemp("unreachable")
    port = free_port()
    config = {
        "datasaur": {"graphql_url": "http://127.0.0.1:9/graphql", "token": "t" * 40},
        "state_url": f"postgresql://notifier:pw-not-shown@127.0.0.1:{port}/state",
    }
    path = write_config(folder / "config.yaml", config)
    log = folder / "run.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "notifier", "-c", str(path), "run"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    run = UnreachableRun(process, time.monotonic(), log, port)
    watcher = threading.Thread(target=run.watch, daemon=True)
    watcher.start()
    yield run
    if process.poll() is None:
        process.kill()
        process.wait(10)


def test_check_config_and_both_stores_need_no_database(tmp_path: Path) -> None:
    with socket.socket() as listener:  # a database that would notice being contacted
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        url = f"postgresql://notifier:pw@127.0.0.1:{port}/state"
        datasaur = {"graphql_url": "http://127.0.0.1:9/graphql", "token": "t" * 40}
        config = write_config(tmp_path / "ok.yaml", {"datasaur": datasaur, "state_url": url})
        checked = cli(config, "check-config")
        assert checked.returncode == 0, checked.stderr
        assert "ok" in checked.stdout and ":pw@" not in checked.stdout, checked.stdout
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected

    both = write_config(
        tmp_path / "both.yaml",
        {"datasaur": datasaur, "state_url": url, "state_path": str(tmp_path / "s.db")},
    )
    refused = cli(both, "check-config")
    assert refused.returncode == 2, refused
    assert "state_url" in refused.stderr and "state_path" in refused.stderr, refused.stderr
    assert cli(both, "run").returncode == 2


def test_run_with_an_unreachable_database_retries_then_exits_1(
    unreachable_run: UnreachableRun,
) -> None:
    run = unreachable_run
    code = run.process.wait(60)
    wait_until(lambda: run.exited is not None, 5)
    assert run.exited is not None
    took = run.exited - run.started
    output = run.log.read_text()
    lines = output.splitlines()
    print(f"\nunreachable state_url: exit {code} after {took:.1f}s, {len(lines)} log lines")
    assert code == 1, output
    assert took <= 40, took
    retries = [line for line in lines if "retrying in" in line]
    errors = [line for line in lines if " ERROR " in line]
    assert len(retries) >= 2, output
    assert len(errors) == 1, output
    assert f"127.0.0.1:{run.port}" in errors[0] and "cannot reach" in errors[0], errors
    assert "pw-not-shown" not in output
    assert "Traceback" not in output


@pytest.mark.parametrize("known", [True, False], ids=["outage-known", "outage-just-begun"])
def test_a_stop_while_the_database_is_down_exits_0_within_a_containers_grace(
    cluster: Cluster, postgres_server: PostgresServer, simulator: DatasaurSimulator, known: bool
) -> None:
    """SIGTERM during an outage, once a store call has failed (``known``) or just after the
    database went away (the ticks still waiting for a connection): no lease can be given
    back, and the daemon exits 0 within 10 s (podman's and docker's default stop) instead
    of waiting for the store; its leases expire within a lease, as after a crash."""
    if not postgres_server.controllable:
        pytest.skip("cannot stop an external PostgreSQL server")
    ids = in_progress(simulator, 10)
    daemon = cluster.start("o-1", cluster.config("o-1", {}, [{"id": i} for i in ids]))
    wait_all_polled(cluster, 10)
    postgres_server.stop("fast")
    try:
        if known:
            daemon.wait_for_log("retrying in", 30)
        started = time.monotonic()
        code = daemon.stop(timeout=30)
        took = time.monotonic() - started
    finally:
        postgres_server.start()
    print(f"\nstop during an outage ({'known' if known else 'just begun'}): exit {code}"
          f" after {took:.1f}s")  # fmt: skip
    assert code == 0, daemon.output
    assert took < 10, (took, daemon.output)
    # Known, the leases are not tried; just begun, they may be tried (1 s at most).
    said = ("leases not given back", "could not release leases")
    assert any(line in daemon.output for line in said[: 1 if known else 2]), daemon.output
    assert "Traceback" not in daemon.output


def test_a_reload_during_an_outage_keeps_the_previous_config_whole(
    cluster: Cluster,
    postgres_server: PostgresServer,
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
) -> None:
    """SIGHUP while the database is down cannot sync the config's jobs: the reload fails
    with one line and the previous config stays in force everywhere (the poller too, so
    no event is addressed to a callback the dispatcher does not have); a SIGHUP once the
    database is back applies the new one."""
    if not postgres_server.controllable:
        pytest.skip("cannot stop an external PostgreSQL server")
    ids = in_progress(simulator, 3)
    old = cluster.config("h-1", {"hook": webhook(receiver)}, [{"id": i} for i in ids[:2]])
    daemon = cluster.start("h-1", old)
    wait_all_polled(cluster, 2)
    new = cluster.config(
        "h-1",
        {"hook": webhook(receiver), "hook2": webhook(receiver, "/hook2")},
        [{"id": i} for i in ids],
    )
    write_config(cluster.path("h-1"), new)
    postgres_server.stop("fast")
    try:
        daemon.wait_for_log("retrying in", 30)
        daemon.signal(signal.SIGHUP)
        daemon.wait_for_log("reload failed, keeping the previous config", 30)
    finally:
        postgres_server.start()
    daemon.wait_for_log("the state store answers again", 40)

    simulator.set_job(ids[0], "DELIVERED", 100)
    wait_received(receiver, {(ids[0], "/hook", "job.delivered")}, 30)
    assert cluster.scalar("SELECT count(*) FROM deliveries WHERE callback = 'hook2'") == 0
    wait_all_delivered(cluster, 1)
    assert cluster.scalar("SELECT count(*) FROM jobs WHERE id = %s", (ids[2],)) == 0

    daemon.signal(signal.SIGHUP)
    daemon.wait_for_log("reloaded", 30)
    simulator.set_job(ids[1], "DELIVERED", 100)
    wait_received(
        receiver,
        {(ids[0], "/hook", "job.delivered"), (ids[1], "/hook", "job.delivered"),
         (ids[1], "/hook2", "job.delivered")},
        30,
    )  # fmt: skip
    wait_until(lambda: cluster.scalar("SELECT status FROM jobs WHERE id = %s", (ids[2],)), 30)
    assert "Traceback" not in daemon.output
    assert daemon.alive()


def test_wait_rides_out_a_database_outage(
    cluster: Cluster, postgres_server: PostgresServer, simulator: DatasaurSimulator
) -> None:
    """``wait`` (polling itself: no daemon runs) while PostgreSQL stops and starts again:
    one line per retry, then it goes on and exits 0 when the job is delivered (1 would
    read as a failed job)."""
    if not postgres_server.controllable:
        pytest.skip("cannot stop an external PostgreSQL server")
    [job_id] = in_progress(simulator, 1)
    config = cluster.config("w-1", {})
    config["polling"] = {"interval": "0.2s", "max_interval": "0.4s", "expire_after": 0}
    path = write_config(cluster.path("w-1"), config)
    assert cli(path, "migrate").returncode == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "notifier", "-c", str(path), "wait", job_id, "--timeout", "90s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.extend(process.stderr or ()), daemon=True)
    reader.start()
    try:
        wait_all_polled(cluster, 1)
        postgres_server.stop("fast")
        try:
            wait_until(lambda: any("retrying in" in line for line in errors), 30)
            assert process.poll() is None, "".join(errors)
        finally:
            postgres_server.start()
        wait_until(lambda: any("answers again" in line for line in errors), 40)
        simulator.set_job(job_id, "DELIVERED", 100)
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    reader.join(5)
    assert process.returncode == 0, out + "".join(errors)
    assert "1 of 1 ended: all delivered (exit 0)" in out
    assert "Traceback" not in "".join(errors)
