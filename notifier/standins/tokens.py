"""The stand-in's OAuth client-credentials endpoint: the tokens it issued, which expire,
can be revoked, and the faults queued for the endpoint itself."""

from __future__ import annotations

import hmac
import math
import secrets
import threading
import time
from collections import deque
from typing import Any
from urllib.parse import parse_qs

from notifier.httpserver import Reply, json_reply
from notifier.standins.faults import TOKEN_FAULT_KINDS


class TokenEndpoint:
    """``POST /api/oauth/token`` and the check of a request's bearer token.

    ``client_id``/``client_secret`` None: any non-empty pair is accepted;
    ``static_token``: a token that is always valid (``datasaur.token``)."""

    def __init__(
        self,
        client_id: str | None,
        client_secret: str | None,
        static_token: str | None,
        ttl: float,
    ) -> None:
        self._client_id, self._client_secret = client_id, client_secret
        self._static_token = static_token
        self._ttl = ttl
        self._lock = threading.Lock()
        self._issued: dict[str, float] = {}  # token: expiry (monotonic)
        self._faults: deque[str] = deque()

    def inject(self, kind: str, count: int = 1) -> None:
        """Queue ``count`` faults ("http_500" or "http_401")."""
        if kind not in TOKEN_FAULT_KINDS:
            raise ValueError(f"unknown token fault kind {kind!r}")
        with self._lock:
            self._faults.extend([kind] * count)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def issued(self) -> list[str]:
        """The tokens handed out and not yet expired or revoked (tests look for them in
        the daemon's output)."""
        now = time.monotonic()
        with self._lock:
            return [token for token, expiry in self._issued.items() if expiry > now]

    def revoke(self) -> None:
        """Invalidate every issued token (the static token stays valid)."""
        with self._lock:
            self._issued.clear()

    def answer(self, body: bytes) -> Reply:
        """Answer one token request (a form body)."""
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        if fault == "http_500":
            return Reply(500, b"Internal Server Error", "text/plain")
        form = {
            name: values[0] for name, values in parse_qs(body.decode("utf-8", "replace")).items()
        }
        if form.get("grant_type") != "client_credentials":
            return json_reply(400, {"error": "unsupported_grant_type"})
        if fault == "http_401" or not self._credentials_ok(form):
            return json_reply(401, {"error": "invalid_client"})
        return json_reply(200, self._issue())

    def accepts(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header carries a valid bearer token."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return False
        if self._static_token and hmac.compare_digest(token, self._static_token):
            return True
        with self._lock:
            expiry = self._issued.get(token)
        return expiry is not None and expiry > time.monotonic()

    def _credentials_ok(self, form: dict[str, str]) -> bool:
        client_id = form.get("client_id", "")
        client_secret = form.get("client_secret", "")
        if self._client_id is None or self._client_secret is None:
            return bool(client_id and client_secret)
        return hmac.compare_digest(client_id, self._client_id) and hmac.compare_digest(
            client_secret, self._client_secret
        )

    def _issue(self) -> dict[str, Any]:
        token = secrets.token_hex(20)  # opaque, 40 hex digits, like Datasaur's
        now = time.monotonic()
        with self._lock:
            self._issued = {key: expiry for key, expiry in self._issued.items() if expiry > now}
            self._issued[token] = now + self._ttl
        return {"access_token": token, "token_type": "bearer", "expires_in": math.ceil(self._ttl)}
