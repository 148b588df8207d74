"""The private-address guard: which IP addresses a fetch may connect to, enforced at connect time.

A page we fetch decides, through its links and redirects, which hosts we connect to next, so an
unguarded fetcher is a server-side request forgery waiting to happen (cloud metadata at
169.254.169.254, admin panels on 10.x, Redis on 127.0.0.1).  The check therefore lives in the
httpcore *network backend*: it resolves the host name itself, refuses the connection if ANY
resolved address is forbidden, and then connects to the very IP literal it checked.  A DNS answer
that changes between check and connect (rebinding) cannot slip through, every redirect hop passes
the same gate, and TLS still uses the original host name (httpcore hands ``server_hostname`` from
the request's origin to ``start_tls``, not the address we connected to).

The backend also enforces an optional whole-request :func:`deadline` on every blocking read, write
and connect, because httpx's timeouts are per phase and a server trickling one byte per second
never trips them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from workers.core.settings import Settings

__all__ = [
    "AddressPolicy",
    "BlockedAddress",
    "DeadlineExceeded",
    "GuardedBackend",
    "Resolver",
    "build_client",
    "deadline",
    "system_resolver",
]

#: Maps ``(host, port)`` to the IP address strings the host resolves to.
Resolver = Callable[[str, int], list[str]]

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_Net = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Pool sizes for one worker process; fetch threads share the pool.
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0)


class BlockedAddress(httpx.ConnectError):
    """A connection refused by the :class:`AddressPolicy` before any packet was sent.

    It subclasses :class:`httpx.ConnectError` (not httpcore's), so httpx's exception mapping lets
    it through unchanged and callers can catch it by type.
    """

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"refused to connect to {host}: {reason}")
        self.host = host
        self.reason = reason


class DeadlineExceeded(httpcore.TimeoutException):
    """The whole-request :func:`deadline` passed; httpx surfaces it as ``httpx.TimeoutException``."""


def _network(cidr: str) -> _Net:
    return ipaddress.ip_network(cidr, strict=False)


_METADATA: frozenset[_IP] = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
_LINK_LOCAL = (_network("169.254.0.0/16"), _network("fe80::/10"))
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_NAT64 = _network("64:ff9b::/96")
_IPV4_COMPATIBLE = _network("::/96")
#: Ranges refused unless ``allow_private``: they are someone's internal network, never the web.
_PRIVATE: tuple[tuple[_Net, str], ...] = (
    (_network("127.0.0.0/8"), "a loopback address"),
    (_network("::1/128"), "a loopback address"),
    (_network("10.0.0.0/8"), "a private (RFC 1918) address"),
    (_network("172.16.0.0/12"), "a private (RFC 1918) address"),
    (_network("192.168.0.0/16"), "a private (RFC 1918) address"),
    (_network("100.64.0.0/10"), "a carrier-grade NAT address"),
    (_network("fc00::/7"), "a unique-local address"),
    (_network("fec0::/10"), "a site-local address"),
    (_network("0.0.0.0/8"), "a this-network (0.0.0.0/8) address"),
)


def _category(addr: _IP) -> tuple[str, bool] | None:
    """Words for what ``addr`` is and whether it is refused even with ``allow_private``; None if public."""
    # Order matters: metadata addresses sit inside the link-local, CGNAT and ULA ranges.
    if addr in _METADATA:
        return "a cloud metadata address", True
    if addr.is_unspecified:
        return "the unspecified address", True
    if any(addr in net for net in _LINK_LOCAL):
        return "a link-local address", True
    if addr.is_multicast:
        return "a multicast address", True
    if addr == _BROADCAST:
        return "the broadcast address", True
    for net, words in _PRIVATE:
        if addr in net:
            return words, False
    if addr.is_reserved:
        return "a reserved address", True
    if not addr.is_global:
        # Documentation, benchmarking, IETF protocol ranges and the like: nothing to crawl there,
        # but a lab may route them internally, so they go with the private ranges.
        return "a special-purpose (non-global) address", False
    return None


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a packet to ``addr`` really reaches (mapped, 6to4, NAT64), if any."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def _parse_ip(ip: str) -> _IP:
    # Resolvers may hand back bracketed or zone-scoped IPv6 ("fe80::1%eth0").
    addr = ipaddress.ip_address(ip.strip("[]"))
    if isinstance(addr, ipaddress.IPv6Address) and addr.scope_id is not None:
        addr = ipaddress.IPv6Address(str(addr).split("%", 1)[0])
    return addr


@dataclass(frozen=True)
class AddressPolicy:
    """Which IP addresses a fetch may connect to.

    Link-local, cloud metadata, multicast, unspecified, reserved and broadcast addresses are always
    refused; loopback, RFC 1918, CGNAT, unique-local and other non-global ranges are refused unless
    ``allow_private``.  ``allow_networks`` (CIDRs) win over both.  IPv6 addresses that carry an
    IPv4 address (``::ffff:a.b.c.d``, 6to4, NAT64) are judged by the IPv4 address they reach.
    """

    allow_private: bool = False
    allow_networks: tuple[str, ...] = ()
    _networks: tuple[_Net, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Parse once, and fail at start-up on a bad CIDR rather than on the first fetch.
        object.__setattr__(self, "_networks", tuple(_network(c) for c in self.allow_networks))

    def reason(self, ip: str) -> str | None:
        """Why a connection to ``ip`` is refused, in words; ``None`` when it is allowed."""
        try:
            addr = _parse_ip(ip)
        except ValueError:
            return f"{ip!r} is not an IP address"
        target: _IP = addr
        if isinstance(addr, ipaddress.IPv6Address):
            embedded = _embedded_ipv4(addr)
            if embedded is not None:
                target = embedded
            elif addr in _IPV4_COMPATIBLE and int(addr) > 1:
                return f"{ip} is a deprecated IPv4-compatible IPv6 address"
        if any(a in net for net in self._networks for a in (addr, target)):
            return None
        category = _category(target)
        if category is None:
            return None
        words, always = category
        if not always and self.allow_private:
            return None
        via = f" (reaches {target})" if target != addr else ""
        hint = "" if always else "; allow_private permits it"
        return f"{ip}{via} is {words}{hint}"

    def check(self, ip: str) -> None:
        """Raise :class:`BlockedAddress` if a connection to ``ip`` is refused."""
        why = self.reason(ip)
        if why is not None:
            raise BlockedAddress(ip, why)


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the system resolver (``getaddrinfo``), in the order it prefers."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


_DEADLINE: ContextVar[float | None] = ContextVar("ingest_netguard_deadline", default=None)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[float]:
    """Within the block, every connect, read and write of a guarded client ends by now + ``seconds``.

    Nested blocks keep the earlier end.  Yields the deadline on the ``time.monotonic`` clock.
    """
    end = time.monotonic() + seconds
    outer = _DEADLINE.get()
    if outer is not None:
        end = min(end, outer)
    token = _DEADLINE.set(end)
    try:
        yield end
    finally:
        _DEADLINE.reset(token)


def _expired() -> bool:
    end = _DEADLINE.get()
    return end is not None and time.monotonic() >= end


def _bounded(timeout: float | None) -> float | None:
    """``timeout`` shortened to what is left of the current deadline; raise if nothing is left."""
    end = _DEADLINE.get()
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded("request deadline exceeded")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every blocking call also respects the current :func:`deadline`."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return self._inner.read(max_bytes, _bounded(timeout))
        except httpcore.TimeoutException as exc:
            if _expired():
                raise DeadlineExceeded("request deadline exceeded while reading") from exc
            raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        try:
            self._inner.write(buffer, _bounded(timeout))
        except httpcore.TimeoutException as exc:
            if _expired():
                raise DeadlineExceeded("request deadline exceeded while writing") from exc
            raise

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, _bounded(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.SyncBackend):
    """An httpcore backend that resolves, checks every address, and connects to the checked IP."""

    def __init__(self, policy: AddressPolicy, resolver: Resolver | None = None) -> None:
        self.policy = policy
        self._resolve = resolver or system_resolver

    def addresses(self, host: str, port: int) -> list[str]:
        """The IP addresses ``host`` stands for: itself if it is an IP literal, else resolved."""
        try:
            return [str(_parse_ip(host))]
        except ValueError:
            pass
        try:
            found = self._resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        unique = list(dict.fromkeys(found))
        if not unique:
            raise httpcore.ConnectError(f"{host} resolved to no address")
        return unique

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        """Connect to the first reachable address of ``host``, after every one passed the policy."""
        addresses = self.addresses(host, port)
        # All of them, not just the first: the OS or a retry might pick any.
        for ip in addresses:
            why = self.policy.reason(ip)
            if why is not None:
                raise BlockedAddress(host, why)
        last: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for ip in addresses:
            try:
                stream = super().connect_tcp(ip, port, _bounded(timeout), local_address, socket_options)
            except httpcore.ConnectTimeout as exc:
                if _expired():
                    raise DeadlineExceeded("request deadline exceeded while connecting") from exc
                last = exc
            except httpcore.ConnectError as exc:
                last = exc
            else:
                return _DeadlineStream(stream)
        assert last is not None  # addresses() never returns an empty list
        raise last

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        """Always refused: a fetched page never gets to talk to a local socket."""
        raise BlockedAddress(path, "unix sockets are never fetched")


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's own transport (request conversion, exception mapping) over a guarded pool."""

    def __init__(self, backend: GuardedBackend, limits: httpx.Limits) -> None:
        super().__init__(http2=True, limits=limits, trust_env=False, retries=0)
        # httpx has no public hook for the network backend; fail closed if its internals move,
        # rather than silently fetching through an unguarded pool.
        if not isinstance(getattr(self, "_pool", None), httpcore.ConnectionPool):
            raise RuntimeError("httpx.HTTPTransport has no _pool: cannot install the address guard")
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=True,
            retries=0,
            network_backend=backend,
        )


def build_client(settings: Settings, *, resolver: Resolver | None = None) -> httpx.Client:
    """An httpx client whose every connection, redirect hops included, passes the address guard."""
    policy = AddressPolicy(settings.allow_private, settings.allow_networks)
    transport = _GuardedTransport(GuardedBackend(policy, resolver), _LIMITS)
    timeout = httpx.Timeout(
        connect=settings.connect_timeout,
        read=settings.read_timeout,
        write=settings.read_timeout,
        pool=settings.connect_timeout,
    )
    headers = {
        "User-Agent": settings.user_agent,
        "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
        # Only codings workers.fetch.client can inflate with a bound on the output.
        "Accept-Encoding": "gzip, deflate",
    }
    return httpx.Client(
        transport=transport,
        timeout=timeout,
        headers=headers,
        follow_redirects=True,
        max_redirects=settings.max_redirects,
        # Environment proxies would be mounted ahead of our transport and bypass the guard.
        trust_env=False,
    )
