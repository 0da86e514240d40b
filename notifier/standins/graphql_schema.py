"""The stand-in's GraphQL schemas and the answers Datasaur's server gives around them.

The schema is the packaged slice (``datasaur_schema.graphql``, Datasaur's own
introspection). ``legacy=True`` gives the ``Job`` type of servers older than 2022-08
(only :data:`LEGACY_JOB_FIELDS`); ``extra_statuses`` adds ``JobStatus`` values a newer
server might send.
"""

from __future__ import annotations

import functools
import importlib.resources
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    ObjectTypeDefinitionNode,
    build_schema,
    parse,
    validate,
)

LEGACY_JOB_FIELDS = frozenset({"id", "status", "progress", "errors", "resultId", "result"})
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
AUTHENTICATION_ERROR = {"message": "Unauthorized", "extensions": {"type": "AuthenticationError"}}

_SLICE = (
    importlib.resources.files("notifier.standins")
    .joinpath("datasaur_schema.graphql")
    .read_text("utf-8")
)


@dataclass(frozen=True)
class Rejected:
    """A query that failed parsing or validation."""

    code: str
    errors: tuple[GraphQLError, ...]


@functools.cache
def job_schema(legacy: bool = False, extra_statuses: tuple[str, ...] = ()) -> GraphQLSchema:
    """The schema slice; ``legacy``: as servers older than 2022-08 have it."""
    sdl = _legacy(_SLICE) if legacy else _SLICE
    if extra_statuses:
        sdl += "\nextend enum JobStatus { " + " ".join(extra_statuses) + " }\n"
    return build_schema(sdl)


def _legacy(sdl: str) -> str:
    """``sdl`` without the ``Job`` fields that are not in :data:`LEGACY_JOB_FIELDS`."""
    cuts = [
        field.loc
        for node in parse(sdl).definitions
        if isinstance(node, ObjectTypeDefinitionNode) and node.name.value == "Job"
        for field in node.fields or ()
        if field.name.value not in LEGACY_JOB_FIELDS and field.loc is not None
    ]
    for loc in sorted(cuts, key=lambda loc: loc.start, reverse=True):
        sdl = sdl[: loc.start] + sdl[loc.end :]
    return sdl


@functools.lru_cache(maxsize=512)
def prepare(schema: GraphQLSchema, query: str) -> DocumentNode | Rejected:
    """Parse and validate ``query`` against ``schema`` (cached per schema and query text)."""
    try:
        document = parse(query)
    except GraphQLError as error:
        return Rejected("GRAPHQL_PARSE_FAILED", (error,))
    errors = validate(schema, document)
    return Rejected(VALIDATION_FAILED, tuple(errors)) if errors else document


def rejected_payload(rejected: Rejected) -> dict[str, Any]:
    """The answer to a query that did not parse or validate (no ``data``)."""
    errors = [
        {**error.formatted, "extensions": {"code": rejected.code}} for error in rejected.errors
    ]
    return {"errors": errors, "extensions": {}}


def error_payload(message: str, code: str = "BAD_REQUEST") -> dict[str, Any]:
    """An answer with one error, ``extensions.code`` set, and ``data: null``."""
    return {
        "errors": [{"message": message, "extensions": {"code": code}}],
        "data": None,
        "extensions": {},
    }


def unauthorized_payload() -> dict[str, Any]:
    """How Datasaur answers an expired, revoked or unknown token."""
    return {"errors": [AUTHENTICATION_ERROR], "data": None, "extensions": {}}
