"""The stand-in's injectable faults: what kinds there are and how each is answered."""

from __future__ import annotations

from dataclasses import dataclass

from notifier.httpserver import Reply, json_reply
from notifier.standins.graphql_schema import error_payload, unauthorized_payload

FAULT_KINDS = frozenset(
    {
        "http_500",
        "http_503",
        "http_429",
        "non_json",
        "graphql_error",
        "unauthenticated",
        "unauthorized",
        "http_401",
        "hang",
        "close",
    }
)
TOKEN_FAULT_KINDS = frozenset({"http_500", "http_401"})


@dataclass(frozen=True)
class Fault:
    """One queued fault; ``operation``: only requests of that ``operationName``."""

    kind: str
    retry_after: str | None
    delay: float
    operation: str | None = None


def fault_reply(fault: Fault) -> Reply | None:
    """The answer for an injected fault (None: close the connection)."""
    if fault.kind == "close":
        return None
    if fault.kind == "http_429":
        headers = {} if fault.retry_after is None else {"Retry-After": fault.retry_after}
        return Reply(429, b"Too Many Requests", "text/plain", headers)
    return _FAULT_REPLIES[fault.kind]


_FAULT_REPLIES = {
    "http_500": Reply(500, b"Internal Server Error", "text/plain"),
    "http_503": Reply(503, b"Service Unavailable", "text/plain"),
    "non_json": Reply(200, b"<html><body>Bad gateway</body></html>", "text/html"),
    "graphql_error": json_reply(
        200, error_payload("Simulated internal error", "INTERNAL_SERVER_ERROR")
    ),
    "unauthenticated": json_reply(200, error_payload("Unauthenticated", "UNAUTHENTICATED")),
    "unauthorized": json_reply(200, unauthorized_payload()),
    "http_401": json_reply(401, error_payload("Unauthenticated", "UNAUTHENTICATED")),
}
