"""``datasaur-notifier wait`` as a subprocess: exit codes with and without a daemon, lines
off a terminal, ``--json``, and live bars through a pseudo-terminal."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from notifier.standins.simulator import DatasaurSimulator
from tests.conftest import base_config
from tests.support.daemon import DaemonProcess, cli, write_config
from tests.support.waiting import wait_until


def config_file(tmp_path: Path, simulator: DatasaurSimulator, **changes: Any) -> Path:
    config = base_config(simulator, tmp_path)
    config["polling"] = {"interval": "0.2s", "max_interval": "0.4s", "expire_after": 0}
    config.update(changes)
    return write_config(tmp_path / "config.yaml", config)


def later(seconds: float, action: Callable[[], None]) -> None:
    threading.Timer(seconds, action).start()


def test_without_a_daemon_wait_polls_itself_exit_0_1_3_124(
    tmp_path: Path, simulator: DatasaurSimulator
) -> None:
    config = config_file(tmp_path, simulator)
    simulator.set_job("E:1", "IN_PROGRESS", 40)
    simulator.set_job("E:2", "QUEUED", 0)
    later(1.5, lambda: simulator.set_job("E:1", "DELIVERED", 100))
    later(2.0, lambda: simulator.set_job("E:2", "DELIVERED", 100))
    done = cli(config, "wait", "E:1", "E:2", "--timeout", "30s")
    assert done.returncode == 0, done.stdout + done.stderr
    assert " E:1 IN_PROGRESS 40%" in done.stdout and " E:2 DELIVERED 100%" in done.stdout
    assert "2 of 2 ended: all delivered (exit 0)" in done.stdout
    simulator.set_job("F:1", "FAILED", 30)
    failed = cli(config, "wait", "F:1", "--json")
    assert failed.returncode == 1
    summary = json.loads(failed.stdout.splitlines()[-1])
    assert (summary["done"], summary["exit"], summary["jobs"][0]["status"]) == (True, 1, "FAILED")
    unknown = cli(config, "wait", "U:nobody-knows", "--quiet")
    assert unknown.returncode == 3 and "not found by Datasaur" in unknown.stdout
    simulator.set_job("T:1", "IN_PROGRESS", 10)
    timed_out = cli(config, "wait", "T:1", "--timeout", "1s", "--quiet")
    assert timed_out.returncode == 124 and "timed out" in timed_out.stdout
    status = json.loads(cli(config, "status", "--json").stdout)["jobs"]
    assert {job["id"]: job["source"] for job in status}["T:1"] == "cli"  # registered, stays
    for args, message in [((), "JOB_IDs"), (("X", "--timeout", "soon"), "--timeout")]:
        bad = cli(config, "wait", *args)
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr


def test_with_a_daemon_wait_only_reads_the_state(
    tmp_path: Path, simulator: DatasaurSimulator, daemon_factory: Callable[..., DaemonProcess]
) -> None:
    config = base_config(simulator, tmp_path)
    daemon_factory(config)
    # wait's own config points at no Datasaur at all: only the daemon can poll
    blind = {**config, "datasaur": {**config["datasaur"], "graphql_url": "http://127.0.0.1:9/x"}}
    path = write_config(tmp_path / "blind.yaml", blind)
    simulator.set_job("D:1", "IN_PROGRESS", 50)
    simulator.set_job("D:2", "IN_PROGRESS", 50)
    later(1.5, lambda: simulator.set_job("D:1", "DELIVERED", 100))
    later(1.5, lambda: simulator.set_job("D:2", "FAILED", 60))
    result = cli(path, "wait", "D:1", "D:2", "--timeout", "30s")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "D:2 FAILED" in result.stdout


def test_on_a_terminal_bars_advance_and_ctrl_c_exits_130(
    tmp_path: Path, simulator: DatasaurSimulator
) -> None:
    config = config_file(tmp_path, simulator)
    simulator.set_job("P:1", "IN_PROGRESS", 10)
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "notifier", "-c", str(config), "wait", "P:1"],
        stdin=slave, stdout=slave, stderr=slave, env={**os.environ, "COLUMNS": "120"},
    )  # fmt: skip
    os.close(slave)
    screen = b""

    def shows(text: bytes) -> bool:
        nonlocal screen
        while select.select([master], [], [], 0.05)[0]:
            try:
                screen += os.read(master, 65536)
            except OSError:
                break
        return text in screen

    try:
        wait_until(lambda: shows(b"IN_PROGRESS") and shows(b"10%"), timeout=20)
        simulator.set_job("P:1", "IN_PROGRESS", 60)
        wait_until(lambda: shows(b"60%"), timeout=20)
        assert "━".encode() in screen  # a drawn bar, not lines
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 130
        shows(b"")
        assert b"interrupted (exit 130)" in screen
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)
