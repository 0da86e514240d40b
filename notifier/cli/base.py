"""What every command shares: exit codes, the usage error, the command declaration, output."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from notifier.report import health_document, paused_lines
from notifier.store import CallbackHealth

OK, FAILURE, USAGE = 0, 1, 2

# What a command needs before it runs: the whole config; only the state's location and
# the callbacks' names (notifier.config.StateView: no secret has to be set); or nothing.
Needs = Literal["config", "state", "nothing"]


class UsageError(Exception):
    """A command-line argument that does not fit the config (exit 2)."""


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of a command that takes none beyond the common ones."""


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, what it runs, its one-line summary and its arguments.

    ``run`` takes ``(args, config)`` (a ``Config``, or a ``StateView`` when ``needs`` is
    ``"state"``), or ``(args)`` alone when ``needs`` is ``"nothing"``.
    """

    name: str
    run: Callable[..., int]
    summary: str
    arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    needs: Needs = "config"


def print_json(document: Any) -> None:
    """A JSON document on stdout, indented for people."""
    print(json.dumps(document, indent=2))


def show(
    args: argparse.Namespace,
    key: str,
    rows: Sequence[Any],
    document: Callable[[Any], dict[str, Any]],
    table_of: Callable[[Sequence[Any]], str],
    health: Sequence[CallbackHealth] | None = None,
) -> int:
    """Print ``rows`` as JSON or a table; with ``health`` (``status``, ``deliveries``),
    the paused callbacks too."""
    if args.json:
        extra = paused_document(health) if health is not None else {}
        print_json({key: [document(row) for row in rows], **extra})
    else:
        paused = [h for h in health or () if h.paused_at is not None]
        print("\n".join([table_of(rows), *paused_lines(paused)]))
    return OK


def paused_document(health: Sequence[CallbackHealth]) -> dict[str, Any]:
    """``{"paused_callbacks": [...]}``: always there, empty when no lane is paused."""
    paused = [h for h in health if h.paused_at is not None]
    return {"paused_callbacks": [health_document(h) for h in paused]}
