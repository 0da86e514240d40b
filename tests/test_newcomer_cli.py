"""Issue 19: nothing typed on the command line is silently dropped or widened, and the
commands that only read or change the state need nothing but its location.

Every command runs as a ``python -m notifier`` subprocess; the daemon, where one is
needed, is a real process against the Datasaur simulator.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from notifier.standins.receiver import WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from tests.conftest import base_config, webhook
from tests.support.daemon import DaemonProcess, cli, status, write_config
from tests.support.waiting import wait_until

DaemonFactory = Callable[..., DaemonProcess]


def hooks_config(sim: DatasaurSimulator, receiver: WebhookReceiver, tmp: Path) -> Path:
    """A config with two callbacks, ``a`` and ``b``."""
    callbacks = {"a": webhook(receiver, "/a"), "b": webhook(receiver, "/b")}
    return write_config(tmp / "config.yaml", base_config(sim, tmp, callbacks=callbacks))


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """The stdout of a command that must have succeeded."""
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


# --- flags and positionals ----------------------------------------------------------


def test_repeated_flags_collect_every_value_before_or_after_the_ids(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    path = hooks_config(simulator, receiver, tmp_path)
    ok(cli(path, "watch", "--notify", "a", "job-1", "--notify", "b", "--on-status", "FAILED"))
    ok(cli(path, "watch", "job-2", "--notify", "a,b", "--on-status", "DELIVERED,FAILED"))
    jobs = status(path)
    assert set(jobs) == {"job-1", "job-2"}  # "job-1" was not taken as a callback name
    assert jobs["job-1"]["notify"] == ["a", "b"] and jobs["job-1"]["on_status"] == ["FAILED"]
    assert jobs["job-2"]["notify"] == ["a", "b"]
    assert jobs["job-2"]["on_status"] == ["DELIVERED", "FAILED"]


def test_double_dash_ends_the_options(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    path = hooks_config(simulator, receiver, tmp_path)
    ok(cli(path, "watch", "--name", "odd", "--", "--job-with-dashes"))
    assert status(path)["--job-with-dashes"]["name"] == "odd"
    assert "--job-with-dashes: unwatched" in ok(cli(path, "unwatch", "--", "--job-with-dashes"))


def test_a_single_valued_flag_given_twice_is_refused(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    path = hooks_config(simulator, receiver, tmp_path)
    result = cli(path, "watch", "job-1", "--name", "first", "--name", "second")
    assert result.returncode == 2
    assert "--name given twice" in result.stderr
    result = cli(path, "redeliver", "--state", "dead", "--callback", "a", "--callback", "b")
    assert result.returncode == 2 and "--callback given twice" in result.stderr
    assert not (tmp_path / "state.db").exists()


def test_a_second_value_after_a_flag_is_not_taken_for_a_job_id(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    """``--on-status A B`` (the old spelling) must not watch a job called B."""
    path = hooks_config(simulator, receiver, tmp_path)
    result = cli(path, "watch", "job-1", "--on-status", "IN_PROGRESS", "DELIVERED")
    assert result.returncode == 2
    assert "'DELIVERED' is a status, not a job id" in result.stderr
    result = cli(path, "watch", "job-1", "--notify", "a", "b")
    assert result.returncode == 2 and "'b' is a callback, not a job id" in result.stderr
    assert not (tmp_path / "state.db").exists()


def test_options_are_not_abbreviated(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    path = hooks_config(simulator, receiver, tmp_path)
    result = cli(path, "watch", "job-1", "--not", "a")
    assert result.returncode == 2
    assert not (tmp_path / "state.db").exists()


def test_the_program_alone_prints_the_help(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "notifier"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2, result.stderr  # a usage error: no command
    assert result.stdout.startswith("usage: datasaur-notifier")
    assert "check-config" in result.stdout and "watch" in result.stdout


# --- watch and unwatch of known jobs, several at once ------------------------------


def test_watch_of_a_known_job_merges_and_says_what_it_did(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: DaemonFactory,
    tmp_path: Path,
) -> None:
    simulator.set_job("job-done", "DELIVERED", 100)
    path = hooks_config(simulator, receiver, tmp_path)
    ok(cli(path, "watch", "job-done", "job-open", "--name", "nightly", "--notify", "a"))
    daemon = daemon_factory(read_config(path))
    wait_until(lambda: status(path)["job-done"]["state"] == "done", timeout=15)
    daemon.stop()

    # A pipeline step run again: nothing widened, nothing reset, and it says so.
    again = ok(cli(path, "watch", "job-done", "job-open"))
    assert "job-done: already done: delivered" in again and "ago; nothing changed" in again
    assert "job-open: already watching" in again
    jobs = status(path)
    for job_id in ("job-done", "job-open"):
        assert (jobs[job_id]["name"], jobs[job_id]["notify"]) == ("nightly", ["a"])
    assert jobs["job-done"]["state"] == "done"

    # The options given are updated, the others kept.
    updated = ok(cli(path, "watch", "job-open", "--notify", "b"))
    assert "job-open: already watching" in updated and "updated notify" in updated
    job = status(path)["job-open"]
    assert (job["name"], job["notify"], job["state"]) == ("nightly", ["b"], "watching")


def read_config(path: Path) -> dict[str, Any]:
    """The config written at ``path``, as a dict to change and write again."""
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def test_unwatch_takes_several_ids_and_names_the_unknown_ones(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    path = hooks_config(simulator, receiver, tmp_path)
    ok(cli(path, "watch", "job-1", "job-2", "job-3"))
    result = cli(path, "unwatch", "job-1", "no-such-job", "job-3")
    assert result.returncode == 1
    assert "job-1: unwatched" in result.stdout and "job-3: unwatched" in result.stdout
    assert result.stderr.strip() == "no watched job 'no-such-job'"
    states = {job_id: job["state"] for job_id, job in status(path).items()}
    assert states == {"job-1": "unwatched", "job-2": "watching", "job-3": "unwatched"}
    again = ok(cli(path, "unwatch", "job-1"))
    assert "job-1: already unwatched; nothing changed" in again
    assert "watching job-1 again (was unwatched)" in ok(cli(path, "watch", "job-1"))


# --- the state: where it is, and never created by a read -----------------------------

READ_ONLY = [
    ("status",),
    ("status", "--json"),
    ("deliveries",),
    ("deliveries", "--id", "msg_1"),
    ("instances", "--json"),
    ("unwatch", "job-1"),
    ("redeliver", "msg_1"),
    ("redeliver", "--state", "dead", "--dry-run"),
    ("backup", "copy.db"),
]


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_read_only_commands_never_create_the_state(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, tmp_path: Path, args: tuple[str]
) -> None:
    path = hooks_config(simulator, receiver, tmp_path)
    config = read_config(path)
    config["state_path"] = str(tmp_path / "never" / "state.db")
    write_config(path, config)
    result = cli(path, *args)
    assert result.returncode == 1, result
    [line] = result.stderr.splitlines()
    assert f"no state file at {tmp_path / 'never' / 'state.db'}" in line
    assert not (tmp_path / "never").exists()


def test_a_relative_state_path_is_relative_to_the_config_file(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    config_dir = tmp_path / "etc"
    config_dir.mkdir()
    path = hooks_config(simulator, receiver, config_dir)
    config = read_config(path)
    config["state_path"] = "state/notifier.db"
    write_config(path, config)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = [sys.executable, "-m", "notifier", "-c", str(path)]
    for args in (["watch", "job-1"], ["check-config"]):
        done = subprocess.run(
            [*run, *args], cwd=elsewhere, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
    assert str(config_dir / "state" / "notifier.db") in done.stdout  # check-config names it
    assert (config_dir / "state" / "notifier.db").exists()
    assert list(elsewhere.iterdir()) == []


def test_status_of_an_unknown_job_says_it_is_not_watched(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    path = hooks_config(simulator, receiver, tmp_path)
    ok(cli(path, "watch", "job-1"))
    for command in ("status", "deliveries"):
        result = cli(path, command, "--job", "job-unknown")
        assert result.returncode == 1, (command, result)
        assert "--job job-unknown: not watched" in result.stderr
    assert "job-1" in ok(cli(path, "status", "--job", "job-1"))


def test_json_outputs_have_every_key_also_when_empty(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    path = hooks_config(simulator, receiver, tmp_path)
    ok(cli(path, "migrate"))
    assert json.loads(ok(cli(path, "status", "--json"))) == {"jobs": [], "paused_callbacks": []}
    assert json.loads(ok(cli(path, "deliveries", "--json"))) == {
        "deliveries": [],
        "paused_callbacks": [],
    }
    assert json.loads(ok(cli(path, "instances", "--json"))) == {"instances": []}
    dry = json.loads(ok(cli(path, "redeliver", "--state", "dead", "--dry-run", "--json")))
    assert dry == {"deliveries": [], "queued": False}


# --- secrets needed only where used --------------------------------------------------


def test_state_commands_need_no_secret_from_the_environment(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    """The daemon's secrets come from its own environment or credentials: an operator's
    shell without them can still look at and change the state."""
    path = hooks_config(simulator, receiver, tmp_path)
    config = read_config(path)
    config["datasaur"]["client_secret"] = "${DATASAUR_CLIENT_SECRET}"
    config["callbacks"]["a"]["secret"] = "${credential:webhook-secret}"
    config["api"] = {
        "listen": "127.0.0.1:0",
        "tokens": [{"name": "ci", "token": "${API_TOKEN}", "scope": "write"}],
    }
    write_config(path, config)
    assert cli(path, "check-config").returncode == 2  # the daemon would need them
    for args in (
        ("migrate",),
        ("watch", "job-1", "--notify", "a"),
        ("status", "--json"),
        ("deliveries",),
        ("instances",),
        ("redeliver", "--state", "dead", "--dry-run"),
        ("backup", str(tmp_path / "copy.db")),
        ("unwatch", "job-1"),
    ):
        result = cli(path, *args)
        assert result.returncode == 0, (args, result.stderr)
    result = cli(path, "watch", "job-2", "--notify", "nope")
    assert result.returncode == 2 and "unknown callback 'nope' (known: a, b)" in result.stderr


# --- errors that say where -----------------------------------------------------------


def test_a_taken_port_names_its_listener(
    simulator: DatasaurSimulator, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = base_config(simulator, tmp_path, callbacks={"a": webhook(receiver)})
        tokens = [{"name": "ci", "token": "t" * 40, "scope": "write"}]
        config["api"] = {"listen": f"127.0.0.1:{port}", "tokens": tokens}
        path = write_config(tmp_path / "config.yaml", config)
        result = subprocess.run(
            [sys.executable, "-m", "notifier", "-c", str(path), "run"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert result.returncode == 1
        assert f"api.listen 127.0.0.1:{port}: address already in use" in result.stderr
        del config["api"]
        write_config(path, config)
        result = subprocess.run(
            [sys.executable, "-m", "notifier", "-c", str(path), "run", "--metrics-port",
             str(port)], capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert result.returncode == 1
        assert f"metrics.port 127.0.0.1:{port}: address already in use" in result.stderr
        assert "Traceback" not in result.stderr


def test_a_refused_connection_names_the_callback_host_and_port(
    simulator: DatasaurSimulator, tmp_path: Path
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        callbacks = {
            "team-mail": {"type": "email", "smtp_host": "127.0.0.1", "smtp_port": port,
                          "security": "none", "from": "a@example.com", "to": ["b@example.com"]},
            "team-hook": {"type": "webhook", "url": f"http://127.0.0.1:{port}/hook"},
        }  # fmt: skip
        path = write_config(
            tmp_path / "config.yaml", base_config(simulator, tmp_path, callbacks=callbacks)
        )
        mail = cli(path, "test-callback", "team-mail")
        hook = cli(path, "test-callback", "team-hook")
    assert mail.returncode == 1
    assert f"callback team-mail: failed: 127.0.0.1:{port}: connection refused" in mail.stderr
    assert hook.returncode == 1
    assert (
        f"callback team-hook: failed: connection failed: 127.0.0.1:{port}: connection refused"
        in (hook.stderr)
    )
