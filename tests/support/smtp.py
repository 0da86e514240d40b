"""A local SMTP server (aiosmtpd) that records messages and can refuse them on demand."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Self, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

ACCEPTED = "250 Message accepted for delivery"


@dataclass(frozen=True)
class SmtpMessage:
    """One DATA transaction the sink saw."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage
    reply: str

    @property
    def accepted(self) -> bool:
        """Whether the sink answered 250."""
        return self.reply.startswith("250")


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (aiosmtpd's Controller cannot bind port 0)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class _Handler:
    """aiosmtpd handler: records DATA, answers from the programmed replies."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(  # noqa: N802 (aiosmtpd hook)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.sink.next_reply("RCPT")
        if reply is None:
            envelope.rcpt_tos.append(address)
            return "250 OK"
        return reply

    async def handle_DATA(  # noqa: N802 (aiosmtpd hook)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        reply = self.sink.next_reply("DATA") or ACCEPTED
        self.sink.record(envelope, reply)
        return reply


class _Authenticator:
    """Accepts one login and password (AUTH PLAIN/LOGIN), refuses anything else."""

    def __init__(self, login: str, password: str) -> None:
        self.expected = LoginPassword(login.encode(), password.encode())

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: object
    ) -> AuthResult:
        return AuthResult(success=data == self.expected, handled=False)  # a refusal: 535


class SmtpSink:
    """SMTP on 127.0.0.1 recording every DATA transaction: plain, or with ``starttls`` (a
    server TLS context) offering and requiring STARTTLS. With ``credentials`` it offers
    AUTH (over plain SMTP too, unless STARTTLS is offered) and accepts only that login."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        credentials: tuple[str, str] | None = None,
        starttls: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        options: dict[str, object] = {}
        if credentials is not None:
            options |= {"authenticator": _Authenticator(*credentials)}
            options |= {"auth_require_tls": starttls is not None}
        if starttls is not None:
            options |= {"tls_context": starttls, "require_starttls": True}
        self._controller = Controller(_Handler(self), hostname=host, port=self.port, **options)
        self._lock = threading.Lock()
        self._attempts: list[SmtpMessage] = []
        self._replies: dict[str, deque[str]] = {"RCPT": deque(), "DATA": deque()}

    @property
    def attempts(self) -> list[SmtpMessage]:
        """Every DATA transaction, refused ones included."""
        with self._lock:
            return list(self._attempts)

    @property
    def messages(self) -> list[SmtpMessage]:
        """Accepted messages only."""
        return [attempt for attempt in self.attempts if attempt.accepted]

    def reply_with(self, code_and_text: str, count: int = 1, *, at: str = "DATA") -> None:
        """Answer the next ``count`` DATA (or RCPT, with ``at="RCPT"``) commands so."""
        with self._lock:
            self._replies[at].extend([code_and_text] * count)

    def next_reply(self, stage: str) -> str | None:
        """The programmed reply for ``stage``, if any (consumed)."""
        with self._lock:
            queue = self._replies[stage]
            return queue.popleft() if queue else None

    def record(self, envelope: Envelope, reply: str) -> None:
        """Remember one DATA transaction."""
        raw = cast(bytes, envelope.original_content or envelope.content or b"")
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        attempt = SmtpMessage(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            raw=raw,
            message=parsed,
            reply=reply,
        )
        with self._lock:
            self._attempts.append(attempt)

    def wait_for(self, count: int = 1, timeout: float = 10) -> list[SmtpMessage]:
        """Wait for ``count`` accepted messages; return them."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"expected {count} message(s) within {timeout}s, got {len(self.messages)}"
                    f" (attempts: {[attempt.reply for attempt in self.attempts]})"
                )
            time.sleep(0.01)
        return self.messages

    def start(self) -> None:
        """Start the SMTP server thread."""
        self._controller.start()

    def stop(self) -> None:
        """Stop the SMTP server."""
        self._controller.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
