"""The configuration file: YAML, ``${VAR}`` expansion, validation into a value object.

Every problem is reported, one line each, naming the key path
(``callbacks.ops-hook.url: not an http(s) URL``) or the YAML line.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union
from urllib.parse import parse_qs, urlsplit

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

from notifier import jobfields
from notifier.channels import REGISTRY, CallbackSettings
from notifier.channels.base import (
    DATASAUR_HINT,
    not_blank,
)
from notifier.channels.webhook import check_http_url, masked
from notifier.client_cert import ClientCert, ClientCertError
from notifier.config_service import ApiSettings, ClusterSettings, Duration, MetricsSettings, Section
from notifier.config_text import UniqueKeyLoader, expand_variables
from notifier.events import JobStatus
from notifier.groups import GroupSpec, config_group_problems
from notifier.jobfields import Deadline
from notifier.problems import key_path as key_path
from notifier.problems import validation_problems, yaml_problem
from notifier.routing import Route

DEFAULT_CONFIG_PATH = Path("/etc/datasaur-notifier/config.yaml")
DEFAULT_ON_STATUS = (JobStatus.DELIVERED, JobStatus.FAILED)

HttpUrl = Annotated[str, BeforeValidator(check_http_url)]


class ConfigError(Exception):
    """The configuration is unusable; ``problems`` has one line per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: {len(problems)} problem(s)")
        self.source = source
        self.problems = problems


class DatasaurSettings(Section):
    """How to reach Datasaur's API."""

    graphql_url: HttpUrl = "https://app.datasaur.ai/graphql"
    token_url: HttpUrl | None = None
    client_id: str | None = None
    client_secret: Annotated[SecretStr, BeforeValidator(not_blank(DATASAUR_HINT))] | None = None
    token: Annotated[SecretStr, BeforeValidator(not_blank(DATASAUR_HINT))] | None = None
    timeout: Duration = Field(default=10.0, gt=0)
    batch_size: int = Field(default=50, ge=1, le=1000)
    max_requests_per_second: float = Field(default=5.0, gt=0)
    # A client certificate for an ingress that requires one: PEM paths, or PEM text
    # through ${file:}/${credential:}; the key is a secret (notifier.client_cert).
    client_cert: str | None = None
    client_key: SecretStr | None = None

    @model_validator(mode="after")
    def _client_pair(self) -> DatasaurSettings:
        client = self.client_certificate
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("give both client_cert and client_key, or neither")
        try:
            if client is not None:
                client.load_into(ssl.create_default_context())
        except ClientCertError as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def client_certificate(self) -> ClientCert | None:
        """The client certificate pair, if both are set."""
        if self.client_cert is None or self.client_key is None:
            return None
        return ClientCert(self.client_cert, self.client_key.get_secret_value())

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


class PollingSettings(Section):
    """When jobs are polled and when they are given up."""

    interval: Duration = Field(default=30.0, gt=0)
    max_interval: Duration = Field(default=300.0, gt=0)
    expire_after: Duration = Field(default=7 * 86400.0, ge=0)
    # A watched job whose status and progress stay the same this long fires job.stalled
    # (again after each change); 0 = never.
    stall_after: Duration = Field(default=0.0, ge=0)
    # Poll near the moment a job's rate of progress says it will end (notifier.eta).
    predictive: bool = True

    @model_validator(mode="after")
    def _ordered(self) -> PollingSettings:
        if self.max_interval < self.interval:
            raise ValueError("max_interval must be at least interval")
        return self


class DeliverySettings(Section):
    """How notifications are retried."""

    timeout: Duration = Field(default=10.0, gt=0)
    initial_backoff: Duration = Field(default=5.0, gt=0)
    max_backoff: Duration = Field(default=3600.0, gt=0)
    give_up_after: Duration = Field(default=72 * 3600.0, gt=0)
    concurrency: int = Field(default=4, ge=1, le=64)
    # Consecutive failed attempts across a callback's deliveries that pause its lane.
    pause_after: int = Field(default=20, ge=0)
    # Callbacks told when another callback's lane pauses or resumes.
    alert_via: list[StrictStr] = []

    @model_validator(mode="after")
    def _ordered(self) -> DeliverySettings:
        if self.max_backoff < self.initial_backoff:
            raise ValueError("max_backoff must be at least initial_backoff")
        return self


def check_state_url(value: Any) -> Any:
    """A libpq URL: ``postgresql://`` or ``postgres://``."""
    if isinstance(value, str) and urlsplit(value).scheme not in ("postgresql", "postgres"):
        raise ValueError("not a PostgreSQL URL (postgresql://user:password@host:5432/dbname)")
    if isinstance(value, str) and re.search(r"\s", value):
        raise ValueError(f"not a valid URL: {masked(value)!r} has a space (percent-encode it)")
    return value


class JobSpec(Section):
    """One watched job as declared in the config or with ``watch``.

    ``labels`` always hold the implicit ``queue`` label (unless given); ``deadline`` is
    as given (a time or a duration from the registration: see :mod:`notifier.jobfields`).
    """

    id: StrictStr
    name: StrictStr | None = None
    notify: list[StrictStr] | None = None
    on_status: tuple[JobStatus, ...] = DEFAULT_ON_STATUS
    group: Annotated[str | None, BeforeValidator(jobfields.check_group)] = None
    labels: Annotated[dict[str, str], BeforeValidator(jobfields.check_labels)] = {}
    metadata: Annotated[dict[str, Any] | None, BeforeValidator(jobfields.check_metadata)] = None
    deadline: Annotated[Deadline | None, BeforeValidator(jobfields.parse_deadline)] = None
    expire_after: Annotated[float | None, BeforeValidator(jobfields.check_timeout)] = None
    stall_after: Annotated[float | None, BeforeValidator(jobfields.check_timeout)] = None

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

    @field_validator("labels", mode="before")
    @classmethod
    def _no_labels(cls, value: Any) -> Any:
        return {} if value is None else value

    @model_validator(mode="after")
    def _queue(self) -> JobSpec:
        labels = jobfields.with_queue(self.id, self.labels)
        if labels != self.labels:
            object.__setattr__(self, "labels", labels)
        return self


def _callback_union() -> Any:
    settings = tuple(channel.Settings for channel in REGISTRY.values())
    return Annotated[Union[settings], Field(discriminator="type")]  # noqa: UP007


class StateLocation(Section):
    """Where the state lives: all that the commands which only read or change it need."""

    state_path: Path = Path("/var/lib/datasaur-notifier/state.db")
    state_url: Annotated[str, BeforeValidator(check_state_url)] | None = None
    cluster: ClusterSettings = ClusterSettings()

    @model_validator(mode="after")
    def _one_store(self) -> StateLocation:
        if self.state_url is not None and "state_path" in self.model_fields_set:
            raise ValueError("state_url, state_path: give one of them, not both")
        return self


