"""The config's sections about the service itself: its listeners (metrics, the API and
its tokens) and the cluster; the base of every section and the ``Duration`` type."""

from __future__ import annotations

import os
import socket
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StrictStr,
    field_validator,
    model_validator,
)

from notifier import callback_urls
from notifier.channels.base import BEARER_HINT, not_blank
from notifier.channels.webhook import SigningSecret
from notifier.durations import parse_duration

Duration = Annotated[float, BeforeValidator(parse_duration)]


class Section(BaseModel):
    """A section of the config: unknown keys refused, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricsSettings(Section):
    """The Prometheus endpoint; off unless ``port`` is set."""

    port: int | None = Field(default=None, ge=0, le=65535)
    host: str = "127.0.0.1"


MIN_TOKEN_LENGTH = 32


class ApiToken(Section):
    """One bearer token of the HTTP API; logs show its ``name``, never the token."""

    name: StrictStr = Field(min_length=1, max_length=64)
    token: Annotated[SecretStr, BeforeValidator(not_blank(BEARER_HINT))]
    scope: Literal["read", "write"] = "read"

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"at least {MIN_TOKEN_LENGTH} characters (a random secret: {BEARER_HINT})"
            )
        return value


def check_prefix(value: str) -> str:
    """An ``allow_callback_urls`` entry: an absolute http(s) URL prefix."""
    try:
        callback_urls.parse(value)
    except callback_urls.Refused as exc:
        raise ValueError(str(exc)) from None
    return value


class ApiSettings(Section):
    """The registration API; off unless the ``api`` section is present."""

    listen: StrictStr
    tokens: list[ApiToken] = Field(min_length=1)
    allow_callback_urls: list[Annotated[StrictStr, AfterValidator(check_prefix)]] = []
    callback_secret: SigningSecret | None = None
    # Long-polls and event streams held at once (each holds a thread of its own).
    max_waiters: int = Field(default=64, ge=1, le=1024)

    @field_validator("listen", mode="before")
    @classmethod
    def _host_port(cls, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError('expected host:port as a string, e.g. "127.0.0.1:8765" (quote it)')
        host, port = split_listen(value)
        if not host or not 0 <= port <= 65535:
            raise ValueError("expected host:port, e.g. 127.0.0.1:8765")
        return value

    @model_validator(mode="after")
    def _distinct(self) -> ApiSettings:
        names = [token.name for token in self.tokens]
        if len(set(names)) != len(names):
            raise ValueError("tokens: each token needs its own name")
        values = [token.token.get_secret_value() for token in self.tokens]
        if len(set(values)) != len(values):
            raise ValueError("tokens: the same token is listed twice")
        return self

    @property
    def host(self) -> str:
        """The address to listen on."""
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        """The port to listen on (0: any free port)."""
        return split_listen(self.listen)[1]


def split_listen(value: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port``; the port -1 if missing or not a number."""
    host, _, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    return host, int(port) if port.isdigit() else -1


class ClusterSettings(Section):
    """Sharing one PostgreSQL store between daemons (see ``state_url``)."""

    lease: Duration = Field(default=30.0, gt=0)
    instance_name: StrictStr | None = None

    @property
    def name(self) -> str:
        """``instance_name``, else ``<hostname>-<pid>``; shown to operators only."""
        return self.instance_name or f"{socket.gethostname()}-{os.getpid()}"
