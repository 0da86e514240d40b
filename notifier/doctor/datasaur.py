"""Doctor group 2: Datasaur. The token request (time, lifetime), then one getJobs for a
made-up id with the selection the daemon would use: validation runs before execution,
so this works where introspection is off. It tells which selection the server accepts,
how it answers an unknown id (``null``, omitted, or an error) and how fast."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

from notifier.client_cert import CERT_KEYS
from notifier.config import Config, DatasaurSettings
from notifier.datasaur import (
    ApiUnavailable,
    AuthenticationFailed,
    DatasaurClient,
    SchemaUnsupported,
    TokenRefused,
)
from notifier.datasaur_answers import SELECTION_TIERS, error_text
from notifier.doctor.report import Check, fail, ok, warn

CREDENTIALS = "datasaur.client_id, datasaur.client_secret"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The client's own log lines (token, step down) are said by the checks instead."""
    logger = logging.getLogger("notifier.datasaur")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _endpoint_key(settings: DatasaurSettings, token: bool, error: str) -> str:
    """What to change when the endpoint could not be reached: the client certificate
    when the handshake wanted one, else the URL."""
    if CERT_KEYS in error:
        return "datasaur.client_cert, datasaur.client_key"
    if token and settings.token_url:
        return "datasaur.token_url"
    return "datasaur.graphql_url"


def check_datasaur(config: Config) -> list[Check]:
    """The token request, then the probe."""
    client = DatasaurClient(config.datasaur)
    with _quiet():
        token = _token(client)
        if token.result == "FAIL":
            return [token]
        return [token, *_probe(client)]


def _token(client: DatasaurClient) -> Check:
    if not client.tokens.refreshable:
        return ok("datasaur.token", "a fixed datasaur.token (nothing to request)")
    started = time.monotonic()
    try:
        client.tokens.get()
    except AuthenticationFailed as exc:
        return fail("datasaur.token", str(exc), CREDENTIALS)
    except ApiUnavailable as exc:
        return fail("datasaur.token", str(exc), _endpoint_key(client.settings, True, str(exc)))
    took = (time.monotonic() - started) * 1000
    return ok(
        "datasaur.token", f"obtained in {took:.0f} ms, valid for {client.tokens.lifetime:.0f}s"
    )


def _probe(client: DatasaurClient) -> list[Check]:
    made_up = f"DoctorProbe:{uuid.uuid4()}"
    started = time.monotonic()
    try:
        body = client.ask_jobs([made_up])
    except TokenRefused as exc:
        return [fail("datasaur.token", str(exc), "datasaur.token")]
    except AuthenticationFailed as exc:
        return [fail("datasaur.token", str(exc), CREDENTIALS)]
    except SchemaUnsupported as exc:
        return [fail("datasaur.schema", str(exc))]
    except ApiUnavailable as exc:
        return [fail("datasaur.api", str(exc), _endpoint_key(client.settings, False, str(exc)))]
    took = (time.monotonic() - started) * 1000
    return [_schema(client.tier, took), _unknown_ids(body, made_up)]


def _schema(tier: int, took: float) -> Check:
    fields = SELECTION_TIERS[tier]
    where = f"selection {tier + 1} of {len(SELECTION_TIERS)} accepted ({fields}); answered in"
    if tier == 0:
        return ok("datasaur.schema", f"today's schema: {where} {took:.0f} ms")
    return warn(
        "datasaur.schema",
        f"an older Datasaur server: {where} {took:.0f} ms; the daemon steps down to it once "
        "(one WARNING, one rejected request) and cannot see updatedAt",
    )


def _unknown_ids(body: dict[str, Any], made_up: str) -> Check:
    data = body.get("data")
    result = data.get("result") if isinstance(data, dict) else None
    name = "datasaur.unknown_ids"
    if isinstance(result, list) and not body.get("errors"):
        if not result:
            return ok(name, "an unknown id is omitted from getJobs' answer (shown as not found)")
        if result == [None]:
            return ok(name, "an unknown id comes back as null (shown as not found)")
        job = result[0] if isinstance(result[0], dict) else {}
        return warn(
            name,
            f"getJobs answered the made-up id {made_up} with a job (status "
            f"{job.get('status')!r}), not null: a stand-in that makes up jobs? (the daemon "
            "would watch such a job like any other)",
        )
    return warn(
        name,
        f"an unknown id comes back as an error ({error_text(body)}): the daemon shows it "
        "as the job's last_error instead of not found",
    )
