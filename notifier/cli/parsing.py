"""The argument parser built from the declared commands, and the bash completion script.

Nothing typed is dropped or widened: options go before or after the positional
arguments (``--`` ends the options), a repeatable flag (:func:`add_repeatable`) collects
every value, a single-valued one given twice with different values is an error, and
options are never abbreviated.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from notifier import __version__, logs
from notifier.cli.base import Command
from notifier.config import DEFAULT_CONFIG_PATH


class _Once(argparse.Action):
    """A single-valued option: given again with another value, a usage error."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        previous = getattr(namespace, self.dest, None)
        if previous not in (None, self.default, values):
            parser.error(
                f"{option_string} given twice ({previous} and {values}): it takes one value"
            )
        setattr(namespace, self.dest, values)


class _Collect(argparse.Action):
    """A repeatable option: ``--flag A --flag B`` and ``--flag A,B`` both collect A and B;
    each value is checked against ``allowed`` (argparse's ``choices`` would check the
    unsplit text)."""

    def __init__(self, *args: Any, separator: str = ",", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allowed = None if self.choices is None else [str(c) for c in self.choices]
        self.choices = None
        self.separator = re.compile(separator)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        collected = list(getattr(namespace, self.dest, None) or [])
        for value in (item.strip() for item in self.separator.split(str(values))):
            if not value:
                parser.error(f"{option_string}: empty value in {values!r}")
            if self.allowed is not None and value not in self.allowed:
                known = ", ".join(self.allowed)
                parser.error(f"{option_string}: invalid choice: {value!r} (choose from {known})")
            if value not in collected:
                collected.append(value)
        setattr(namespace, self.dest, collected)


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose options mix freely with positionals, never abbreviated,
    where a single-valued option given twice with two values is refused."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self._intermixing = False

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        """Options that store one value are :class:`_Once`."""
        option = bool(args) and str(args[0]).startswith("-")
        if option and kwargs.get("action", "store") == "store" and kwargs.get("nargs") is None:
            kwargs["action"] = _Once
        return super().add_argument(*args, **kwargs)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """Options before or after positionals (``parse_known_intermixed_args``), in the
        commands; the top level, which has the subcommands, parses as usual.

        ``--`` ends the options: what follows stands in as placeholders that cannot look
        like options while parsing (``parse_known_intermixed_args`` loses the ``--``).
        """
        if self._intermixing or self._subparsers is not None:
            return super().parse_known_args(args, namespace)
        given = list(sys.argv[1:] if args is None else args)
        literal: dict[str, str] = {}
        if "--" in given:
            end = given.index("--")
            literal = {f"\0{n}": value for n, value in enumerate(given[end + 1 :])}
            given = given[:end] + list(literal)
        self._intermixing = True
        try:
            parsed, extras = self.parse_known_intermixed_args(given, namespace)
        finally:
            self._intermixing = False
        for name, value in vars(parsed).items():
            if isinstance(value, list):
                setattr(parsed, name, [literal.get(item, item) for item in value])
            elif isinstance(value, str):
                setattr(parsed, name, literal.get(value, value))
        return parsed, [literal.get(item, item) for item in extras]


def add_repeatable(
    parser: argparse.ArgumentParser,
    flag: str,
    metavar: str,
    help: str,
    choices: Iterable[str] | None = None,
    separator: str = ",",
) -> None:
    """``flag`` may be given several times and takes comma-separated values; every value
    is kept, in order, once (the list is None when the flag is not given).

    ``separator`` is the pattern values are split at (``--label``: a comma before the
    next ``key=``, so that a value may hold commas).
    """
    allowed = None if choices is None else list(choices)
    parser.add_argument(
        flag,
        action=_Collect,
        separator=separator,
        choices=allowed,
        metavar=metavar,
        help=f"{help} (repeatable; or comma-separated)"
        + ("" if allowed is None else f"; one of {', '.join(allowed)}"),
    )


def _common_options() -> Parser:
    """``-c`` and ``--log-format``: accepted before the command and after it."""
    common = Parser(add_help=False)
    common.add_argument(
        "-c",
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        help=f"config file (default {DEFAULT_CONFIG_PATH})",
    )
    common.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default=argparse.SUPPRESS,
        help=f"log line format on stderr (default ${logs.FORMAT_VARIABLE}, else text)",
    )
    return common


def build_parser(commands: Sequence[Command]) -> argparse.ArgumentParser:
    """The ``datasaur-notifier`` parser with one subcommand per entry of ``commands``."""
    common = _common_options()
    parser = Parser(
        prog="datasaur-notifier",
        description="Watch Datasaur jobs and notify webhooks and email when they end.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
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
