"""``ack JOB_ID|GROUP_ID [--comment TEXT]``: stop the reminders about a job or group.

Written to the state directly (author ``cli``), like ``silence add``: a running daemon
sends no further reminder about it.
"""

from __future__ import annotations

import argparse
import time

from notifier.cli.base import OK, Command, UsageError
from notifier.cli.state import open_state
from notifier.config import StateView
from notifier.reminders import acknowledge


def cmd_ack(args: argparse.Namespace, config: StateView) -> int:
    """Acknowledge a job (or, if no job has that id, a group)."""
    store = open_state(config, create=False)
    ack = acknowledge(store, args.id, "cli", time.time(), args.comment)
    if ack is None:
        raise UsageError(f"no job or group {args.id!r} is known (see `status`)")
    print(f"{ack.kind} {ack.subject}: acknowledged; no more reminders about it")
    return OK


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", metavar="JOB_ID|GROUP_ID")
    parser.add_argument("--comment", metavar="TEXT", help="why, or who is on it")


COMMANDS = [
    Command(
        "ack",
        cmd_ack,
        "Acknowledge a job or group: its reminders stop.",
        _arguments,
        "state",
    )
]
