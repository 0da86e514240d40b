"""What every registration may carry beyond the job itself (issue 21): its ``group``,
``labels``, ``metadata``, ``deadline`` and its own ``expire_after``/``stall_after``.

The rules are the same wherever a job is registered (the config file's ``jobs[]``,
``POST /v1/jobs``, ``watch``): each check raises ValueError with one readable reason,
which the caller puts after the field's key path.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from notifier.durations import parse_duration

MAX_GROUP_LENGTH = 256
MAX_LABELS = 32
MAX_LABEL_VALUE = 256
MAX_METADATA_BYTES = 8 * 1024
LABEL_KEY = re.compile(r"^[a-z0-9]([a-z0-9_./-]{0,62})$")
QUEUE_LABEL = "queue"
# Control, format, line and paragraph separator characters: never in ids or names.
UNPRINTABLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


class GroupConflict(ValueError):
    """A job already in one group registered again under another (or none)."""

    def __init__(self, job_id: str, group: str) -> None:
        super().__init__(f"job {job_id} is in group {group}")
        self.job_id = job_id
        self.group = group


class Deadline(NamedTuple):
    """A deadline as given: a time (``at``, Unix seconds) or a duration counted from
    the registration (``after``, seconds); exactly one is set."""

    at: float | None = None
    after: float | None = None

    def resolve(self, registered_at: float) -> float:
        """The deadline as a time, for a job registered at ``registered_at``."""
        if self.at is not None:
            return self.at
        assert self.after is not None
        return registered_at + self.after


def printable(value: str) -> str:
    """``value`` if it holds no control character or line separator."""
    if any(unicodedata.category(c) in UNPRINTABLE for c in value):
        raise ValueError("must not contain control characters or line separators")
    return value


def check_group(value: Any) -> str | None:
    """A group id: the rules of a job id (a non-blank string, stripped), at most 256
    characters, no control characters."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("expected a group id (a string)")
    value = value.strip()
    if not value:
        raise ValueError("group id must not be empty")
    if len(value) > MAX_GROUP_LENGTH:
        raise ValueError(f"at most {MAX_GROUP_LENGTH} characters")
    return printable(value)


def check_label(key: Any, value: Any) -> str | None:
    """The problem with one label, or None."""
    if not isinstance(key, str) or not LABEL_KEY.match(key):
        return f"label key {key!r}: expected 1-63 of a-z, 0-9, _ . / - (starting a-z or 0-9)"
    if not isinstance(value, str):
        return f"label {key!r}: expected a string value"
    if len(value) > MAX_LABEL_VALUE:
        return f"label {key!r}: value over {MAX_LABEL_VALUE} characters"
    return None


def check_labels(value: Any) -> dict[str, str] | None:
    """Labels: a mapping of at most 32 valid keys to strings of up to 256 characters."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError("expected a mapping of label keys to strings")
    counted = len(value) - (QUEUE_LABEL in value)  # beside the implicit one
    if counted > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels besides queue (got {counted})")
    problems = [p for k, v in value.items() if (p := check_label(k, v))]
    if problems:
        raise ValueError("; ".join(problems))
    return dict(value)


def label_filter(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...] | None:
    """Label filters (all must match) once per key; None when a key is wanted with two
    values, which no job can match."""
    wanted: dict[str, str] = {}
    for key, value in pairs:
        if wanted.setdefault(key, value) != value:
            return None
    return tuple(wanted.items())


def queue_of(job_id: str) -> str | None:
    """The implicit ``queue`` label: the id's prefix before its first ``:`` (None if the
    id has no ``:``)."""
    prefix, colon, _ = job_id.partition(":")
    return prefix if colon and prefix else None


def with_queue(job_id: str, labels: Mapping[str, str] | None) -> dict[str, str]:
    """``labels`` with the implicit ``queue`` label, unless they set it themselves."""
    queue = queue_of(job_id)
    implicit = {} if queue is None else {QUEUE_LABEL: queue[:MAX_LABEL_VALUE]}
    return {**implicit, **(labels or {})}


def metadata_text(value: Mapping[str, Any]) -> str:
    """Metadata as stored: compact JSON, in the order given."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def check_metadata(value: Any) -> dict[str, Any] | None:
    """Metadata: a JSON object of at most 8 KiB encoded."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError("expected a JSON object")
    try:
        size = len(metadata_text(value).encode("utf-8"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"over {MAX_METADATA_BYTES // 1024} KiB encoded ({size} bytes)")
    return dict(value)


def parse_deadline(value: Any, now: float | None = None) -> Deadline | None:
    """An ISO-8601 time with a zone (not in the past), or a duration from the
    registration (``2h``; a number: seconds); a :class:`Deadline` passes as it is."""
    if value is None or isinstance(value, Deadline):
        return value
    now = time.time() if now is None else now
    if isinstance(value, dt.datetime):  # YAML reads an unquoted timestamp as one
        return _moment(value, now)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("expected an ISO-8601 time with a zone or a duration (e.g. 2h)")
    try:
        after = parse_duration(value)
    except ValueError:
        after = None
    if after is not None:
        if after <= 0:
            raise ValueError("a duration must be more than 0")
        return Deadline(after=after)
    assert isinstance(value, str)
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"not a time: {value!r} (expected an ISO-8601 time with a zone, e.g."
            " 2026-05-01T18:00:00Z, or a duration, e.g. 2h)"
        ) from None
    return _moment(moment, now)


def _moment(moment: dt.datetime, now: float) -> Deadline:
    if moment.tzinfo is None:
        raise ValueError(f"{moment.isoformat()}: give a zone (Z or +02:00)")
    at = moment.timestamp()
    if at <= now:
        raise ValueError(f"{moment.isoformat()} is in the past")
    return Deadline(at=at)


def check_timeout(value: Any) -> float | None:
    """A job's own ``expire_after``/``stall_after``: a duration (0: never)."""
    return None if value is None else parse_duration(value)
