"""``datasaur-notifier healthcheck``: it asks the daemon's /healthz where the daemon
serves it, read from ``-c``'s config, or (without ``-c``, as the image's HEALTHCHECK runs
it) from the command line PID 1 runs with."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from notifier.config import DEFAULT_CONFIG_PATH
from notifier.healthcheck import daemon_arguments
from notifier.standins.simulator import DatasaurSimulator
from tests.conftest import base_config
from tests.support.daemon import DaemonProcess, cli
from tests.support.postgres import free_port

CWD = Path("/var/lib/datasaur-notifier")
SCRIPT = "/opt/datasaur-notifier/bin/datasaur-notifier"


def cmdline(*argv: str) -> bytes:
    return b"\0".join(arg.encode() for arg in argv) + b"\0"


def test_the_config_and_port_of_a_run_command_line() -> None:
    image = cmdline("/opt/datasaur-notifier/bin/python3", SCRIPT, "run", "-c", "/etc/x/c.yaml")
    assert daemon_arguments(image, CWD) == (Path("/etc/x/c.yaml"), None)
    given = cmdline(SCRIPT, "-c", "conf/c.yaml", "run", "--metrics-port", "9200")
    assert daemon_arguments(given, CWD) == (CWD / "conf/c.yaml", 9200)
    module = cmdline("python3", "-m", "notifier", "run")
    assert daemon_arguments(module, CWD) == (DEFAULT_CONFIG_PATH, None)


def test_other_command_lines_are_not_a_daemon() -> None:
    assert daemon_arguments(cmdline(SCRIPT, "demo"), CWD) is None
    assert daemon_arguments(cmdline("/sbin/init"), CWD) is None
    assert daemon_arguments(cmdline(SCRIPT, "run", "--no-such-flag"), CWD) is None
    assert daemon_arguments(b"", CWD) is None


def test_healthcheck_asks_the_port_of_its_config(
    tmp_path: Path,
    simulator: DatasaurSimulator,
    daemon_factory: Callable[..., DaemonProcess],
) -> None:
    config = base_config(simulator, tmp_path, metrics={"host": "0.0.0.0", "port": free_port()})
    daemon = daemon_factory(config)
    healthy = cli(daemon.config, "healthcheck")
    assert healthy.returncode == 0, healthy.stderr
    assert f"http://127.0.0.1:{config['metrics']['port']}/healthz: HTTP 200" in healthy.stdout
    assert daemon.stop() == 0
    down = cli(daemon.config, "healthcheck", "--timeout", "1s")
    assert down.returncode == 1 and "/healthz" in down.stderr
