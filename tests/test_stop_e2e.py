"""SIGTERM with the default timeouts: the daemon exits 0 within a container's default
10 s stop grace even when a receiver or Datasaur hangs (the work in flight is waited for
7 s at most), gives its leases back, and loses nothing: the delivery cut short stays
pending and is sent again, under the same ``webhook-id``, once a daemon runs again."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from notifier.standins.receiver import WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from tests.conftest import base_config, webhook
from tests.support.daemon import DaemonProcess
from tests.support.waiting import wait_until

CONTAINER_STOP_GRACE = 10.0  # docker stop / podman stop, by default
JOB = "AutoLabelQueue:stop-1"


def default_timeouts(
    sim: DatasaurSimulator, receiver: WebhookReceiver, tmp: Path, url: str
) -> dict[str, Any]:
    """The tests' config with the default datasaur.timeout and delivery.timeout (10 s)."""
    config = base_config(sim, tmp, state_url=url, callbacks={"hook": webhook(receiver)})
    del config["state_path"], config["datasaur"]["timeout"], config["delivery"]["timeout"]
    config["cluster"] = {"lease": "30s"}
    config["jobs"] = [{"id": JOB}]
    return config


def stop_within_grace(daemon: DaemonProcess) -> float:
    """SIGTERM, then the seconds until the daemon exited 0."""
    assert daemon.process is not None
    asked = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.process.wait(CONTAINER_STOP_GRACE + 5) == 0, daemon.run_output
    return time.monotonic() - asked


def held(url: str) -> tuple[int, int]:
    """Instance rows, and jobs or deliveries still leased."""
    with psycopg.connect(url, autocommit=True) as conn:
        instances = conn.execute("SELECT count(*) FROM instances").fetchone()
        leased = conn.execute(
            "SELECT (SELECT count(*) FROM jobs WHERE lease_owner IS NOT NULL)"
            " + (SELECT count(*) FROM deliveries WHERE lease_owner IS NOT NULL)"
        ).fetchone()
    assert instances is not None and leased is not None
    return int(instances[0]), int(leased[0])


def test_a_hanging_receiver_does_not_hold_the_stop_past_10s_and_nothing_is_lost(
    postgres_url: str,  # first: the daemons stop before the database is dropped
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    simulator.set_job(JOB, "DELIVERED", 100)
    receiver.respond_with(200, delay=60)  # answers long after delivery.timeout (10 s)
    config = default_timeouts(simulator, receiver, tmp_path, postgres_url)
    daemon = daemon_factory(config)
    [first] = receiver.wait_for(1, 30)
    took = stop_within_grace(daemon)
    assert took < CONTAINER_STOP_GRACE - 1, f"the stop took {took:.1f}s"
    assert "stopping anyway" in daemon.run_output and "stopped:" in daemon.run_output
    assert held(postgres_url) == (0, 0)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        assert conn.execute("SELECT state FROM deliveries").fetchall() == [("pending",)]

    receiver.respond_with(200)
    daemon_factory(config)
    hooks = receiver.wait_for(2, 30)
    assert {hook.headers["webhook-id"] for hook in hooks} == {first.headers["webhook-id"]}

    def delivered() -> bool:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            return conn.execute("SELECT state FROM deliveries").fetchall() == [("delivered",)]

    wait_until(delivered, 15, 0.1, "the resent delivery was not recorded")


def test_a_hanging_poll_does_not_hold_the_stop_past_10s(
    postgres_url: str,  # first: the daemons stop before the database is dropped
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    simulator.set_job(JOB, "IN_PROGRESS", 10)
    config = default_timeouts(simulator, receiver, tmp_path, postgres_url)
    daemon = daemon_factory(config)
    wait_until(lambda: simulator.stats().job_polls > 0, 15, 0.1, "never polled")
    asked = simulator.stats().graphql_requests
    simulator.inject("hang", 10_000, delay=60)  # Datasaur stops answering
    wait_until(lambda: simulator.stats().graphql_requests > asked, 15, 0.05, "no poll hung")
    took = stop_within_grace(daemon)
    assert took < CONTAINER_STOP_GRACE - 1, f"the stop took {took:.1f}s"
    assert held(postgres_url) == (0, 0)
