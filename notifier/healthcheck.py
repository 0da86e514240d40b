"""``datasaur-notifier healthcheck``: ask a running daemon's ``/healthz``.

The container image's ``HEALTHCHECK``. The address is the one the daemon serves, read
from the same config (``metrics.host`` and ``metrics.port``); a daemon listening on every
address (``0.0.0.0``, ``::``) is asked on loopback.
"""

from __future__ import annotations

import requests

from notifier.config import MetricsSettings
from notifier.errors import describe_error

WILDCARDS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}


def healthz_url(settings: MetricsSettings) -> str | None:
    """The URL of the daemon's ``/healthz``, or None when the config turns metrics off."""
    if settings.port is None:
        return None
    host = WILDCARDS.get(settings.host, settings.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}/healthz"


def probe(url: str, timeout: float) -> tuple[bool, str]:
    """Whether ``url`` answers 200, and what it said (or why it could not be asked)."""
    try:
        response = requests.get(url, timeout=timeout)
    except requests.RequestException as exc:
        return False, describe_error(exc)
    text = response.text.strip() or response.reason
    return response.status_code == 200, f"HTTP {response.status_code} {text}"
