"""Doctor group 3: each callback, reached without sending anything. A webhook's host
resolves and a TCP connection opens (TLS too for ``https``, its certificate checked), or,
when the environment sends it through a proxy, the proxy accepts connections;
SMTP connects, says EHLO, does STARTTLS/TLS as configured, logs in when credentials
are set, then QUITs (no message); an Apprise URL parses."""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
from urllib.parse import SplitResult, urlsplit

import requests

from notifier.channels.apprise import AppriseSettings, service
from notifier.channels.base import CallbackSettings, create
from notifier.channels.email import EmailChannel, EmailSettings
from notifier.channels.webhook import WebhookSettings
from notifier.config import Config
from notifier.doctor.report import Check, fail, ok
from notifier.errors import describe_error
from notifier.keepalive import tls_context


def check_callbacks(config: Config) -> list[Check]:
    """One check per callback, in the config's order."""
    timeout = config.delivery.timeout
    return [_check(name, settings, timeout) for name, settings in config.callbacks.items()]


def _check(name: str, settings: CallbackSettings, timeout: float) -> Check:
    label = f"callbacks.{name}"
    if isinstance(settings, WebhookSettings):
        return _webhook(label, settings.url, timeout)
    if isinstance(settings, EmailSettings):
        channel = create(name, settings, timeout)
        assert isinstance(channel, EmailChannel)
        return _smtp(label, channel, settings)
    if isinstance(settings, AppriseSettings):
        try:
            service(settings.url.get_secret_value(), timeout)
        except ValueError as exc:
            return fail(label, str(exc), f"{label}.url")
        return ok(label, "Apprise URL parses (nothing sent)")
    return ok(label, f"{settings.type}: nothing to check")


def _webhook(label: str, url: str, timeout: float) -> Check:
    parts = urlsplit(url)
    proxies = requests.utils.get_environ_proxies(url)
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if proxy:  # deliveries go through it (requests reads the same variables)
        return _proxy(label, urlsplit(proxy), parts.scheme, timeout)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    fix = f"{label}.url"
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return fail(label, f"{host} does not resolve: {describe_error(exc)}", fix)
    try:
        with socket.create_connection((host, port), timeout) as sock:
            if parts.scheme == "https":
                bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
                with tls_context(bundle).wrap_socket(sock, server_hostname=host):
                    pass
    except OSError as exc:
        return fail(label, f"{host}:{port}: cannot connect: {describe_error(exc)}", fix)
    tls = ", TLS certificate valid" if parts.scheme == "https" else ""
    where = addresses[0][4][0]
    return ok(label, f"{host}:{port} ({where}) accepts connections{tls} (nothing sent)")


def _proxy(label: str, proxy: SplitResult, scheme: str, timeout: float) -> Check:
    """The proxy a webhook is sent through accepts connections (its credentials, if
    any, never shown); the webhook's own host is reached through it, so not checked."""
    host = proxy.hostname or ""
    port = proxy.port or (443 if proxy.scheme == "https" else 80)
    variable = f"{scheme.upper()}_PROXY"
    try:
        with socket.create_connection((host, port), timeout):
            pass
    except OSError as exc:
        detail = f"the proxy {host}:{port} ({variable}): cannot connect: {describe_error(exc)}"
        return fail(label, detail, f"{variable} or NO_PROXY (the environment), {label}.url")
    return ok(
        label,
        f"through the proxy {host}:{port} ({variable}), which accepts connections; the "
        "webhook's host is reached through it (not checked; nothing sent)",
    )


def _smtp(label: str, channel: EmailChannel, settings: EmailSettings) -> Check:
    where = f"{settings.smtp_host}:{settings.port}"
    try:
        with channel.connect() as client:
            client.ehlo_or_helo_if_needed()
            if settings.username is not None and settings.password is not None:
                client.login(settings.username, settings.password.get_secret_value())
    except smtplib.SMTPAuthenticationError as exc:
        detail = f"{where} refused the login ({exc.smtp_code})"
        return fail(label, detail, f"{label}.username, {label}.password")
    except smtplib.SMTPNotSupportedError as exc:
        return fail(label, f"{where}: {exc}", f"{label}.security")
    except ssl.SSLError as exc:  # the TLS handshake: the certificate, or TLS on a plain port
        return fail(label, f"{where}: TLS: {describe_error(exc)}", f"{label}.security")
    except (OSError, smtplib.SMTPException) as exc:
        return fail(
            label, f"{where}: {describe_error(exc)}", f"{label}.smtp_host, {label}.smtp_port"
        )
    login = ", logged in" if settings.username is not None else ""
    return ok(label, f"{where}: EHLO, {settings.security}{login} (nothing sent)")
