"""Email through SMTP: one plain-text message per event."""

from __future__ import annotations

import smtplib
import ssl
import time
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, parseaddr
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator

from notifier import templating
from notifier.channels.base import CallbackSettings, Channel, Outcome, empty_as_none
from notifier.digests import DIGEST_BODY, is_digest, summary
from notifier.errors import socket_reason
from notifier.events import describe, is_alert, sample_payload
from notifier.groups import is_group_event
from notifier.groups import summary as group_summary

DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
DEFAULT_BODY = """\
Job:       {{ job_id }}
Name:      {{ name or "-" }}
Event:     {{ type }}
Status:    {{ status or "-" }} (previously {{ previous_status or "-" }})
Progress:  {{ progress if progress is not none else "-" }}
Result id: {{ result_id or "-" }}
Errors:    {{ errors | tojson if errors else "none" }}
Observed:  {{ observed_at }}
{% if stalled_for_s is defined -%}
Stalled:   no change since {{ stalled_since }} ({{ stalled_for_s | round | int }}s)
{% endif -%}
"""

ALERT_BODY = """\
Callback:  {{ data.callback }}
Event:     {{ type }}
Failures:  {{ data.consecutive_failures }} consecutive failed attempts
Last error: {{ data.last_error or "-" }}
Pending:   {{ data.pending }} deliveries
Time:      {{ timestamp }}
"""


def check_address(value: str) -> str:
    """Accept ``user@domain`` or ``Name <user@domain>``."""
    _, address = parseaddr(value)
    local, _, domain = address.rpartition("@")
    if not local or not domain or any(c.isspace() for c in address):
        raise ValueError(f"not an email address: {value!r}")
    return value


Address = Annotated[str, AfterValidator(check_address)]


class EmailSettings(CallbackSettings):
    """``type: email`` callbacks."""

    type: Literal["email"]
    smtp_host: str = Field(min_length=1)
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_: Address = Field(alias="from")
    to: list[Address] = Field(min_length=1)
    subject_template: str | None = None
    body_template: str | None = None

    _optional = field_validator("username", "password", mode="before")(empty_as_none)

    @field_validator("subject_template", "body_template")
    @classmethod
    def _check_template(cls, value: str | None) -> str | None:
        """Render with a sample event here, so a problem is reported at this key."""
        if value is not None:
            templating.render_text(value, sample_payload(time.time()))
        return value

    @model_validator(mode="after")
    def _check(self) -> EmailSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        return self

    @property
    def port(self) -> int:
        """The configured port, else the usual one for ``security``."""
        return self.smtp_port or DEFAULT_PORTS[self.security]

    def target(self) -> str:
        """The SMTP server."""
        return f"{self.smtp_host}:{self.port}"


def texts(
    payload: dict[str, Any], subject_template: str | None, body_template: str | None
) -> tuple[str, str]:
    """The subject and body of a message about ``payload`` (email, Apprise): the
    callback's templates, else built-in text. Alerts about callbacks always use built-in
    text (the templates are about jobs); a digest's subject is always its summary
    (``37 jobs ended: 35 delivered, 2 failed``), its body the ``body_template`` (which
    gets ``digest`` and ``events``) or a list, failures first."""
    if is_digest(payload):
        subject = f"[datasaur-notifier] {summary(payload)}"
        return subject, templating.render_text(body_template or DIGEST_BODY, payload)
    alert = is_alert(payload)
    subject = f"[datasaur-notifier] {describe(payload)}"
    if subject_template and not alert:
        subject = templating.render_text(subject_template, payload).strip()
    if is_group_event(payload) and not body_template:
        return subject, group_summary(payload)  # counts, then the members: failed first
    body = ALERT_BODY if alert else (body_template or DEFAULT_BODY)
    return subject, templating.render_text(body, payload)


