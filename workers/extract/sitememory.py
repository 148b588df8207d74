"""Site memory: text blocks that recur across many pages of one host are that host's boilerplate.

A teaser list, a subscription box or a legal line that the extractor keeps looks like article text
on any one page; seen on half of a host's pages it is plainly not.  The memory counts, per host,
on how many distinct pages each block (by :func:`fingerprint`) appeared and how many pages were
observed, and :func:`strip_recurring` drops the blocks it calls recurring.

The rule (:class:`SiteRules`): a block recurs on a host once it appeared on at least ``min_pages``
distinct pages **and** on at least ``min_share`` of the host's observed pages.  Consequences worth
knowing: nothing is dropped from a host's first ``min_pages - 1`` pages (cold start), and a block
must keep up with the host's growth to stay boilerplate.

Counts decay: when a host's page count reaches ``window``, every count (pages and blocks) is
halved, so the share measures roughly the last ``window`` pages and a redesigned site's new
boxes are learnt within about ``window`` pages instead of never.  Bounds per host: at most
``max_blocks`` fingerprints (the lowest counts go first; ties by fingerprint, the same order in
both variants) and the ids of the last ``max_pages_remembered`` pages (the per-page idempotence:
a re-delivered page is not counted twice while its id is remembered).  A host's state expires
``ttl_s`` after its last observation.

Redis keys per host (all three expiring together):
``{ns}:sitemem:{host}:blocks`` ZSET fingerprint -> decayed page count,
``{ns}:sitemem:{host}:seen`` ZSET page id -> arrival number (bounded),
``{ns}:sitemem:{host}:count`` HASH ``pages`` (decayed page count), ``seq`` (arrival counter).
One Lua call per page observes and answers (:meth:`SiteMemory.observe_and_check`).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "MAX_BOILERPLATE_CHARS",
    "MIN_BOILERPLATE_CHARS",
    "MemorySiteMemory",
    "RedisSiteMemory",
    "SiteMemory",
    "SiteRules",
    "fingerprint",
    "strip_recurring",
]

#: Blocks longer than this are article text even when repeated (syndicated copies, quoted statements).
MAX_BOILERPLATE_CHARS = 400
#: Shorter blocks are attribution lines (agency, byline), kept even when every page repeats them.
MIN_BOILERPLATE_CHARS = 25

_DIGITS = re.compile(r"\d")


def fingerprint(block: str) -> str:
    """A 16-hex-digit hash of a block, blind to case, whitespace and digits (dates, counts)."""
    text = unicodedata.normalize("NFKC", block).casefold()
    text = _DIGITS.sub("0", " ".join(text.split()))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


@dataclass(frozen=True)
class SiteRules:
    """When a block counts as boilerplate and how much each host may keep (see the module notes)."""

    min_pages: int = 3
    min_share: float = 0.5
    window: int = 500
    max_blocks: int = 5_000
    max_pages_remembered: int = 2_000
    ttl_s: int = 30 * 86400

    def __post_init__(self) -> None:
        if self.min_pages < 1 or not 0.0 < self.min_share <= 1.0:
            raise ValueError(f"need min_pages >= 1 and 0 < min_share <= 1, got {self.min_pages}, {self.min_share}")
        # After halving, the page count is window / 2; min_pages must still be reachable by share.
        if self.window * self.min_share / 2 < self.min_pages:
            raise ValueError(f"window {self.window} too small for min_pages {self.min_pages} at {self.min_share}")
        if self.max_blocks < 1 or self.max_pages_remembered < 1 or self.ttl_s < 1:
            raise ValueError("max_blocks, max_pages_remembered and ttl_s must be positive")

    def recurs(self, count: float, pages: float) -> bool:
        """The threshold rule for one block seen on ``count`` of ``pages`` pages."""
        return count >= self.min_pages and count >= self.min_share * pages


class SiteMemory(Protocol):
    """Per-host counts of the pages each block appeared on."""

    def observe(self, host: str, page_id: str, fingerprints: Sequence[str]) -> None:
        """Record that page ``page_id`` of ``host`` has these blocks; a page already counted is not again."""
        ...

    def recurring(self, host: str, fingerprints: Sequence[str]) -> list[bool]:
        """For each fingerprint: True when it is boilerplate on ``host`` by the rules."""
        ...

    def observe_and_check(self, host: str, page_id: str, fingerprints: Sequence[str]) -> list[bool]:
        """:meth:`observe`, then :meth:`recurring`, in one atomic step."""
        ...


def strip_recurring(
    blocks: list[str],
    host: str,
    page_id: str,
    memory: SiteMemory,
    *,
    max_chars: int = MAX_BOILERPLATE_CHARS,
    min_chars: int = MIN_BOILERPLATE_CHARS,
) -> tuple[list[str], int]:
    """Observe this page's blocks, then drop the ones that recur on ``host``: (kept blocks, number dropped).

    Blocks longer than ``max_chars`` are never dropped (nor observed), and neither are blocks shorter
    than ``min_chars``: a source line every article of a host ends with ("KCNA", "(dpa)") is part of
    the article, however often it repeats.  When every non-empty block
    would go, none does: a page must not lose all its text because its host repeats itself.
    """
    candidates = [i for i, block in enumerate(blocks) if min_chars <= len(block.strip()) <= max_chars]
    flags = memory.observe_and_check(host, page_id, [fingerprint(blocks[i]) for i in candidates])
    drop = {i for i, flag in zip(candidates, flags, strict=True) if flag}
    if not drop or all(i in drop or not block.strip() for i, block in enumerate(blocks)):
        return list(blocks), 0
    return [block for i, block in enumerate(blocks) if i not in drop], len(drop)


def _unique(fingerprints: Sequence[str]) -> list[str]:
    # A block twice on one page (the seed's teasers repeat their own headline) is one page's worth.
    return list(dict.fromkeys(fingerprints))


@dataclass
class _Host:
    pages: float = 0.0
    blocks: dict[str, float] = field(default_factory=dict)
    seen: OrderedDict[str, None] = field(default_factory=OrderedDict)
    last: float = 0.0


class MemorySiteMemory:
    """The site memory of one process (the embedded run, tests, benchmarks)."""

    def __init__(self, rules: SiteRules | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.rules = rules or SiteRules()
        self._clock = clock
        self._hosts: dict[str, _Host] = {}
        self._lock = threading.Lock()
        self._observations = 0

    def observe(self, host: str, page_id: str, fingerprints: Sequence[str]) -> None:
        """See :meth:`SiteMemory.observe`."""
        with self._lock:
            self._observe(host, page_id, fingerprints)

    def recurring(self, host: str, fingerprints: Sequence[str]) -> list[bool]:
        """See :meth:`SiteMemory.recurring`."""
        with self._lock:
            return self._check(host, fingerprints)

    def observe_and_check(self, host: str, page_id: str, fingerprints: Sequence[str]) -> list[bool]:
        """See :meth:`SiteMemory.observe_and_check`."""
        with self._lock:
            self._observe(host, page_id, fingerprints)
            return self._check(host, fingerprints)

    def hosts(self) -> list[str]:
        """Hosts with live state (for tests and operators)."""
        with self._lock:
            now = self._clock()
            return [h for h, state in self._hosts.items() if now - state.last < self.rules.ttl_s]

    def _live(self, host: str, now: float) -> _Host | None:
        state = self._hosts.get(host)
        if state is not None and now - state.last >= self.rules.ttl_s:
            del self._hosts[host]
            return None
        return state

    def _observe(self, host: str, page_id: str, fingerprints: Sequence[str]) -> None:
        rules, now = self.rules, self._clock()
        self._observations += 1
        if self._observations % 1024 == 0:
            # Hosts never observed again would otherwise stay forever; Redis expires them itself.
            for name in [h for h, s in self._hosts.items() if now - s.last >= rules.ttl_s]:
                del self._hosts[name]
        state = self._live(host, now) or self._hosts.setdefault(host, _Host())
        state.last = now
        if page_id in state.seen:
            return
        state.seen[page_id] = None
        while len(state.seen) > rules.max_pages_remembered:
            state.seen.popitem(last=False)
        state.pages += 1
        for fp in _unique(fingerprints):
            state.blocks[fp] = state.blocks.get(fp, 0.0) + 1
        if state.pages >= rules.window:
            state.pages /= 2
            state.blocks = {fp: n / 2 for fp, n in state.blocks.items() if n / 2 >= 0.5}
        extra = len(state.blocks) - rules.max_blocks
        if extra > 0:
            for fp, _ in sorted(state.blocks.items(), key=lambda kv: (kv[1], kv[0]))[:extra]:
                del state.blocks[fp]

    def _check(self, host: str, fingerprints: Sequence[str]) -> list[bool]:
        state = self._live(host, self._clock())
        if state is None:
            return [False] * len(fingerprints)
        return [self.rules.recurs(state.blocks.get(fp, 0.0), state.pages) for fp in fingerprints]


# KEYS: blocks, seen, count.  ARGV: mode ("observe" | "check" | "both"), page id, ttl, max blocks,
# max remembered pages, window, min pages, min share, then the (unique) fingerprints.
_SITEMEM_LUA = """
local mode = ARGV[1]
if mode ~= 'check' then
  if not redis.call('ZSCORE', KEYS[2], ARGV[2]) then
    local seq = redis.call('HINCRBY', KEYS[3], 'seq', 1)
    redis.call('ZADD', KEYS[2], seq, ARGV[2])
    local pages = tonumber(redis.call('HINCRBYFLOAT', KEYS[3], 'pages', 1))
    for i = 9, #ARGV do
      redis.call('ZINCRBY', KEYS[1], 1, ARGV[i])
    end
    if pages >= tonumber(ARGV[6]) then
      redis.call('ZUNIONSTORE', KEYS[1], 1, KEYS[1], 'WEIGHTS', '0.5')
      redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(0.5')
      redis.call('HSET', KEYS[3], 'pages', string.format('%.17g', pages / 2))
    end
    local extra = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4])
    if extra > 0 then
      redis.call('ZREMRANGEBYRANK', KEYS[1], 0, extra - 1)
    end
    extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
    if extra > 0 then
      redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1)
    end
  end
  for k = 1, 3 do
    redis.call('EXPIRE', KEYS[k], ARGV[3])
  end
