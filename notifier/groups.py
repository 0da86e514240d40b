"""Groups of jobs notified as one (issue 21.2): the declaration, the rule that ends a
group, and the payload of its four events.

A group is ``open`` while it may still gain members, ``sealed`` once it cannot
(declared in the config file, ``expect`` members registered, or sealed explicitly),
and ends ``completed`` (sealed, every member DELIVERED) or ``failed`` (sealed, every
member ended and one FAILED or expired; with ``fail_fast``, at the first failure).
:func:`decide` is the pure rule; the stores apply it under a lock on the group's row,
in the transaction that records the member status that ends it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictStr

from notifier import callback_urls, jobfields
from notifier.events import GROUP_EVENTS, group_subject, isoformat
from notifier.jobfields import Deadline

GROUP_STATES = ("open", "sealed", "completed", "failed")
ENDED_STATES = ("completed", "failed")
COMPLETED, FAILED, LATE, AT_RISK = GROUP_EVENTS
MAX_PAYLOAD_JOBS = 1000
GroupEvent = Literal["group.completed", "group.failed", "group.late", "group.at_risk"]


class GroupEnded(ValueError):
    """A job registered into a group that has already ended (409 / exit 2)."""

    def __init__(self, group: str, state: str) -> None:
        super().__init__(f"group {group} has ended ({state}): it takes no new members")
        self.group = group


class GroupSpec(BaseModel):
    """A group as declared in the config file's ``groups:`` or by ``PUT /v1/groups/{id}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, BeforeValidator(jobfields.check_group)]
    name: StrictStr | None = None
    notify: list[StrictStr] | None = None
    events: list[GroupEvent] | None = None
    expect: Annotated[int, Field(strict=True, ge=1)] | None = None
    deadline: Annotated[Deadline | None, BeforeValidator(jobfields.parse_deadline)] = None
    fail_fast: StrictBool = False
    labels: Annotated[dict[str, str] | None, BeforeValidator(jobfields.check_labels)] = None
    metadata: Annotated[dict[str, Any] | None, BeforeValidator(jobfields.check_metadata)] = None
    sealed: StrictBool = False
    callback_url: StrictStr | None = None


@dataclass(frozen=True)
class Group:
    """A row of ``job_groups``: the declaration as stored, and where the group stands."""

    id: str
    name: str | None
    notify: tuple[str, ...] | None
    events: tuple[str, ...] | None
    expect: int | None
    deadline: float | None
    fail_fast: bool
    labels: dict[str, str]
    metadata: dict[str, Any]
    callback_url: str | None
    source: str  # config | api | job (created by a job naming it)
    state: str
    created_at: float
    updated_at: float
    sealed_at: float | None = None
    ended_at: float | None = None
    at_risk_at: float | None = None
    late_at: float | None = None

    @property
    def ended(self) -> bool:
        """Whether the group completed or failed."""
        return self.state in ENDED_STATES


class Counts(NamedTuple):
    """A group's members by outcome."""

    total: int = 0
    delivered: int = 0
    failed: int = 0
    expired: int = 0

    @property
    def running(self) -> int:
        """Members not ended yet (watching, or unwatched by an operator)."""
        return self.total - self.delivered - self.failed - self.expired

    def document(self) -> dict[str, int]:
        """``counts`` as payloads and the API show them."""
        return {"delivered": self.delivered, "failed": self.failed, "expired": self.expired,
                "running": self.running}  # fmt: skip


class GroupView(NamedTuple):
    """A group with what its members add: counts, first start, latest estimate."""

    group: Group
    counts: Counts
    started_at: float | None
    eta: float | None


def config_group_problems(
    groups: Any, jobs: Sequence[Any], callbacks: Collection[str]
) -> list[str]:
    """The config file's ``groups:`` against the rest: ids unique, ``notify`` naming
    configured callbacks, no ``sealed``/``callback_url`` (a config group is sealed; URLs
    are the API's), and every group a job names declared."""
    problems: list[str] = []
    declared: dict[str, int] = {}
    for index, group in enumerate(groups if isinstance(groups, list) else []):
        if not isinstance(group, Mapping):
            continue
        group_id = group.get("id")
        if isinstance(group_id, str) and group_id.strip():
            key = group_id.strip()
            if key in declared:
                problems.append(f"groups[{index}].id: duplicate group id {key!r}"
                                f" (also groups[{declared[key]}])")  # fmt: skip
            declared.setdefault(key, index)
        for name in ("sealed", "callback_url"):
            if name in group:
                problems.append(f"groups[{index}].{name}: only over the API (a config group"
                                " is sealed)")  # fmt: skip
        notify = group.get("notify")
        for position, name in enumerate(notify if isinstance(notify, list) else []):
            if isinstance(name, str) and name not in callbacks:
                known = ", ".join(callbacks) or "none configured"
                problems.append(f"groups[{index}].notify[{position}]: unknown callback"
                                f" {name!r} (known: {known})")  # fmt: skip
    for index, job in enumerate(jobs):
        try:
            group_id = jobfields.check_group(job.get("group") if isinstance(job, Mapping) else None)
        except ValueError:  # the job's own check names it
            continue
        if group_id is not None and group_id not in declared:
            problems.append(f"jobs[{index}].group: group {group_id!r} is not declared under"
                            " groups:")  # fmt: skip
    return problems


def outcome(state: str, status: str | None) -> str:
    """A member's outcome: delivered, failed, expired or running."""
    if state == "done":
        return "delivered" if status == "DELIVERED" else "failed"
    return "expired" if state == "expired" else "running"


