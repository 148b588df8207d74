"""The seen-set: which URLs a crawl has already sent to fetch, shared by every discover worker.

A claim records *who* claimed a URL (the id of the discover message that found it), not just
that it was seen.  If a worker dies after claiming but before its fetch messages were sent,
the broker redelivers the same discover message, the claims come back as "yours", and the
fetches are sent again.  A plain set would answer "seen" and the article would be lost.

Claiming is two-phase: ``claim`` (pending, held by its owner), send, then ``commit`` (sent: no
owner gets it again).  Claims that will not be sent (a page budget's cut) are given back with
``release`` and stay claimable by the next poll.  So a crash anywhere between claim and commit
leaves the URL with its owner, never marked as sent without having been sent.

In Redis, each new claim is also counted for its crawl (``workers.core.crawlstate``), in the
same script, so a crawl knows how many URLs it has before any is sent.  A poll round's set
(``<crawl>/<poll>``) expires ``poll_ttl_s`` after its last claim or commit: the next round has
its own, and an old round's pages are never asked about again.  A crawl's own set lives until
the crawl finishes (then :data:`workers.core.crawlstate.CRAWL_KEEP_S`).
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from workers.core.crawlstate import (
    ENDED_MARK,
    OPEN_LUA,
    STORED_MARK,
    bloom_key,
    claim_keys,
    crawl_key,
    scope_crawl,
    seen_key,
)

__all__ = ["DEFAULT_POLL_TTL_S", "BloomSeen", "Limits", "MemoryLimits", "MemorySeen", "RedisLimits", "RedisSeen",
           "Seen", "expire_poll_sets", "make_seen"]

#: Seconds a poll round's seen-set outlives its last claim (``INGEST_SEEN_POLL_TTL``).
DEFAULT_POLL_TTL_S = 21600


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
# KEYS[1] = the scope's set, KEYS[2..6] = claim_keys(crawl); ARGV = owner, ttl (0: none), crawl id, ids.
_CLAIM_LUA = OPEN_LUA + """
local out, new = {}, 0
for i = 4, #ARGV do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[1]) == 1 then
    out[#out + 1] = 1
    new = new + 1
  elseif redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[1] then
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
if tonumber(ARGV[2]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
opened(ARGV[3], new)
return out
"""

# ARGV[1] = the sent marker, ARGV[2] = ttl, then ids.  HSET, not a check of the owner: only the owner commits.
# A URL whose record was counted or whose chain ended (STORED_MARK, ENDED_MARK) stays so: a late
# commit (a slow sender) must not make a redelivered message count it again.
_COMMIT_LUA = """
for i = 3, #ARGV do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v ~= '""" + STORED_MARK + """' and v ~= '""" + ENDED_MARK + """' then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[1])
  end
end
if tonumber(ARGV[2]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return #ARGV - 2
"""

# ARGV[1] = owner, then ids: only the owner's pending claims go; a sent URL stays sent.  What goes
# back is no longer the crawl's (KEYS[2]): the next poll claims, and counts, it again.
_RELEASE_LUA = """
local n = 0
for i = 2, #ARGV do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[1] then
    n = n + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
if n > 0 and redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HINCRBY', KEYS[2], 'claimed', -n) end
return n
"""


class RedisSeen:
    """The seen-set in Redis: one hash per crawl (and per poll round), ``url_id -> owner``, shared by all hosts."""

    def __init__(self, client: Any, namespace: str = "ingest", *, poll_ttl_s: int = DEFAULT_POLL_TTL_S) -> None:
        self._namespace = namespace
        self.poll_ttl_s = poll_ttl_s
        self._script = client.register_script(_CLAIM_LUA)
        self._commit = client.register_script(_COMMIT_LUA)
        self._release = client.register_script(_RELEASE_LUA)

    def claim(self, crawl_id: str, url_ids: Sequence[str], owner: str) -> list[bool]:
        """See :meth:`Seen.claim` (``crawl_id`` is the scope: a crawl, or ``crawl/poll``)."""
        if not url_ids:
            return []
        crawl, poll = scope_crawl(crawl_id)
        keys = [seen_key(self._namespace, crawl_id), *claim_keys(self._namespace, crawl)]
        result = self._script(keys=keys, args=[_short(owner), self.poll_ttl_s if poll else 0, crawl, *url_ids])
        return [bool(x) for x in result]

    def commit(self, crawl_id: str, url_ids: Sequence[str]) -> None:
        """See :meth:`Seen.commit` (the stored owner becomes one character: smaller, not larger)."""
        if url_ids:
            ttl = self.poll_ttl_s if scope_crawl(crawl_id)[1] else 0
            self._commit(keys=[seen_key(self._namespace, crawl_id)], args=[_SENT, ttl, *url_ids])

    def release(self, crawl_id: str, url_ids: Sequence[str], owner: str) -> None:
        """See :meth:`Seen.release`."""
        if url_ids:
            keys = [seen_key(self._namespace, crawl_id), crawl_key(self._namespace, scope_crawl(crawl_id)[0])]
            self._release(keys=keys, args=[_short(owner), *url_ids])


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
# server-side).  KEYS as for _CLAIM_LUA; ARGV[1] = mode ("check" | "mark"), ARGV[2] = k, ARGV[3] =
# ttl (0: none), ARGV[4] = crawl id, then k bit positions per id.  A check counts what it lets through.
_BLOOM_LUA = OPEN_LUA + """
local k = tonumber(ARGV[2])
local out, fresh = {}, 0
for i = 5, #ARGV, k do
  local new = 0
  for j = i, i + k - 1 do
    if ARGV[1] == 'mark' then
      redis.call('SETBIT', KEYS[1], ARGV[j], 1)
    elseif new == 0 and redis.call('GETBIT', KEYS[1], ARGV[j]) == 0 then
      new = 1
    end
  end
  out[#out + 1] = new
  fresh = fresh + new
end
if ARGV[1] == 'mark' then
  if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
else
  opened(ARGV[4], fresh)
end
return out
"""

_UNCOUNT_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'claimed', -tonumber(ARGV[1])) end
"""


class BloomSeen:
    """A probabilistic seen-set: ~14 bits per URL at a 0.1% false-positive rate, instead of ~90 bytes.

    It cannot remember owners, so it works in two steps: :meth:`claim` only *checks*, and
    :meth:`commit` marks the URLs after their fetch tasks were sent.  A worker dying in between
    re-sends (duplicates, which the sink absorbs), never loses; two workers racing may both send.
    The price of the memory saving: a false positive skips a new URL (0.1% by default).
    """

    def __init__(self, client: Any, namespace: str = "ingest", *, capacity: int = 10_000_000,
                 error_rate: float = 0.001, poll_ttl_s: int = DEFAULT_POLL_TTL_S) -> None:
        self._namespace = namespace
        self.poll_ttl_s = poll_ttl_s
        self._script = client.register_script(_BLOOM_LUA)
        self._uncount = client.register_script(_UNCOUNT_LUA)
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
        crawl, poll = scope_crawl(scope)
        args: list[Any] = [mode, self.k, self.poll_ttl_s if poll else 0, crawl]
        for uid in url_ids:
            args += self.positions(uid)
        keys = [bloom_key(self._namespace, scope), *claim_keys(self._namespace, crawl)]
        return [bool(x) for x in self._script(keys=keys, args=args)]

    def claim(self, crawl_id: str, url_ids: Sequence[str], owner: str) -> list[bool]:
        """True for each id the filter has surely not seen (nothing is marked yet)."""
        return self._run("check", crawl_id, url_ids)

    def commit(self, crawl_id: str, url_ids: Sequence[str]) -> None:
        """Mark ids as seen, after their tasks were sent."""
        self._run("mark", crawl_id, url_ids)

    def release(self, crawl_id: str, url_ids: Sequence[str], owner: str) -> None:
        """An id is marked only by :meth:`commit`, so an unsent one was never marked: only the
        crawl's count of claims gives them back."""
        if url_ids:
            self._uncount(keys=[crawl_key(self._namespace, scope_crawl(crawl_id)[0])], args=[len(url_ids)])


def make_seen(client: Any, namespace: str, backend: str = "exact", *, capacity: int = 10_000_000,
              error_rate: float = 0.001, poll_ttl_s: int = DEFAULT_POLL_TTL_S) -> Seen:
    """The shared seen-set the settings ask for (``INGEST_SEEN_BACKEND``, ``INGEST_SEEN_POLL_TTL``)."""
    if backend == "bloom":
        return BloomSeen(client, namespace, capacity=capacity, error_rate=error_rate, poll_ttl_s=poll_ttl_s)
    return RedisSeen(client, namespace, poll_ttl_s=poll_ttl_s)


def expire_poll_sets(client: Any, namespace: str, ttl_s: int = DEFAULT_POLL_TTL_S) -> int:
    """Give every poll round's seen-set that has no expiry (written before they expired) ``ttl_s``;
    returns how many.  A crawl's own sets are left alone."""
    if ttl_s <= 0:
        return 0
    done = 0
    for pattern in (seen_key(namespace, "*/*"), bloom_key(namespace, "*/*")):
        prefix = pattern[: -len("*/*")]
        batch = []
        for key in client.scan_iter(match=pattern, count=1000):
            name = key.decode() if isinstance(key, bytes) else str(key)
            if scope_crawl(name[len(prefix):])[1]:
                batch.append(key)
            if len(batch) >= 500:
                done += _expire_unset(client, batch, ttl_s)
                batch = []
        done += _expire_unset(client, batch, ttl_s)
    return done


# A TTL already set (a live round's) stays as it is (EXPIRE NX, but on Redis before 7 too).
_EXPIRE_UNSET_LUA = """
local n = 0
for i = 1, #KEYS do
  if redis.call('TTL', KEYS[i]) == -1 then n = n + redis.call('EXPIRE', KEYS[i], ARGV[1]) end
end
return n
"""


def _expire_unset(client: Any, keys: list[Any], ttl_s: int) -> int:
    return int(client.eval(_EXPIRE_UNSET_LUA, len(keys), *keys, ttl_s)) if keys else 0
