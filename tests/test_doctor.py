"""``datasaur-notifier doctor`` as an operator runs it, against the stand-ins: a healthy
setup, a wrong client secret, the legacy schema, a receiver port that refuses
connections, an SMTP server that refuses the login, a broken config, a busy API port."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from notifier.standins.receiver import WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from tests.conftest import CLIENT_SECRET, WEBHOOK_SECRET, base_config, email, webhook
from tests.support.daemon import cli, write_config
from tests.support.smtp import SmtpSink, free_port

SMTP_LOGIN = ("mailer", "smtp-pass-0f3a9c")
API_TOKEN = "api-token-" + "7" * 32
SECRETS = (CLIENT_SECRET, WEBHOOK_SECRET, SMTP_LOGIN[1], API_TOKEN)
GROUPS = ["config", "state", "datasaur", "callbacks", "api"]


@pytest.fixture
def auth_smtp() -> Iterator[SmtpSink]:
    with SmtpSink(credentials=SMTP_LOGIN) as sink:
        yield sink


def setup(
    sim: DatasaurSimulator,
    receiver: WebhookReceiver,
    smtp: SmtpSink,
    tmp_path: Path,
    password: str = SMTP_LOGIN[1],
    **datasaur: Any,
) -> Path:
    config = base_config(
        sim,
        tmp_path,
        callbacks={
            "hook": webhook(receiver),
            "mail": email(smtp, username=SMTP_LOGIN[0], password=password),
        },
        api={"listen": f"127.0.0.1:{free_port()}", "tokens": [{"name": "ops", "token": API_TOKEN}]},
    )
    config["datasaur"].update(datasaur)
    return write_config(tmp_path / "config.yaml", config)


def doctor(
    path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, list[dict[str, Any]]]:
    """Exit status, the text report, and the --json report's checks."""
    text = cli(path, "doctor", *args, env=env)
    as_json = cli(path, "doctor", "--json", *args, env=env)
    assert text.returncode == as_json.returncode, (text.stdout, as_json.stdout)
    for output in (text.stdout + text.stderr, as_json.stdout + as_json.stderr):
        assert "Traceback" not in output
        assert not [secret for secret in SECRETS if secret in output]
    checks: list[dict[str, Any]] = json.loads(as_json.stdout)["checks"]
    return text.returncode, text.stdout, checks


def by_name(checks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in checks}


def test_healthy_setup_is_all_ok_in_order(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, auth_smtp: SmtpSink, tmp_path: Path
) -> None:
    code, text, checks = doctor(setup(simulator, receiver, auth_smtp, tmp_path))
    assert code == 0, text
    names = [check["name"] for check in checks]
    assert names == [
        "config", "state", "datasaur.token", "datasaur.schema", "datasaur.unknown_ids",
        "callbacks.hook", "callbacks.mail", "api.listen", "api.tokens",
    ]  # fmt: skip
    groups = [name.split(".")[0] for name in names]
    assert sorted(set(groups), key=groups.index) == GROUPS
    assert {check["result"] for check in checks} == {"ok"}, text
    assert all(set(check) == {"name", "result", "detail", "fix"} for check in checks)
    lines = text.splitlines()
    assert len(lines) == len(checks) and all(line.startswith("ok   ") for line in lines)
    found = by_name(checks)
    assert "valid for 3600s" in found["datasaur.token"]["detail"]
    assert "selection 1 of 3" in found["datasaur.schema"]["detail"]
    assert "null" in found["datasaur.unknown_ids"]["detail"]
    assert "logged in" in found["callbacks.mail"]["detail"]
    assert auth_smtp.attempts == [] and receiver.received == []  # nothing sent
    assert simulator.stats().validation_errors == []


def test_wrong_client_secret_fails_naming_the_keys(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, auth_smtp: SmtpSink, tmp_path: Path
) -> None:
    path = setup(simulator, receiver, auth_smtp, tmp_path, client_secret="not-the-secret-value")
    code, text, checks = doctor(path)
    assert code == 1
    token = by_name(checks)["datasaur.token"]
    assert token["result"] == "FAIL" and "datasaur.client_secret" in token["fix"]
    assert (
        "FAIL datasaur.token:" in text
        and "(fix: datasaur.client_id, datasaur.client_secret)" in text
    )
    assert "not-the-secret-value" not in text
    assert by_name(checks)["callbacks.hook"]["result"] == "ok"  # the other groups still run


