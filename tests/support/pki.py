"""A throwaway test PKI made with openssl: a CA, a server certificate for 127.0.0.1 and
localhost, and a client certificate (clientAuth), all signed by the CA."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_pki(folder: Path) -> dict[str, Path]:
    """PEM files in ``folder``: ``ca``, ``ca_key``, ``server``, ``server_key``, ``client``,
    ``client_key``."""
    files = {name: folder / f"{name}.pem" for name in ("ca", "ca_key", "server", "server_key")}
    files |= {"client": folder / "client.pem", "client_key": folder / "client_key.pem"}
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=Test CA",
            "-keyout", str(files["ca_key"]), "-out", str(files["ca"]))  # fmt: skip
    for name, subject, extension in (
        ("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ("client", "/CN=datasaur-notifier", "extendedKeyUsage=clientAuth"),
    ):
        request, extra = folder / f"{name}.csr", folder / f"{name}.ext"
        extra.write_text(extension + "\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject,
                "-keyout", str(files[f"{name}_key"]), "-out", str(request))  # fmt: skip
        openssl("x509", "-req", "-in", str(request), "-CA", str(files["ca"]),
                "-CAkey", str(files["ca_key"]), "-CAcreateserial", "-days", "1",
                "-extfile", str(extra), "-out", str(files[name]))  # fmt: skip
    return files


def server_context(pki: dict[str, Path], *, require_client: bool = False) -> ssl.SSLContext:
    """A server-side TLS context with the test server certificate; ``require_client``:
    a client certificate by the test CA is required (``ssl.CERT_REQUIRED``)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki["ca"]))
    context.load_cert_chain(pki["server"], pki["server_key"])
    if require_client:
        context.verify_mode = ssl.CERT_REQUIRED
    return context
