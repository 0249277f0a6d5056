"""Posting to a receiver: a URL check against server-side request forgery, and one POST
with a short timeout, no redirects followed, to the address that was checked.

Outside development (``WEBHOOKS_ALLOW_HTTP`` / ``WEBHOOKS_ALLOW_PRIVATE_ADDRESSES`` off,
the production defaults) a URL must be HTTPS, and every address its host resolves to must
be public: loopback, private, link-local (cloud metadata at 169.254.169.254), multicast,
reserved and unspecified addresses are refused, at registration and again before each
POST (a name may resolve elsewhere later). The connection goes to the address checked,
not to a second lookup (no DNS rebinding between check and connect); TLS still verifies
the certificate against the host name.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from billing.webhooks.exceptions import InvalidEndpointUrl

RESPONSE_KEEP_BYTES = 1000
_READ_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


@dataclass(frozen=True)
class Response:
    status: int
    body: str
    duration_ms: int


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str, *, resolve: bool = True) -> Target:
    """The URL parsed and its host's address chosen, or InvalidEndpointUrl saying why."""
    if not isinstance(url, str) or not url or len(url) > 2000 or url != url.strip():
        raise InvalidEndpointUrl("give the receiver's full URL (https://...)")
    parts = urlsplit(url)
    allowed = {"https", "http"} if settings.WEBHOOKS_ALLOW_HTTP else {"https"}
    if parts.scheme not in allowed:
        raise InvalidEndpointUrl(f"the URL must start with https:// (not {parts.scheme or '?'}://)")
    if not parts.hostname or parts.username or parts.password:
        raise InvalidEndpointUrl("the URL needs a host name and no user name or password")
    if parts.fragment:
        raise InvalidEndpointUrl("the URL must not have a #fragment")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidEndpointUrl("the URL's port is not a number from 1 to 65535") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname
    if not resolve:
        return Target(parts.scheme, host, port, path, "")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise InvalidEndpointUrl(f"the host {host!r} cannot be resolved") from None
    addresses = sorted({str(info[4][0]) for info in infos})
    if not settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES:
        internal = [a for a in addresses if not _public(a)]
        if internal or not addresses:
            raise InvalidEndpointUrl(
                f"the host {host!r} resolves to an internal address; webhooks go only to"
                " public addresses"
            )
    return Target(parts.scheme, host, port, path, addresses[0])


def _connection(target: Target, timeout: float) -> http.client.HTTPConnection:
    connection: Any
    if target.scheme == "https":
        connection = http.client.HTTPSConnection(
            target.host, target.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(target.host, target.port, timeout=timeout)

    def to_checked_address(address: Any, timeout: Any = None, source: Any = None) -> socket.socket:
        return socket.create_connection((target.address, target.port), timeout, source)

    # http.client connects through this attribute; TLS then wraps the socket with the
    # host name (certificate checked against it), so only the address lookup is ours.
    connection._create_connection = to_checked_address
    return connection


def _read_until(answer: http.client.HTTPResponse, deadline: float) -> bytes:
    """At most _READ_LIMIT bytes of the answer, read before ``deadline`` (a receiver that
    drips its answer a byte at a time does not hold the worker past the timeout)."""
    chunks: list[bytes] = []
    size = 0
    while size < _READ_LIMIT:
        if time.monotonic() > deadline:
            raise TimeoutError("the receiver's answer took too long")
        chunk = answer.read1(min(4096, _READ_LIMIT - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def post(url: str, body: bytes, headers: dict[str, str]) -> Response:
    """POST ``body`` once; redirects are answers (3xx), never followed. Raises
    InvalidEndpointUrl (refused address) or OSError (connection, TLS, timeout)."""
    target = check_url(url)
    timeout = float(settings.WEBHOOKS_TIMEOUT_SECONDS)
    started = time.monotonic()
    connection = _connection(target, timeout)
    try:
        connection.request(
            "POST",
            target.path,
            body=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "Tillit-Webhooks/1",
                **headers,
            },
        )
        answer = connection.getresponse()
        status = answer.status
        raw = _read_until(answer, started + timeout)
    finally:
        connection.close()
    duration = int((time.monotonic() - started) * 1000)
    text = raw[:RESPONSE_KEEP_BYTES].decode("utf-8", errors="replace")
    return Response(status=status, body=text, duration_ms=duration)
