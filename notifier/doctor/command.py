"""The ``doctor`` command: the four groups of checks, in order, then the report."""

from __future__ import annotations

import argparse

from notifier.cli.base import FAILURE, OK, Command
from notifier.doctor.callbacks import check_callbacks
from notifier.doctor.config_state import check_config, check_state
from notifier.doctor.datasaur import check_datasaur
from notifier.doctor.listener import check_listener
from notifier.doctor.report import Check, document, failed, line


def run_checks(args: argparse.Namespace) -> list[Check]:
    """Every check, in order; only the config's when it is invalid."""
    config, checks = check_config(args.config)
    if config is None:
        return checks
    for group in (check_state, check_datasaur, check_callbacks, check_listener):
        checks += group(config)
    return checks


def cmd_doctor(args: argparse.Namespace) -> int:
    """Run the checks and print one line (or one JSON entry) per check."""
    checks = run_checks(args)
    print(document(checks) if args.json else "\n".join(map(line, checks)))
    return FAILURE if failed(checks) else OK


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help='print {"checks": [...]}')


COMMANDS = [
    Command(
        "doctor",
        cmd_doctor,
        "Check that this config is going to work (config, state, Datasaur, callbacks, API);"
        " sends nothing.",
        _arguments,
        needs="nothing",
    )
]
