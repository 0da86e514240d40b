"""Every command, in the order ``--help`` lists them."""

from __future__ import annotations

import argparse

from notifier.cli import (
    acks,
    groups,
    init,
    local,
    redeliver,
    service,
    silences,
    state,
    waiting,
    watching,
)
from notifier.cli.base import OK, Command
from notifier.cli.parsing import build_parser, completion_script
from notifier.doctor import command as doctor


def cmd_completion(args: argparse.Namespace) -> int:
    """Print the bash completion script."""
    print(completion_script(parser()), end="")
    return OK


COMMANDS: list[Command] = [
    *init.COMMANDS,
    *service.COMMANDS[:2],  # run, check-config
    *state.COMMANDS[:2],  # status, deliveries
    *watching.COMMANDS,
    *groups.COMMANDS,
    *waiting.COMMANDS,
    *redeliver.COMMANDS,
    *silences.COMMANDS,
    *acks.COMMANDS,
    *service.COMMANDS[2:],  # test-callback, get-job
    *state.COMMANDS[2:],  # instances, migrate, import-state, backup
    *doctor.COMMANDS,
    *local.COMMANDS,
    Command("completion", cmd_completion, "Print a bash completion script.", needs="nothing"),
]


def parser() -> argparse.ArgumentParser:
    """The parser of every command."""
    return build_parser(COMMANDS)
