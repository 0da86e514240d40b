"""The HTTP API's request and response models.

The models validate every request (bodies and query strings) and are also the only
source of the OpenAPI schemas (:mod:`notifier.api.openapi`).
"""

from __future__ import annotations

import base64
import binascii
import json
import unicodedata
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

from notifier import jobfields
from notifier.api.feed_models import LabelFilters
from notifier.events import JobStatus
from notifier.jobfields import Deadline
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
