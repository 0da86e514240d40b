"""Run ``datasaur-notifier`` as a subprocess, the way systemd or an operator would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.support.waiting import wait_until


def cli(
    config: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run one CLI command to completion."""
    return subprocess.run(
        [sys.executable, "-m", "notifier", "-c", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


class DaemonProcess:
    """``datasaur-notifier run`` in the background, its stderr captured to a file."""

    def __init__(self, config: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()):
        self.config = config
        self.env = {**os.environ, **(env or {})}
        self.args = args
        self.log_path = config.with_name(config.stem + ".log")
        self.process: subprocess.Popen[bytes] | None = None
        self.offset = 0

    def start(self) -> DaemonProcess:
        """Start (or restart) the daemon; later waits only look at what this run logs."""
        self.offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "notifier", "-c", str(self.config), "run", *self.args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        log.close()
        return self

    @property
    def output(self) -> str:
        """Everything the daemon(s) logged so far, across restarts."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def run_output(self) -> str:
        """What the current run logged."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(self.offset)
            return log.read().decode(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 15) -> None:
        """Wait until the current run logs ``text``."""
        wait_until(
            lambda: text in self.run_output,
            timeout,
            message=f"{text!r} not logged:\n{self.run_output}",
        )

    def wait_ready(self, timeout: float = 15) -> None:
        self.wait_for_log("running:", timeout)

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM and wait; returns the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


def status(config: Path) -> dict[str, dict[str, Any]]:
    """``status --json`` as {job_id: job}."""
    result = cli(config, "status", "--json")
    assert result.returncode == 0, result.stderr
    return {job["id"]: job for job in json.loads(result.stdout)["jobs"]}


def deliveries(config: Path) -> list[dict[str, Any]]:
    """``deliveries --json``."""
    result = cli(config, "deliveries", "--json")
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout)["deliveries"])
