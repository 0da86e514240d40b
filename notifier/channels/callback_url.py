"""Webhooks to a job's own ``callback_url`` (registered over the HTTP API).

Exactly like a configured webhook -- same payload, Standard Webhooks headers, signed
with ``api.callback_secret`` when set -- but the address is checked before each
attempt (:func:`notifier.callback_urls.resolve_checked`) and the connection goes to the
address that was checked: urllib3 straight to the IP, with the host name kept for the
``Host`` header, TLS SNI and certificate checks, and no proxy environment variables
that could route around the check. Redirects are never followed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import urllib3
from pydantic import SecretStr

from notifier import callback_urls
from notifier.channels.base import Outcome
from notifier.channels.webhook import WebhookChannel, WebhookSettings, classify
from notifier.errors import describe_error


class CallbackUrlChannel(WebhookChannel):
    """One lane's channel: every callback URL of one origin (``url:<origin>``)."""

    def __init__(
        self,
        name: str,
        secret: SecretStr | None,
        allowed_prefixes: Sequence[str],
        timeout: float,
    ) -> None:
        origin = name.removeprefix(callback_urls.CALLBACK_PREFIX)
        settings = WebhookSettings.model_construct(  # the secret was validated in the config
            type="webhook", url=origin, secret=None if secret is None else (secret,)
        )
        super().__init__(name, settings, timeout)
        self.allowed_prefixes = list(allowed_prefixes)

    def send(self, delivery_id: str, payload: dict[str, Any]) -> Outcome:
        """A callback-URL lane only sends deliveries that carry their URL."""
        return Outcome(ok=False, detail="no callback URL stored with this delivery")

    def send_to(self, url: str, delivery_id: str, payload: dict[str, Any]) -> Outcome:
        """POST to ``url`` through the address checked just now."""
        try:
            target, address = callback_urls.resolve_checked(url, self.allowed_prefixes)
        except callback_urls.Refused as exc:
            return Outcome(ok=False, detail=f"refused: {exc}")
        body = self.body(payload)
        now = time.time()
        headers = self.headers(delivery_id, body, int(now))
        netloc = target.origin.split("://", 1)[1]
        headers["host"] = netloc.removesuffix(":443" if target.scheme == "https" else ":80")
        pool = _pool(target, address, self.timeout)
        path = target.path + (f"?{target.query}" if target.query else "")
        try:
            response = pool.urlopen(
                "POST", path, body=body, headers=headers, redirect=False, retries=False
            )
        except urllib3.exceptions.NewConnectionError as exc:  # before TimeoutError, its base
            return Outcome(ok=False, detail=f"connection failed: {describe_error(exc)}")
        except urllib3.exceptions.TimeoutError:
            return Outcome(ok=False, detail=f"timed out after {self.timeout:g}s")
        except urllib3.exceptions.HTTPError as exc:
            return Outcome(ok=False, detail=f"connection failed: {describe_error(exc)}")
        finally:
            pool.close()
        return classify(response.status, response.headers.get("Retry-After"), now)


def _pool(target: callback_urls.Target, address: str, timeout: float) -> urllib3.HTTPConnectionPool:
    """A one-request connection pool to ``address`` that still speaks to ``target.host``."""
    limits = urllib3.Timeout(connect=timeout, read=timeout)
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            address,
            target.port,
            timeout=limits,
            maxsize=1,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
        )
    return urllib3.HTTPConnectionPool(address, target.port, timeout=limits, maxsize=1)
