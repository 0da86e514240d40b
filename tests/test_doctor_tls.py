"""``doctor`` where TLS and the running daemon come in: SMTP with STARTTLS (a real aiosmtpd
server with a test CA's certificate), an ``https`` webhook whose certificate is checked,
a Datasaur ingress that requires a client certificate, the API port held by the running
daemon, and an Apprise URL that does not parse."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from notifier.standins.receiver import WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from tests.conftest import CLIENT_ID, CLIENT_SECRET, WEBHOOK_SECRET, base_config, email, webhook
from tests.support.daemon import DaemonProcess, write_config
from tests.support.pki import make_pki, server_context
from tests.support.smtp import SmtpSink, free_port
from tests.test_doctor import API_TOKEN, SMTP_LOGIN, by_name, doctor, setup

CERT_FIX = "datasaur.client_cert, datasaur.client_key"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def auth_smtp() -> Iterator[SmtpSink]:
    with SmtpSink(credentials=SMTP_LOGIN) as sink:
        yield sink


@pytest.fixture
def tls_smtp(pki: dict[str, Path]) -> Iterator[SmtpSink]:
    """SMTP offering (and requiring) STARTTLS, AUTH only after it."""
    with SmtpSink(credentials=SMTP_LOGIN, starttls=server_context(pki)) as sink:
        yield sink


def test_smtp_starttls_then_login_is_ok_and_sends_nothing(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    tls_smtp: SmtpSink,
    pki: dict[str, Path],
    tmp_path: Path,
) -> None:
    path = setup(simulator, receiver, tls_smtp, tmp_path)
    mail = {**email(tls_smtp, username=SMTP_LOGIN[0], password=SMTP_LOGIN[1])}
    mail["security"] = "starttls"
    write_config(path, {**_config(path), "callbacks": {"mail": mail}})
    code, text, checks = doctor(path, env={"SSL_CERT_FILE": str(pki["ca"])})
    assert code == 0, text
    check = by_name(checks)["callbacks.mail"]
    assert check["result"] == "ok" and "starttls, logged in" in check["detail"], check
    assert tls_smtp.attempts == []

    untrusted = doctor(path)[2]  # the system's CAs do not know the test CA
    check = by_name(untrusted)["callbacks.mail"]
    assert check["result"] == "FAIL" and check["fix"] == "callbacks.mail.security", check
    assert "certificate" in check["detail"].lower()


def test_starttls_asked_of_a_server_without_it_fails_naming_security(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, smtp: SmtpSink, tmp_path: Path
) -> None:
    path = setup(simulator, receiver, smtp, tmp_path)
    write_config(path, {**_config(path), "callbacks": {"mail": email(smtp, security="starttls")}})
    code, text, checks = doctor(path)
    assert code == 1
    check = by_name(checks)["callbacks.mail"]
    assert check["result"] == "FAIL" and check["fix"] == "callbacks.mail.security", check
    assert "STARTTLS" in check["detail"] and len(text.splitlines()) == len(checks)


def test_https_webhook_certificate_is_checked(
    simulator: DatasaurSimulator, auth_smtp: SmtpSink, pki: dict[str, Path], tmp_path: Path
) -> None:
    tls_receiver = WebhookReceiver(secret=WEBHOOK_SECRET)
    tls_receiver.use_tls(server_context(pki))
    with tls_receiver:
        path = setup(simulator, tls_receiver, auth_smtp, tmp_path)
        assert tls_receiver.url.startswith("https://")
        code, text, checks = doctor(path, env={"REQUESTS_CA_BUNDLE": str(pki["ca"])})
        assert code == 0, text
        assert "TLS certificate valid" in by_name(checks)["callbacks.hook"]["detail"]
        check = by_name(doctor(path)[2])["callbacks.hook"]
        assert check["result"] == "FAIL" and check["fix"] == "callbacks.hook.url"
        assert "certificate" in check["detail"].lower()
        assert tls_receiver.received == []


def test_client_certificate_required_by_datasaur(
    receiver: WebhookReceiver,
    auth_smtp: SmtpSink,
    pki: dict[str, Path],
    tmp_path: Path,
) -> None:
    sim = DatasaurSimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    sim.use_tls(server_context(pki, require_client=True))
    env = {"REQUESTS_CA_BUNDLE": str(pki["ca"])}
    with sim:
        path = setup(sim, receiver, auth_smtp, tmp_path)
        code, text, checks = doctor(path, env=env)
        assert code == 1
        token = by_name(checks)["datasaur.token"]
        assert token["result"] == "FAIL" and token["fix"] == CERT_FIX, token
        assert f"FAIL datasaur.token: token endpoint {sim.token_url}" in text

        credentials = tmp_path / "credentials"
        credentials.mkdir()
        (credentials / "client_key").write_text(pki["client_key"].read_text())
        key_text = pki["client_key"].read_text()
        config = _config(path)
        config["datasaur"] |= {
            "client_cert": f"${{file:{pki['client']}}}",
            "client_key": "${credential:client_key}",
        }
        write_config(path, config)
        env["CREDENTIALS_DIRECTORY"] = str(credentials)
        code, text, checks = doctor(path, env=env)
        assert code == 0, text
        assert by_name(checks)["datasaur.schema"]["result"] == "ok"
        assert key_text.splitlines()[1] not in text


def test_api_port_held_by_the_running_daemon_is_ok(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    api = {"listen": f"127.0.0.1:{free_port()}", "tokens": [{"name": "ops", "token": API_TOKEN}]}
    config = base_config(simulator, tmp_path, callbacks={"hook": webhook(receiver)}, api=api)
    daemon = daemon_factory(config)
    code, text, checks = doctor(daemon.config)
    assert code == 0, text
    listen = by_name(checks)["api.listen"]
    assert listen["result"] == "ok" and "in use by the running daemon" in listen["detail"]
    assert daemon.stop() == 0


def test_apprise_url_that_does_not_parse_fails(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, auth_smtp: SmtpSink, tmp_path: Path
) -> None:
    path = setup(simulator, receiver, auth_smtp, tmp_path)
    secret_url = "nosuchservice://token-9f8e7d6c5b4a@example.com"
    callbacks = {"push": {"type": "apprise", "url": secret_url}}
    write_config(path, {**_config(path), "callbacks": callbacks})
    code, text, checks = doctor(path)
    assert code == 1
    failed = [check for check in checks if check["result"] == "FAIL"]
    assert len(failed) == 1 and "push" in failed[0]["fix"], failed
    assert "token-9f8e7d6c5b4a" not in text


def test_webhook_through_a_proxy_checks_the_proxy(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, auth_smtp: SmtpSink, tmp_path: Path
) -> None:
    """Deliveries go through the environment's proxy, so that is what doctor reaches."""
    path = setup(simulator, receiver, auth_smtp, tmp_path)
    config = _config(path)
    config["callbacks"]["hook"]["url"] = receiver.url.replace("127.0.0.1", "localhost")
    write_config(path, config)
    with socket.create_server(("127.0.0.1", 0)) as proxy:
        port = proxy.getsockname()[1]
        env = {"HTTP_PROXY": f"http://user:proxy-pass-31@127.0.0.1:{port}", "NO_PROXY": "127.0.0.1"}
        code, text, checks = doctor(path, env=env)
        assert code == 0, text
        hook = by_name(checks)["callbacks.hook"]
        assert f"through the proxy 127.0.0.1:{port} (HTTP_PROXY)" in hook["detail"], hook
        assert "proxy-pass-31" not in text
    code, text, checks = doctor(path, env=env)  # the proxy is gone
    hook = by_name(checks)["callbacks.hook"]
    assert code == 1 and hook["result"] == "FAIL" and "HTTP_PROXY" in hook["fix"], hook
    assert receiver.received == []


def _config(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded
