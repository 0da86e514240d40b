"""HTTP POST webhooks, signed per the Standard Webhooks specification."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Annotated, Any, Literal, cast
from urllib.parse import urlsplit

import requests
from pydantic import (
    AfterValidator,
    BeforeValidator,
    SecretStr,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from notifier import __version__, signing, templating
from notifier.backoff import parse_retry_after
from notifier.channels.base import (
    SIGNING_HINT,
    CallbackSettings,
    Channel,
    Outcome,
    host_of,
    not_blank,
)
from notifier.errors import socket_reason
from notifier.events import sample_payload

USER_AGENT = f"datasaur-notifier/{__version__}"


# Never valid in a URL as written (RFC 3986): they must be percent-encoded.
_UNSAFE = re.compile(r"[\s<>\"{}|\\^`\x00-\x1f\x7f]")


def check_http_url(value: str) -> str:
    """Accept only absolute http(s) URLs with a host, a valid port and no character that
    must be percent-encoded (a space, say); the problem shows the value, password masked."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {masked(value)!r}")
    if found := _UNSAFE.search(shown := masked(value)):
        raise ValueError(
            f"not a valid URL: {shown!r} has {found.group()!r} at position"
            f" {found.start() + 1} (percent-encode it, e.g. a space as %20)"
        )
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        raise ValueError(f"not a valid URL: {masked(value)!r}: bad port") from None
    return value


def masked(url: str) -> str:
    """``url`` with the password of its user part replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def check_secret(value: SecretStr) -> SecretStr:
    """Accept only a Standard Webhooks secret (``whsec_`` + base64)."""
    signing.decode_secret(value.get_secret_value())
    return value


SigningSecret = Annotated[
    SecretStr, BeforeValidator(not_blank(SIGNING_HINT)), AfterValidator(check_secret)
]


class WebhookSettings(CallbackSettings):
    """``type: webhook`` callbacks."""

    type: Literal["webhook"]
    url: str
    # One secret, or several while rotating: each signs every request.
    secret: tuple[SigningSecret, ...] | None = None
    headers: dict[str, str] = {}
    format: Literal["standard", "template"] = "standard"
    body_template: str | None = None

    _check_url = field_validator("url")(check_http_url)

    def target(self) -> str:
        """The URL's host (and port): its path or query may hold a secret."""
        return host_of(self.url)

    @field_validator("secret", mode="wrap")
    @classmethod
    def _one_or_several(
        cls, value: object, handler: ValidatorFunctionWrapHandler
    ) -> tuple[SecretStr, ...] | None:
        """A list is checked item by item (``secret[1]: ...``), a single value at ``secret``."""
        if value is None:
            return None
        if isinstance(value, list):
            if not value:
                raise ValueError("list at least one secret")
            return cast(tuple[SecretStr, ...], handler(value))
        try:
            return cast(tuple[SecretStr, ...], handler([value]))
        except ValidationError as exc:
            raise ValueError(str(exc.errors()[0]["msg"]).removeprefix("Value error, ")) from None

    @field_validator("body_template")
    @classmethod
    def _check_template(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Render with a sample event here, so a problem is reported at this key."""
        if value and info.data.get("format") == "template":
            templating.render_json(value, sample_payload(time.time()))
        return value

    @model_validator(mode="after")
    def _check_format(self) -> WebhookSettings:
        if self.format == "template" and not self.body_template:
            raise ValueError("format: template needs a body_template")
        if self.format != "template" and self.body_template is not None:
            raise ValueError("body_template is only used with format: template")
        return self


class WebhookChannel(Channel):
    """POSTs the event; 2xx is success, anything else (redirects included) a failure."""

    kind = "webhook"
    Settings = WebhookSettings
    settings: WebhookSettings

    def __init__(self, name: str, settings: CallbackSettings, timeout: float) -> None:
        super().__init__(name, settings, timeout)
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def body(self, payload: dict[str, Any]) -> bytes:
        """The request body for ``payload`` in this callback's format."""
        if self.settings.format == "template" and self.settings.body_template:
            return templating.render_json(self.settings.body_template, payload)
        return json.dumps(payload, separators=(",", ":")).encode()

    def headers(self, delivery_id: str, body: bytes, timestamp: int) -> dict[str, str]:
        """Headers of one attempt: custom ones first, so they cannot replace ours."""
        headers = dict(self.settings.headers)
        headers.update(
            {
                "content-type": "application/json",
                "user-agent": USER_AGENT,
                "webhook-id": delivery_id,
                "webhook-timestamp": str(timestamp),
            }
        )
        if self.settings.secret:
            secrets = [secret.get_secret_value() for secret in self.settings.secret]
            headers["webhook-signature"] = signing.sign_all(secrets, delivery_id, timestamp, body)
        return headers

    def send(self, delivery_id: str, payload: dict[str, Any]) -> Outcome:
        try:
            body = self.body(payload)
        except templating.TemplateProblem as exc:
            return Outcome(ok=False, detail=str(exc), permanent=True)
        now = time.time()
        try:
            response = self._session().post(
                self.settings.url,
                data=body,
                headers=self.headers(delivery_id, body, int(now)),
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.Timeout:
            return Outcome(ok=False, detail=f"timed out after {self.timeout:g}s")
        except requests.ConnectionError as exc:
            where = host_of(self.settings.url)
            return Outcome(ok=False, detail=f"connection failed: {where}: {socket_reason(exc)}")
        return classify(response.status_code, response.headers.get("Retry-After"), now)


def classify(status: int, retry_after_header: str | None, now: float) -> Outcome:
    """What an HTTP answer means for the delivery."""
    detail = f"HTTP {status}"
    if 200 <= status < 300:
        return Outcome(ok=True, detail=detail)
    if status == 410:
        return Outcome(ok=False, detail=detail + " Gone", permanent=True)
    retry_after = None
    if status in (429, 503):
        retry_after = parse_retry_after(retry_after_header, now)
    return Outcome(ok=False, detail=detail, retry_after=retry_after)
