"""Client certificates, for a self-hosted Datasaur behind an ingress that requires them.

``datasaur.client_cert`` and ``datasaur.client_key`` are PEM files' paths, or their PEM
text (through ``${file:}``/``${credential:}``). The key is a secret: no message here
ever contains it, its path or its content.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from dataclasses import dataclass
from typing import Any

import requests.adapters

PEM_MARK = "-----BEGIN"
CERT_KEYS = "datasaur.client_cert and datasaur.client_key"
# How a TLS connection refused for want of a (good) client certificate ends: an alert, or
# the server closing it (TLS 1.3 may close before the client reads the alert).
_REQUIRED = (
    "CERTIFICATE REQUIRED",
    "CERTIFICATE_REQUIRED",
    "HANDSHAKE FAILURE",
    "BAD CERTIFICATE",
    "UNKNOWN CA",
    "EOF OCCURRED IN VIOLATION OF PROTOCOL",
    "UNEXPECTED_EOF",
)


class ClientCertError(OSError):
    """The client certificate or its key cannot be loaded."""


@dataclass(frozen=True, repr=False)
class ClientCert:
    """A client certificate and its key (each a path or PEM text)."""

    cert: str
    key: str

    def load_into(self, context: ssl.SSLContext) -> None:
        """Present this certificate in ``context``'s handshakes."""
        try:
            with tempfile.TemporaryDirectory() as folder:  # only for PEM text: mode 0700
                cert = _as_file(self.cert, folder, "cert.pem")
                key = _as_file(self.key, folder, "key.pem")
                context.load_cert_chain(cert, key)
        except ssl.SSLError as exc:
            reason = exc.reason or "not a PEM certificate and matching key"
            raise ClientCertError(f"cannot load {CERT_KEYS}: {reason}") from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ClientCertError(f"cannot read {CERT_KEYS}: {reason}") from None


def _as_file(value: str, folder: str, name: str) -> str:
    if not value.lstrip().startswith(PEM_MARK):
        return value
    path = os.path.join(folder, name)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(value if value.endswith("\n") else value + "\n")
    return path


def hint(error: str) -> str:
    """``error``, plus what to set when it says the server wanted a client certificate."""
    if any(mark in error.upper() for mark in _REQUIRED):
        return f"{error} (if the server requires a client certificate: set {CERT_KEYS})"
    return error


class ClientCertAdapter(requests.adapters.HTTPAdapter):
    """A requests adapter that presents ``client`` on every TLS connection."""

    def __init__(self, client: ClientCert) -> None:
        self.client = client
        self.failure: ClientCertError | None = None
        super().__init__()

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        try:
            self.client.load_into(context)
        except ClientCertError as exc:
            self.failure = exc
        return context

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """The pools' TLS context carries the certificate."""
        kwargs["ssl_context"] = self._context()
        super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        """The same through a proxy."""
        kwargs["ssl_context"] = self._context()
        return super().proxy_manager_for(proxy, **kwargs)

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        """Send, unless the certificate could not be loaded (then say so)."""
        if self.failure is not None:
            raise requests.exceptions.SSLError(str(self.failure))
        return super().send(request, *args, **kwargs)