class StateView(StateLocation):
    """The config as the state-only commands (``status``, ``watch``...) read it: the state's
    location and the callbacks' names; nothing else is expanded or needed."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    callbacks: dict[str, Any] = {}


STATE_KEYS = ("state_path", "state_url", "cluster")


class Config(StateLocation):
    """The validated configuration: a frozen value object."""

    datasaur: DatasaurSettings
    api: ApiSettings | None = None
    # Finished jobs whose deliveries all ended are removed this long after; 0 keeps all.
    retention: Duration = Field(default=30 * 86400.0, ge=0)
    polling: PollingSettings = PollingSettings()
    delivery: DeliverySettings = DeliverySettings()
    metrics: MetricsSettings = MetricsSettings()
    callbacks: dict[str, _callback_union()] = {}  # type: ignore[valid-type]
    jobs: list[JobSpec] = []
    groups: list[GroupSpec] = []
    routes: list[Route] = []

    @model_validator(mode="after")
    def _lease_outlasts_a_request(self) -> Config:
        if self.state_url is None:
            return self
        budget = self.datasaur.timeout + self.delivery.timeout
        if self.cluster.lease <= budget:
            raise ValueError(
                f"cluster.lease: must be larger than datasaur.timeout + delivery.timeout"
                f" ({budget:g}s) when state_url is set"
            )
        return self

    def callback(self, name: str) -> CallbackSettings:
        """The settings of callback ``name``."""
        return self.callbacks[name]  # type: ignore[no-any-return]


# --- loading ---------------------------------------------------------------------------


def _cross_check(raw: dict[str, Any]) -> list[str]:
    """Checks that span sections: job ids unique, ``notify`` (of jobs, routes and
    ``delivery.alert_via``) names configured callbacks."""
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
    problems += config_group_problems(raw.get("groups"), jobs, callbacks)
    delivery = raw.get("delivery")
    named = [
        ("delivery.alert_via", delivery.get("alert_via") if isinstance(delivery, dict) else None)
    ]
    routes = raw.get("routes")
    for index, route in enumerate(routes if isinstance(routes, list) else []):
        named.append(
            (f"routes[{index}].notify", route.get("notify") if isinstance(route, dict) else None)
        )
    for path, names in named:
        for position, name in enumerate(names if isinstance(names, list) else []):
            if isinstance(name, str) and (problem := unknown_callback(name, callbacks)):
                problems.append(f"{path}[{position}]: {problem}")
    return problems


def unknown_callback(name: str, callbacks: Iterable[str]) -> str | None:
    """``unknown callback 'x' (known: a, b)`` unless ``name`` is one of ``callbacks``."""
    known = list(callbacks)
    if name in known:
        return None
    return f"unknown callback {name!r} (known: {', '.join(known) or 'none configured'})"


def silent_jobs(config: Config) -> list[str]:
    """One warning per config job that notifies nobody (valid, but most likely a mistake)."""
    warnings = []
    for index, job in enumerate(config.jobs):
        if job.notify is not None and not job.notify:
            reason = "its notify list is empty"
        elif not config.callbacks:
            reason = "no callback is configured"
        else:
            continue
        warnings.append(f"jobs[{index}] ({job.id!r}): notifies nobody: {reason}")
    return warnings


def _read_mapping(text: str, source: str) -> dict[Any, Any]:
    """The YAML document as a mapping; a YAML problem is a ConfigError naming its line."""
    try:
        raw = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(source, [yaml_problem(exc)]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(source, ["the file must be a mapping of keys to values"])
    return raw


def parse_config(
    text: str, source: str = "<config>", environ: Mapping[str, str] | None = None
) -> Config:
    """Parse and validate config text; raise :class:`ConfigError` listing every problem."""
    raw = _read_mapping(text, source)
    problems: list[str] = []
    raw = expand_variables(raw, os.environ if environ is None else environ, problems)
    config = None
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        # A value that could not be expanded is reported once, not again as invalid.
        unexpanded = tuple(problem.split(": ", 1)[0] + ": " for problem in problems)
        problems.extend(p for p in validation_problems(exc, Config) if not p.startswith(unexpanded))
    problems.extend(_cross_check(raw))
    if problems or config is None:
        raise ConfigError(source, problems)
    return config


def parse_state_view(
    text: str, source: str = "<config>", environ: Mapping[str, str] | None = None
) -> StateView:
    """The state's location and the callbacks' names from config text; only the state's
    keys are expanded, so a secret missing from the environment does not matter here."""
    raw = _read_mapping(text, source)
    problems: list[str] = []
    wanted = {key: raw[key] for key in STATE_KEYS if key in raw}
    view: dict[str, Any] = expand_variables(
        wanted, os.environ if environ is None else environ, problems
    )
    callbacks = raw.get("callbacks") or {}
    view["callbacks"] = dict.fromkeys(callbacks) if isinstance(callbacks, dict) else {}
    try:
        state = StateView.model_validate(view)
    except ValidationError as exc:
        problems.extend(validation_problems(exc, StateView))
    if problems:
        raise ConfigError(source, problems)
    return state


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(str(path), [f"cannot read the config file: {reason}"]) from None


_Located = TypeVar("_Located", bound=StateLocation)


def _anchored(config: _Located, path: Path) -> _Located:
    """A relative ``state_path`` is relative to the config file's directory."""
    if config.state_path.is_absolute():
        return config
    return config.model_copy(update={"state_path": (path.parent / config.state_path).absolute()})


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read, expand and validate the config file at ``path``."""
    return _anchored(parse_config(_read(path), str(path), environ), path)


def load_state_view(path: Path, environ: Mapping[str, str] | None = None) -> StateView:
    """The state-only view (:class:`StateView`) of the config file at ``path``."""
    return _anchored(parse_state_view(_read(path), str(path), environ), path)


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
    if config.state_url is not None:  # its password, in the user part or the query
        parts = urlsplit(config.state_url)
        found.extend(p for p in [parts.password, *parse_qs(parts.query).get("password", [])] if p)
    return found