def decide(group: Group, counts: Counts) -> str | None:
    """The event that ends ``group`` now (``group.completed``/``group.failed``), if any."""
    if group.ended:
        return None
    bad = counts.failed + counts.expired
    if group.fail_fast and bad:
        return FAILED
    sealed = group.state == "sealed" or (group.expect is not None and counts.total >= group.expect)
    if sealed and counts.total and not counts.running:
        return FAILED if bad else COMPLETED
    return None


def at_risk(group: Group, eta: float | None, now: float) -> bool:
    """Whether the members' latest estimate puts ``group`` past its deadline, before the
    deadline and for the first time (never after group.late)."""
    if group.deadline is None or eta is None or group.ended:
        return False
    if group.at_risk_at is not None or group.late_at is not None:
        return False
    return now < group.deadline < eta


def recipients(group: Group, event: str, filters: Mapping[str, Collection[str]]) -> list[str]:
    """The callbacks ``event`` goes to: the group's ``notify`` (default none) taking it
    (the group's ``events`` and each callback's own filter), and its ``callback_url``."""
    if group.events is not None and event not in group.events:
        return []
    names = [n for n in group.notify or () if n not in filters or event in filters[n]]
    if group.callback_url is not None:
        names.append(callback_urls.origin_of(group.callback_url))
    return names


def _iso(value: float | None) -> str | None:
    return None if value is None else isoformat(value)


def _seconds(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round(max(end - start, 0.0), 3)


def member_document(job: Any) -> dict[str, Any]:
    """One member in ``jobs[]`` (``job``: a :class:`~notifier.store.WatchedJob`)."""
    started = job.started_at if job.started_at is not None else job.registered_at
    ended = job.last_polled_at if job.state in ("done", "expired") else None
    stored = job.job or {}
    status = "EXPIRED" if job.state == "expired" else job.status
    return {
        "id": job.id,
        "name": job.name,
        "status": status,
        "outcome": outcome(job.state, job.status),
        "started_at": _iso(started),
        "ended_at": _iso(ended),
        "duration_s": _seconds(started, ended),
        "result_id": stored.get("resultId"),
    }


def view_document(view: GroupView, now: float) -> dict[str, Any]:
    """A group as payloads and the API show it (without members)."""
    group, counts = view.group, view.counts
    end = group.ended_at
    return {
        "group": group.id,
        "name": group.name,
        "state": group.state,
        "counts": counts.document(),
        "total": counts.total,
        "expect": group.expect,
        "fail_fast": group.fail_fast,
        "started_at": _iso(view.started_at),
        "ended_at": _iso(end),
        "duration_s": _seconds(view.started_at, end if end is not None else None),
        "deadline": _iso(group.deadline),
        "eta": _iso(view.eta),
        "at_risk_at": _iso(group.at_risk_at),
        "late_at": _iso(group.late_at),
        "labels": dict(group.labels),
        "metadata": dict(group.metadata),
        "notify": None if group.notify is None else list(group.notify),
        "events": None if group.events is None else list(group.events),
        "ack": None,  # reserved: acknowledgements (issue 23)
    }


def payload(event: str, view: GroupView, members: Sequence[Any], now: float) -> dict[str, Any]:
    """The body of a group event: the group, its counts and its members (the first
    1,000; ``jobs_truncated`` past that)."""
    jobs = [member_document(job) for job in members[:MAX_PAYLOAD_JOBS]]
    timed = [j for j in jobs if j["duration_s"] is not None and j["ended_at"] is not None]
    slowest = max(timed, key=lambda j: j["duration_s"], default=None)
    data = view_document(view, now)
    if data["ended_at"] is None and event in (COMPLETED, FAILED):
        data["ended_at"] = isoformat(now)
        data["duration_s"] = _seconds(view.started_at, now)
    data.update(
        slowest=None if slowest is None else {"id": slowest["id"],
                                              "duration_s": slowest["duration_s"]},
        jobs=jobs,
        jobs_truncated=len(members) > MAX_PAYLOAD_JOBS,
    )  # fmt: skip
    if event == LATE and view.group.deadline is not None:
        data["late_by_s"] = round(now - view.group.deadline, 3)
    return {"type": event, "timestamp": isoformat(now), "data": data}


def is_group_event(payload: Mapping[str, Any]) -> bool:
    """Whether ``payload`` is about a group."""
    return str(payload.get("type", "")).startswith("group.")


def summary(payload: dict[str, Any]) -> str:
    """A readable body for a group event: the counts, then the members, failed first."""
    data = payload["data"]
    lines = [group_subject(payload), ""]
    for key in ("name", "state", "started_at", "ended_at", "deadline", "eta"):
        if data.get(key) is not None:
            lines.append(f"{key.replace('_', ' ').capitalize() + ':':<12}{data[key]}")
    jobs = sorted(data.get("jobs") or [], key=lambda j: j.get("outcome") == "delivered")
    if jobs:
        lines += ["", "Jobs:"]
    for job in jobs:
        took = "" if job.get("duration_s") is None else f" in {job['duration_s']:g}s"
        lines.append(f"  {job.get('status') or '-'}  {job['id']}{took}")
    if data.get("jobs_truncated"):
        lines.append(f"  ... (first {MAX_PAYLOAD_JOBS} of {data.get('total')})")
    return "\n".join(lines) + "\n"


def group_document(
    view: GroupView, now: float, ack: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A group as the API and ``groups --json`` show it: ``id``, the payload's fields and
    its ``ack`` (null: not acknowledged)."""
    return {"id": view.group.id, **view_document(view, now), "ack": ack}
