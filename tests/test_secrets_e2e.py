"""End to end: secrets read from files (``${file:...}``, ``${credential:...}``) and webhook
signing-secret rotation, with ``datasaur-notifier run`` as a subprocess against the
simulator and verifying receivers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from notifier import signing
from notifier.standins.receiver import ReceivedWebhook, WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from tests.conftest import CLIENT_SECRET, WEBHOOK_SECRET, base_config, webhook
from tests.support.daemon import DaemonProcess, cli
from tests.support.waiting import wait_until

Factory = Callable[..., DaemonProcess]

JOB = "AutoLabelQueue:5e0c1d2a-0000-4000-8000-00000000000a"
OLD_SECRET = WEBHOOK_SECRET
NEW_SECRET = "whsec_" + "TkVXLXNpZ25pbmcta2V5LTAxMjM0NTY3ODlhYmNkZWY="


def secret_forms(*secrets: str) -> list[str]:
    """A secret as written and, for ``whsec_`` ones, the base64 key inside it."""
    return [form for s in secrets for form in (s, s.removeprefix("whsec_"))]


def assert_absent(secrets: list[str], *texts: str) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"a secret leaked into: {text[:2000]}"


def delivered(daemon: DaemonProcess, env: dict[str, str]) -> bool:
    result = cli(daemon.config, "deliveries", "--state", "delivered", "--json", env=env)
    return result.returncode == 0 and '"state": "delivered"' in result.stdout


def test_secrets_from_credentials_and_files_sign_and_authenticate_and_never_show(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir(mode=0o700)
    (credentials / "datasaur-client-secret").write_text(CLIENT_SECRET + "\n")
    hook_secret = tmp_path / "webhook-secret"
    hook_secret.write_text(WEBHOOK_SECRET + "\n")
    config = base_config(
        simulator,
        tmp_path,
        callbacks={"hook": webhook(receiver, secret=f"${{file:{hook_secret}}}")},
        jobs=[{"id": JOB, "name": "from files"}],
    )
    config["datasaur"]["client_secret"] = "${credential:datasaur-client-secret}"
    env = {"CREDENTIALS_DIRECTORY": str(credentials)}
    simulator.set_job(JOB, "DELIVERED", 100)

    daemon = daemon_factory(config, env=env)
    [hook] = receiver.wait_for(1)
    assert hook.signature_ok is True  # signed with the file's secret, newline stripped
    assert hook.json["data"]["job_id"] == JOB
    assert simulator.stats().validation_errors == []  # authenticated with the credential
    wait_until(lambda: delivered(daemon, env), message=daemon.output)

    outputs = [
        cli(daemon.config, *command, env=env)
        for command in (
            ("status",),
            ("status", "--json"),
            ("deliveries",),
            ("deliveries", "--json"),
            ("check-config",),
        )
    ]
    assert daemon.stop() == 0, daemon.output
    for result in outputs:
        assert result.returncode == 0, result.stderr
        assert JOB in result.stdout or result.args[-1] == "check-config", result.stdout
    secrets = secret_forms(CLIENT_SECRET, WEBHOOK_SECRET)
    assert_absent(secrets, daemon.output, *(r.stdout + r.stderr for r in outputs))
    assert "Traceback" not in daemon.output

    # Outside systemd, without the credentials directory: the state-only commands work
    # (they need no secret); the others say so in one line naming key and file.
    assert cli(daemon.config, "status").returncode == 0
    result = cli(daemon.config, "check-config")
    assert result.returncode == 2
    assert result.stderr == (
        f"{daemon.config}: datasaur.client_secret: credential 'datasaur-client-secret':"
        " $CREDENTIALS_DIRECTORY is not set (systemd sets it for LoadCredential=)\n"
    )
    hook_secret.unlink()
    result = cli(daemon.config, "check-config", env=env)
    assert result.returncode == 2
    assert result.stderr == (
        f"{daemon.config}: callbacks.hook.secret: cannot read file {hook_secret}:"
        " No such file or directory\n"
    )


@pytest.fixture
def old_receiver() -> Iterator[WebhookReceiver]:
    """A receiver that only knows the secret being rotated out."""
    with WebhookReceiver(secret=OLD_SECRET) as server:
        yield server


@pytest.fixture
def new_receiver() -> Iterator[WebhookReceiver]:
    """A receiver already switched to the new secret."""
    with WebhookReceiver(secret=NEW_SECRET) as server:
        yield server


def test_rotation_signs_with_every_secret_so_old_and_new_receivers_accept(
    simulator: DatasaurSimulator,
    old_receiver: WebhookReceiver,
    new_receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    rotating = [NEW_SECRET, OLD_SECRET]
    config = base_config(
        simulator,
        tmp_path,
        callbacks={
            "old": webhook(old_receiver, path="/old", secret=rotating),
            "new": webhook(new_receiver, path="/new", secret=rotating),
        },
        jobs=[{"id": JOB}],
    )
    simulator.set_job(JOB, "DELIVERED", 100)
    daemon = daemon_factory(config)
    [at_old] = old_receiver.wait_for(1)
    [at_new] = new_receiver.wait_for(1)
    assert daemon.stop() == 0, daemon.output

    # Each receiver knows one secret only, and accepts.
    assert (at_old.signature_ok, at_new.signature_ok) == (True, True)
    for hook in (at_old, at_new):
        signatures = hook.headers["webhook-signature"].split(" ")
        assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures), signatures
        # One signature per secret, in the configured order, each valid on its own.
        for secret, signature in zip(rotating, signatures, strict=True):
            alone = {**hook.headers, "webhook-signature": signature}
            signing.verify(secret, alone, hook.body, now=int(hook.headers["webhook-timestamp"]))
        assert_other_secret_rejected(hook)
    assert_absent(secret_forms(*rotating), daemon.output)


def assert_other_secret_rejected(hook: ReceivedWebhook) -> None:
    """A receiver with neither secret still rejects the request."""
    stranger = "whsec_" + "QUJD" * 8
    with pytest.raises(signing.InvalidSignature):
        signing.verify(
            stranger, hook.headers, hook.body, now=int(hook.headers["webhook-timestamp"])
        )
