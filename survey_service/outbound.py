"""Outbound HTTP for webhooks, safe against SSRF: public addresses only, pinned after the check."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from urllib.parse import urlsplit

MAX_URL = 2000
READ_LIMIT = 64 * 1024


class BlockedTarget(ValueError):
    """The URL is not an allowed webhook target (scheme, credentials, or a non-public address)."""


def _is_public(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_global and not addr.is_multicast


def check_url(url: str) -> tuple[str, str, int]:
    """Validate a webhook URL's shape; return (scheme, host, port)."""
    if len(url) > MAX_URL:
        raise BlockedTarget("The URL is too long.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BlockedTarget("Use an http:// or https:// URL with a host.")
    if parts.username or parts.password:
        raise BlockedTarget("Credentials in the URL are not allowed; the body is signed instead.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise BlockedTarget("The port is not valid.") from exc
    return parts.scheme, parts.hostname, port


def resolve_target(host: str, port: int, allow_private: bool) -> str:
    """Resolve host and return one address to connect to; every address must be public unless allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise BlockedTarget(f"The host {host!r} does not resolve.") from exc
    addresses = sorted({str(info[4][0]) for info in infos})
    if not addresses:
        raise BlockedTarget(f"The host {host!r} does not resolve.")
    if not allow_private:
        for ip in addresses:
            if not _is_public(ip):
                raise BlockedTarget(f"The host {host!r} resolves to a non-public address.")
    return addresses[0]


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the vetted address, whatever DNS says by now (no rebinding)."""

    def __init__(self, host: str, port: int, ip: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._ip = ip

    def connect(self) -> None:
        self.sock = socket.create_connection((self._ip, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """TLS to the vetted address, with the certificate checked against the URL's host name."""

    def __init__(self, host: str, port: int, ip: str, timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._ip = ip

    def connect(self) -> None:
        raw = socket.create_connection((self._ip, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float, allow_private: bool) -> int:
    """POST body to url without following redirects; return the HTTP status."""
    scheme, host, port = check_url(url)
    ip = resolve_target(host, port, allow_private)
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    cls = _PinnedHTTPS if scheme == "https" else _PinnedHTTP
    conn = cls(host, port, ip, timeout)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read(READ_LIMIT)
        return response.status
    finally:
        conn.close()
