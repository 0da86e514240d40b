"""Apprise: one notification service per callback (Slack, Teams, Telegram, ntfy, ...).

``url`` is one Apprise URL (``slack://...``, ``ntfys://...``, ``json://host/path``). It
usually holds a token, so it is a secret: redacted like every other one and never
logged or echoed. Apprise is an optional extra (``pip install
'datasaur-notifier[apprise]'``), imported only when a callback uses it.

Each attempt is one call of the service's own plugin, so Apprise's retries (``retry=``
in the URL) never run: a failed send is an ordinary failed attempt that the outbox
retries with backoff, and ``delivery.timeout`` replaces the URL's ``cto``/``rto``.
Apprise's log lines never reach ours: while a send runs, its warnings are collected
for this thread only, and the last one becomes the attempt's detail with every part
of the URL masked.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import SecretStr, field_validator

from notifier import templating
from notifier.channels.base import CallbackSettings, Channel, Outcome
from notifier.channels.email import texts
from notifier.digests import is_digest
from notifier.events import sample_payload

INSTALL_HINT = "needs the apprise package: pip install 'datasaur-notifier[apprise]'"
MAX_DETAIL = 300
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)
# Apprise's message types, by event: how a service colours or marks the message.
NOTIFY_TYPES = {
    "job.delivered": "success",
    "job.failed": "failure",
    "job.expired": "warning",
    "job.stalled": "warning",
    "job.late": "failure",
    "job.at_risk": "warning",
    "callback.paused": "failure",
    "callback.resumed": "success",
}


def notify_type(payload: dict[str, Any]) -> str:
    """How the service marks the message: by event; a digest with a failure in it
    as a failure, else as a success."""
    if is_digest(payload):
        types = payload["data"]["counts_by_type"]
        failed = any(NOTIFY_TYPES.get(kind) == "failure" for kind in types)
        return "failure" if failed else "success"
    return NOTIFY_TYPES.get(str(payload.get("type")), "info")


class _Collector(logging.Handler):
    """Apprise's only handler: keeps a thread's warnings while it sends, drops the rest."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        lines: list[str] | None = getattr(self._local, "lines", None)
        if lines is not None:
            try:
                lines.append(record.getMessage())
            except Exception:  # a malformed record of theirs is no reason to fail ours
                lines.append(str(record.msg))

    @contextmanager
    def collecting(self) -> Iterator[list[str]]:
        """Collect this thread's Apprise warnings inside the block."""
        lines: list[str] = []
        self._local.lines = lines
        try:
            yield lines
        finally:
            self._local.lines = None


_COLLECTOR = _Collector()


@functools.cache
def library() -> ModuleType:
    """The apprise package, imported on first use; its logger only feeds the collector
    (set up first: importing it logs already)."""
    logger = logging.getLogger("apprise")
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    logger.handlers[:] = [_COLLECTOR]
    try:
        import apprise  # optional: only for callbacks that use it
    except ImportError:
        raise ValueError(INSTALL_HINT) from None
    return apprise


def service(url: str, timeout: float) -> Any:
    """Apprise's plugin for ``url``, with our timeout; ValueError if Apprise can't use it.

    The error never contains the URL, only its scheme.
    """
    apprise = library()
    with _COLLECTOR.collecting():
        asset = apprise.AppriseAsset(storage_mode="memory")
        plugin = apprise.Apprise.instantiate(url, asset=asset, suppress_exceptions=True)
    if plugin is None:
        match = _SCHEME.match(url)
        scheme = f"scheme {match.group(1)}://" if match else "no scheme"
        raise ValueError(
            f"not a URL Apprise can use ({scheme}; the URL is not shown: it may hold a token)"
        )
    plugin.socket_connect_timeout = timeout
    plugin.socket_read_timeout = timeout
    return plugin


def url_parts(url: str) -> list[str]:
    """Every part of ``url`` that may be a token, longest first, for masking."""
    parts = urlsplit(url)
    pieces = [url, parts.netloc, parts.username, parts.password, parts.hostname]
    pieces += parts.path.split("/")
    pieces += [value for _, value in parse_qsl(parts.query)]
    found = {piece for piece in pieces if piece} | {unquote(piece) for piece in pieces if piece}
    return sorted((piece for piece in found if len(piece) >= 3), key=len, reverse=True)


def mask(text: str, url: str) -> str:
    """``text`` on one line, short, with every part of ``url`` replaced by ``***``."""
    for piece in url_parts(url):
        text = text.replace(piece, "***")
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 3] + "..."


class AppriseSettings(CallbackSettings):
    """``type: apprise`` callbacks: one service, a title and a plain-text body."""

    type: Literal["apprise"]
    url: SecretStr
    title_template: str | None = None
    body_template: str | None = None

    def target(self) -> str:
        """The service's scheme only: many Apprise URLs carry their token as the host."""
        found = _SCHEME.match(self.url.get_secret_value())
        return found.group(0).lower() if found else self.type

    @field_validator("url")
    @classmethod
    def _usable(cls, value: SecretStr) -> SecretStr:
        """Apprise must know the service (and be installed) when the config is loaded."""
        service(value.get_secret_value(), timeout=1.0)
        return value

    @field_validator("title_template", "body_template")
    @classmethod
    def _check_template(cls, value: str | None) -> str | None:
        """Render with a sample event here, so a problem is reported at this key."""
        if value is not None:
            templating.render_text(value, sample_payload(time.time()))
        return value


class AppriseChannel(Channel):
    """Sends a title and a body through one Apprise service; False from Apprise retries."""

    kind = "apprise"
    Settings = AppriseSettings
    settings: AppriseSettings

    def message(self, payload: dict[str, Any]) -> tuple[str, str]:
        """The title and body for ``payload``: the callback's templates, else built-in
        text (always built-in for alerts about callbacks: the templates are about jobs)."""
        title, body = texts(payload, self.settings.title_template, self.settings.body_template)
        return title, body.strip() or title

    def send(self, delivery_id: str, payload: dict[str, Any]) -> Outcome:
        try:
            title, body = self.message(payload)
        except templating.TemplateProblem as exc:
            return Outcome(ok=False, detail=str(exc), permanent=True)
        url = self.settings.url.get_secret_value()
        try:
            plugin = service(url, self.timeout)
            with _COLLECTOR.collecting() as warnings:
                sent = plugin.notify(
                    body=body,
                    title=title,
                    notify_type=notify_type(payload),
                    body_format="text",
                )
        except Exception as exc:  # ValueError (no longer usable) or a plugin's own error
            return Outcome(ok=False, detail=mask(f"{type(exc).__name__}: {exc}", url))
        name = getattr(plugin, "service_name", None) or "Apprise"
        if sent:
            return Outcome(ok=True, detail=f"sent ({name})")
        reason = warnings[-1] if warnings else "Apprise gave no reason"
        return Outcome(ok=False, detail=mask(f"{name}: not sent: {reason}", url))
