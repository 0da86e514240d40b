"""The argument parser built from the declared commands, and the bash completion script."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from notifier import __version__
from notifier.cli.base import Command
from notifier.config import DEFAULT_CONFIG_PATH


def _common_options() -> argparse.ArgumentParser:
    """``-c`` and ``--log-format``: accepted before the command and after it."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c",
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        help=f"config file (default {DEFAULT_CONFIG_PATH})",
    )
    common.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=argparse.SUPPRESS,
        help="log line format on stderr (default text)",
    )
    return common


def build_parser(commands: Sequence[Command]) -> argparse.ArgumentParser:
    """The ``datasaur-notifier`` parser with one subcommand per entry of ``commands``."""
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="datasaur-notifier",
        description="Watch Datasaur jobs and notify webhooks and email when they end.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in commands:
        sub = subparsers.add_parser(
            command.name, parents=[common], help=command.summary, description=command.summary
        )
        command.arguments(sub)
        sub.set_defaults(command_spec=command)
    return parser


BASH_COMPLETION = """\
# bash completion for datasaur-notifier; load with:
#   source <(datasaur-notifier completion)
_datasaur_notifier() {
    local word=${COMP_WORDS[COMP_CWORD]} command="" i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            -c | --config | --log-format) ((i++)) ;;
            -*) ;;
            *) command=${COMP_WORDS[i]}; break ;;
        esac
    done
    case $command in
%s
        *) COMPREPLY=($(compgen -W "%s" -- "$word")) ;;
    esac
}
complete -o default -F _datasaur_notifier datasaur-notifier
"""


def completion_script(parser: argparse.ArgumentParser) -> str:
    """A bash completion script for every command and option of ``parser``."""
    commands = next(
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    )
    cases = []
    for name, sub in commands.choices.items():
        options = " ".join(o for action in sub._actions for o in action.option_strings)
        cases.append(f'        {name}) COMPREPLY=($(compgen -W "{options}" -- "$word")) ;;')
    top = " ".join(
        [*commands.choices, *(o for action in parser._actions for o in action.option_strings)]
    )
    return BASH_COMPLETION % ("\n".join(cases), top)
