"""Issue 19: ``init [PATH]`` writes a minimal, commented config that passes
``check-config`` once its variables are set, takes no secret values, holds no example
jobs, is private (0600), and is never overwritten. The CLI runs as a subprocess."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import yaml


def run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "notifier", *args],
        capture_output=True, text=True, cwd=cwd, timeout=60, env={**os.environ, **env},
    )  # fmt: skip


def test_init_writes_a_starter_config_that_checks_once_its_variables_are_set(
    tmp_path: Path,
) -> None:
    result = run(tmp_path, "init", "etc/config.yaml")
    assert result.returncode == 0, result.stderr
    path = tmp_path / "etc" / "config.yaml"
    assert "check-config" in result.stdout and "get-job" in result.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    config = yaml.safe_load(text)
    assert config["jobs"] == [] and list(config["callbacks"]) == ["team-hook"]
    assert config["datasaur"]["client_secret"].startswith("${")  # never a value
    assert "gen-secret" in text and text.count("#") > 10  # commented

    unset = run(tmp_path, "-c", str(path), "check-config")
    assert unset.returncode == 2
    assert "DATASAUR_CLIENT_SECRET is not set" in unset.stderr
    secret = run(tmp_path, "gen-secret").stdout.strip()
    checked = run(
        tmp_path, "-c", str(path), "check-config",
        DATASAUR_CLIENT_ID="id", DATASAUR_CLIENT_SECRET="s" * 20, WEBHOOK_SECRET=secret,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert str(tmp_path / "etc" / "state.db") in checked.stdout  # beside the config


def test_init_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("mine: true\n")
    result = run(tmp_path, "init")  # default: ./config.yaml
    assert result.returncode == 2
    assert "config.yaml: already exists; not overwritten" in result.stderr
    assert "Traceback" not in result.stderr
    assert (tmp_path / "config.yaml").read_text() == "mine: true\n"
    given = run(tmp_path, "-c", "other.yaml", "init")  # -c names where to write
    assert given.returncode == 0 and (tmp_path / "other.yaml").exists()
