"""The README: its receiver-side signature check works against what the daemon signs, and
its container, Kubernetes and monitoring commands are the ones the tests run."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from notifier.signing import sign, sign_all

README = Path(__file__).resolve().parent.parent / "README.md"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def readme_verify() -> Any:
    block = re.search(r"```python\n(import base64.*?)```", README.read_text(), re.S)
    assert block, "the README's verification example is missing"
    namespace: dict[str, Any] = {}
    exec(block.group(1), namespace)
    return namespace["verify"]


def test_readme_verifier_accepts_daemon_signatures_and_rejects_tampering() -> None:
    verify = readme_verify()
    timestamp, body = int(time.time()), b'{"type":"job.delivered","data":{}}'
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(SECRET, "msg_1", timestamp, body),
    }
    assert verify(SECRET, headers, body)
    assert not verify(SECRET, headers, body + b" ")
    assert not verify(SECRET, {**headers, "webhook-timestamp": str(timestamp - 3600)}, body)


def test_readme_verifier_accepts_a_rotated_header_with_either_secret() -> None:
    verify = readme_verify()
    new = "whsec_" + "TkVXLXNpZ25pbmcta2V5LTAxMjM0NTY3ODlhYmNkZWY="
    timestamp, body = int(time.time()), b'{"type":"job.delivered","data":{}}'
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_all([new, SECRET], "msg_1", timestamp, body),
    }
    assert verify(SECRET, headers, body)
    assert verify(new, headers, body)
    assert not verify("whsec_" + "QUJD" * 8, headers, body)


def shell_lines(section: str) -> list[str]:
    """The commands in the ``sh`` blocks of the README section titled ``section``, each
    on one line (continuations joined, runs of spaces made one, comments cut)."""
    text = README.read_text()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", body, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = " ".join(line.split("#", 1)[0].split())
            if command:
                lines.append(command)
    return lines


def test_the_container_and_kubernetes_sections_give_the_commands_the_tests_run() -> None:
    from tests.support.podman import DEFAULT_BASE, IMAGE, build_command
    from tests.test_container import CONFIG, SECRET, STATE
    from tests.test_kubernetes import SCHEMA_CHECK

    container = shell_lines("Run in a container")
    built = " ".join(build_command(DEFAULT_BASE, secret=True)).replace(IMAGE, "datasaur-notifier")
    assert built in container
    # The options test_a_read_only_root_filesystem_with_a_state_volume runs the image with.
    run = (
        f"podman run -d --name notifier --network host --read-only -v notifier-state:{STATE}"
        f" -v ./config.yaml:{CONFIG}:ro -v ./datasaur-client-secret:{SECRET}:ro"
        " datasaur-notifier"
    )
    assert run in container
    assert "podman run --rm --network host datasaur-notifier demo" in container
    assert SCHEMA_CHECK in shell_lines("Run on Kubernetes")
    monitoring = shell_lines("Observability")
    for command in ("promtool check rules deploy/prometheus/alerts.yaml",
                    "promtool test rules deploy/prometheus/alerts.test.yaml"):  # fmt: skip
        assert command in monitoring
