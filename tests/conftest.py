"""Real local servers on 127.0.0.1 (PostgreSQL included) and a factory for daemon configs
and processes."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from notifier.standins.receiver import WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from tests.support import podman
from tests.support.daemon import DaemonProcess, write_config
from tests.support.postgres import URL_ENV, PostgresServer, PostgresUnavailable
from tests.support.smtp import SmtpSink

CLIENT_ID = "test-client"
CLIENT_SECRET = "s3cret-client-value"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def simulator(request: pytest.FixtureRequest) -> Iterator[DatasaurSimulator]:
    """The Datasaur stand-in; parametrize it indirectly with keyword arguments for
    :class:`DatasaurSimulator` (``{"legacy_schema": True}``, ``{"unknown_ids": "omit"}``...)."""
    options = getattr(request, "param", {})
    with DatasaurSimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **options) as sim:
        yield sim


@pytest.fixture
def legacy_simulator() -> Iterator[DatasaurSimulator]:
    """The stand-in serving the schema of Datasaur servers older than 2022-08."""
    with DatasaurSimulator(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, legacy_schema=True
    ) as sim:
        yield sim


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(secret=WEBHOOK_SECRET) as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


def base_config(sim: DatasaurSimulator, state_dir: Path, **sections: Any) -> dict[str, Any]:
    """A fast-polling config against ``sim``; keyword arguments replace whole sections."""
    config: dict[str, Any] = {
        "datasaur": {
            "graphql_url": sim.graphql_url,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "timeout": "2s",
        },
        "state_path": str(state_dir / "state.db"),
        "polling": {"interval": "0.2s", "max_interval": "1s", "expire_after": 0},
        "delivery": {"timeout": "2s", "initial_backoff": "0.1s", "max_backoff": "1s"},
        "callbacks": {},
        "jobs": [],
    }
    config.update(sections)
    return config


def webhook(receiver: WebhookReceiver, path: str = "/hook", **extra: Any) -> dict[str, Any]:
    """A signed webhook callback to ``receiver``."""
    return {"type": "webhook", "url": receiver.url + path, "secret": WEBHOOK_SECRET, **extra}


def email(sink: SmtpSink, **extra: Any) -> dict[str, Any]:
    """A plain-SMTP email callback to ``sink``."""
    return {
        "type": "email",
        "smtp_host": "127.0.0.1",
        "smtp_port": sink.port,
        "security": "none",
        "from": "notifier@example.com",
        "to": ["team@example.com"],
        **extra,
    }


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """``daemon_factory(config_dict) -> DaemonProcess`` started; all stopped at teardown."""
    started: list[DaemonProcess] = []

    def start(
        config: dict[str, Any],
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        wait_ready: bool = True,
    ) -> DaemonProcess:
        path = write_config(tmp_path / "config.yaml", config)
        daemon = DaemonProcess(path, env=env, args=args).start()
        started.append(daemon)
        if wait_ready:
            daemon.wait_ready()
        return daemon

    yield start
    for daemon in started:
        if daemon.alive():
            daemon.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the session: ``$NOTIFIER_TEST_POSTGRES_URL`` if set, else a
    throwaway local one (stopped and deleted at session end). Skips if there is neither,
    unless ``NOTIFIER_TEST_POSTGRES_REQUIRED`` is set (CI), where that is an error."""
    url = os.environ.get(URL_ENV)
    if url:
        yield PostgresServer.external(url)
        return
    try:
        server = PostgresServer.start_local()
    except PostgresUnavailable as exc:
        if os.environ.get("NOTIFIER_TEST_POSTGRES_REQUIRED"):
            pytest.fail(f"PostgreSQL required: {exc}")
        pytest.skip(f"{exc}; install PostgreSQL or set {URL_ENV}")
    with server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty database for this test (dropped at teardown, connections and all)."""
    slug = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:40]
    name = f"t_{slug}_{uuid.uuid4().hex[:8]}"
    url = postgres_server.create_database(name)
    yield url
    postgres_server.ensure_running()  # a failed outage test must not break the next tests
    postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def notifier_image() -> str:
    """The container image built from this checkout with podman (once a session; skips
    without podman, unless ``NOTIFIER_TEST_CONTAINER_REQUIRED`` is set)."""
    return podman.build_image()
