"""HTTP POST webhooks, signed per the Standard Webhooks specification."""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
from pydantic import SecretStr, field_validator, model_validator

from notifier import __version__, signing, templating
from notifier.backoff import parse_retry_after
from notifier.channels.base import CallbackSettings, Channel, Outcome, empty_as_none
from notifier.errors import describe_error
from notifier.events import sample_payload

USER_AGENT = f"datasaur-notifier/{__version__}"


def check_http_url(value: str) -> str:
    """Accept only absolute http(s) URLs with a host."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("not an http(s) URL")
    return value


class WebhookSettings(CallbackSettings):
    """``type: webhook`` callbacks."""

    type: Literal["webhook"]
    url: str
    secret: SecretStr | None = None
    headers: dict[str, str] = {}
    format: Literal["standard", "template"] = "standard"
    body_template: str | None = None

    _check_url = field_validator("url")(check_http_url)
    _optional = field_validator("secret", mode="before")(empty_as_none)

    @field_validator("secret")
    @classmethod
    def _check_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            signing.decode_secret(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _check_template(self) -> WebhookSettings:
        if self.format == "template":
            if not self.body_template:
                raise ValueError("format: template needs a body_template")
            templating.render_json(self.body_template, sample_payload(time.time()))
        elif self.body_template is not None:
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
        if self.settings.secret is not None:
            secret = self.settings.secret.get_secret_value()
            headers["webhook-signature"] = signing.sign(secret, delivery_id, timestamp, body)
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
            return Outcome(ok=False, detail=f"connection failed: {describe_error(exc)}")
        return _classify(response, now)


def _classify(response: requests.Response, now: float) -> Outcome:
    status = response.status_code
    detail = f"HTTP {status}"
    if 200 <= status < 300:
        return Outcome(ok=True, detail=detail)
    if status == 410:
        return Outcome(ok=False, detail=detail + " Gone", permanent=True)
    retry_after = None
    if status in (429, 503):
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
    return Outcome(ok=False, detail=detail, retry_after=retry_after)
