"""Reading Datasaur's GraphQL answers: which selection of ``Job`` fields the server takes,
a refused token, and a job list matched to the ids asked for.

Datasaur documents little of this (whether ``getJobs`` keeps the order asked for, how it
answers an unknown id), so every shape is read defensively: jobs are matched by ``id``,
an entry nulled by an error is that job's poll error, and an id missing from the answer
is "not found" only when no error names it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from notifier.logs import scrub

# The Job fields asked for, newest server first: (1) today's schema (all of Job but
# ``result``, which is asked for when a job ends), (2) servers older than 2022-08 (no
# createdAt/updatedAt/additionalData), (3) the bare minimum.
SELECTION_TIERS = (
    "id status progress errors { id stack args } resultId createdAt updatedAt"
    " additionalData { automationActivityId }",
    "id status progress errors { id stack args } resultId",
    "id status progress",
)
KNOWN_STATUSES = frozenset({"NONE", "QUEUED", "IN_PROGRESS", "FAILED", "DELIVERED"})
_CANNOT_QUERY = re.compile(r"""Cannot query field ["'](\w+)["'] on type ["'](\w+)["']""")
_MESSAGE_LIMIT = 500


class Observation(NamedTuple):
    """What one poll saw: the job, or ``found=False`` (unknown id), or an error."""

    job: dict[str, Any] | None = None
    found: bool = True
    error: str | None = None


NOT_FOUND = Observation(found=False)


def _errors(body: dict[str, Any]) -> list[dict[str, Any]]:
    errors = body.get("errors")
    if not isinstance(errors, list):
        return []
    return [error if isinstance(error, dict) else {"message": str(error)} for error in errors]


def _extensions(error: dict[str, Any]) -> dict[str, Any]:
    extensions = error.get("extensions")
    return extensions if isinstance(extensions, dict) else {}


def token_refused(status: int, body: dict[str, Any]) -> bool:
    """Whether the answer means "token expired" as Datasaur's own client reads it: HTTP
    401, ``extensions.code`` UNAUTHENTICATED, or ``Unauthorized`` + AuthenticationError."""
    if status == 401:
        return True
    for error in _errors(body):
        extensions = _extensions(error)
        if extensions.get("code") == "UNAUTHENTICATED":
            return True
        if error.get("message") == "Unauthorized" and extensions.get("type") == (
            "AuthenticationError"
        ):
            return True
    return False


def rejected_fields(body: dict[str, Any]) -> list[str] | None:
    """The ``Job`` fields the server says it does not have, when it rejected the
    selection (``GRAPHQL_VALIDATION_FAILED`` or ``Cannot query field "X" on type "Job"``);
    None when the answer is no such rejection. An empty list: rejected, field unnamed."""
    if body.get("data") is not None:
        return None
    fields: list[str] = []
    rejected = False
    for error in _errors(body):
        found = _CANNOT_QUERY.search(str(error.get("message", "")))
        if found:
            rejected = True
            if found[2] in ("Job", "JobError") and found[1] not in fields:
                fields.append(found[1])
        elif _extensions(error).get("code") == "GRAPHQL_VALIDATION_FAILED":
            rejected = True
    return fields if rejected else None


def error_text(body: dict[str, Any]) -> str:
    """The answer's error messages, joined and bounded."""
    messages = [str(error.get("message", error)) for error in _errors(body)]
    return "; ".join(messages)[:_MESSAGE_LIMIT] or "no data in the answer"


def match_jobs(
    ids: Sequence[str], entries: list[Any], body: dict[str, Any], slot: Callable[[Any], int | None]
) -> list[Observation]:
    """One observation per id in ``ids``, from ``entries`` (the jobs answered, in any
    order) matched by ``id``; ``slot`` tells which position of ``ids`` an error's first
    ``path`` element points at (None if it points at no one job)."""
    by_id: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            by_id[entry["id"]] = entry
    errors = _errors(body)
    if not errors:  # every poll but the odd one
        return [Observation(by_id[job_id]) if job_id in by_id else NOT_FOUND for job_id in ids]
    named, general = _blame(ids, errors, slot)
    seen = []
    for job_id in ids:
        if job_id in by_id:
            seen.append(Observation(by_id[job_id]))
        elif job_id in named or general:
            seen.append(Observation(error=named.get(job_id) or general))
        else:
            seen.append(NOT_FOUND)
    return seen


def _blame(
    ids: Sequence[str], errors: list[dict[str, Any]], slot: Callable[[Any], int | None]
) -> tuple[dict[str, str], str]:
    """The error message for each id an error names (by path, or by quoting the id), and
    the messages of the errors that name no one job."""
    named: dict[str, str] = {}
    general: list[str] = []
    for error in errors:
        message = scrub(str(error.get("message", "error")))[:_MESSAGE_LIMIT]
        path = error.get("path")
        index = slot(path[0:2]) if isinstance(path, list) and path else None
        if index is not None and 0 <= index < len(ids):
            named[ids[index]] = message
            continue
        quoted = [job_id for job_id in ids if _quotes(message, job_id)]
        for job_id in quoted:
            named[job_id] = message
        if not quoted:
            general.append(message)
    return named, "; ".join(general)[:_MESSAGE_LIMIT]


def _quotes(message: str, job_id: str) -> bool:
    """Whether ``message`` names ``job_id`` as a whole word (not inside another)."""
    if job_id not in message:
        return False
    return re.search(rf"(?<![\w:-]){re.escape(job_id)}(?![\w:-])", message) is not None


def list_slot(ids: Sequence[str], entries: list[Any]) -> Callable[[Any], int | None]:
    """``path`` -> position for a ``result: getJobs`` answer: ``["result", i]`` points at
    ``ids[i]`` only while the answer lists exactly the ids asked for, in that order
    (checked on the first error, never on a quiet poll)."""

    @functools.cache
    def in_order() -> bool:
        return len(entries) == len(ids) and all(
            entry is None or (isinstance(entry, dict) and entry.get("id") == job_id)
            for entry, job_id in zip(entries, ids, strict=True)
        )

    def slot(path: list[Any]) -> int | None:
        if len(path) == 2 and path[0] == "result" and isinstance(path[1], int) and in_order():
            return path[1]
        return None

    return slot


def alias_slot(path: list[Any]) -> int | None:
    """``path`` -> position for the one-getJob-per-id query (aliases ``j0``, ``j1``...)."""
    head = path[0] if path else None
    if isinstance(head, str) and head.startswith("j") and head[1:].isdigit():
        return int(head[1:])
    return None
