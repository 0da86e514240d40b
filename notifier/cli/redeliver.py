"""``redeliver``: queue one delivery again, or every delivery a filter matches."""

from __future__ import annotations

import argparse
import sys
import time

from notifier.cli.base import FAILURE, OK, Command, UsageError, print_json
from notifier.cli.state import open_state
from notifier.config import StateView
from notifier.digests import DIGEST_EVENT
from notifier.durations import parse_duration
from notifier.report import deliveries_table, delivery_document
from notifier.store import DELIVERY_STATES

BULK_REDELIVER_LIMIT = 100  # more than this many need --yes


def cmd_redeliver(args: argparse.Namespace, config: StateView) -> int:
    """Queue a delivery again under the same webhook-id; with filters, every match."""
    filters = {
        "--state": args.state,
        "--callback": args.callback,
        "--job": args.job,
        "--since": args.since,
        "--until": args.until,
    }
    given = [name for name, value in filters.items() if value is not None]
    bulk_options = [name for name in ("dry_run", "yes", "json") if getattr(args, name)]
    if args.delivery_id is None:
        return _redeliver_matching(args, config, given)
    if given or bulk_options:
        options = given + ["--" + name.replace("_", "-") for name in bulk_options]
        raise UsageError(
            f"give a DELIVERY_ID or filters, not both ({', '.join(options)} go with filters)"
        )
    delivery = open_state(config, create=False).redeliver(args.delivery_id, time.time())
    if delivery is None:
        print(f"no delivery {args.delivery_id!r}", file=sys.stderr)
        return FAILURE
    about = (
        f"digest of {delivery.payload['data']['count']} events"
        if delivery.event == DIGEST_EVENT
        else f"{delivery.event} for {delivery.job_id}"
    )
    print(f"{delivery.id}: queued again ({about} to {delivery.callback})")
    return OK


def _redeliver_matching(args: argparse.Namespace, config: StateView, given: list[str]) -> int:
    """``redeliver --state S [--callback N] [--job ID] [--since D] [--until D]``."""
    if not given:
        raise UsageError(
            "give a DELIVERY_ID, or --state STATE and optionally --callback, --job, --since,"
            " --until"
        )
    if args.state is None:
        raise UsageError(f"{', '.join(given)}: also give --state (e.g. --state dead)")
    if args.since is not None and args.until is not None and args.since <= args.until:
        raise UsageError("--since must reach further back than --until")
    now = time.time()
    result = open_state(config, create=False).redeliver_matching(
        args.state,
        now,
        callback=args.callback,
        job_id=args.job,
        created_after=None if args.since is None else now - args.since,
        created_before=None if args.until is None else now - args.until,
        dry_run=args.dry_run,
        at_most=None if args.yes else BULK_REDELIVER_LIMIT,
    )
    found = result.deliveries
    if not args.dry_run and not result.queued:
        raise UsageError(
            f"{len(found)} deliveries match, more than {BULK_REDELIVER_LIMIT}: nothing queued;"
            " add --yes to queue them all again (or --dry-run to list them)"
        )
    if args.json:
        print_json({"deliveries": [delivery_document(d) for d in found], "queued": result.queued})
    elif args.dry_run:
        print(deliveries_table(found))
        print(f"\n{len(found)} deliveries match; nothing queued (dry run)")
    else:
        print(f"queued {len(found)} deliveries again" if found else "no delivery matches")
    return OK


def _duration(text: str) -> float:
    """An argparse type: ``6h``, ``30m``, ``2d`` or seconds."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("delivery_id", nargs="?", metavar="DELIVERY_ID")
    states = [state for state in DELIVERY_STATES if state != "digested"]  # their digests
    parser.add_argument("--state", choices=states, help="deliveries in this state")
    parser.add_argument("--callback", metavar="NAME", help="only this callback's")
    parser.add_argument("--job", metavar="JOB_ID", help="only this job's")
    parser.add_argument(
        "--since", type=_duration, metavar="DURATION", help="created at most this long ago (6h)"
    )
    parser.add_argument(
        "--until", type=_duration, metavar="DURATION", help="created at least this long ago (2h)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="list the matching deliveries, change nothing"
    )
    parser.add_argument(
        "--yes", action="store_true", help=f"go ahead when more than {BULK_REDELIVER_LIMIT} match"
    )
    parser.add_argument("--json", action="store_true", help="print the deliveries as JSON")


COMMANDS = [
    Command(
        "redeliver",
        cmd_redeliver,
        "Queue a delivered or dead delivery again (same webhook-id); with filters instead of"
        f" an id, every matching one (more than {BULK_REDELIVER_LIMIT} need --yes).",
        _arguments,
        "state",
    )
]
