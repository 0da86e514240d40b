"""The ``datasaur-notifier`` command line. Thin: parse, call, print, exit.

Exit status: 0 ok, 1 runtime failure, 2 bad config or usage. One module per group of
commands (``service``: the daemon and what needs the whole config; ``state``: reading
and looking after the state; ``watching``; ``redeliver``; ``local``: what needs no
config), each declaring its :class:`~notifier.cli.base.Command` entries; ``commands``
lists them all and ``parsing`` builds the parser from that list.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from notifier import logs
from notifier.cli.base import FAILURE, USAGE, UsageError
from notifier.cli.commands import parser
from notifier.config import DEFAULT_CONFIG_PATH, ConfigError, load_config, load_state_view
from notifier.store import StoreError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and of ``python -m notifier``."""
    command_line = parser()
    args = command_line.parse_args(argv)
    if args.command is None:  # `datasaur-notifier` alone: the help, and 2 (no command)
        command_line.print_help()
        return USAGE
    args.config_given = hasattr(args, "config")  # `init` writes there only if given
    args.config = getattr(args, "config", DEFAULT_CONFIG_PATH)
    try:
        logs.setup(getattr(args, "log_format", None) or logs.format_from_environment())
    except ValueError as exc:
        command_line.error(str(exc))
    command = args.command_spec
    try:
        if command.needs == "nothing":
            return int(command.run(args))
        if command.needs == "state":
            return int(command.run(args, load_state_view(args.config)))
        return int(command.run(args, load_config(args.config)))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{exc.source}: {problem}", file=sys.stderr)
        return USAGE
    except UsageError as exc:
        print(f"datasaur-notifier {args.command}: {exc}", file=sys.stderr)
        return USAGE
    except StoreError as exc:
        print(f"datasaur-notifier {args.command}: {exc}", file=sys.stderr)
        return FAILURE
    except KeyboardInterrupt:
        return FAILURE
