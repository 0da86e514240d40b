"""The configuration file: YAML, ``${VAR}`` expansion, validation into a value object.

Every problem is reported, one line each, naming the key path
(``callbacks.ops-hook.url: not an http(s) URL``) or the YAML line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Union
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from notifier.channels import REGISTRY, CallbackSettings
from notifier.channels.webhook import check_http_url
from notifier.durations import parse_duration
from notifier.events import JobStatus

DEFAULT_CONFIG_PATH = Path("/etc/datasaur-notifier/config.yaml")
DEFAULT_ON_STATUS = (JobStatus.DELIVERED, JobStatus.FAILED)

Duration = Annotated[float, BeforeValidator(parse_duration)]
HttpUrl = Annotated[str, BeforeValidator(check_http_url)]


class ConfigError(Exception):
    """The configuration is unusable; ``problems`` has one line per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: {len(problems)} problem(s)")
        self.source = source
        self.problems = problems


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasaurSettings(_Section):
    """How to reach Datasaur's API."""

    graphql_url: HttpUrl = "https://app.datasaur.ai/graphql"
    token_url: HttpUrl | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    token: SecretStr | None = None
    timeout: Duration = Field(default=10.0, gt=0)
    batch_size: int = Field(default=50, ge=1, le=1000)
    max_requests_per_second: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _one_credential(self) -> DatasaurSettings:
        has_client = self.client_id is not None or self.client_secret is not None
        if self.token is not None and has_client:
            raise ValueError("give either client_id + client_secret or token, not both")
        if self.token is None and (self.client_id is None or self.client_secret is None):
            raise ValueError("credentials: give client_id + client_secret, or token")
        return self

    @property
    def effective_token_url(self) -> str:
        """``token_url``, else ``<scheme>://<host[:port]>/api/oauth/token`` of the API."""
        if self.token_url:
            return self.token_url
        parts = urlsplit(self.graphql_url)
        return f"{parts.scheme}://{parts.netloc}/api/oauth/token"


