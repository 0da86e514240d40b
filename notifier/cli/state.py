"""Commands that read the state or look after it: ``status``, ``deliveries``,
``instances``, ``migrate``, ``import-state``, ``backup``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from notifier.cli.base import (
    FAILURE,
    OK,
    Command,
    UsageError,
    paused_document,
    print_json,
    show,
)
from notifier.cli.jobflags import add_filter_arguments, filter_values
from notifier.config import StateView
from notifier.digests import DIGEST_EVENT
from notifier.report import (
    attempt_document,
    attempts_table,
    deliveries_table,
    delivery_document,
    instance_document,
    instances_table,
    job_document,
    jobs_table,
)
from notifier.store import (
    DELIVERY_STATES,
    JOB_STATES,
    Store,
    StoreError,
    backup_state,
    describe_location,
    import_sqlite_state,
    open_store,
)


def open_state(config: StateView, create: bool = True) -> Store:
    """The configured store, its schema brought up to date first.

    Without ``create`` (the commands that only read or change what is there) a missing
    SQLite state file is an error naming it, and nothing is created.
    """
    if not create and config.state_url is None and not config.state_path.exists():
        raise StoreError(
            f"no state file at {config.state_path}: nothing was watched with this config yet"
            " (`run` or `watch` creates it)"
        )
    return open_store(config)


def _known_job(store: Store, job_id: str | None) -> None:
    """``--job ID`` names a job of the watch list, or the command fails saying so."""
    if job_id is not None and not store.jobs(job_id=job_id):
        raise StoreError(f"--job {job_id}: not watched (no such job in the watch list)")


def cmd_status(args: argparse.Namespace, config: StateView) -> int:
    """The watch list, and the callbacks whose lanes are paused."""
    store = open_state(config, create=False)
    _known_job(store, args.job)
    group, labels = filter_values(args)
    jobs = [] if labels is None else store.jobs(args.state, args.job, group=group, labels=labels)
    acks = store.acks("job", [job.id for job in jobs])
    return show(
        args,
        "jobs",
        jobs,
        lambda job: job_document(job, acks.get(job.id)),
        lambda rows: jobs_table(rows, acks=acks),
        store.callback_health(),
    )


def _status_arguments(parser: argparse.ArgumentParser) -> None:
    _listing(JOB_STATES)(parser)
    add_filter_arguments(parser)


def cmd_deliveries(args: argparse.Namespace, config: StateView) -> int:
    """The outbox; with ``--id``, one delivery and every attempt made at it (a digest:
    also the events in it)."""
    store = open_state(config, create=False)
    _known_job(store, args.job)
    deliveries = store.deliveries(state=args.state, job_id=args.job, delivery_id=args.id)
    if args.id is None:
        health = store.callback_health()
        return show(args, "deliveries", deliveries, delivery_document, deliveries_table, health)
    if not deliveries:
        print(f"no delivery {args.id!r}", file=sys.stderr)
        return FAILURE
    history = store.attempts(args.id)
    members = store.digest_members(args.id) if deliveries[0].event == DIGEST_EVENT else None
    if args.json:
        document = delivery_document(deliveries[0])
        document["history"] = [attempt_document(attempt) for attempt in history]
        if members is not None:
            document["members"] = [delivery_document(member) for member in members]
        print_json({"deliveries": [document], **paused_document(store.callback_health())})
    else:
        text = deliveries_table(deliveries) + "\n\n" + attempts_table(history)
        if members is not None:
            text += f"\n\nthe {len(members)} events in this digest:\n" + deliveries_table(members)
        print(text)
    return OK


def cmd_instances(args: argparse.Namespace, config: StateView) -> int:
    """The daemons that share this state, from their heartbeats."""
    instances = open_state(config, create=False).instances(time.time())
    return show(args, "instances", instances, instance_document, instances_table)


def cmd_migrate(args: argparse.Namespace, config: StateView) -> int:
    """Create or upgrade the schema (opening the store does it) and say so."""
    store = open_state(config)
    store.close()
    print(f"state {describe_location(config)}: schema up to date")
    return OK


def cmd_import_state(args: argparse.Namespace, config: StateView) -> int:
    """Copy a SQLite state file into the configured PostgreSQL store."""
    if config.state_url is None:
        raise UsageError("the config has no state_url: import-state copies into PostgreSQL")
    if not args.sqlite_path.is_file():
        raise UsageError(f"no SQLite state file at {args.sqlite_path}")
    counts = import_sqlite_state(config, args.sqlite_path)
    print(
        f"imported {counts.jobs} jobs, {counts.deliveries} deliveries and {counts.attempts}"
        f" attempts from {args.sqlite_path} (already present: {counts.skipped_jobs} jobs,"
        f" {counts.skipped_deliveries} deliveries)"
    )
    return OK


def cmd_backup(args: argparse.Namespace, config: StateView) -> int:
    """A consistent copy of the SQLite state, taken while the daemon runs."""
    if config.state_url is not None:
        raise UsageError("the state is in PostgreSQL: back it up with pg_dump")
    if args.path.resolve() == config.state_path.resolve():
        raise UsageError("the backup must not be the state file itself")
    open_state(config, create=False).close()
    backup_state(config, args.path)
    print(f"backed up {config.state_path} to {args.path}")
    return OK


def _listing(
    states: tuple[str, ...], by_id: bool = False
) -> Callable[[argparse.ArgumentParser], None]:
    """The filters of ``status`` and ``deliveries``."""

    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.add_argument("--state", choices=states, help="only rows in this state")
        parser.add_argument("--job", metavar="JOB_ID", help="only this job")
        if by_id:
            parser.add_argument(
                "--id", metavar="DELIVERY_ID", help="only this delivery, with its attempts"
            )

    return arguments


def _json_only(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def _sqlite_path(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sqlite_path", type=Path, metavar="SQLITE_PATH")


def _backup_path(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, metavar="PATH")


COMMANDS = [
    Command("status", cmd_status, "Show the watched jobs.", _status_arguments, "state"),
    Command(
        "deliveries",
        cmd_deliveries,
        "Show the notification outbox.",
        _listing(DELIVERY_STATES, by_id=True),
        "state",
    ),
    Command("instances", cmd_instances, "Show the daemons sharing the state.", _json_only, "state"),
    Command(
        "migrate", cmd_migrate, "Create or upgrade the state's schema, then exit.", needs="state"
    ),
    Command(
        "import-state",
        cmd_import_state,
        "Copy a SQLite state file into the PostgreSQL store (state_url); safe to repeat.",
        _sqlite_path,
        "state",
    ),
    Command(
        "backup",
        cmd_backup,
        "Write a consistent copy of the SQLite state (daemon running or not).",
        _backup_path,
        "state",
    ),
]
