"""Doctor group 4: the API listener. Its address is free (or held by the running
daemon, which answers ``/healthz`` as ``Server: datasaur-notifier``), and its tokens
meet the length rule."""

from __future__ import annotations

import errno
import socket

import requests

from notifier.config import Config
from notifier.config_service import MIN_TOKEN_LENGTH, ApiSettings, split_listen
from notifier.doctor.report import Check, fail, ok


def check_listener(config: Config) -> list[Check]:
    """The ``api`` section's checks (none when it is absent)."""
    if config.api is None:
        return [ok("api", "no api section: the HTTP API is off")]
    return [_address(config.api.listen), _tokens(config.api)]


def _address(listen: str) -> Check:
    host, port = split_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            return fail("api.listen", f"{listen}: cannot listen: {exc.strerror}", "api.listen")
        if _our_daemon(host, port):
            return ok("api.listen", f"{listen}: in use by the running daemon")
        return fail("api.listen", f"{listen}: in use by another program", "api.listen")
    return ok("api.listen", f"{listen}: free")


def _our_daemon(host: str, port: int) -> bool:
    name = f"[{host}]" if ":" in host else host
    try:
        answer = requests.get(f"http://{name}:{port}/healthz", timeout=2)
    except requests.RequestException:
        return False
    return answer.headers.get("server", "").startswith("datasaur-notifier")


def _tokens(api: ApiSettings) -> Check:
    short = [token.name for token in api.tokens if len(token.token) < MIN_TOKEN_LENGTH]
    if short:
        names = ", ".join(short)
        return fail(
            "api.tokens", f"shorter than {MIN_TOKEN_LENGTH} characters: {names}", "api.tokens"
        )
    count = len(api.tokens)
    return ok("api.tokens", f"{count} token(s), each at least {MIN_TOKEN_LENGTH} characters")