class EmailChannel(Channel):
    """Sends a message; 4xx replies and network errors retry, 5xx replies are final."""

    kind = "email"
    Settings = EmailSettings
    settings: EmailSettings

    def message(self, delivery_id: str, payload: dict[str, Any]) -> EmailMessage:
        """The message for ``payload``; its Message-ID derives from the delivery id."""
        settings = self.settings
        subject, body = texts(payload, settings.subject_template, settings.body_template)
        message = EmailMessage()
        message["From"] = settings.from_
        message["To"] = ", ".join(settings.to)
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = f"<{delivery_id}@datasaur-notifier>"
        message.set_content(body)
        return message

    def connect(self) -> smtplib.SMTP:
        """An SMTP session with TLS as ``security`` says (logged in by the caller)."""
        settings = self.settings
        if settings.security == "ssl":
            context = ssl.create_default_context()
            return smtplib.SMTP_SSL(
                settings.smtp_host, settings.port, timeout=self.timeout, context=context
            )
        client = smtplib.SMTP(settings.smtp_host, settings.port, timeout=self.timeout)
        if settings.security == "starttls":
            client.starttls(context=ssl.create_default_context())
        return client

    def send(self, delivery_id: str, payload: dict[str, Any]) -> Outcome:
        try:
            message = self.message(delivery_id, payload)
        except templating.TemplateProblem as exc:
            return Outcome(ok=False, detail=str(exc), permanent=True)
        settings = self.settings
        try:
            with self.connect() as client:
                if settings.username is not None and settings.password is not None:
                    client.login(settings.username, settings.password.get_secret_value())
                reply = _transmit(client, message, settings.from_, settings.to)
        except smtplib.SMTPNotSupportedError as exc:
            if "STARTTLS" not in str(exc):  # e.g. login() on a server without AUTH
                return Outcome(ok=False, detail=f"SMTPNotSupportedError: {exc}")
            return Outcome(ok=False, detail="server does not offer STARTTLS; refusing plain text")
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            return _reply_outcome(max(codes), "all recipients refused")
        except smtplib.SMTPResponseException as exc:
            return _reply_outcome(exc.smtp_code, _text(exc.smtp_error))
        except TimeoutError:
            return Outcome(ok=False, detail=f"timed out after {self.timeout:g}s")
        except smtplib.SMTPServerDisconnected as exc:
            if isinstance(exc.__context__, TimeoutError):  # smtplib wraps a reply timeout
                return Outcome(ok=False, detail=f"timed out after {self.timeout:g}s")
            return Outcome(ok=False, detail=f"{type(exc).__name__}: {exc}")
        except smtplib.SMTPException as exc:
            return Outcome(ok=False, detail=f"{type(exc).__name__}: {exc}")
        except OSError as exc:  # connection refused, no route, a name that does not resolve
            where = f"{settings.smtp_host}:{settings.port}"
            return Outcome(ok=False, detail=f"{where}: {socket_reason(exc)}")
        return Outcome(ok=True, detail=reply)


def _transmit(
    client: smtplib.SMTP, message: EmailMessage, sender: str, recipients: list[str]
) -> str:
    """MAIL, RCPT and DATA, returning the server's final reply.

    ``send_message`` does the same but throws the reply away, and ``test-callback``
    should show it.
    """
    client.ehlo_or_helo_if_needed()
    code, text = client.mail(parseaddr(sender)[1])
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, text, sender)
    refused = {}
    for recipient in recipients:
        code, text = client.rcpt(parseaddr(recipient)[1])
        if code not in (250, 251):
            refused[recipient] = (code, text)
    if len(refused) == len(recipients):
        client.rset()
        raise smtplib.SMTPRecipientsRefused(refused)
    code, text = client.data(message.as_bytes(policy=SMTP_POLICY))
    if code != 250:
        client.rset()
        raise smtplib.SMTPDataError(code, text)
    reply = f"SMTP {code} {_text(text)}"
    return reply + (f" ({len(refused)} recipients refused)" if refused else "")


def _reply_outcome(code: int, text: str) -> Outcome:
    return Outcome(ok=False, detail=f"SMTP {code} {text}".strip(), permanent=500 <= code < 600)


def _text(error: bytes | str) -> str:
    return error.decode(errors="replace") if isinstance(error, bytes) else str(error)
