"""Callers' own webhook URLs (``callback_url``): what may be registered, where it may go.

Two checks, because DNS can change between them:

- At registration, :func:`allowed` parses the URL and the operator's
  ``api.allow_callback_urls`` prefixes (scheme, host, port, path) -- a plain string
  prefix would let ``https://hooks.example.com.evil.net/`` through.
- Before each delivery, :func:`resolve_checked` resolves the host and refuses loopback,
  link-local, private and other special addresses (cloud metadata included), unless the
  matching prefix names that address literally. The delivery then connects to the
  address that was checked.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
CALLBACK_PREFIX = "url:"  # deliveries to a callback_url are shown as url:<origin>

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """A callback URL that may not be used; the message says why."""


@dataclass(frozen=True)
class Target:
    """A parsed http(s) URL."""

    scheme: str
    host: str  # lower case, IPv6 without brackets
    port: int
    path: str
    query: str

    @property
    def origin(self) -> str:
        """``scheme://host:port``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def literal_ip(self) -> IPAddress | None:
        """The host, if it is an IP address."""
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None


def parse(url: str) -> Target:
    """Split an absolute http(s) URL; :class:`Refused` if it is not one."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused(f"not a valid URL: {exc}") from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise Refused("not an absolute http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise Refused("credentials in the URL are not allowed")
    if any(ord(char) < 0x21 or char == "\x7f" for char in url):
        raise Refused("the URL contains spaces or control characters")
    if {".", ".."} & set(unquote(parts.path).replace("\\", "/").split("/")):
        # servers resolve "/team/../admin" to "/admin": outside the prefix it matched
        raise Refused('the path contains "." or ".." segments')
    return Target(
        scheme=parts.scheme,
        host=parts.hostname.lower().rstrip("."),
        port=port or DEFAULT_PORTS[parts.scheme],
        path=parts.path or "/",
        query=parts.query,
    )


def _under(target: Target, prefix: Target) -> bool:
    if (target.scheme, target.host, target.port) != (prefix.scheme, prefix.host, prefix.port):
        return False
    if prefix.path.endswith("/"):
        return target.path.startswith(prefix.path)
    return target.path == prefix.path or target.path.startswith(prefix.path + "/")


def matching_prefix(url: str, prefixes: Iterable[str]) -> Target:
    """The allowed prefix ``url`` is under; :class:`Refused` if none (or not https)."""
    target = parse(url)
    for text in prefixes:
        prefix = parse(text)
        if _under(target, prefix):
            return prefix
    if target.scheme == "http":
        raise Refused("not under an allowed prefix (http:// only where a prefix says http://)")
    raise Refused("not under an allowed callback URL prefix (api.allow_callback_urls)")


def origin_of(url: str) -> str:
    """The delivery lane (and ``deliveries`` callback name) of a callback URL."""
    return CALLBACK_PREFIX + parse(url).origin


NAT64 = ipaddress.ip_network("64:ff9b::/96")


def forbidden(address: IPAddress) -> bool:
    """Loopback, link-local (cloud metadata), private, or otherwise not public.

    IPv6 forms that carry an IPv4 address (mapped, 6to4, Teredo, NAT64) are judged by
    the IPv4 address they lead to.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = [address.ipv4_mapped, address.sixtofour]
        if address.teredo is not None:
            embedded.append(address.teredo[1])
        if address in NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if any(v4 is not None and forbidden(v4) for v4 in embedded):
            return True
    return not address.is_global or address.is_multicast


def resolve_checked(url: str, prefixes: Sequence[str]) -> tuple[Target, str]:
    """The URL's target and the one address to connect to, checked now.

    :class:`Refused` if the URL is no longer under an allowed prefix, if the host does
    not resolve, or if any address it resolves to is forbidden (unless the prefix
    names that very address).
    """
    prefix = matching_prefix(url, prefixes)
    target = parse(url)
    allowed_literal = prefix.literal_ip
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise Refused(f"cannot resolve {target.host}: {exc}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise Refused(f"{target.host} has no address")
    for address in addresses:
        if forbidden(address) and address != allowed_literal:
            raise Refused(
                f"{target.host} resolves to {address}, a loopback, private or link-local"
                " address (allowed only when the prefix names it as an IP)"
            )
    return target, str(addresses[0])
