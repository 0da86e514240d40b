"""What every callback channel is: settings, a ``send`` and a registry by type name.

Adding a callback type is one new subclass of :class:`Channel` with a ``kind`` and a
``Settings`` model whose ``type`` is ``Literal[kind]``; the config and the delivery
loop find it by name.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from notifier import templating
from notifier.digests import DigestSettings, sample_digest
from notifier.durations import parse_duration
from notifier.quiet_hours import QuietHours

log = logging.getLogger(__name__)

REGISTRY: dict[str, type[Channel]] = {}


def empty_as_none(value: object) -> object:
    """``${VAR:-}`` expands to ""; for optional settings that means "not set"."""
    return None if value == "" else value


SIGNING_HINT = "make one with `datasaur-notifier gen-secret`"
BEARER_HINT = "make one with `datasaur-notifier gen-token`"
DATASAUR_HINT = "Datasaur makes it: its profile menu, Generate OAuth credentials"


def not_blank(hint: str) -> Callable[[object], object]:
    """A before-validator: an empty or whitespace-only secret is a mistake, never "unset"
    (an empty signing secret would send unsigned webhooks); ``hint`` says how to make one."""

    def check(value: object) -> object:
        if isinstance(value, str) and not value.strip():
            raise ValueError(f"empty: {hint}")
        return value

    return check


EVENT_TYPES = (
    "job.delivered",
    "job.failed",
    "job.queued",
    "job.in_progress",
    "job.none",
    "job.expired",
    "job.stalled",
    "job.late",
    "job.at_risk",
    "group.completed",
    "group.failed",
    "group.late",
    "group.at_risk",
)
# What ``remind_every`` repeats unless the callback names its own ``remind_events``.
REMIND_EVENTS = ("job.failed", "job.expired", "job.stalled", "group.failed")
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m)\s*$")


def parse_rate(value: object) -> float | None:
    """``10/s`` or ``30/m`` as sends per second; None (no cap) for None."""
    if value is None:
        return None
    match = _RATE.match(value) if isinstance(value, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"not a rate: {value!r} (expected e.g. 10/s or 30/m)")
    return float(match.group(1)) / (1.0 if match.group(2) == "s" else 60.0)


def _duration_or_none(value: object) -> float | None:
    return None if value is None else parse_duration(value)


class CallbackSettings(BaseModel):
    """Common base of every callback's settings.

    ``rate_limit`` caps the callback's sends (its lane waits, nothing is dropped);
    ``events`` keeps only these event types for it (default: all); ``quiet_hours``
    holds its deliveries in a daily window (see :mod:`notifier.quiet_hours`);
    ``digest`` gathers its events into one delivery per window (:mod:`notifier.digests`);
    ``remind_every`` sends ``remind_events`` again until acknowledged, at most
    ``remind_max`` times (see :mod:`notifier.reminders`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: str
    rate_limit: Annotated[float | None, BeforeValidator(parse_rate)] = None
    events: tuple[Literal[EVENT_TYPES], ...] | None = None  # type: ignore[valid-type]
    quiet_hours: QuietHours | None = None
    digest: DigestSettings | None = None
    remind_every: Annotated[float | None, BeforeValidator(_duration_or_none)] = None
    remind_events: tuple[Literal[EVENT_TYPES], ...] = REMIND_EVENTS  # type: ignore[valid-type]
    remind_max: int = Field(default=6, ge=1, le=1000)

    @field_validator("remind_every")
    @classmethod
    def _at_least_a_minute(cls, value: float | None) -> float | None:
        if value is not None and value < 60:
            raise ValueError("at least 1m: reminders more often than once a minute are noise")
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _known_exceptions(cls, value: QuietHours | None) -> QuietHours | None:
        for name in () if value is None else value.except_events:
            if name not in EVENT_TYPES:
                known = ", ".join(EVENT_TYPES)
                raise ValueError(f"except_events: unknown event {name!r} (known: {known})")
        return value

    @model_validator(mode="after")
    def _digest_template(self) -> CallbackSettings:
        """A digesting callback's ``body_template`` must render a digest too (it gets
        ``digest`` and ``events``): checked here, so the problem names the key."""
        template = getattr(self, "body_template", None)
        if self.digest is None or not template:
            return self
        try:
            if getattr(self, "format", None) == "template":
                templating.render_json(template, sample_digest(0.0))
            else:
                templating.render_text(template, sample_digest(0.0))
        except templating.TemplateProblem as exc:
            raise ValueError(
                f"body_template: does not render a digest (it gets digest and events): {exc}"
            ) from None
        return self

    def target(self) -> str:
        """Where the callback points, to show people: a host, never a path or a secret."""
        return self.type


def host_of(url: str) -> str:
    """``host`` or ``host:port`` of ``url`` (no user, password, path or query)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    return host if parts.port is None else f"{host}:{parts.port}"


@dataclass(frozen=True)
class Outcome:
    """The result of one delivery attempt."""

    ok: bool
    detail: str
    permanent: bool = False
    retry_after: float | None = None


class Channel(ABC):
    """Sends one event through one configured callback."""

    kind: ClassVar[str]
    Settings: ClassVar[type[CallbackSettings]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:  # a subclass that keeps its parent's kind is no type
            REGISTRY[cls.kind] = cls

    def __init__(self, name: str, settings: CallbackSettings, timeout: float) -> None:
        self.name = name
        self.settings = settings
        self.timeout = timeout

    def deliver(
        self, delivery_id: str, payload: dict[str, Any], target_url: str | None = None
    ) -> Outcome:
        """Send and classify; never raises, whatever the receiver or the network does.

        ``target_url`` is a job's own ``callback_url`` (see :meth:`send_to`).
        """
        try:
            if target_url is not None:
                return self.send_to(target_url, delivery_id, payload)
            return self.send(delivery_id, payload)
        except Exception as exc:
            log.debug("callback %s: unexpected error", self.name, exc_info=True)
            return Outcome(ok=False, detail=f"{type(exc).__name__}: {exc}")

    @abstractmethod
    def send(self, delivery_id: str, payload: dict[str, Any]) -> Outcome:
        """Send ``payload`` once; ``delivery_id`` is stable across retries."""

    def send_to(self, url: str, delivery_id: str, payload: dict[str, Any]) -> Outcome:
        """Send to a job's own URL; only channels made for callback URLs can."""
        return Outcome(ok=False, detail=f"callback {self.name} does not send to job URLs")


def create(name: str, settings: CallbackSettings, timeout: float) -> Channel:
    """Instantiate the channel class registered for ``settings.type``."""
    return REGISTRY[settings.type](name, settings, timeout)
