"""robots.txt: whether a URL may be fetched, and how slowly, shared by every fetch worker.

RFC 9309 semantics on top of protego (the parser Scrapy uses): a 2xx robots.txt is parsed, a 4xx
(or a redirect chain too long to follow) means "no rules", and a 5xx or no answer at all means
"assume complete disallow" until it can be fetched again.  :func:`verdict` is a pure function of
what the fetch of ``/robots.txt`` returned; a :class:`RobotsCache` keeps that answer per origin
(24 hours, 10 minutes for failures) so a host's robots.txt is fetched once, by one worker, not
once per URL; :func:`check` ties the two together for a fetch stage.  The cache also keeps the last
good answer of each origin for 30 days: when the server fails, :func:`store` lets that copy stand
in (RFC 9309 2.4 allows a cached copy), so a server's bad ten minutes do not stop its crawl.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import idna
from protego import Protego

from workers.core.urls import validate_url

__all__ = [
    "LAST_GOOD_TTL_S",
    "ROBOTS_MAX_BYTES",
    "ROBOTS_TTL_S",
    "UNREACHABLE_TTL_S",
    "MemoryRobotsCache",
    "RedisRobotsCache",
    "RobotsCache",
    "RobotsVerdict",
    "check",
    "origin_of",
    "product_token",
    "robots_url",
    "store",
    "ttl_for",
    "verdict",
]

#: Cache lifetime of a robots.txt that was fetched (RFC 9309: SHOULD NOT be used for more than 24 h).
ROBOTS_TTL_S = 86_400
#: Cache lifetime of a failure (5xx, 429, no answer): short, because it blocks the whole host.
UNREACHABLE_TTL_S = 600
#: How long the last good robots.txt of an origin may stand in while its server fails.
LAST_GOOD_TTL_S = 30 * 86_400
#: Bytes of a robots.txt that are parsed (RFC 9309 asks parsers to read at least 500 KiB).
ROBOTS_MAX_BYTES = 500 * 1024
#: Parsed robots.txt kept per process: a hot host is parsed once, not once per URL.
_PARSED_MAX = 256

# RFC 9309 treats 429 as "unavailable" (allow all), but a server saying "too many requests"
# about its robots.txt is not inviting us in; like Google, treat it as a server error.
_UNREACHABLE_4XX = frozenset({429})
_PRODUCT_TOKEN = re.compile(r"[A-Za-z_-]+")
# The user-agent lines protego recognises ("User-agent:", "User agent", "useragent"), and the value.
_UA_LINE = re.compile(r"^([ \t]*user(?:-|[ \t]+)?agent(?:[ \t]*:[ \t]*|[ \t]+))([^\r\n#]*)", re.I | re.M)


@dataclass(frozen=True)
class RobotsVerdict:
    """Whether one URL may be fetched, the host's crawl delay for us, and why."""

    allowed: bool
    #: Seconds between requests, from Crawl-delay or Request-rate for our agent (the larger); None if unset.
    crawl_delay: float | None
    reason: str
    #: True when the refusal only means "robots.txt could not be read now": retry later, do not record
    #: the URL as permanently disallowed.
    transient: bool = False


