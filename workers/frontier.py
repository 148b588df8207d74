"""The seen-set: which URLs a crawl has already sent to fetch, shared by every discover worker.

A claim records *who* claimed a URL (the id of the discover message that found it), not just
that it was seen.  If a worker dies after claiming but before its fetch messages were sent,
the broker redelivers the same discover message, the claims come back as "yours", and the
fetches are sent again.  A plain set would answer "seen" and the article would be lost.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["Limits", "MemoryLimits", "MemorySeen", "RedisLimits", "RedisSeen", "Seen"]


class Seen(Protocol):
    """Claims URL ids for a crawl; a claim is granted to the first owner and to that owner again."""

    def claim(self, crawl_id: str, url_ids: Sequence[str], owner: str) -> list[bool]:
        """For each id: True when ``owner`` holds the claim (new, or claimed by it before)."""
        ...


class MemorySeen:
    """The embedded run's seen-set: a dict per crawl behind a lock."""

    def __init__(self) -> None:
        self._claims: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def claim(self, crawl_id: str, url_ids: Sequence[str], owner: str) -> list[bool]:
        """See :meth:`Seen.claim`."""
        with self._lock:
            claims = self._claims.setdefault(crawl_id, {})
            return [claims.setdefault(uid, owner) == owner for uid in url_ids]


# One round trip per discovered page, however many links it has: HSETNX each id, and for ids
# already present compare the stored owner.  Owners are short (a message id) to keep the
# hash small; the README's operations section gives the measured memory per million URLs.
_CLAIM_LUA = """
local out = {}
for i, uid in ipairs(ARGV) do
  if i > 1 then
    if redis.call('HSETNX', KEYS[1], uid, ARGV[1]) == 1 then
      out[#out + 1] = 1
    elseif redis.call('HGET', KEYS[1], uid) == ARGV[1] then
      out[#out + 1] = 1
    else
      out[#out + 1] = 0
    end
  end
end
return out
"""


class RedisSeen:
    """The seen-set in Redis: one hash per crawl, ``url_id -> owner``, shared by all hosts."""

    def __init__(self, client: Any, namespace: str = "ingest") -> None:
        self._client = client
        self._namespace = namespace
        self._script = client.register_script(_CLAIM_LUA)

    def claim(self, crawl_id: str, url_ids: Sequence[str], owner: str) -> list[bool]:
        """See :meth:`Seen.claim`."""
        if not url_ids:
            return []
        key = f"{self._namespace}:seen:{crawl_id}"
        result = self._script(keys=[key], args=[owner, *url_ids])
        return [bool(x) for x in result]


class Limits(Protocol):
    """Shared counters that stop runaway crawls: a page budget per poll, query variants per path."""

    def take(self, key: str, wanted: int, limit: int) -> int:
        """Take up to ``wanted`` from the budget ``key`` holding ``limit`` in all; return how many."""
        ...

    def admit_variants(self, key: str, variants: Sequence[str], limit: int) -> list[bool]:
        """For each query variant of one path: True while the path has at most ``limit`` variants."""
        ...


class MemoryLimits:
    """Limits of the embedded run."""

    def __init__(self) -> None:
        self._used: dict[str, int] = {}
        self._variants: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, wanted: int, limit: int) -> int:
        """See :meth:`Limits.take`."""
        with self._lock:
            used = self._used.get(key, 0)
            granted = max(0, min(wanted, limit - used))
            self._used[key] = used + granted
            return granted

    def admit_variants(self, key: str, variants: Sequence[str], limit: int) -> list[bool]:
        """See :meth:`Limits.admit_variants`."""
        with self._lock:
            seen = self._variants.setdefault(key, set())
            out = []
            for v in variants:
                if v not in seen and len(seen) < limit:
                    seen.add(v)
                out.append(v in seen)
            return out


_TAKE_LUA = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local granted = math.max(0, math.min(tonumber(ARGV[1]), tonumber(ARGV[2]) - used))
if granted > 0 then
  redis.call('INCRBY', KEYS[1], granted)
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
end
return granted
"""

_VARIANTS_LUA = """
local out = {}
for i = 3, #ARGV do
  if redis.call('SISMEMBER', KEYS[1], ARGV[i]) == 1 then
    out[#out + 1] = 1
  elseif redis.call('SCARD', KEYS[1]) < tonumber(ARGV[1]) then
    redis.call('SADD', KEYS[1], ARGV[i])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return out
"""

#: Budgets and variant sets outlive any poll round, then expire on their own.
_LIMIT_TTL_S = 7 * 86400


class RedisLimits:
    """Limits in Redis: ``{ns}:budget:{key}`` counters and ``{ns}:variants:{key}`` sets, expiring."""

    def __init__(self, client: Any, namespace: str = "ingest") -> None:
        self._namespace = namespace
        self._take = client.register_script(_TAKE_LUA)
        self._variants = client.register_script(_VARIANTS_LUA)

    def take(self, key: str, wanted: int, limit: int) -> int:
        """See :meth:`Limits.take`."""
        if wanted <= 0:
            return 0
        return int(self._take(keys=[f"{self._namespace}:budget:{key}"], args=[wanted, limit, _LIMIT_TTL_S]))

    def admit_variants(self, key: str, variants: Sequence[str], limit: int) -> list[bool]:
        """See :meth:`Limits.admit_variants`."""
        if not variants:
            return []
        result = self._variants(keys=[f"{self._namespace}:variants:{key}"], args=[limit, _LIMIT_TTL_S, *variants])
        return [bool(x) for x in result]
