"""The seen-set: which URLs a crawl has already sent to fetch, shared by every discover worker.

A claim records *who* claimed a URL (the id of the discover message that found it), not just
that it was seen.  If a worker dies after claiming but before its fetch messages were sent,
the broker redelivers the same discover message, the claims come back as "yours", and the
fetches are sent again.  A plain set would answer "seen" and the article would be lost.

Claiming is two-phase: ``claim`` (pending, held by its owner), send, then ``commit`` (sent: no
owner gets it again).  Claims that will not be sent (a page budget's cut) are given back with
``release`` and stay claimable by the next poll.  So a crash anywhere between claim and commit
leaves the URL with its owner, never marked as sent without having been sent.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["BloomSeen", "Limits", "MemoryLimits", "MemorySeen", "RedisLimits", "RedisSeen", "Seen", "make_seen"]


class Seen(Protocol):
    """Claims URL ids for a crawl; a claim is granted to the first owner and to that owner again."""

    def claim(self, crawl_id: str, url_ids: Sequence[str], owner: str) -> list[bool]:
        """For each id: True when ``owner`` holds the claim (new, or claimed by it before)."""
        ...

    def commit(self, crawl_id: str, url_ids: Sequence[str]) -> None:
        """Mark claimed URLs as sent, after their tasks were sent: no owner claims them again."""
        ...

    def release(self, crawl_id: str, url_ids: Sequence[str], owner: str) -> None:
        """Give back ``owner``'s claims that will not be sent (uncommitted only): claimable again."""
        ...


#: What a claim becomes once its task was sent: no owner (a short hash) ever equals it.
_SENT = "+"


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

    def commit(self, crawl_id: str, url_ids: Sequence[str]) -> None:
        """See :meth:`Seen.commit`."""
        with self._lock:
            claims = self._claims.setdefault(crawl_id, {})
            for uid in url_ids:
                claims[uid] = _SENT

    def release(self, crawl_id: str, url_ids: Sequence[str], owner: str) -> None:
        """See :meth:`Seen.release`."""
        with self._lock:
            claims = self._claims.get(crawl_id, {})
            for uid in url_ids:
                if claims.get(uid) == owner:
                    del claims[uid]


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

# ARGV[1] = the sent marker, then ids.  HSET, not a check of the owner: only the owner commits.
_COMMIT_LUA = """
for i = 2, #ARGV do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[1])
end
return #ARGV - 1
"""

# ARGV[1] = owner, then ids: only the owner's pending claims go; a sent URL stays sent.
_RELEASE_LUA = """
local n = 0
for i = 2, #ARGV do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[1] then
    n = n + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return n
"""


class RedisSeen:
    """The seen-set in Redis: one hash per crawl, ``url_id -> owner``, shared by all hosts."""

    def __init__(self, client: Any, namespace: str = "ingest") -> None:
        self._namespace = namespace
        self._script = client.register_script(_CLAIM_LUA)
        self._commit = client.register_script(_COMMIT_LUA)
        self._release = client.register_script(_RELEASE_LUA)

    def claim(self, crawl_id: str, url_ids: Sequence[str], owner: str) -> list[bool]:
        """See :meth:`Seen.claim`."""
        if not url_ids:
            return []
        result = self._script(keys=[self._key(crawl_id)], args=[_short(owner), *url_ids])
        return [bool(x) for x in result]

    def commit(self, crawl_id: str, url_ids: Sequence[str]) -> None:
        """See :meth:`Seen.commit` (the stored owner becomes one character: smaller, not larger)."""
        if url_ids:
            self._commit(keys=[self._key(crawl_id)], args=[_SENT, *url_ids])

    def release(self, crawl_id: str, url_ids: Sequence[str], owner: str) -> None:
        """See :meth:`Seen.release`."""
        if url_ids:
            self._release(keys=[self._key(crawl_id)], args=[_short(owner), *url_ids])

    def _key(self, crawl_id: str) -> str:
        return f"{self._namespace}:seen:{crawl_id}"


def _short(owner: str) -> str:
    # Owners only need to tell messages apart; 8 hex digits instead of a 36-character message id
    # keep the hash small.  A collision makes a URL "ours" twice: a duplicate fetch, never a loss.
    return hashlib.blake2b(owner.encode(), digest_size=4).hexdigest()


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


# Bloom filter in a plain Redis bitmap (works on every Redis; Redis 8's BF.* would do the same
# server-side).  ARGV[1] = mode ("check" | "mark"), ARGV[2] = k, then k bit positions per id.
_BLOOM_LUA = """
local k = tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV, k do
  local new = 0
  for j = i, i + k - 1 do
    if ARGV[1] == 'mark' then
      redis.call('SETBIT', KEYS[1], ARGV[j], 1)
    elseif new == 0 and redis.call('GETBIT', KEYS[1], ARGV[j]) == 0 then
      new = 1
    end
  end
  out[#out + 1] = new
end
return out
"""


class BloomSeen:
    """A probabilistic seen-set: ~14 bits per URL at a 0.1% false-positive rate, instead of ~90 bytes.

    It cannot remember owners, so it works in two steps: :meth:`claim` only *checks*, and
    :meth:`commit` marks the URLs after their fetch tasks were sent.  A worker dying in between
    re-sends (duplicates, which the sink absorbs), never loses; two workers racing may both send.
    The price of the memory saving: a false positive skips a new URL (0.1% by default).
    """

    def __init__(self, client: Any, namespace: str = "ingest", *, capacity: int = 10_000_000,
                 error_rate: float = 0.001) -> None:
        self._namespace = namespace
        self._script = client.register_script(_BLOOM_LUA)
        bits = math.ceil(-capacity * math.log(error_rate) / math.log(2) ** 2)
        self.bits = min(bits, 2**32 - 1)
        self.k = max(1, round(self.bits / capacity * math.log(2)))

    def positions(self, uid: str) -> list[int]:
        """The filter's bit positions for one URL id (double hashing over a sha256)."""
        digest = hashlib.sha256(uid.encode()).digest()
        h1, h2 = int.from_bytes(digest[:8], "big"), int.from_bytes(digest[8:16], "big") | 1
        return [(h1 + i * h2) % self.bits for i in range(self.k)]

    def _run(self, mode: str, scope: str, url_ids: Sequence[str]) -> list[bool]:
        if not url_ids:
            return []
        args: list[Any] = [mode, self.k]
        for uid in url_ids:
            args += self.positions(uid)
        return [bool(x) for x in self._script(keys=[f"{self._namespace}:bloom:{scope}"], args=args)]

    def claim(self, crawl_id: str, url_ids: Sequence[str], owner: str) -> list[bool]:
        """True for each id the filter has surely not seen (nothing is marked yet)."""
        return self._run("check", crawl_id, url_ids)

    def commit(self, crawl_id: str, url_ids: Sequence[str]) -> None:
        """Mark ids as seen, after their tasks were sent."""
        self._run("mark", crawl_id, url_ids)

    def release(self, crawl_id: str, url_ids: Sequence[str], owner: str) -> None:
        """Nothing to do: an id is marked only by :meth:`commit`, so an unsent one was never marked."""


def make_seen(client: Any, namespace: str, backend: str = "exact", *, capacity: int = 10_000_000,
              error_rate: float = 0.001) -> Seen:
    """The shared seen-set the settings ask for (``INGEST_SEEN_BACKEND``)."""
    if backend == "bloom":
        return BloomSeen(client, namespace, capacity=capacity, error_rate=error_rate)
    return RedisSeen(client, namespace)
