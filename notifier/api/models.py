"""The HTTP API's request and response models, and the OpenAPI document built from them.

The models validate every request (bodies and query strings) and are also the only
source of the OpenAPI schemas: :func:`openapi` assembles the document from them and
from :data:`ENDPOINTS`, the same table the application routes with.
"""

from __future__ import annotations

import base64
import binascii
import json
import unicodedata
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    WithJsonSchema,
    field_validator,
)
from pydantic.json_schema import models_json_schema

from notifier import __version__, jobfields
from notifier.api.feed_models import EventPage, EventsQuery, Gone, LabelFilters, StreamQuery
from notifier.api.group_models import (
    GroupDetailEnvelope,
    GroupEnvelope,
    GroupPage,
    GroupsQuery,
)
from notifier.events import JobStatus
from notifier.groups import GroupSpec
from notifier.jobfields import Deadline
from notifier.silences import SilenceRequest
from notifier.store import DELIVERY_STATES, JOB_STATES, Cursor

MAX_ID_LENGTH = 256
MAX_NAME_LENGTH = 256
MAX_URL_LENGTH = 2048
MAX_PAGE = 1000
# Control, format, line and paragraph separator characters: never in ids or names.
UNPRINTABLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})

JobState = Literal[JOB_STATES]  # type: ignore[valid-type]
DeliveryState = Literal[DELIVERY_STATES]  # type: ignore[valid-type]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobRegistration(_Strict):
    """``POST /v1/jobs``: watch a job (or update the fields given of a known one)."""

    id: Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID_LENGTH)]
    name: Annotated[StrictStr, Field(max_length=MAX_NAME_LENGTH)] | None = None
    notify: Annotated[list[StrictStr], Field(max_length=100)] | None = Field(
        default=None, description="callback names; null or absent: every callback"
    )
    on_status: Annotated[list[JobStatus], Field(min_length=1, max_length=5)] | None = Field(
        default=None, description="statuses that notify; null or absent: DELIVERED, FAILED"
    )
    callback_url: Annotated[StrictStr, Field(max_length=MAX_URL_LENGTH)] | None = Field(
        default=None, description="a webhook URL under one of api.allow_callback_urls"
    )
    group: Annotated[
        str | None,
        BeforeValidator(jobfields.check_group),
        WithJsonSchema({"type": ["string", "null"], "maxLength": jobfields.MAX_GROUP_LENGTH}),
    ] = Field(default=None, description="a group id; a job is in at most one group")
    labels: Annotated[
        dict[str, str] | None,
        BeforeValidator(jobfields.check_labels),
        WithJsonSchema(
            {
                "type": ["object", "null"],
                "maxProperties": jobfields.MAX_LABELS,
                "propertyNames": {"pattern": jobfields.LABEL_KEY.pattern},
                "additionalProperties": {"type": "string", "maxLength": jobfields.MAX_LABEL_VALUE},
            }
        ),
    ] = Field(default=None, description="label keys to values; queue (the id's prefix) implied")
    metadata: Annotated[
        dict[str, Any] | None,
        BeforeValidator(jobfields.check_metadata),
        WithJsonSchema({"type": ["object", "null"]}),
    ] = Field(default=None, description="any JSON object up to 8 KiB, echoed in every event")
    deadline: Annotated[
        Deadline | None,
        BeforeValidator(jobfields.parse_deadline),
        WithJsonSchema({"type": ["string", "number", "null"]}),
    ] = Field(default=None, description="an ISO-8601 time with a zone, or a duration (2h)")
    expire_after: Annotated[
        float | None,
        BeforeValidator(jobfields.check_timeout),
        WithJsonSchema({"type": ["string", "number", "null"]}),
    ] = Field(default=None, description="this job's own polling.expire_after (0: never)")
    stall_after: Annotated[
        float | None,
        BeforeValidator(jobfields.check_timeout),
        WithJsonSchema({"type": ["string", "number", "null"]}),
    ] = Field(default=None, description="this job's own polling.stall_after (0: never)")

    @field_validator("id", "name")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and any(unicodedata.category(c) in UNPRINTABLE for c in value):
            raise ValueError("must not contain control characters or line separators")
        return value

    @field_validator("id")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class _Page(_Strict):
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 100
    cursor: StrictStr | None = Field(default=None, description="next_cursor of the last page")

    @field_validator("cursor")
    @classmethod
    def _decodes(cls, value: str | None) -> str | None:
        if value is not None:
            decode_cursor(value)
        return value


class JobsQuery(_Page, LabelFilters):
    """``GET /v1/jobs`` query parameters (``label`` may be repeated)."""

    state: JobState | None = None


class DeliveriesQuery(_Page):
    """``GET /v1/deliveries`` query parameters."""

    job_id: StrictStr | None = None
    state: DeliveryState | None = None
    callback: StrictStr | None = Field(default=None, description="only this callback's")


class JobError(BaseModel):
    """One of Datasaur's ``errors`` of a job."""

    id: str
    stack: str


