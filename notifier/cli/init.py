"""``init [PATH]``: write a minimal, commented config to start from.

One webhook, the credentials as ``${VAR}`` (never a value), no example jobs that would
fail. Never overwrites: an existing file is a usage error and stays as it is.
"""

from __future__ import annotations

import argparse
import os
from importlib import resources
from pathlib import Path

from notifier.cli.base import OK, Command, UsageError

STARTER = "starter.yaml"
DEFAULT_PATH = Path("config.yaml")


def starter_config(path: Path) -> str:
    """The starter config, its check-config hint naming ``path``."""
    text = resources.files("notifier.cli").joinpath(STARTER).read_text(encoding="utf-8")
    return text.replace("{path}", str(path))


def cmd_init(args: argparse.Namespace) -> int:
    """Write the starter config (mode 0600: it will hold secrets) and say what next."""
    path: Path = args.path or (args.config if args.config_given else DEFAULT_PATH)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"{path}: already exists; not overwritten") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(starter_config(path))
    print(f"wrote {path}. Next:")
    print("  export DATASAUR_CLIENT_ID=... DATASAUR_CLIENT_SECRET=...")
    print("  export WEBHOOK_SECRET=$(datasaur-notifier gen-secret)")
    print(f"  datasaur-notifier -c {path} check-config")
    print(f"  datasaur-notifier -c {path} get-job JOB_ID     # proves the credentials")
    print(f"  datasaur-notifier -c {path} run")
    return OK


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        nargs="?",
        type=Path,
        metavar="PATH",
        help=f"where to write it (default: -c CONFIG, else ./{DEFAULT_PATH})",
    )


COMMANDS = [
    Command("init", cmd_init, "Write a minimal, commented config to start from.", _arguments,
            "nothing"),
]  # fmt: skip
