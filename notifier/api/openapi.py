"""The endpoint table and the OpenAPI document built from it and the models.

:data:`ENDPOINTS` is the one table the application routes with
(:mod:`notifier.api.paths`) and :func:`openapi` documents, so that a route cannot go
undocumented.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from notifier import __version__
from notifier.api.feed_models import EventPage, EventsQuery, Gone, StreamQuery
from notifier.api.group_models import (
    GroupDetailEnvelope,
    GroupEnvelope,
    GroupPage,
    GroupsQuery,
)
from notifier.api.models import (
    AckEnvelope,
    AckRequest,
    CallbackList,
    DeliveriesQuery,
    DeliveryEnvelope,
    DeliveryPage,
    Error,
    JobDetailEnvelope,
    JobEnvelope,
    JobPage,
    JobRegistration,
    JobsQuery,
    SilenceEnvelope,
    SilenceList,
    WhoAmI,
)
from notifier.groups import GroupSpec
from notifier.silences import SilenceRequest


@dataclass(frozen=True)
class Endpoint:
    """One method of one path, for routing and for the OpenAPI document."""

    path: str
    method: str
    summary: str
    scope: Literal["read", "write"] | None  # None: no token needed
    responses: dict[int, type[BaseModel] | None]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    path_params: tuple[str, ...] = field(default=())


# Every endpoint with a token also checks its query string (422 names each problem).
_AUTH_ERRORS: dict[int, type[BaseModel] | None] = {401: Error, 422: Error, 429: Error}
_BODY_ERRORS: dict[int, type[BaseModel] | None] = {400: Error, 413: Error, 415: Error, 422: Error}

ENDPOINTS = (
    Endpoint("/healthz", "get", "Health of the daemon (no token)", None, {200: None, 503: None}),
    Endpoint("/v1/openapi.json", "get", "This document", "read", {200: None, **_AUTH_ERRORS}),
    Endpoint("/v1/whoami", "get", "The token's name and scope", "read",
             {200: WhoAmI, **_AUTH_ERRORS}),
    Endpoint("/v1/jobs", "post", "Watch a job, or update the fields given of a known one",
             "write", {200: JobEnvelope, 201: JobEnvelope, 403: Error, **_BODY_ERRORS,
                       **_AUTH_ERRORS}, body=JobRegistration),
    Endpoint("/v1/jobs", "get", "Watched jobs, a page at a time", "read",
             {200: JobPage, **_AUTH_ERRORS}, query=JobsQuery),
    Endpoint("/v1/jobs/{job_id}", "get", "A job with its deliveries", "read",
             {200: JobDetailEnvelope, 404: Error, **_AUTH_ERRORS}, path_params=("job_id",)),
    Endpoint("/v1/jobs/{job_id}", "delete", "Stop watching a job (pending deliveries are kept)",
             "write", {200: JobEnvelope, 403: Error, 404: Error, **_AUTH_ERRORS},
             path_params=("job_id",)),
    Endpoint("/v1/jobs/{job_id}/ack", "post",
             "Acknowledge a job: reminders about it stop (the body may be empty)", "write",
             {200: AckEnvelope, 403: Error, **_BODY_ERRORS, **_AUTH_ERRORS},
             body=AckRequest, path_params=("job_id",)),
    Endpoint("/v1/deliveries", "get", "The notification outbox, a page at a time", "read",
             {200: DeliveryPage, **_AUTH_ERRORS}, query=DeliveriesQuery),
    Endpoint("/v1/deliveries/{delivery_id}/redeliver", "post",
             "Queue a delivery again, under the same webhook-id", "write",
             {202: DeliveryEnvelope, 403: Error, 404: Error, **_AUTH_ERRORS},
             path_params=("delivery_id",)),
    Endpoint("/v1/callbacks", "get", "Each callback's pending and dead deliveries and health",
             "read", {200: CallbackList, **_AUTH_ERRORS}),
    Endpoint("/v1/events", "get", "The event feed: every event recorded, in order, after a cursor;"
             " held up to wait for one", "read",
             {200: EventPage, 410: Gone, 422: Error, 503: Error, **_AUTH_ERRORS},
             query=EventsQuery),
    Endpoint("/v1/events/stream", "get", "The event feed as Server-Sent Events (text/event-stream;"
             " Last-Event-ID resumes)", "read",
             {200: None, 410: Gone, 422: Error, 503: Error, **_AUTH_ERRORS}, query=StreamQuery),
    Endpoint("/v1/silences", "post", "Hold deliveries by callback or labels for a while",
             "write", {201: SilenceEnvelope, 403: Error, **_BODY_ERRORS, **_AUTH_ERRORS},
             body=SilenceRequest),
    Endpoint("/v1/silences", "get", "Active silences and those ended in the last 7 days",
             "read", {200: SilenceList, **_AUTH_ERRORS}),
    Endpoint("/v1/silences/{silence_id}", "delete",
             "Expire a silence now (its held deliveries go out)", "write",
             {200: SilenceEnvelope, 403: Error, 404: Error, **_AUTH_ERRORS},
             path_params=("silence_id",)),
    Endpoint("/v1/groups", "get", "Groups with their counts, a page at a time", "read",
             {200: GroupPage, **_AUTH_ERRORS}, query=GroupsQuery),
    Endpoint("/v1/groups/{group_id}", "get", "A group with its members", "read",
             {200: GroupDetailEnvelope, 404: Error, **_AUTH_ERRORS}, path_params=("group_id",)),
    Endpoint("/v1/groups/{group_id}", "put", "Declare a group, or update the fields given",
             "write", {200: GroupEnvelope, 201: GroupEnvelope, 403: Error, **_BODY_ERRORS,
                       **_AUTH_ERRORS}, body=GroupSpec, path_params=("group_id",)),
    Endpoint("/v1/groups/{group_id}", "delete",
             "Forget a group and stop watching its members (pending deliveries are sent)",
             "write", {200: GroupEnvelope, 403: Error, 404: Error, **_AUTH_ERRORS},
             path_params=("group_id",)),
    Endpoint("/v1/groups/{group_id}/seal", "post", "Seal a group: no more members; it can end",
             "write", {200: GroupEnvelope, 403: Error, 404: Error, **_AUTH_ERRORS},
             path_params=("group_id",)),
    Endpoint("/v1/groups/{group_id}/ack", "post",
             "Acknowledge a group: reminders about it stop (the body may be empty)", "write",
             {200: AckEnvelope, 403: Error, **_BODY_ERRORS, **_AUTH_ERRORS},
             body=AckRequest, path_params=("group_id",)),
)  # fmt: skip


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": endpoint.summary,
        "operationId": f"{endpoint.method}_{endpoint.path.strip('/').replace('/', '_')}"
        .replace("{", "").replace("}", "").replace(".", "_"),
        "responses": {},
    }  # fmt: skip
    if endpoint.scope is None:
        operation["security"] = []
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in endpoint.path_params
    ]
    if endpoint.query is not None:
        schema = endpoint.query.model_json_schema()
        for name, prop in schema["properties"].items():
            parameters.append({"name": name, "in": "query", "required": False, "schema": prop})
    if parameters:
        operation["parameters"] = parameters
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(endpoint.body)}},
        }
    for status, model in sorted(endpoint.responses.items()):
        response: dict[str, Any] = {"description": _DESCRIPTIONS.get(status, "")}
        if model is not None:
            response["content"] = {"application/json": {"schema": _ref(model)}}
        elif endpoint.path == "/healthz":
            response["content"] = {"text/plain": {"schema": {"type": "string"}}}
        elif endpoint.path == "/v1/events/stream":
            response["content"] = {"text/event-stream": {"schema": {"type": "string"}}}
        else:
            response["content"] = {"application/json": {"schema": {"type": "object"}}}
        operation["responses"][str(status)] = response
    return operation


_DESCRIPTIONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    400: "The body is not JSON",
    401: "Missing or wrong token",
    403: "The token may only read",
    404: "Not found",
    413: "The body is over 64 KiB",
    415: "The content type is not application/json",
    410: "The cursor is older than the oldest event kept",
    422: "The request does not validate",
    429: "Too many failed authentications from this address",
    503: "Unhealthy, or the store or every waiter slot is busy (see Retry-After)",
}


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of :data:`ENDPOINTS`."""
    models: set[type[BaseModel]] = set()
    for endpoint in ENDPOINTS:
        models.update(m for m in endpoint.responses.values() if m is not None)
        if endpoint.body is not None:
            models.add(endpoint.body)
    _, schemas = models_json_schema(
        [(model, "validation") for model in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in ENDPOINTS:
        paths.setdefault(endpoint.path, {})[endpoint.method] = _operation(endpoint)
    return {
        "openapi": "3.1.0",
        "info": {"title": "datasaur-notifier", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
