"""The shapes of ``/v1/groups`` (issue 21.2), for validation and the OpenAPI document."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from notifier.api.feed_models import LabelFilters

GroupState = Literal["open", "sealed", "completed", "failed"]


class GroupsQuery(LabelFilters):
    """``GET /v1/groups`` query parameters (``label`` may be repeated; ``group`` is not
    a filter here)."""

    model_config = ConfigDict(extra="forbid")

    state: GroupState | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 100
    cursor: StrictStr | None = Field(default=None, description="next_cursor of the last page")

    @field_validator("cursor")
    @classmethod
    def _decodes(cls, value: str | None) -> str | None:
        from notifier.api.models import decode_cursor  # models imports this module

        if value is not None:
            decode_cursor(value)
        return value


class GroupCounts(BaseModel):
    """Members by outcome."""

    delivered: int
    failed: int
    expired: int
    running: int


class GroupDocument(BaseModel):
    """A group as the API, ``groups --json`` and group events show it."""

    id: str
    group: str
    name: str | None
    state: GroupState
    counts: GroupCounts
    total: int
    expect: int | None
    fail_fast: bool
    started_at: str | None
    ended_at: str | None
    duration_s: float | None
    deadline: str | None
    eta: str | None
    at_risk_at: str | None
    late_at: str | None
    labels: dict[str, str]
    metadata: dict[str, Any]
    notify: list[str] | None
    events: list[str] | None
    ack: dict[str, Any] | None = Field(description="who acknowledged it; null: nobody")


class GroupDetail(GroupDocument):
    """A group with its members (jobs, as ``GET /v1/jobs`` shows them)."""

    members: list[dict[str, Any]]


class GroupEnvelope(BaseModel):
    """``{"group": ...}``."""

    group: GroupDocument


class GroupDetailEnvelope(BaseModel):
    """``{"group": {..., "members": [...]}}``."""

    group: GroupDetail


class GroupPage(BaseModel):
    """A page of groups."""

    groups: list[GroupDocument]
    next_cursor: str | None
