"""From a request to a validated model, with every problem of the request at once.

A body or a query string is checked against its model (pydantic collects every field's
problem), then against what only the running daemon knows (``checks``: the configured
callback names, the allowed callback URL prefixes), and answered ``422`` with one
``{"path", "message"}`` per problem: a caller fixes them all in one round.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import falcon
from pydantic import BaseModel, ValidationError

from notifier.config import key_path
from notifier.events import JobStatus

MAX_BODY = 64 * 1024
INVALID = "the request does not validate"

M = TypeVar("M", bound=BaseModel)
Detail = dict[str, str]
Check = Callable[[dict[str, Any]], list[Detail]]


class ApiError(Exception):
    """An error answer: status, message, details, extra headers and body fields."""

    def __init__(
        self,
        status: int,
        message: str,
        details: list[Detail] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.body = dict(body or {})  # more fields of the answer (a 410's oldest_cursor)
        self.status = status
        self.message = message
        self.details = details or []
        self.headers = dict(headers or {})


def detail(path: str, message: str) -> Detail:
    """One problem at ``path`` of the request (``""``: the request as a whole)."""
    return {"path": path, "message": message}


def read_json(req: falcon.Request) -> Any:
    """The request's JSON body: 415, 413 and 400 as the issue's contract says."""
    content_type = (req.content_type or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise ApiError(415, "the content type must be application/json")
    if req.content_length is not None and req.content_length > MAX_BODY:
        raise ApiError(413, f"the body is over {MAX_BODY // 1024} KiB")
    raw = req.bounded_stream.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise ApiError(413, f"the body is over {MAX_BODY // 1024} KiB")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(400, "the body is not JSON") from None


def query_of(
    req: falcon.Request, repeatable: tuple[str, ...] = ()
) -> tuple[dict[str, Any], list[Detail]]:
    """The query string as one value per name (a list for each ``repeatable`` name), and
    a problem per other name given twice."""
    values: dict[str, Any] = {}
    repeated = []
    for name, value in req.params.items():
        if name in repeatable:
            values[name] = value if isinstance(value, list) else [value]
        elif isinstance(value, list):
            repeated.append(detail(name, f"given {len(value)} times; give it once"))
        else:
            values[name] = value
    return values, repeated


def validate_query(model: type[M], req: falcon.Request, repeatable: tuple[str, ...] = ()) -> M:
    """The query string as ``model``, or 422 with every problem."""
    values, repeated = query_of(req, repeatable)
    return validate(model, values, found=repeated)


def refuse_any_query(req: falcon.Request) -> None:
    """422 naming each query parameter of a request to an endpoint that takes none."""
    values, repeated = query_of(req)
    problems = [detail(name, "unknown query parameter") for name in values] + repeated
    if problems:
        raise ApiError(422, INVALID, problems)


def validate(
    model: type[M], data: Any, checks: Check | None = None, found: list[Detail] | None = None
) -> M:
    """``data`` as ``model``, or 422 with one detail per problem.

    ``checks`` looks at the raw ``data`` for what the model cannot know; its problems
    are added, but for paths the model already found wrong. ``found`` are problems
    seen before (a parameter given twice).
    """
    if not isinstance(data, dict):
        raise ApiError(422, INVALID, [detail("", "expected an object")])
    problems = list(found or [])
    parsed = None
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        problems += [detail(key_path(e["loc"]), _message(e)) for e in exc.errors()]
    if checks is not None:
        wrong = {problem["path"] for problem in problems}
        problems += [problem for problem in checks(data) if problem["path"] not in wrong]
    if problems or parsed is None:
        raise ApiError(422, INVALID, problems)
    return parsed


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "enum":
        return f"unknown status {error['input']!r} (expected one of {', '.join(JobStatus)})"
    return str(error["msg"]).removeprefix("Value error, ")