class PollingSettings(_Section):
    """When jobs are polled and when they are given up."""

    interval: Duration = Field(default=30.0, gt=0)
    max_interval: Duration = Field(default=300.0, gt=0)
    expire_after: Duration = Field(default=7 * 86400.0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> PollingSettings:
        if self.max_interval < self.interval:
            raise ValueError("max_interval must be at least interval")
        return self


class DeliverySettings(_Section):
    """How notifications are retried."""

    timeout: Duration = Field(default=10.0, gt=0)
    initial_backoff: Duration = Field(default=5.0, gt=0)
    max_backoff: Duration = Field(default=3600.0, gt=0)
    give_up_after: Duration = Field(default=72 * 3600.0, gt=0)
    concurrency: int = Field(default=4, ge=1, le=64)

    @model_validator(mode="after")
    def _ordered(self) -> DeliverySettings:
        if self.max_backoff < self.initial_backoff:
            raise ValueError("max_backoff must be at least initial_backoff")
        return self


class MetricsSettings(_Section):
    """The Prometheus endpoint; off unless ``port`` is set."""

    port: int | None = Field(default=None, ge=0, le=65535)
    host: str = "127.0.0.1"


class JobSpec(_Section):
    """One watched job as declared in the config or with ``watch``."""

    id: StrictStr
    name: StrictStr | None = None
    notify: list[StrictStr] | None = None
    on_status: tuple[JobStatus, ...] = DEFAULT_ON_STATUS

    @field_validator("id")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("job id must not be empty")
        return value.strip()

    @field_validator("on_status")
    @classmethod
    def _some_status(cls, value: tuple[JobStatus, ...]) -> tuple[JobStatus, ...]:
        if not value:
            raise ValueError("name at least one status")
        return tuple(dict.fromkeys(value))


def _callback_union() -> Any:
    settings = tuple(channel.Settings for channel in REGISTRY.values())
    return Annotated[Union[settings], Field(discriminator="type")]  # noqa: UP007


class Config(_Section):
    """The validated configuration: a frozen value object."""

    datasaur: DatasaurSettings
    state_path: Path = Path("/var/lib/datasaur-notifier/state.db")
    polling: PollingSettings = PollingSettings()
    delivery: DeliverySettings = DeliverySettings()
    metrics: MetricsSettings = MetricsSettings()
    callbacks: dict[str, _callback_union()] = {}  # type: ignore[valid-type]
    jobs: list[JobSpec] = []

    def callback(self, name: str) -> CallbackSettings:
        """The settings of callback ``name``."""
        return self.callbacks[name]  # type: ignore[no-any-return]


# --- loading ---------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that rejects duplicate keys instead of keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                line = key_node.start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    None, None, f"line {line}: duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def key_path(loc: tuple[Any, ...]) -> str:
    """``("jobs", 0, "id")`` -> ``jobs[0].id``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def expand_variables(
    value: Any, environ: Mapping[str, str], problems: list[str], loc: tuple[Any, ...] = ()
) -> Any:
    """Replace ``${VAR}``/``${VAR:-default}`` in every string; ``$$`` is a literal ``$``."""
    if isinstance(value, dict):
        return {k: expand_variables(v, environ, problems, (*loc, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_variables(v, environ, problems, (*loc, i)) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        problems.append(f"{key_path(loc)}: environment variable {name} is not set")
        return ""

    return _VARIABLE.sub(substitute, value)


def _message(error: Any) -> str:
    kind, message = error["type"], error["msg"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required"
    if kind == "enum":
        expected = ", ".join(status.value for status in JobStatus)
        return f"unknown status {error['input']!r} (expected one of {expected})"
    if kind == "union_tag_invalid":
        return f"unknown callback type {error['input'].get('type')!r} (known: {_known_types()})"
    if kind == "union_tag_not_found":
        return f"type: required (one of {_known_types()})"
    if kind == "invalid_key":
        return (
            f"key {error['input']!r} is not a string (YAML reads unquoted on/off/yes/no"
            " as booleans: quote the key)"
        )
    return str(message).removeprefix("Value error, ")


def _known_types() -> str:
    return ", ".join(sorted(REGISTRY))


def _validation_problems(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        loc = _without_union_tag(error["loc"])
        if error["type"] == "invalid_key":
            loc = loc[:-1]  # pydantic puts the offending key itself (True -> 1) last
        path = key_path(loc)
        problems.append(f"{path}: {_message(error)}" if path else _message(error))
    return problems


def _without_union_tag(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop the discriminator pydantic inserts: ``callbacks.x.webhook.url`` -> ``...x.url``."""
    if len(loc) >= 3 and loc[0] == "callbacks" and loc[2] in REGISTRY:
        return loc[:2] + loc[3:]
    return loc


def _cross_check(raw: dict[str, Any]) -> list[str]:
    """Checks that span sections: job ids unique, ``notify`` names configured callbacks."""
    problems: list[str] = []
    callbacks: dict[str, Any] = raw.get("callbacks") or {}
    jobs: list[Any] = raw.get("jobs") or []
    if not isinstance(callbacks, dict) or not isinstance(jobs, list):
        return problems
    first_index: dict[str, int] = {}
    for index, job in enumerate(jobs):
        if not isinstance(job, dict):
            continue
        job_id = job.get("id")
        if isinstance(job_id, str) and job_id.strip():
            key = job_id.strip()
            if key in first_index:
                problems.append(
                    f"jobs[{index}].id: duplicate job id {key!r} (also jobs[{first_index[key]}])"
                )
            first_index.setdefault(key, index)
        notify = job.get("notify")
        for position, name in enumerate(notify if isinstance(notify, list) else []):
            if isinstance(name, str) and (problem := unknown_callback(name, callbacks)):
                problems.append(f"jobs[{index}].notify[{position}]: {problem}")
    return problems


def unknown_callback(name: str, callbacks: Iterable[str]) -> str | None:
    """``unknown callback 'x' (known: a, b)`` unless ``name`` is one of ``callbacks``."""
    known = list(callbacks)
    if name in known:
        return None
    return f"unknown callback {name!r} (known: {', '.join(known) or 'none configured'})"


def parse_config(
    text: str, source: str = "<config>", environ: Mapping[str, str] | None = None
) -> Config:
    """Parse and validate config text; raise :class:`ConfigError` listing every problem."""
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(source, [_yaml_problem(exc)]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(source, ["the file must be a mapping of keys to values"])
    problems: list[str] = []
    raw = expand_variables(raw, os.environ if environ is None else environ, problems)
    config = None
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_validation_problems(exc))
    problems.extend(_cross_check(raw))
    if problems or config is None:
        raise ConfigError(source, problems)
    return config


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None and "line" not in problem:
        return f"line {mark.line + 1}, column {mark.column + 1}: YAML error: {problem}"
    return f"YAML error: {problem}"


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read, expand and validate the config file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(str(path), [f"cannot read the config file: {reason}"]) from None
    return parse_config(text, str(path), environ)


def secrets_of(config: Config) -> list[str]:
    """Every secret value in ``config`` (for log redaction)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(config)
    return found