def test_legacy_schema_is_a_warning_naming_the_selection(
    legacy_simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    auth_smtp: SmtpSink,
    tmp_path: Path,
) -> None:
    code, text, checks = doctor(setup(legacy_simulator, receiver, auth_smtp, tmp_path))
    assert code == 0, text
    schema = by_name(checks)["datasaur.schema"]
    assert schema["result"] == "warn" and "selection 2 of 3" in schema["detail"]
    assert "warn datasaur.schema:" in text


def test_unknown_ids_omitted_are_reported(
    receiver: WebhookReceiver, auth_smtp: SmtpSink, tmp_path: Path
) -> None:
    with DatasaurSimulator(unknown_ids="omit") as sim:
        _, _, checks = doctor(setup(sim, receiver, auth_smtp, tmp_path))
    assert "omitted" in by_name(checks)["datasaur.unknown_ids"]["detail"]


def test_receiver_port_refusing_connections_fails(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, auth_smtp: SmtpSink, tmp_path: Path
) -> None:
    path = setup(simulator, receiver, auth_smtp, tmp_path)
    receiver.stop()
    code, _, checks = doctor(path)
    assert code == 1
    hook = by_name(checks)["callbacks.hook"]
    assert hook["result"] == "FAIL" and "refused" in hook["detail"].lower()
    assert hook["fix"] == "callbacks.hook.url"


def test_smtp_refusing_the_login_fails(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, auth_smtp: SmtpSink, tmp_path: Path
) -> None:
    path = setup(simulator, receiver, auth_smtp, tmp_path, password="wrong-smtp-password")
    code, text, checks = doctor(path)
    assert code == 1
    mail = by_name(checks)["callbacks.mail"]
    assert mail["result"] == "FAIL" and "refused the login" in mail["detail"]
    assert mail["fix"] == "callbacks.mail.username, callbacks.mail.password"
    assert "wrong-smtp-password" not in text and auth_smtp.attempts == []


def test_busy_api_port_fails(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, auth_smtp: SmtpSink, tmp_path: Path
) -> None:
    path = setup(simulator, receiver, auth_smtp, tmp_path)
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        config = path.read_text().replace(
            path.read_text().split("listen: ")[1].split("\n")[0],
            f"127.0.0.1:{other.getsockname()[1]}",
        )
        path.write_text(config)
        code, _, checks = doctor(path)
    assert code == 1
    listen = by_name(checks)["api.listen"]
    assert listen["result"] == "FAIL" and "another program" in listen["detail"]


def test_postgres_state_reachable_with_migrations_pending(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    auth_smtp: SmtpSink,
    tmp_path: Path,
    postgres_url: str,
) -> None:
    path = setup(simulator, receiver, auth_smtp, tmp_path)
    config = yaml.safe_load(path.read_text())
    del config["state_path"]
    config["state_url"] = postgres_url
    config["datasaur"]["timeout"] = config["delivery"]["timeout"] = "1s"
    write_config(path, config)
    code, text, checks = doctor(path)
    assert code == 0, text
    found = by_name(checks)
    assert found["state"]["detail"] == "PostgreSQL reachable"
    assert (
        found["state.schema"]["result"] == "warn" and "pending" in found["state.schema"]["detail"]
    )
    assert cli(path, "migrate").returncode == 0
    assert by_name(doctor(path)[2])["state.schema"]["result"] == "ok"


def test_invalid_config_fails_with_one_line_per_problem(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("datasaur:\n  client_id: a\nbogus: 1\n")
    code, text, checks = doctor(path)
    assert code == 1
    assert [check["result"] for check in checks] == ["FAIL", "FAIL"]
    assert {check["fix"] for check in checks} == {"datasaur", "bogus"}
    assert len(text.splitlines()) == 2


def test_usage_error_is_exit_2(tmp_path: Path) -> None:
    assert cli(tmp_path / "config.yaml", "doctor", "--bogus").returncode == 2


def test_missing_config_file_fails_with_no_made_up_key(tmp_path: Path) -> None:
    code, text, checks = doctor(tmp_path / "missing.yaml")
    assert code == 1 and len(checks) == 1
    assert checks[0]["result"] == "FAIL" and checks[0]["fix"] is None, checks
    assert "cannot read the config file" in text
