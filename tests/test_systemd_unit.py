"""The shipped systemd unit: valid, hardened, and wired for LoadCredential= secrets.

Runs ``systemd-analyze`` (skipped where it is absent; it needs no running systemd).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "datasaur-notifier.service"
EXAMPLE = UNIT.parent.parent / "config.example.yaml"
INSTALLED_BINARY = "/opt/datasaur-notifier/bin/datasaur-notifier"
MAX_EXPOSURE = 2.0

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run(
        [ANALYZE, *args], capture_output=True, text=True, timeout=120, check=False
    )


@needs_analyze
def test_exposure_is_at_most_two() -> None:
    result = analyze("security", "--offline=yes", "--no-pager", str(UNIT))
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert found, result.stdout + result.stderr
    exposure = float(found.group(1))
    assert exposure <= MAX_EXPOSURE, result.stdout


@needs_analyze
def test_unit_verifies(tmp_path: Path) -> None:
    """``verify`` also checks that every Exec*= binary exists and is executable: the
    installed path may not exist on this machine, so the copy checked here runs an
    executable that does (this interpreter), and nothing else changes."""
    text = UNIT.read_text()
    assert INSTALLED_BINARY in text
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace(INSTALLED_BINARY, sys.executable))
    result = analyze("verify", str(copy))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "datasaur-notifier.service" not in result.stderr, result.stderr


def directives(name: str) -> list[str]:
    """The values of every active (uncommented) ``name=`` line of the unit."""
    return [
        line.split("=", 1)[1]
        for line in UNIT.read_text().splitlines()
        if line.startswith(name + "=")
    ]


def test_secrets_come_as_credentials_that_the_example_config_reads() -> None:
    example = EXAMPLE.read_text()
    for credential in directives("LoadCredential"):
        name, path = credential.split(":", 1)
        assert path == f"/etc/datasaur-notifier/credentials/{name}"
        assert "${credential:" + name + "}" in example, name
    assert directives("LoadCredential"), "no LoadCredential= line"
    assert not directives("EnvironmentFile")
    assert "#EnvironmentFile=" in UNIT.read_text()


def test_documentation_names_no_remote_location() -> None:
    assert directives("Documentation") == ["file:/usr/share/doc/datasaur-notifier/README.md"]
    assert "github.com" not in UNIT.read_text()
