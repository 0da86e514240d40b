"""The ``watch`` flags of issue 21 (``--group``, ``--label``, ``--metadata``,
``--deadline``, ``--expire-after``, ``--stall-after``) and the ``--group``/``--label``
filters of ``status``: parsed and checked here, each problem one line naming its flag."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from notifier import jobfields
from notifier.cli.base import UsageError
from notifier.cli.parsing import add_repeatable

# A comma splits two labels only where the next one starts (``a=1,b=2``), so that a
# label's value may hold commas (``--label teams=ml,ops`` is one label).
LABEL_SEPARATOR = r",(?=[a-z0-9][a-z0-9_./-]{0,62}=)"


def add_job_field_arguments(parser: argparse.ArgumentParser) -> None:
    """The registration flags beyond ``--name``/``--notify``/``--on-status``."""
    parser.add_argument("--group", metavar="GROUP", help="the group the job belongs to")
    add_repeatable(parser, "--label", "KEY=VALUE", "a label of the job", separator=LABEL_SEPARATOR)
    parser.add_argument(
        "--metadata", metavar="JSON", help="a JSON object echoed in every event (up to 8 KiB)"
    )
    parser.add_argument(
        "--deadline", metavar="WHEN", help="an ISO-8601 time with a zone, or a duration (2h)"
    )
    parser.add_argument(
        "--expire-after", metavar="DURATION", help="give the job up after this (0: never)"
    )
    parser.add_argument(
        "--stall-after", metavar="DURATION", help="job.stalled after no change for this long"
    )


def add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    """``--group G`` and ``--label k=v`` (repeatable: all must match) of a listing."""
    parser.add_argument("--group", metavar="GROUP", help="only the jobs of this group")
    add_repeatable(
        parser,
        "--label",
        "KEY=VALUE",
        "only jobs with this label (all given must match)",
        separator=LABEL_SEPARATOR,
    )


def label_pairs(values: list[str] | None, flag: str = "--label") -> dict[str, str] | None:
    """``key=value`` items as a mapping, each checked as a label; None if none given."""
    if values is None:
        return None
    labels: dict[str, str] = {}
    for item in values:
        key, equals, value = item.partition("=")
        if not equals:
            raise UsageError(f"{flag} {item!r}: expected KEY=VALUE")
        if problem := jobfields.check_label(key, value):
            raise UsageError(f"{flag}: {problem}")
        labels[key] = value
    return labels


def _checked(flag: str, check: Callable[[Any], Any], value: Any) -> Any:
    try:
        return check(value)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _metadata(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    return jobfields.check_metadata(value)


def job_field_values(args: argparse.Namespace) -> dict[str, Any]:
    """The issue-21 registration fields the command line gives, checked (the others
    are kept as stored)."""
    given: dict[str, Any] = {}
    if args.group is not None:
        given["group"] = _checked("--group", jobfields.check_group, args.group)
    labels = label_pairs(args.label)
    if labels is not None:
        given["labels"] = _checked("--label", jobfields.check_labels, labels)
    if args.metadata is not None:
        given["metadata"] = _checked("--metadata", _metadata, args.metadata)
    if args.deadline is not None:
        given["deadline"] = _checked("--deadline", jobfields.parse_deadline, args.deadline)
    for flag, name in (("--expire-after", "expire_after"), ("--stall-after", "stall_after")):
        value = getattr(args, name)
        if value is not None:
            given[name] = _checked(flag, jobfields.check_timeout, value)
    return given


def filter_values(
    args: argparse.Namespace,
) -> tuple[str | None, tuple[tuple[str, str], ...] | None]:
    """A listing's ``--group`` and ``--label`` filters (labels None: a key given with two
    values, which no job matches)."""
    group = None if args.group is None else _checked("--group", jobfields.check_group, args.group)
    pairs = []
    for item in args.label or []:
        key, equals, value = item.partition("=")
        if not equals or not jobfields.LABEL_KEY.match(key):
            raise UsageError(f"--label {item!r}: expected KEY=VALUE (key: a-z, 0-9, _./-)")
        pairs.append((key, value))
    return group, jobfields.label_filter(pairs)