def product_token(user_agent: str) -> str:
    """The product token of a User-Agent (``ingest`` from ``ingest/0.1 (+https://…)``), lower-case;
    "" when it does not start with one."""
    match = _PRODUCT_TOKEN.match(user_agent.strip())
    return match.group(0).lower() if match else ""


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: lower-case, IDN host in its ASCII (xn--) form, no default
    port.  robots.txt applies per origin, and this is the cache key of one.

    Raises :class:`workers.core.urls.InvalidURL` for URLs no fetcher may request.
    """
    parts = urlsplit(validate_url(url))
    scheme = parts.scheme.lower()
    host = _ascii_host(parts.hostname or "")
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is None or port == {"http": 80, "https": 443}[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def robots_url(url: str) -> str:
    """The robots.txt URL governing the page ``url`` (see :func:`origin_of` for the normalisation)."""
    return origin_of(url) + "/robots.txt"


def _ascii_host(host: str) -> str:
    host = host.lower()
    if host.isascii():
        # Already the wire form; IDNA 2008 would reject the underscores some real hosts have.
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        try:
            # Python's IDNA 2003 codec accepts a few names (symbols, some emoji domains) 2008 refuses.
            return host.encode("idna").decode("ascii")
        except UnicodeError:
            return host


def ttl_for(status: int | None) -> float:
    """How long the answer ``status`` for a robots.txt stays cached: a day, or 10 minutes for failures."""
    return UNREACHABLE_TTL_S if _unreachable(status) else ROBOTS_TTL_S


def _unreachable(status: int | None) -> bool:
    return status is None or not 200 <= status < 500 or status in _UNREACHABLE_4XX


def verdict(robots_body: bytes | None, status: int | None, url: str, user_agent: str) -> RobotsVerdict:
    """May ``user_agent`` fetch ``url``, given the status and body the fetch of its robots.txt gave?

    ``status`` None means no HTTP answer (connection refused, timeout, DNS failure).  Pure apart
    from a per-process cache of parsed files; never raises for anything a server may send.
    """
    if status is None or _unreachable(status):
        answer = "no answer" if status is None else f"HTTP {status}"
        return RobotsVerdict(False, None, f"robots.txt unreachable ({answer}): assuming disallow", transient=True)
    if status >= 300:
        # Final 3xx: the redirect chain was too long (or had no Location); RFC 9309 says "unavailable".
        return RobotsVerdict(True, None, f"allowed: no robots.txt (HTTP {status})")
    parsed = _parse(robots_body or b"")
    if parsed is None:
        return RobotsVerdict(True, None, "allowed: robots.txt unparsable")
    token = product_token(user_agent)
    # protego also matches a group named by a *prefix* of our token ("ing" for "ingest"); RFC 9309
    # wants an exact match, so without a group of our own we ask for the "*" group alone.
    name = token if token and token in parsed.agents else "*"
    delay = _delay(parsed.rules, name)
    if parsed.rules.can_fetch(url, name):
        return RobotsVerdict(True, delay, "allowed")
    rule = _deciding_rule(parsed.rules, name, url)
    reason = "disallowed by robots.txt" + (f" (Disallow: {rule})" if rule else "")
    return RobotsVerdict(False, delay, reason)


def _delay(rules: Protego, name: str) -> float | None:
    delays = []
    crawl_delay = rules.crawl_delay(name)
    if crawl_delay is not None:
        delays.append(float(crawl_delay))
    rate = rules.request_rate(name)
    if rate is not None:
        delays.append(rate.seconds / rate.requests)
    return max(delays) if delays else None


def _deciding_rule(rules: Protego, name: str, url: str) -> str | None:
    # Only for the log line: protego does not say which rule decided, so look at its internals and
    # give up quietly (a plain reason) if a protego release moved them; test_robots notices.
    try:
        from protego._utils import _quote_path

        rule_set = rules._get_matching_rule_set(name)
        if rule_set is None:
            return None
        path = _quote_path(url)
        for rule in rule_set._rules:
            if rule.value.match(path):
                return rule.value._pattern if rule.field == "disallow" else None
    except Exception:
        return None
    return None


@dataclass(frozen=True)
class _Parsed:
    rules: Protego
    #: The product tokens that have a group of their own (lower-case), "*" included.
    agents: frozenset[str]


class _LRU:
    """Parsed robots.txt by body digest (identical files on many hosts share one parse)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[bytes, _Parsed | None] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> tuple[bool, _Parsed | None]:
        with self._lock:
            if key not in self._items:
                return False, None
            self._items.move_to_end(key)
            return True, self._items[key]

    def put(self, key: bytes, value: _Parsed | None) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_PARSED = _LRU(_PARSED_MAX)


