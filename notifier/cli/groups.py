"""``groups [ID]`` and ``seal GROUP`` (issue 21.2): groups of jobs notified as one."""

from __future__ import annotations

import argparse
import time
from collections.abc import Collection, Mapping
from typing import Any

from notifier.cli.base import OK, Command, UsageError, print_json
from notifier.cli.state import open_state
from notifier.config import StateView
from notifier.durations import relative_time
from notifier.groups import GROUP_STATES, GroupView, group_document
from notifier.reminders import ack_document
from notifier.report import job_document, jobs_table, table


def _when(value: float | None, now: float) -> str:
    return "-" if value is None else relative_time(value, now)


def groups_table(views: list[GroupView], now: float) -> str:
    """Groups for people: progress (members ended / total), counts, ETA, deadline."""
    if not views:
        return "no groups"
    rows = []
    for view in views:
        group, counts = view.group, view.counts
        deadline = _when(group.deadline, now)
        if group.late_at is not None:
            deadline += " (LATE)"
        elif group.at_risk_at is not None:
            deadline += " (AT RISK)"
        ended = f"{counts.total - counts.running}/{counts.total}"
        rows.append([group.id, group.name or "-", group.state, ended, str(counts.delivered),
                     str(counts.failed), str(counts.expired), _when(view.eta, now),
                     deadline])  # fmt: skip
    headers = ["ID", "NAME", "STATE", "ENDED", "DELIVERED", "FAILED", "EXPIRED", "ETA",
               "DEADLINE"]  # fmt: skip
    return table(headers, rows)


def cmd_groups(args: argparse.Namespace, config: StateView) -> int:
    """List groups, or show one with its members."""
    store = open_state(config, create=False)
    now = time.time()
    if args.group_id is None:
        views = store.groups(state=args.state)
        if args.json:
            acks = store.acks("group", [v.group.id for v in views])
            print_json({"groups": [group_document(v, now, ack_document(acks.get(v.group.id)))
                                   for v in views]})  # fmt: skip
        else:
            print(groups_table(views, now))
        return OK
    found = store.groups(group_id=args.group_id)
    if not found:
        raise UsageError(f"no group {args.group_id!r} (see `groups`)")
    members = store.jobs(group=args.group_id)
    if args.json:
        ack = ack_document(store.acks("group", [args.group_id]).get(args.group_id))
        acks = store.acks("job", [j.id for j in members])
        documents = [job_document(j, acks.get(j.id)) for j in members]
        print_json({"group": {**group_document(found[0], now, ack), "members": documents}})
        return OK
    print(groups_table(found, now))
    print()
    print(jobs_table(members, now) if members else "no members yet")
    return OK


def callback_filters(callbacks: Mapping[str, Any]) -> dict[str, Collection[str]]:
    """The ``events`` filters of the config's callbacks, as read by a state-only command."""
    return {
        name: tuple(raw["events"])
        for name, raw in callbacks.items()
        if isinstance(raw, Mapping) and isinstance(raw.get("events"), list)
    }


def cmd_seal(args: argparse.Namespace, config: StateView) -> int:
    """Seal a group: it gains no more members and ends once they all have."""
    store = open_state(config, create=False)
    store.group_filters = callback_filters(config.callbacks)
    group = store.seal_group(args.group_id, time.time())
    if group is None:
        raise UsageError(f"no group {args.group_id!r} (see `groups`)")
    print(f"group {group.id}: {group.state}")
    return OK


def _groups_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("group_id", nargs="?", metavar="ID", help="show this group's members")
    parser.add_argument("--state", choices=GROUP_STATES, help="only groups in this state")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _seal_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("group_id", metavar="GROUP")


COMMANDS = [
    Command("groups", cmd_groups, "List groups of jobs, or show one with its members.",
            _groups_arguments, "state"),
    Command("seal", cmd_seal, "Seal a group: no more members; it ends when they have.",
            _seal_arguments, "state"),
]  # fmt: skip
