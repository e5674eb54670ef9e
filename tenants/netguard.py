"""Where a tenant's settings may make this server connect: resolve once, check, pin.

A tenant types a host name (a webhook URL, a network printer); the server then connects to
it from inside the platform's network. Two rules make that safe:

- Every address the name resolves to must pass the caller's test (`is_public` for webhooks,
  the platform's printer networks for printers). One bad address refuses the name: a name
  that resolves to a public and a private address must not leave the choice to chance.
- The connection goes to an address that was checked, never to the name again. Resolving
  twice (once to check, once to connect) lets a name with a short TTL answer a public
  address to the check and 127.0.0.1 to the connection (DNS rebinding).

Used by tenants/webhooks.py and equipment/destinations.py; knows nothing of either.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterable
from typing import NamedTuple
from urllib.parse import urlsplit

from django.utils.translation import gettext as _

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 ranges that carry an IPv4 address the network will reach: NAT64's well-known prefix
# (RFC 6052) — 64:ff9b::7f00:1 is 127.0.0.1 behind a NAT64 gateway.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refused(Exception):
    """A destination the platform does not allow; the message may be shown to the tenant."""


class NotFound(Refused):
    """The name does not resolve."""


class NotAllowed(Refused):
    """The name resolves to an address the caller's test refuses."""


class Address(NamedTuple):
    """One checked address, as getaddrinfo gave it: what `connect` connects to."""

    family: int
    sockaddr: tuple

    @property
    def ip(self) -> IPAddress:
        return ipaddress.ip_address(self.sockaddr[0])


def unwrap(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, NAT64), else `ip` itself.

    `::ffff:127.0.0.1` is loopback on a dual-stack socket; it must be judged as 127.0.0.1.
    """
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def is_public(ip: IPAddress | str) -> bool:
    """Whether `ip` is a globally reachable unicast address: not loopback, private, CGNAT
    (100.64/10), link-local, multicast, reserved, unspecified, nor an IPv6 form of those."""
    ip = unwrap(ipaddress.ip_address(ip))
    # `is_global` alone lets multicast (224/4, ff0e::) and some reserved ranges through.
    return ip.is_global and not (
        ip.is_multicast
        or ip.is_reserved
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_unspecified
        or ip.is_private
    )


def in_networks(ip: IPAddress | str, networks: Iterable[str]) -> bool:
    """Whether `ip` (an IPv4-mapped IPv6 address judged as its IPv4) is in one of `networks`."""
    ip = unwrap(ipaddress.ip_address(ip))
    return any(
        ip in net for net in map(ipaddress.ip_network, networks) if net.version == ip.version
    )


def resolve(host: str, port: int, allowed: Callable[[IPAddress], bool]) -> list[Address]:
    """Every address of `host`, each passing `allowed`; NotFound or NotAllowed otherwise.

    Connect only to what this returns (`connect`): resolving again could answer otherwise.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as error:  # gaierror, IDNA, NUL byte
        raise NotFound(_("%(host)s was not found.") % {"host": host}) from error
    addresses = list(
        dict.fromkeys(Address(family, sockaddr) for family, _t, _p, _c, sockaddr in infos)
    )
    if not addresses or not all(allowed(address.ip) for address in addresses):
        raise NotAllowed(_("%(host)s is not an address this platform allows.") % {"host": host})
    return addresses


def connect(addresses: list[Address], timeout: float) -> socket.socket:
    """A TCP connection to the first of `addresses` that answers; OSError if none does."""
    error: OSError = OSError("no address to connect to")
    for address in addresses:
        sock = socket.socket(address.family, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(address.sockaddr)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        return sock
    raise error


class _PinnedConnection(http.client.HTTPConnection):
    """HTTP(S) to `host` over a connection to an address already checked.

    The Host header and TLS (SNI and the certificate's name) still say `host`, so a receiver
    behind a shared address and a certificate for its name work as with any client.
    """

    def __init__(
        self, host: str, port: int, addresses: list[Address], *, timeout: float, tls: bool
    ) -> None:
        super().__init__(host, port, timeout=timeout)
        self.addresses = addresses
        self.tls_context = ssl.create_default_context() if tls else None
        # http.client leaves the port out of the Host header only when it is the default.
        self.default_port = 443 if tls else 80

    def connect(self) -> None:
        sock = connect(self.addresses, self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls_context is not None:
            try:
                sock = self.tls_context.wrap_socket(sock, server_hostname=self.host)
            except BaseException:
                sock.close()
                raise
        self.sock = sock


class HttpTarget(NamedTuple):
    host: str
    port: int
    tls: bool
    path: str  # with the query string: what goes on the request line


def http_target(url: str) -> HttpTarget:
    """The parts of an http(s) URL a request needs; NotAllowed for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NotAllowed(_("Use an http:// or https:// address."))
    tls = parts.scheme == "https"
    try:
        port = parts.port or (443 if tls else 80)
    except ValueError as error:
        raise NotAllowed(_("The address has an invalid port.")) from error
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return HttpTarget(parts.hostname, port, tls, path)


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    allowed: Callable[[IPAddress], bool],
) -> int:
    """POST `body` to `url` on a checked, pinned address; the HTTP status of the answer.

    Redirects are answers like any other (never followed: the next hop would be unchecked).
    Raises Refused before connecting; OSError (ssl.SSLError and timeouts included),
    http.client.HTTPException or ValueError (a URL http.client cannot send) otherwise.
    """
    target = http_target(url)
    addresses = resolve(target.host, target.port, allowed)
    connection = _PinnedConnection(
        target.host, target.port, addresses, timeout=timeout, tls=target.tls
    )
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()