def _parse(body: bytes) -> _Parsed | None:
    body = _truncate(body)
    key = hashlib.blake2b(body, digest_size=16).digest()
    hit, parsed = _PARSED.get(key)
    if hit:
        return parsed
    text = body.decode("utf-8-sig", errors="replace")
    agents: set[str] = set()

    def one_token(line: re.Match[str]) -> str:
        value = line.group(2).strip()
        token = "*" if value.startswith("*") else product_token(value)
        if not token:
            return line.group(0)
        agents.add(token)
        return line.group(1) + token

    # Groups are matched on product tokens (RFC 9309; "User-agent: ingest/1.0" names "ingest"), and
    # protego compares whole values, so reduce each user-agent line to its token before parsing.
    text = _UA_LINE.sub(one_token, text)
    try:
        result: _Parsed | None = _Parsed(Protego.parse(text), frozenset(agents))
    except Exception:
        # Garbage is "no usable rules", which RFC 9309 reads as allow-all, same as an empty file.
        result = None
    _PARSED.put(key, result)
    return result


def _truncate(body: bytes) -> bytes:
    if len(body) <= ROBOTS_MAX_BYTES:
        return body
    # Cut at a line end: half a rule ("Disallow: /a" of "Disallow: /admin") would be a different rule.
    cut = max(body.rfind(b"\n", 0, ROBOTS_MAX_BYTES), body.rfind(b"\r", 0, ROBOTS_MAX_BYTES))
    return body[: cut + 1] if cut >= 0 else body[:ROBOTS_MAX_BYTES]


class RobotsCache(Protocol):
    """The fetched robots.txt of each origin, shared by the fetch workers, with a fetch-once lock."""

    def get(self, origin: str) -> tuple[int | None, bytes] | None:
        """``(status, body)`` stored for ``origin``, or None when nothing (unexpired) is stored."""
        ...

    def put(self, origin: str, status: int | None, body: bytes, ttl_s: float) -> None:
        """Store the answer for ``ttl_s`` seconds (see :func:`ttl_for`) and release the origin's lock.

        An answer that is not a failure is also kept as the origin's last good one (30 days).
        """
        ...

    def last_good(self, origin: str) -> tuple[int | None, bytes] | None:
        """The origin's last answer that was not a failure, while it is kept."""
        ...

    def lock(self, origin: str, ttl_s: float = 30.0) -> bool:
        """True for exactly one caller until :meth:`put` or ``ttl_s`` passes: that caller fetches."""
        ...


