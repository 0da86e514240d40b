"""The container image, built from this checkout and run with podman (README "Run in a
container"): the demo inside it, the daemon notifying a receiver on the host, a clean
``podman stop`` on PostgreSQL, and a read-only root filesystem with a state volume."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from notifier import __version__
from notifier.standins.receiver import WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from tests.conftest import CLIENT_SECRET, base_config, webhook
from tests.support.podman import (
    BASE_ENV,
    DEFAULT_BASE,
    ROOT,
    build_command,
    ensure_base,
    ensure_runtime,
    package_index,
    podman,
    readable_by_image,
    running,
    write_mounted_config,
)
from tests.support.postgres import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.container

CONFIG = "/etc/datasaur-notifier/config.yaml"
SECRET = "/run/secrets/datasaur-client-secret"
STATE = "/var/lib/datasaur-notifier"
JOB = "AutoLabelQueue:container-0001"
README = (ROOT / "README.md").read_text()


def container_config(sim: DatasaurSimulator, receiver: WebhookReceiver, **sections: Any) -> Any:
    """The tests' config as a container is given it: state on the volume, the client
    secret from a mounted file, metrics on every address of the (host's) network."""
    config = base_config(sim, Path(STATE), **sections)
    config["datasaur"]["client_secret"] = f"${{file:{SECRET}}}"
    config["callbacks"] = {"hook": webhook(receiver)}
    config["jobs"] = [{"id": JOB, "name": "in a container"}]
    config["metrics"] = {"host": "0.0.0.0", "port": free_port()}
    return config


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Any]:
    """``mounts(config) -> podman options`` mounting that config and the client secret."""

    def make(config: dict[str, Any]) -> list[str]:
        secret = tmp_path / "datasaur-client-secret"
        secret.write_text(CLIENT_SECRET + "\n")
        secret.chmod(0o600)
        readable_by_image(secret)
        path = write_mounted_config(tmp_path / "config.yaml", config)
        return ["-v", f"{path}:{CONFIG}:ro", "-v", f"{secret}:{SECRET}:ro"]

    yield make


@pytest.fixture
def volume() -> Iterator[str]:
    """A named volume for the state, removed afterwards."""
    name = f"notifier-test-state-{uuid.uuid4().hex[:10]}"
    podman("volume", "create", name)
    yield name
    podman("volume", "rm", "--force", name, check=False)


def delivered(receiver: WebhookReceiver) -> dict[str, Any]:
    """The job's signed job.delivered webhook, once it arrived."""
    [hook] = receiver.wait_for(lambda w: (w.json or {}).get("type") == "job.delivered", 90)
    assert hook.signature_ok
    assert hook.json is not None and hook.json["data"]["job_id"] == JOB
    return hook.json


