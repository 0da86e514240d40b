"""A local webhook endpoint that records what the daemon sends (used by tests and the demo)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from notifier import signing
from notifier.httpserver import LocalHTTPServer, QuietHandler, Reply, json_reply, parse_json


@dataclass(frozen=True)
class ReceivedWebhook:
    """One POST the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    received_at: float
    signature_ok: bool | None
    answered_status: int


@dataclass
class _Rule:
    status: int
    count: int | None
    delay: float
    headers: dict[str, str]


class _ReceiverHandler(QuietHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server names it so
        """Record the webhook and answer per the current rule."""
        receiver = self.owner
        assert isinstance(receiver, WebhookReceiver)
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.reply(receiver.handle(self.path, headers, self.read_body()))


class WebhookReceiver(LocalHTTPServer):
    """Accepts POSTs on any path, records them, answers with programmable statuses."""

    handler_class = _ReceiverHandler

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, secret: str | None = None):
        if secret is not None:
            signing.decode_secret(secret)
        super().__init__(host, port)
        self._secret = secret
        self._lock = threading.Lock()
        self._received: list[ReceivedWebhook] = []
        self._rules: list[_Rule] = []
        self.on_receive: Callable[[ReceivedWebhook], None] | None = None

    @property
    def received(self) -> list[ReceivedWebhook]:
        """A copy of everything received so far, oldest first."""
        with self._lock:
            return list(self._received)

    def clear(self) -> None:
        """Forget what was received."""
        with self._lock:
            self._received.clear()

    def respond_with(
        self,
        status: int,
        *,
        count: int | None = None,
        delay: float = 0,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``count`` POSTs (None: all, until changed) with ``status``.

        Rules queue up in order; a new rule replaces a pending "forever" one. With no rule
        left the receiver answers 200.
        """
        with self._lock:
            if self._rules and self._rules[-1].count is None:
                self._rules.pop()
            self._rules.append(_Rule(status, count, delay, dict(headers or {})))

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> Reply | None:
        """Record one POST and return the answer (None if stopped while delaying)."""
        rule = self._next_rule()
        webhook = ReceivedWebhook(
            path=path,
            headers=headers,
            body=body,
            json=parse_json(body),
            received_at=time.time(),
            signature_ok=self._check_signature(headers, body),
            answered_status=rule.status,
        )
        with self._lock:
            self._received.append(webhook)
        if self.on_receive is not None:
            self.on_receive(webhook)
        if rule.delay and self.pause(rule.delay):
            return None
        return json_reply(rule.status, {"status": rule.status}, rule.headers)

    def wait_for(
        self,
        predicate_or_count: int | Callable[[ReceivedWebhook], bool],
        timeout: float = 10,
    ) -> list[ReceivedWebhook]:
        """Wait for ``count`` webhooks (returns all) or for matches of ``predicate`` (returns them).

        Raises TimeoutError describing what did arrive.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = _select(self.received, predicate_or_count)
            if found:
                return found
            if time.monotonic() >= deadline:
                raise TimeoutError(_timeout_message(predicate_or_count, timeout, self.received))
            time.sleep(0.01)

    def _next_rule(self) -> _Rule:
        with self._lock:
            if not self._rules:
                return _Rule(200, None, 0, {})
            rule = self._rules[0]
            if rule.count is not None:
                rule.count -= 1
                if rule.count <= 0:
                    self._rules.pop(0)
            return rule

    def _check_signature(self, headers: dict[str, str], body: bytes) -> bool | None:
        if self._secret is None:
            return None
        try:
            signing.verify(self._secret, headers, body)
        except signing.InvalidSignature:
            return False
        return True


def _select(
    webhooks: list[ReceivedWebhook],
    predicate_or_count: int | Callable[[ReceivedWebhook], bool],
) -> list[ReceivedWebhook]:
    if isinstance(predicate_or_count, int):
        return webhooks if len(webhooks) >= predicate_or_count else []
    return [webhook for webhook in webhooks if predicate_or_count(webhook)]


def _timeout_message(
    predicate_or_count: int | Callable[[ReceivedWebhook], bool],
    timeout: float,
    webhooks: list[ReceivedWebhook],
) -> str:
    wanted = (
        f"{predicate_or_count} webhook(s)"
        if isinstance(predicate_or_count, int)
        else "a webhook matching the predicate"
    )
    got = [(webhook.path, webhook.answered_status, webhook.json) for webhook in webhooks]
    return f"expected {wanted} within {timeout}s; received {len(webhooks)}: {got!r}"
