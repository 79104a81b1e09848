"""Outbound HTTP for webhooks, safe against SSRF and tarpits: global unicast addresses on allowed ports
only, pinned after the check, and a wall-clock deadline on the whole exchange."""

from __future__ import annotations

import http.client
import io
import ipaddress
import socket
import ssl
import time
from urllib.parse import urlsplit

MAX_URL = 2000
READ_LIMIT = 64 * 1024
DEFAULT_PORTS = frozenset({80, 443})

# IPv6 forms that carry an IPv4 address and reach it when routed (RFC 6052 NAT64, RFC 3056 6to4,
# IPv4-mapped): the embedded IPv4 address is what gets connected to, so it is the one checked.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
# Teredo hides its IPv4 server and client (obfuscated); nothing legitimate needs it as a webhook target.
_TEREDO = ipaddress.IPv6Network("2001::/32")


class BlockedTarget(ValueError):
    """The URL is not an allowed webhook target (scheme, credentials, port, or a non-public address)."""


class DeadlineExceeded(TimeoutError):
    """The receiver did not finish the exchange within the delivery's wall-clock deadline."""


def embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address routes to (IPv4-mapped, NAT64 well-known prefix, 6to4), if any."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return addr.sixtofour


def is_public(ip: str) -> bool:
    """Whether ip is a global unicast address, judged by the IPv4 address it embeds when it has one."""
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address):
        inner = embedded_ipv4(addr)
        if inner is not None:
            addr = inner
        elif addr not in _GLOBAL_UNICAST_V6 or addr in _TEREDO:
            # Outside 2000::/3 is everything else: ::/96 IPv4-compatible, loopback, ULA, link-local...
            return False
    return addr.is_global and not addr.is_multicast


def check_url(url: str, allowed_ports: frozenset[int] | None = DEFAULT_PORTS) -> tuple[str, str, int]:
    """Validate a webhook URL's shape and port (None allows any port); return (scheme, host, port)."""
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
    if allowed_ports is not None and port not in allowed_ports:
        allowed = ", ".join(str(p) for p in sorted(allowed_ports))
        raise BlockedTarget(f"Port {port} is not allowed for webhooks (allowed: {allowed}).")
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
            if not is_public(ip):
                raise BlockedTarget(f"The host {host!r} resolves to a non-public address.")
    return addresses[0]


class _Budget:
    """The wall-clock budget of one delivery: every socket wait gets at most what is left of it.

    A per-read timeout alone lets a receiver that drips a byte every few seconds hold the worker for as
    long as it likes; capping each wait at the time left bounds the whole exchange.
    """

    def __init__(self, deadline: float, per_wait: float) -> None:
        self.seconds = deadline
        self.ends = time.monotonic() + deadline
        self.per_wait = per_wait

    def wait_timeout(self) -> float:
        """The timeout for the next socket wait; raises DeadlineExceeded when nothing is left."""
        left = self.ends - time.monotonic()
        if left <= 0:
            raise self.exceeded()
        return min(self.per_wait, left)

    def arm(self, sock: socket.socket) -> None:
        """Give the socket's next wait the time left."""
        sock.settimeout(self.wait_timeout())

    def exceeded(self) -> DeadlineExceeded:
        """The error for a delivery out of time."""
        return DeadlineExceeded(f"the receiver did not answer within the {self.seconds:g} s deadline")

    def translate(self, exc: TimeoutError) -> TimeoutError:
        """A socket timeout past the deadline is the deadline's; before it, the per-wait timeout's."""
        return self.exceeded() if time.monotonic() >= self.ends else exc


class _BudgetedReader(io.RawIOBase):
    """The response's socket reader, with every read armed from the budget."""

    def __init__(self, raw: io.RawIOBase, sock: socket.socket, budget: _Budget) -> None:
        super().__init__()
        self._raw, self._sock, self._budget = raw, sock, budget

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int | None:  # type: ignore[override]
        self._budget.arm(self._sock)
        try:
            return self._raw.readinto(buffer)
        except TimeoutError as exc:
            raise self._budget.translate(exc) from exc

    def close(self) -> None:
        self._raw.close()  # gives the socket back: http.client closes it once the response is done
        super().close()


def _budgeted_response(budget: _Budget) -> type[http.client.HTTPResponse]:
    class BudgetedResponse(http.client.HTTPResponse):
        """An HTTPResponse whose status line, headers and body are all read within the budget."""

        def __init__(
            self, sock: socket.socket, debuglevel: int = 0, method: str | None = None, url: str | None = None
        ) -> None:
            super().__init__(sock, debuglevel, method, url)
            raw = self.fp.detach()  # detach: the old buffer must not close the socket's reader
            self.fp = io.BufferedReader(_BudgetedReader(raw, sock, budget))

    return BudgetedResponse


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the vetted address, whatever DNS says by now (no rebinding), within the budget."""

    def __init__(self, host: str, port: int, ip: str, budget: _Budget) -> None:
        super().__init__(host, port, timeout=budget.per_wait)
        self._ip, self._budget = ip, budget
        self.response_class = _budgeted_response(budget)

    def _open(self) -> socket.socket:
        return socket.create_connection((self._ip, self.port), self._budget.wait_timeout())

    def connect(self) -> None:
        self.sock = self._open()

    def send(self, data: bytes) -> None:  # type: ignore[override]
        if self.sock is None:
            self.connect()
        self._budget.arm(self.sock)
        try:
            super().send(data)
        except TimeoutError as exc:
            raise self._budget.translate(exc) from exc


class _PinnedHTTPS(_PinnedHTTP):
    """TLS to the vetted address, with the certificate checked against the URL's host name."""

    default_port = http.client.HTTPS_PORT

    def __init__(self, host: str, port: int, ip: str, budget: _Budget) -> None:
        super().__init__(host, port, ip, budget)
        self._tls = ssl.create_default_context()

    def connect(self) -> None:
        raw = self._open()
        # The handshake as a whole is bounded by the socket's timeout (CPython keeps one deadline for it).
        raw.settimeout(self._budget.wait_timeout())
        try:
            self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    allow_private: bool,
    deadline: float,
    allowed_ports: frozenset[int] | None = DEFAULT_PORTS,
) -> int:
    """POST body to url without following redirects; return the HTTP status.

    `timeout` bounds each socket wait and `deadline` the whole exchange from connect to the last byte
    read (DeadlineExceeded, a TimeoutError). Name resolution is not covered: the RQ job timeout is.
    """
    scheme, host, port = check_url(url, allowed_ports)
    ip = resolve_target(host, port, allow_private)
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    cls = _PinnedHTTPS if scheme == "https" else _PinnedHTTP
    conn = cls(host, port, ip, _Budget(deadline, timeout))
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read(READ_LIMIT)
        return response.status
    finally:
        conn.close()
