"""Commands that change the watch list: ``watch`` and ``unwatch``, of one job or several.

``watch`` of a known job merges like ``POST /v1/jobs``: the options given are updated,
the others kept, and it says what it did (``already done: delivered 3m ago; nothing
changed``).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from pydantic import ValidationError

from notifier import watchlist
from notifier.cli.base import FAILURE, OK, Command, UsageError
from notifier.cli.jobflags import add_job_field_arguments, job_field_values
from notifier.cli.parsing import add_repeatable
from notifier.cli.state import open_state
from notifier.config import Config, JobSpec, StateView, unknown_callback
from notifier.events import JobStatus
from notifier.groups import GroupEnded
from notifier.jobfields import GroupConflict
from notifier.problems import validation_problems
from notifier.store import Store, WatchedJob

STATUSES = [status.value for status in JobStatus]


def _given(args: argparse.Namespace) -> dict[str, Any]:
    """The registration fields the command line sets (the others are kept)."""
    given: dict[str, Any] = {}
    if args.name is not None:
        given["name"] = args.name
    if args.notify is not None:
        given["notify"] = args.notify
    if args.on_status is not None:
        given["on_status"] = args.on_status
    return {**given, **job_field_values(args)}


def _job_ids(raw: list[str], config: StateView | Config) -> list[str]:
    """The ids, stripped and de-duplicated; a status or callback name is no job id (it was
    meant as a second value of ``--on-status``/``--notify``)."""
    ids: list[str] = []
    for value in raw:
        try:
            job_id = JobSpec.model_validate({"id": value}).id
        except ValueError:
            raise UsageError(f"JOB_ID {value!r}: job id must not be empty") from None
        for kind, names, flag in (
            ("status", STATUSES, "--on-status"),
            ("callback", list(config.callbacks), "--notify"),
        ):
            if job_id in names:
                raise UsageError(
                    f"{job_id!r} is a {kind}, not a job id: give {flag} once per value"
                    f" ({flag} A {flag} B) or comma-separated ({flag} A,B)"
                )
        if job_id not in ids:
            ids.append(job_id)
    return ids


def _watch_one(store: Store, job_id: str, given: dict[str, Any], now: float) -> str:
    """Register one job; the line that says what happened."""
    found = store.jobs(job_id=job_id)
    known = found[0] if found else None
    changed = [] if known is None else watchlist.changed_fields(known, given)
    if known is not None and known.state in ("watching", "done") and not changed:
        return f"{job_id}: {watchlist.describe_state(known, now)}; nothing changed"
    fields = watchlist.merge(job_id, known, given)
    del fields["callback_url"]  # the API's alone: kept as stored
    try:
        spec = JobSpec.model_validate(fields)
    except ValidationError as exc:
        raise UsageError("; ".join(validation_problems(exc, JobSpec))) from None
    try:
        job = store.watch(spec, now)
    except (GroupConflict, GroupEnded) as exc:
        raise UsageError(str(exc)) from None
    if known is None:
        return f"watching {job.id} (state {job.state})" + (f" as {job.name!r}" if job.name else "")
    updated = f"; updated {', '.join(changed)}" if changed else ""
    if known.state in ("unwatched", "expired"):
        return f"watching {job.id} again (was {known.state}){updated}"
    return f"{job.id}: {watchlist.describe_state(known, now)}{updated}"


def cmd_watch(args: argparse.Namespace, config: StateView) -> int:
    """Add jobs to the persisted watch list, or update the ones already on it."""
    for name in args.notify or []:
        if problem := unknown_callback(name, config.callbacks):
            raise UsageError(f"--notify: {problem}")
    given = _given(args)
    ids = _job_ids(args.job_ids, config)
    store = open_state(config)
    now = time.time()
    if "group" in given:  # refused before any of the jobs is registered
        for job_id in ids:
            found = store.jobs(job_id=job_id)
            if found and found[0].group not in (None, given["group"]):
                raise UsageError(str(GroupConflict(job_id, found[0].group)))
    for job_id in ids:
        print(_watch_one(store, job_id, given, now))
    return OK


def _unwatch_one(store: Store, job_id: str) -> str | None:
    """Stop polling one job; the line that says what happened, None if it is unknown."""
    found: list[WatchedJob] = store.jobs(job_id=job_id)
    if not found:
        return None
    if found[0].state in ("done", "unwatched", "expired"):
        state = found[0].state
        where = watchlist.describe_state(found[0]) if state == "done" else f"already {state}"
        return f"{job_id}: {where}; nothing changed"
    job = store.unwatch(job_id)
    return f"{job_id}: {'unwatched' if job is None else job.state}"


def cmd_unwatch(args: argparse.Namespace, config: StateView) -> int:
    """Stop polling jobs; their pending deliveries are still sent."""
    store = open_state(config, create=False)
    code = OK
    for job_id in dict.fromkeys(args.job_ids):
        line = _unwatch_one(store, job_id)
        if line is None:
            print(f"no watched job {job_id!r}", file=sys.stderr)
            code = FAILURE
        else:
            print(line)
    return code


def _watch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_ids", nargs="+", metavar="JOB_ID")
    parser.add_argument("--name", help="shown in notifications")
    add_repeatable(parser, "--notify", "CALLBACK", "notify only this callback (default: every)")
    add_repeatable(
        parser,
        "--on-status",
        "STATUS",
        "a status that notifies (default: DELIVERED and FAILED)",
        choices=STATUSES,
    )
    add_job_field_arguments(parser)


def _unwatch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_ids", nargs="+", metavar="JOB_ID")


COMMANDS = [
    Command(
        "watch",
        cmd_watch,
        "Add jobs to the persisted watch list (a known job: update the options given).",
        _watch_arguments,
        "state",
    ),
    Command("unwatch", cmd_unwatch, "Stop watching jobs.", _unwatch_arguments, "state"),
]
