"""``datasaur-notifier healthcheck``: ask a running daemon's ``/healthz``.

The container image's ``HEALTHCHECK``. The address is the one the daemon serves, read
from the same config (``metrics.host`` and ``metrics.port``); a daemon listening on every
address (``0.0.0.0``, ``::``) is asked on loopback. Without ``-c``, in a container whose
PID 1 is ``datasaur-notifier run``, the config and ``--metrics-port`` are that command's,
so an image run with another ``-c`` or a ``--metrics-port`` is still found.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import requests

from notifier.config_service import MetricsSettings
from notifier.errors import describe_error

WILDCARDS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}


def healthz_url(settings: MetricsSettings) -> str | None:
    """The URL of the daemon's ``/healthz``, or None when the config turns metrics off."""
    if settings.port is None:
        return None
    host = WILDCARDS.get(settings.host, settings.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}/healthz"


def probe(url: str, timeout: float) -> tuple[bool, str]:
    """Whether ``url`` answers 200, and what it said (or why it could not be asked)."""
    try:
        response = requests.get(url, timeout=timeout)
    except requests.RequestException as exc:
        return False, describe_error(exc)
    text = response.text.strip() or response.reason
    return response.status_code == 200, f"HTTP {response.status_code} {text}"


def daemon_arguments(cmdline: bytes, cwd: Path) -> tuple[Path, int | None] | None:
    """The config path and ``--metrics-port`` of a ``datasaur-notifier run`` command line
    (NUL-separated, as in ``/proc/PID/cmdline``; a relative path taken from ``cwd``), or
    None when it is not one."""
    from notifier.cli.commands import parser
    from notifier.config import DEFAULT_CONFIG_PATH

    argv = [arg.decode(errors="replace") for arg in cmdline.split(b"\0") if arg]
    starts = [i + 1 for i, arg in enumerate(argv) if Path(arg).name == "datasaur-notifier"]
    starts += [i + 2 for i, arg in enumerate(argv[:-1]) if argv[i : i + 2] == ["-m", "notifier"]]
    if not starts:
        return None
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            args = parser().parse_args(argv[starts[0] :])
    except SystemExit:
        return None
    if args.command != "run":
        return None
    return cwd / getattr(args, "config", DEFAULT_CONFIG_PATH), args.metrics_port


def pid1_daemon() -> tuple[Path, int | None] | None:
    """:func:`daemon_arguments` of PID 1 (a container's daemon), if it can be read."""
    try:
        cmdline = Path("/proc/1/cmdline").read_bytes()
        cwd = Path(os.readlink("/proc/1/cwd"))
    except OSError:
        return None
    return daemon_arguments(cmdline, cwd)