class Job(BaseModel):
    """A watched job, as one entry of ``status --json``."""

    id: str
    name: str | None
    status: str | None
    progress: int | None
    state: JobState
    last_polled_at: str | None
    next_poll_at: str | None
    last_error: str | None
    errors: list[JobError] = Field(
        default=[], description="Datasaur's errors of the job as last seen (a FAILED job's why)"
    )
    notify: list[str] | None
    on_status: list[str]
    source: str
    owner: str | None
    callback_url: str | None
    eta: str | None = Field(default=None, description="when progress says the job will end")
    group: str | None = None
    labels: dict[str, str] = Field(default={}, description="with the implicit queue label")
    metadata: dict[str, Any] = Field(default={}, description="as registered")
    deadline: str | None = None
    expire_after: float | None = Field(default=None, description="seconds; null: polling's")
    stall_after: float | None = Field(default=None, description="seconds; null: polling's")
    at_risk_at: str | None = Field(default=None, description="when job.at_risk was recorded")
    late_at: str | None = Field(default=None, description="when job.late was recorded")
    ack: AckDocument | None = Field(default=None, description="null: not acknowledged")


class AckDocument(BaseModel):
    """Who acknowledged a job or group, when and why: its reminders stopped then."""

    by: str = Field(description="the API token's name, or cli")
    at: str
    comment: str | None


class AckRequest(BaseModel):
    """The body of an ack (it may be empty)."""

    model_config = ConfigDict(extra="forbid")
    comment: str | None = Field(default=None, max_length=1000)


class AckEnvelope(BaseModel):
    """``{"ack": ...}``."""

    ack: AckDocument


class Attempt(BaseModel):
    """One attempt at a delivery."""

    attempted_at: str
    duration_ms: float
    ok: bool
    detail: str


class Delivery(BaseModel):
    """An outbox row, as one entry of ``deliveries --json``; ``id`` is the webhook-id."""

    id: str
    job_id: str | None  # None: a digest, or an alert about a callback
    callback: str
    event: str
    state: DeliveryState
    attempts: int
    last_error: str | None
    created_at: str
    delivered_at: str | None
    next_attempt_at: str | None
    occurrence: int = 0  # the n-th time its event happened to the job (job.stalled: 1, 2, ...)
    digest_id: str | None = None  # state 'digested': the digest it went out in
    history: list[Attempt] | None = None


class JobWithDeliveries(Job):
    """A job and every delivery made for it."""

    deliveries: list[Delivery]


class JobEnvelope(BaseModel):
    """``{"job": ...}``."""

    job: Job


class JobDetailEnvelope(BaseModel):
    """``{"job": ...}`` with the job's deliveries."""

    job: JobWithDeliveries


class JobPage(BaseModel):
    """A page of jobs."""

    jobs: list[Job]
    next_cursor: str | None


class DeliveryEnvelope(BaseModel):
    """``{"delivery": ...}``."""

    delivery: Delivery


class DeliveryPage(BaseModel):
    """A page of deliveries."""

    deliveries: list[Delivery]
    next_cursor: str | None


class ErrorDetail(BaseModel):
    """One problem, at a path of the request (``on_status[0]``)."""

    path: str
    message: str


class Error(BaseModel):
    """Every error answer."""

    error: str
    details: list[ErrorDetail] = []


class CallbackStatus(BaseModel):
    """One callback's lane: where it points, its backlog and its recent record."""

    name: str
    type: str | None = Field(description="webhook, email, apprise; null: not in the config")
    target: str | None = Field(
        description="where it points: a host[:port] (an Apprise service: its scheme), "
        "never a path, a query or credentials"
    )
    pending: int
    dead: int
    paused: bool
    consecutive_failures: int
    last_error: str | None


class CallbackList(BaseModel):
    """Every configured callback (and every ``url:<origin>`` lane with deliveries)."""

    callbacks: list[CallbackStatus]


class SilenceDocument(BaseModel):
    """A silence: ``callback`` or ``match``, its span, who added it and why."""

    id: str
    callback: str | None = None
    match: dict[str, str] | None = None
    starts_at: str
    ends_at: str
    author: str
    comment: str


class SilenceEnvelope(BaseModel):
    """``{"silence": ...}``."""

    silence: SilenceDocument


class SilenceList(BaseModel):
    """Every silence kept: active ones and those ended within 7 days."""

    silences: list[SilenceDocument]


class WhoAmI(BaseModel):
    """The token's name and what it may do."""

    name: str
    scope: Literal["read", "write"]


# --- cursors --------------------------------------------------------------------------


def encode_cursor(position: Cursor) -> str:
    """An opaque cursor for the row after ``position``."""
    return base64.urlsafe_b64encode(json.dumps(list(position)).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    """The position a cursor stands for; ValueError if it is not one of ours."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        when, row_id = raw
        if isinstance(when, int | float) and isinstance(row_id, str):
            return float(when), row_id
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        pass
    raise ValueError("not a cursor this API gave out")


# --- the endpoint table and the OpenAPI document ---------------------------------------


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