def test_the_image_is_described_by_its_metadata(notifier_image: str) -> None:
    [image] = json.loads(podman("image", "inspect", notifier_image).stdout)
    config = image["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["datasaur-notifier"]
    assert config["Cmd"] == ["run", "-c", CONFIG]
    assert config["Env"] and "DATASAUR_NOTIFIER_LOG_FORMAT=json" in config["Env"]
    assert image["Healthcheck"]["Test"][:3] == ["CMD", "datasaur-notifier", "healthcheck"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "datasaur-notifier"
    assert labels["org.opencontainers.image.version"] == __version__
    # The README's figure (on the base make-base-image makes) stays true.
    if os.environ.get(BASE_ENV, DEFAULT_BASE) == DEFAULT_BASE:
        [size] = re.findall(r"Size \(`podman images datasaur-notifier`\): \*\*(\d+) MB", README)
        assert abs(image["Size"] / 1e6 - int(size)) <= 0.1 * int(size), image["Size"]


def test_the_demo_inside_the_container_exits_0(notifier_image: str) -> None:
    result = podman("run", "--rm", "--network", "host", notifier_image, "demo", timeout=180)
    assert "Demo finished: every job's notification arrived exactly once" in result.stdout


def test_the_daemon_in_the_container_notifies_a_receiver_on_the_host(
    notifier_image: str, simulator: DatasaurSimulator, receiver: WebhookReceiver, mounts: Any
) -> None:
    simulator.script_job(JOB, [(0, "IN_PROGRESS", 40), (1, "DELIVERED", 100)])
    config = container_config(simulator, receiver)
    with running(notifier_image, *mounts(config)) as container:
        delivered(receiver)
        # The healthcheck finds the port the config gives (not a default one).
        health = podman("healthcheck", "run", container.name, check=False)
        assert health.returncode == 0, container.logs + health.stdout + health.stderr
        metrics = requests.get(f"http://127.0.0.1:{config['metrics']['port']}/metrics", timeout=5)
        assert "notifier_deliveries_total" in metrics.text
        lines = [line for line in container.logs.splitlines() if line.strip()]
        entries = [json.loads(line) for line in lines]  # JSON logs, one object a line
        assert any("running" in entry["message"] for entry in entries)
        assert CLIENT_SECRET not in container.logs


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 (False while nothing listens)."""
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def test_the_healthcheck_finds_another_config_and_a_metrics_port_given_to_run(
    notifier_image: str, simulator: DatasaurSimulator, receiver: WebhookReceiver, mounts: Any
) -> None:
    config = container_config(simulator, receiver)  # its metrics.port is not the one used
    elsewhere, port = "/etc/datasaur-notifier/elsewhere.yaml", free_port()
    options = [option.replace(f":{CONFIG}:", f":{elsewhere}:") for option in mounts(config)]
    command = ("run", "-c", elsewhere, "--metrics-port", str(port))
    with running(notifier_image, *options, command=command) as container:
        wait_until(lambda: answers(f"http://127.0.0.1:{port}/healthz"), 60, 0.2, "no /healthz")
        health = podman("healthcheck", "run", container.name, check=False)
        assert health.returncode == 0, container.logs + health.stdout + health.stderr


@pytest.mark.parametrize(
    ("delay", "delivery_timeout", "recorded"),
    [
        (2, "5s", "delivered"),  # the send in flight finishes and is recorded
        (60, None, "pending"),  # a hanging receiver, the default 10 s timeout: cut at 7 s
    ],
    ids=["in-flight-finishes", "receiver-hangs"],
)
def test_podman_stop_exits_cleanly_nothing_lost_and_the_lease_released(
    notifier_image: str,
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    mounts: Any,
    postgres_url: str,
    delay: float,
    delivery_timeout: str | None,
    recorded: str,
) -> None:
    simulator.set_job(JOB, "DELIVERED", 100)
    receiver.respond_with(200, delay=delay)  # the webhook is in flight when the stop comes
    config = container_config(simulator, receiver, state_url=postgres_url)
    del config["state_path"]
    if delivery_timeout is None:  # the defaults (10 s each)
        del config["delivery"]["timeout"], config["datasaur"]["timeout"]
    else:
        config["delivery"]["timeout"] = delivery_timeout
    with running(notifier_image, *mounts(config)) as container:
        receiver.wait_for(1, 60)
        started = time.monotonic()
        podman("stop", "--time", "10", container.name, timeout=30)
        took = time.monotonic() - started
        state = container.state()
        assert state["ExitCode"] == 0, container.logs
        assert took < 10, f"podman stop took {took:.1f}s"
        assert "shutting down" in container.logs
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM instances").fetchone() == (0,)
        for table in ("jobs", "deliveries"):
            held = conn.execute(f"SELECT count(*) FROM {table} WHERE lease_owner IS NOT NULL")
            assert held.fetchone() == (0,), f"{table}: a lease is still held"
        states = conn.execute("SELECT state FROM deliveries").fetchall()
    assert states == [(recorded,)]  # pending: sent again by the next daemon (same webhook-id)


def test_a_read_only_root_filesystem_with_a_state_volume(
    notifier_image: str,
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    mounts: Any,
    volume: str,
) -> None:
    simulator.set_job(JOB, "DELIVERED", 100)
    options = [
        "--read-only",
        "-v",
        f"{volume}:{STATE}",
        *mounts(container_config(simulator, receiver)),
    ]
    with running(notifier_image, *options) as container:
        delivered(receiver)
        wait_until(lambda: "job.delivered" in container.exec(
            "datasaur-notifier", "deliveries", "--state", "delivered").stdout, 30)  # fmt: skip
        podman("stop", "--time", "10", container.name, timeout=30)
        assert container.state()["ExitCode"] == 0, container.logs
        assert "Read-only file system" not in container.logs
    # The state outlives the container: a new one on the same volume sees the job done.
    shown = podman("run", "--rm", "--network", "host", *options, notifier_image,
                   "status", "--json", "-c", CONFIG)  # fmt: skip
    [job] = json.loads(shown.stdout)["jobs"]
    assert (job["id"], job["state"]) == (JOB, "done")


def test_a_build_without_the_ca_secret_works(tmp_path: Path) -> None:
    """``RUN --mount=type=secret,id=ca`` does not need the secret: built without it (and
    so without the host's CA), from an index that needs none, the package installs and
    runs. The build stage only: the rest is what the other tests' image proves."""
    ensure_runtime()
    base = ensure_base()
    image = f"localhost/datasaur-notifier-plain:{uuid.uuid4().hex[:8]}"
    with package_index(tmp_path / "index", [f"{ROOT}[postgres,apprise]", "setuptools>=77"]) as url:
        command = build_command(base, secret=False)
        assert not any(part.startswith("id=ca") for part in command)
        command[command.index("-t") + 1] = image
        command[-1:-1] = ["--target", "build", "--build-arg", f"PIP_INDEX_URL={url}"]
        built = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    try:
        assert built.returncode == 0, built.stdout + built.stderr
        ran = podman("run", "--rm", "--network", "host", image,
                     "/opt/datasaur-notifier/bin/datasaur-notifier", "--version")  # fmt: skip
        assert __version__ in ran.stdout + ran.stderr
    finally:
        podman("rmi", "--force", image, check=False)
