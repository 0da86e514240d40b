"""Commands that change the watch list: ``watch`` and ``unwatch``."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from notifier.cli.base import FAILURE, OK, Command, UsageError
from notifier.cli.state import open_state
from notifier.config import Config, JobSpec, unknown_callback
from notifier.events import JobStatus


def cmd_watch(args: argparse.Namespace, config: Config) -> int:
    """Add a job to the persisted watch list."""
    for name in args.notify or []:
        if problem := unknown_callback(name, config.callbacks):
            raise UsageError(f"--notify: {problem}")
    fields: dict[str, Any] = {"id": args.job_id, "name": args.name, "notify": args.notify}
    if args.on_status:
        fields["on_status"] = args.on_status
    try:
        spec = JobSpec.model_validate(fields)
    except ValueError as exc:
        raise UsageError(str(exc).splitlines()[-1].strip()) from None
    job = open_state(config).watch(spec, time.time())
    print(f"watching {job.id} (state {job.state})" + (f" as {job.name!r}" if job.name else ""))
    return OK


def cmd_unwatch(args: argparse.Namespace, config: Config) -> int:
    """Stop polling a job."""
    job = open_state(config).unwatch(args.job_id)
    if job is None:
        print(f"no watched job {args.job_id!r}", file=sys.stderr)
        return FAILURE
    print(f"{job.id}: {job.state}")
    return OK


def _watch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", metavar="JOB_ID")
    parser.add_argument("--name", help="shown in notifications")
    parser.add_argument("--notify", nargs="+", metavar="CALLBACK", help="default: every callback")
    parser.add_argument(
        "--on-status",
        nargs="+",
        metavar="STATUS",
        choices=[s.value for s in JobStatus],
        help="statuses that notify (default: DELIVERED FAILED)",
    )


def _unwatch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", metavar="JOB_ID")


COMMANDS = [
    Command("watch", cmd_watch, "Add a job to the persisted watch list.", _watch_arguments),
    Command("unwatch", cmd_unwatch, "Stop watching a job.", _unwatch_arguments),
]
