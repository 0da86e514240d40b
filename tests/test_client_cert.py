"""Client certificates against a real TLS server on 127.0.0.1 that requires one
(``ssl.CERT_REQUIRED``, a test CA made with openssl): the token request and every
query, on the kept-alive transport and through a proxy."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from notifier.config import ConfigError, DatasaurSettings, parse_config
from notifier.datasaur import ApiUnavailable, DatasaurClient
from notifier.standins.receiver import WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from tests.conftest import CLIENT_ID, CLIENT_SECRET, base_config, webhook
from tests.support.daemon import DaemonProcess
from tests.support.pki import make_pki, server_context
from tests.support.waiting import wait_until

KEY_LINE = "set datasaur.client_cert and datasaur.client_key"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A test CA, a server certificate for 127.0.0.1 and a client certificate, all by it."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def mtls_sim(pki: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[DatasaurSimulator]:
    """The stand-in over HTTPS, requiring a client certificate signed by the test CA."""
    context = server_context(pki, require_client=True)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki["ca"]))
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    sim = DatasaurSimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    sim.use_tls(context)
    with sim:
        sim.set_job("j1", "DELIVERED", 100, result={"rows": 3})
        yield sim


def settings(sim: DatasaurSimulator, **extra: Any) -> DatasaurSettings:
    return DatasaurSettings(
        graphql_url=sim.graphql_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **extra
    )


def with_pair(pki: dict[str, Path]) -> dict[str, str]:
    return {"client_cert": str(pki["client"]), "client_key": str(pki["client_key"])}


def test_with_the_pair_the_token_request_and_every_query_work(
    mtls_sim: DatasaurSimulator, pki: dict[str, Path]
) -> None:
    client = DatasaurClient(settings(mtls_sim, **with_pair(pki)))
    for _ in range(3):
        (seen,) = client.get_jobs(["j1"])
        assert seen.job is not None and seen.job["status"] == "DELIVERED"
    job = client.get_job("j1")
    assert job is not None
    client.attach_results([job])
    assert job["result"] == {"rows": 3}
    stats = mtls_sim.stats()
    assert stats.token_requests == 1 and stats.graphql_requests == 5


def test_pem_text_through_file_references_works_too(
    mtls_sim: DatasaurSimulator, pki: dict[str, Path]
) -> None:
    pair = {name: path.read_text() for name, path in with_pair_paths(pki).items()}
    (seen,) = DatasaurClient(settings(mtls_sim, **pair)).get_jobs(["j1"])
    assert seen.job is not None


def with_pair_paths(pki: dict[str, Path]) -> dict[str, Path]:
    return {"client_cert": pki["client"], "client_key": pki["client_key"]}


def test_without_the_pair_one_clear_line_names_the_keys(mtls_sim: DatasaurSimulator) -> None:
    with pytest.raises(ApiUnavailable) as failure:
        DatasaurClient(settings(mtls_sim)).get_jobs(["j1"])
    message = str(failure.value)
    assert "token endpoint" in message and KEY_LINE in message and "\n" not in message

    fixed = DatasaurSettings(graphql_url=mtls_sim.graphql_url, token="a-fixed-token-1234")
    with pytest.raises(ApiUnavailable) as failure:
        DatasaurClient(fixed).get_jobs(["j1"])
    assert str(failure.value).startswith("Datasaur API:") and KEY_LINE in str(failure.value)


def test_the_pair_is_checked_with_the_config_and_the_key_never_shown(
    pki: dict[str, Path], tmp_path: Path
) -> None:
    base = "datasaur:\n  client_id: a\n  client_secret: b\n"

    def problems(extra: str) -> list[str]:
        with pytest.raises(ConfigError) as failure:
            parse_config(base + extra, "config.yaml", {})
        return failure.value.problems

    assert any("client_key" in p for p in problems(f"  client_cert: {pki['client']}\n"))
    wrong = tmp_path / "wrong-key.pem"
    wrong.write_text(pki["server_key"].read_text())
    (problem,) = problems(f"  client_cert: {pki['client']}\n  client_key: {wrong}\n")
    assert "datasaur.client_key" in problem and str(wrong) not in problem
    key_text = pki["client_key"].read_text()
    missing = f"  client_cert: {pki['client']}\n  client_key: {tmp_path / 'none.pem'}\n"
    assert all(key_text not in p for p in problems(missing))


class ConnectProxy:
    """A minimal HTTP CONNECT proxy on 127.0.0.1 (bytes relayed both ways), counting tunnels."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.tunnels = 0
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(conn,), daemon=True).start()

    def _tunnel(self, conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                conn.close()
                return
            head += chunk
        host, _, port = head.split()[1].decode().rpartition(":")
        upstream = socket.create_connection((host, int(port)))
        self.tunnels += 1
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        with conn, upstream, contextlib.suppress(OSError):
            relay(conn, upstream)

    def close(self) -> None:
        self.server.close()


def relay(conn: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until one side closes (or 5 s of silence)."""
    while readable := select.select([conn, upstream], [], [], 5)[0]:
        for source in readable:
            data = source.recv(65536)
            if not data:
                return
            (upstream if source is conn else conn).sendall(data)


def test_through_a_proxy_the_pair_is_presented_too(
    mtls_sim: DatasaurSimulator, pki: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = ConnectProxy()
    try:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        client = DatasaurClient(settings(mtls_sim, **with_pair(pki)))
        (seen,) = client.get_jobs(["j1"])
        assert seen.job is not None and proxy.tunnels >= 2  # the token request and the query
        without = DatasaurClient(settings(mtls_sim))
        with pytest.raises(ApiUnavailable, match=KEY_LINE):
            without.get_jobs(["j1"])
    finally:
        proxy.close()


def test_the_daemon_behind_an_ingress_requiring_a_certificate_notifies(
    mtls_sim: DatasaurSimulator,
    pki: dict[str, Path],
    receiver: WebhookReceiver,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    """End to end, the pair through ``${file:}`` (certificate) and ``${credential:}`` (key)."""
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    key_text = pki["client_key"].read_text()
    (credentials / "datasaur_client_key").write_text(key_text)
    mtls_sim.set_job("j2", "IN_PROGRESS", 10)
    config = base_config(mtls_sim, tmp_path, callbacks={"hook": webhook(receiver)},
                         jobs=[{"id": "j2"}])  # fmt: skip
    config["datasaur"] |= {
        "client_cert": f"${{file:{pki['client']}}}",
        "client_key": "${credential:datasaur_client_key}",
    }
    daemon = daemon_factory(config, env={"CREDENTIALS_DIRECTORY": str(credentials)})
    wait_until(lambda: mtls_sim.stats().job_polls >= 1, 10)
    mtls_sim.set_job("j2", "DELIVERED", 100, result={"rows": 7})
    (hook,) = receiver.wait_for(lambda hook: (hook.json or {}).get("type") == "job.delivered")
    assert hook.json["data"]["job"]["result"] == {"rows": 7}
    assert daemon.stop() == 0
    assert key_text.splitlines()[1] not in daemon.output and "BEGIN" not in daemon.output


def test_the_daemon_without_the_pair_says_which_keys_to_set(
    mtls_sim: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    config = base_config(mtls_sim, tmp_path, callbacks={"hook": webhook(receiver)},
                         jobs=[{"id": "j1"}])  # fmt: skip
    daemon = daemon_factory(config)
    daemon.wait_for_log(KEY_LINE)
    first = next(line for line in daemon.output.splitlines() if KEY_LINE in line)
    assert "ERROR" in first and f"token endpoint {mtls_sim.token_url}" in first, first
    assert mtls_sim.stats().token_requests == 0  # refused in the handshake
    assert daemon.stop() == 0