class MemoryRobotsCache:
    """The cache of the embedded run, where every fetch thread lives in this process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[str, tuple[float, int | None, bytes]] = {}
        self._good: dict[str, tuple[float, int | None, bytes]] = {}
        self._locks: dict[str, float] = {}
        self._lock = threading.Lock()

    def get(self, origin: str) -> tuple[int | None, bytes] | None:
        """See :meth:`RobotsCache.get`."""
        with self._lock:
            entry = self._entries.get(origin)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._entries[origin]
                return None
            return entry[1], entry[2]

    def put(self, origin: str, status: int | None, body: bytes, ttl_s: float) -> None:
        """See :meth:`RobotsCache.put`."""
        with self._lock:
            now = self._clock()
            if len(self._entries) >= 1024 and origin not in self._entries:
                # A long embedded crawl meets many hosts; drop the expired before growing.
                self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
            self._entries[origin] = (now + ttl_s, status, bytes(body))
            if not _unreachable(status):
                if len(self._good) >= 1024 and origin not in self._good:
                    self._good = {k: e for k, e in self._good.items() if e[0] > now}
                self._good[origin] = (now + LAST_GOOD_TTL_S, status, bytes(body))
            self._locks.pop(origin, None)

    def last_good(self, origin: str) -> tuple[int | None, bytes] | None:
        """See :meth:`RobotsCache.last_good`."""
        with self._lock:
            entry = self._good.get(origin)
            if entry is None or entry[0] <= self._clock():
                return None
            return entry[1], entry[2]

    def lock(self, origin: str, ttl_s: float = 30.0) -> bool:
        """See :meth:`RobotsCache.lock`."""
        with self._lock:
            now = self._clock()
            if self._locks.get(origin, 0.0) > now:
                return False
            self._locks[origin] = now + ttl_s
            return True


class RedisRobotsCache:
    """The cache in Redis: ``{ns}:robots:{origin}`` hashes (status, body) expiring on their own, the
    last good answers in ``{ns}:robots-good:{origin}`` (30 days), and
    ``{ns}:robots-lock:{origin}`` keys (SET NX PX).  Needs a client without ``decode_responses``:
    a body is bytes, not necessarily UTF-8."""

    def __init__(self, client: Any, namespace: str = "ingest") -> None:
        self._client = client
        self._namespace = namespace

    def _key(self, origin: str) -> str:
        return f"{self._namespace}:robots:{origin}"

    def _lock_key(self, origin: str) -> str:
        return f"{self._namespace}:robots-lock:{origin}"

    def _good_key(self, origin: str) -> str:
        return f"{self._namespace}:robots-good:{origin}"

    def get(self, origin: str) -> tuple[int | None, bytes] | None:
        """See :meth:`RobotsCache.get`."""
        return self._read(self._key(origin))

    def last_good(self, origin: str) -> tuple[int | None, bytes] | None:
        """See :meth:`RobotsCache.last_good`."""
        return self._read(self._good_key(origin))

    def _read(self, key: str) -> tuple[int | None, bytes] | None:
        status, body = self._client.hmget(key, ["status", "body"])
        if status is None or body is None:
            return None
        # "" stands for "no HTTP answer" (status None).
        return (int(status) if status else None), bytes(body)

    def put(self, origin: str, status: int | None, body: bytes, ttl_s: float) -> None:
        """See :meth:`RobotsCache.put`."""
        key = self._key(origin)
        # One MULTI: a reader never sees the hash without its expiry, nor the lock outliving the answer.
        pipe = self._client.pipeline(transaction=True)
        fields = {"status": "" if status is None else str(status), "body": body}
        pipe.hset(key, mapping=fields)
        pipe.pexpire(key, max(1, round(ttl_s * 1000)))
        if not _unreachable(status):
            pipe.hset(self._good_key(origin), mapping=fields)
            pipe.expire(self._good_key(origin), LAST_GOOD_TTL_S)
        pipe.delete(self._lock_key(origin))
        pipe.execute()

    def lock(self, origin: str, ttl_s: float = 30.0) -> bool:
        """See :meth:`RobotsCache.lock`."""
        return bool(self._client.set(self._lock_key(origin), b"1", nx=True, px=max(1, round(ttl_s * 1000))))


def check(
    cache: RobotsCache,
    url: str,
    user_agent: str,
    fetch: Callable[[str], tuple[int | None, bytes]],
) -> RobotsVerdict | None:
    """The verdict for ``url`` from its origin's cached robots.txt, fetched (by ``fetch``, given the
    robots.txt URL and returning ``(status, body)``) and cached when missing.

    Returns None when another worker is fetching that robots.txt right now: try again in a moment.
    """
    origin = origin_of(url)
    stored = cache.get(origin)
    if stored is None:
        if not cache.lock(origin):
            return None
        # If fetch raises, the lock simply expires and another worker tries.
        status, body = fetch(origin + "/robots.txt")
        stored = store(cache, origin, status, body)
    return verdict(stored[1], stored[0], url, user_agent)


def store(cache: RobotsCache, origin: str, status: int | None, body: bytes) -> tuple[int | None, bytes]:
    """Cache the answer for ``origin`` and return what now stands for its robots.txt.

    When the server failed (5xx, 429, no answer) and the origin's last good answer is still kept,
    that copy stands in, for the short time of a failure, after which the file is asked for again.
    """
    body = _truncate(body)
    if _unreachable(status) and (good := cache.last_good(origin)) is not None:
        status, body = good
        cache.put(origin, status, body, UNREACHABLE_TTL_S)
        return good
    cache.put(origin, status, body, ttl_for(status))
    return status, body