end
local out = {}
if mode == 'observe' then
  return out
end
local pages = tonumber(redis.call('HGET', KEYS[3], 'pages') or '0')
local min_pages, min_share = tonumber(ARGV[7]), tonumber(ARGV[8])
for i = 9, #ARGV do
  local n = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[i]) or '0')
  if n >= min_pages and n >= min_share * pages then
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"""


class RedisSiteMemory:
    """The site memory in Redis, shared by every extract worker (keys in the module notes)."""

    def __init__(self, client: Any, namespace: str = "ingest", rules: SiteRules | None = None) -> None:
        self.rules = rules or SiteRules()
        self._namespace = namespace
        self._script = client.register_script(_SITEMEM_LUA)

    def keys(self, host: str) -> list[str]:
        """The host's Redis keys: blocks, seen page ids, counters."""
        prefix = f"{self._namespace}:sitemem:{host}"
        return [f"{prefix}:blocks", f"{prefix}:seen", f"{prefix}:count"]

    def _run(self, mode: str, host: str, page_id: str, fingerprints: Sequence[str]) -> list[bool]:
        rules, unique = self.rules, _unique(fingerprints)
        args = [
            mode,
            page_id,
            rules.ttl_s,
            rules.max_blocks,
            rules.max_pages_remembered,
            rules.window,
            rules.min_pages,
            repr(float(rules.min_share)),
            *unique,
        ]
        flags = dict(zip(unique, (bool(x) for x in self._script(keys=self.keys(host), args=args)), strict=False))
        return [flags.get(fp, False) for fp in fingerprints]

    def observe(self, host: str, page_id: str, fingerprints: Sequence[str]) -> None:
        """See :meth:`SiteMemory.observe`."""
        self._run("observe", host, page_id, fingerprints)

    def recurring(self, host: str, fingerprints: Sequence[str]) -> list[bool]:
        """See :meth:`SiteMemory.recurring`."""
        if not fingerprints:
            return []
        return self._run("check", host, "", fingerprints)

    def observe_and_check(self, host: str, page_id: str, fingerprints: Sequence[str]) -> list[bool]:
        """See :meth:`SiteMemory.observe_and_check`."""
        return self._run("both", host, page_id, fingerprints)
