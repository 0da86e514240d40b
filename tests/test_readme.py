"""The README's receiver-side signature check works against what the daemon signs."""

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
