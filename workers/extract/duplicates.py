"""Duplicate articles: the same text under another URL (exact) and wire copies syndicated across sites (near).

A duplicate is recorded (``duplicate_of``), never dropped: the record still says where the text
appeared.  :meth:`DuplicateIndex.check_and_add` names, for a new article, the *first* URL id seen
with the same ``content_sha256`` (kind ``"exact"``) or else the first one whose :func:`simhash` is
within Hamming distance :data:`MAX_DISTANCE` (kind ``"near"``), of the whole text or of its first
:data:`LEAD_WORDS` words: a site that runs an agency story cut short, or with paragraphs of its own
added at the end, changes too much of the whole text for its SimHash, but not the lead (measured on
corpus articles: a copy cut by a fifth is found 96% of the time by the lead's hash, 8% by the whole
text's).  Texts of fewer than ``min_words`` words are matched exactly only: a short text's SimHash
says too little; texts with no words at all (an unreadable page) are never duplicates of anything.

Near lookup by pigeonhole: a 64-bit hash is cut into 4 bands of 16 bits; two hashes at distance
<= 3 share at least one band, so a new article is compared only with the articles in the 4 band
buckets of its whole-text hash and the 4 of its lead hash.

Expiry and bounds (Redis keys; the memory variant keeps the same structures with the same rules):

* ``{ns}:dup:url:{url_id}``: the verdict given to a URL id ("o", "e <id>", "n <id>"), so a
  re-delivered article gets the same answer; expires ``ttl_s`` after it was first given.
* ``{ns}:dup:sha:{sha[:32]}``: the first URL id with that text; expires ``ttl_s`` after creation.
* ``{ns}:dup:band:{i}:{value:04x}``: a LIST of "simhash lead-simhash arrival original", newest first
  (the original: the article's own URL id, or the original it was found to copy, so that copies of
  copies name the first one),
  trimmed to ``bucket_size`` entries and expiring ``ttl_s`` after the last push; bands 0-3 are the
  whole text's, 4-7 the lead's.  At most 8 x 65,536 buckets; at 64 entries each that is the last
  ~4 million articles (buckets fill evenly), which is also the horizon of near-duplicate detection
  under heavy load.
* ``{ns}:dup:seq``: the arrival counter that decides which match was "first".

One Lua call per article reads and writes all of it, so concurrent workers agree on one original.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import threading
import time
import unicodedata
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

__all__ = [
    "BANDS",
    "LEAD_WORDS",
    "MAX_DISTANCE",
    "DuplicateIndex",
    "DuplicateRules",
    "Kind",
    "MemoryDuplicateIndex",
    "RedisDuplicateIndex",
    "band_slots",
    "bands",
    "hamming",
    "near_fingerprints",
    "simhash",
    "words",
]

Kind = Literal["exact", "near"]
Verdict = tuple[str | None, Kind | None]

#: Near duplicates differ in at most this many of the 64 bits; fixed by the 4 x 16-bit bands.
MAX_DISTANCE = 3
BANDS = 4
#: The words of an article's lead, hashed on their own: what a shortened or extended copy keeps.
LEAD_WORDS = 150
_BAND_BITS = 64 // BANDS
_MASK64 = (1 << 64) - 1

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """The text's words: NFKC, case-folded, punctuation stripped."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


#: Per bit (0 = least significant): a translation table mapping a byte value to 1 when that bit is set.
_BIT_TABLES = [bytes((value >> bit) & 1 for value in range(256)) for bit in range(8)]


def _shingle_digests(tokens: list[str]) -> bytes:
    """8 bytes of blake2b per word 3-shingle, concatenated (a text of one or two words is one shingle).

    The first ``k`` shingles of a text are those of its first ``k + 2`` words, so a lead's digests
    are a prefix of the whole text's: computed once, sliced for the lead.
    """
    shingles = [" ".join(tokens[i : i + 3]) for i in range(max(1, len(tokens) - 2))]
    return b"".join(hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest() for s in shingles)


def _simhash_of_digests(digests: bytes) -> int:
    half = len(digests) / 16  # half the number of shingles
    out = 0
    # Per byte position and bit, the shingles with that bit set are counted in C: the position's
    # column of bytes translated to 0/1 and counted (64 C-level passes, no Python loop per value;
    # this ran 2,000 Python steps per position before and was a millisecond per article).
    for position in range(8):
        column = digests[position::8]
        for bit in range(7, -1, -1):
            ones = column.translate(_BIT_TABLES[bit]).count(1)
            out = (out << 1) | (ones > half)
    return out


def _simhash_of(tokens: list[str]) -> int:
    return _simhash_of_digests(_shingle_digests(tokens)) if tokens else 0


def simhash(text: str) -> int:
    """64-bit SimHash over word 3-shingles (blake2b per shingle: the same in every process)."""
    return _simhash_of(words(text))


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit hashes."""
    return ((a ^ b) & _MASK64).bit_count()


def bands(value: int) -> list[int]:
    """The 4 16-bit bands of a 64-bit hash, most significant first."""
    return [(value >> (_BAND_BITS * (BANDS - 1 - i))) & 0xFFFF for i in range(BANDS)]


def band_slots(fingerprint: int, lead: int) -> list[tuple[int, int]]:
    """(band number, band value) of the whole text's hash (0-3) and of the lead's (4-7)."""
    return [*enumerate(bands(fingerprint)), *((BANDS + i, v) for i, v in enumerate(bands(lead)))]


@dataclass(frozen=True)
class DuplicateRules:
    """Thresholds and bounds of a duplicate index (see the module notes)."""

    min_words: int = 50
    bucket_size: int = 64
    ttl_s: int = 30 * 86400

    def __post_init__(self) -> None:
        if self.min_words < 1 or self.bucket_size < 1 or self.ttl_s < 1:
            raise ValueError("min_words, bucket_size and ttl_s must be positive")


class DuplicateIndex(Protocol):
    """Remembers article texts by URL id and tells which earlier article a new one copies."""

    def check_and_add(self, url_id: str, content_sha256: str, text: str) -> Verdict:
        """(first URL id with the same text or a near one, "exact" | "near"), or (None, None) if original.

        The same ``url_id`` again gets the answer it got the first time.
        """
        ...

    def check_and_add_hashed(
        self, url_id: str, content_sha256: str, fingerprint: int | None, lead: int | None = None
    ) -> Verdict:
        """:meth:`check_and_add` with the SimHashes already computed (None: match exactly only).

        ``lead`` is the SimHash of the first :data:`LEAD_WORDS` words, the whole text's when omitted.
        """
        ...


def near_fingerprints(text: str, rules: DuplicateRules) -> tuple[int, int] | None:
    """The SimHashes of the whole text and of its lead for near matching, or None when it is too short."""
    return _fingerprints_of(words(text), rules)


def _fingerprints_of(tokens: list[str], rules: DuplicateRules) -> tuple[int, int] | None:
    if len(tokens) < rules.min_words:
        return None
    digests = _shingle_digests(tokens)
    whole = _simhash_of_digests(digests)
    if len(tokens) <= LEAD_WORDS:
        return whole, whole
    return whole, _simhash_of_digests(digests[: 8 * (LEAD_WORDS - 2)])


class _TextIndex:
    """:meth:`DuplicateIndex.check_and_add` for both kinds of index, from their ``check_and_add_hashed``."""

    rules: DuplicateRules

    def check_and_add_hashed(
        self, url_id: str, content_sha256: str, fingerprint: int | None, lead: int | None = None
    ) -> Verdict:
        """See :meth:`DuplicateIndex.check_and_add_hashed`."""
        raise NotImplementedError

    def check_and_add(self, url_id: str, content_sha256: str, text: str) -> Verdict:
        """See :meth:`DuplicateIndex.check_and_add`."""
        tokens = words(text)
        if not tokens:
            return None, None
        return self.check_and_add_hashed(url_id, content_sha256, *(_fingerprints_of(tokens, self.rules) or (None,)))


def _decode(verdict: str) -> Verdict:
    if verdict.startswith("e "):
        return verdict[2:], "exact"
    if verdict.startswith("n "):
        return verdict[2:], "near"
    return None, None


class _Expiring:
    """Insertion-ordered key -> value map whose entries expire a fixed time after insertion."""

    def __init__(self, ttl_s: float) -> None:
        self._ttl = ttl_s
        self._items: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def get(self, key: str, now: float) -> str | None:
        while self._items:
            oldest = next(iter(self._items.values()))
            if oldest[0] > now:
                break
            self._items.popitem(last=False)
        item = self._items.get(key)
        return None if item is None or item[0] <= now else item[1]

    def set(self, key: str, value: str, now: float) -> None:
        self._items[key] = (now + self._ttl, value)
        self._items.move_to_end(key)  # keeps the oldest first, which the purge in get() relies on

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class _Bucket:
    entries: deque[tuple[int, int, int, str]]  # (simhash, lead simhash, arrival, url_id), newest first
    expires: float


class MemoryDuplicateIndex(_TextIndex):
    """The duplicate index of one process (the embedded run, tests)."""

    def __init__(self, rules: DuplicateRules | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.rules = rules or DuplicateRules()
        self._clock = clock
        self._verdicts = _Expiring(self.rules.ttl_s)
        self._shas = _Expiring(self.rules.ttl_s)
        self._buckets: dict[tuple[int, int], _Bucket] = {}
        self._arrivals = itertools.count(1)
        self._lock = threading.Lock()

    def check_and_add_hashed(
        self, url_id: str, content_sha256: str, fingerprint: int | None, lead: int | None = None
    ) -> Verdict:
        """See :meth:`DuplicateIndex.check_and_add_hashed`."""
        with self._lock:
            now = self._clock()
            known = self._verdicts.get(url_id, now)
            if known is not None:
                return _decode(known)
            verdict = "o"
            first = self._shas.get(content_sha256[:32], now)
            if first is not None and first != url_id:
                verdict = f"e {first}"
            else:
                self._shas.set(content_sha256[:32], url_id, now)
                if fingerprint is not None:
                    verdict = self._near(url_id, fingerprint, fingerprint if lead is None else lead, now)
            self._verdicts.set(url_id, verdict, now)
            return _decode(verdict)

    def _near(self, url_id: str, fingerprint: int, lead: int, now: float) -> str:
        best: tuple[int, str] | None = None
        keys = band_slots(fingerprint, lead)
        for key in keys:
            bucket = self._buckets.get(key)
            if bucket is None or bucket.expires <= now:
                self._buckets.pop(key, None)
                continue
            for other, other_lead, arrival, uid in bucket.entries:
                close = hamming(other, fingerprint) <= MAX_DISTANCE or hamming(other_lead, lead) <= MAX_DISTANCE
                if uid != url_id and close and (best is None or arrival < best[0]):
                    best = (arrival, uid)
        arrival = next(self._arrivals)
        # A copy is filed under its original, so a copy of the copy names the original too.
        root = url_id if best is None else best[1]
        for key in keys:
            bucket = self._buckets.setdefault(key, _Bucket(deque(maxlen=self.rules.bucket_size), 0.0))
            bucket.entries.appendleft((fingerprint, lead, arrival, root))
            bucket.expires = now + self.rules.ttl_s
        return "o" if best is None else f"n {best[1]}"


# KEYS: verdict, sha, arrival counter, then the 8 band buckets (none when matching exactly only).
# ARGV: url id, ttl, bucket size, max distance, simhash and lead simhash as 16 hex digits each
# ("" when exact only).  Entries of another shape (an older release's) are skipped.
# Lua numbers are doubles and ``bit`` works on 32 bits, so hashes are compared in two halves.
_DUP_LUA = """
local known = redis.call('GET', KEYS[1])
if known then
  return known
end
local uid, ttl = ARGV[1], ARGV[2]
local verdict = 'o'
local first = redis.call('GET', KEYS[2])
if first and first ~= uid then
  verdict = 'e ' .. first
else
  redis.call('SET', KEYS[2], uid, 'EX', ttl)
  if #KEYS > 3 then
    local function pop(x)
      local n = 0
      for i = 0, 28, 4 do
        local nibble = bit.band(bit.rshift(x, i), 15)
        while nibble > 0 do
          n = n + bit.band(nibble, 1)
          nibble = bit.rshift(nibble, 1)
        end
      end
      return n
    end
    local function distance(a, b)
      return pop(bit.bxor(tonumber(string.sub(a, 1, 8), 16), tonumber(string.sub(b, 1, 8), 16)))
        + pop(bit.bxor(tonumber(string.sub(a, 9, 16), 16), tonumber(string.sub(b, 9, 16), 16)))
    end
    local whole, lead = ARGV[5], ARGV[6]
    local maxd = tonumber(ARGV[4])
    local best_arrival, best_id = nil, nil
    for k = 4, #KEYS do
      for _, entry in ipairs(redis.call('LRANGE', KEYS[k], 0, -1)) do
        local h, l, arrival, id = string.match(entry, '^(%x+) (%x+) (%d+) (.+)$')
        if id and id ~= uid and #h == 16 and #l == 16 then
          arrival = tonumber(arrival)
          local close = distance(whole, h) <= maxd or distance(lead, l) <= maxd
          if close and (best_arrival == nil or arrival < best_arrival) then
            best_arrival, best_id = arrival, id
          end
        end
      end
    end
    if best_id then
      verdict = 'n ' .. best_id
    end
    -- A copy is filed under its original, so a copy of the copy names the original too.
    local entry = whole .. ' ' .. lead .. ' ' .. redis.call('INCR', KEYS[3]) .. ' ' .. (best_id or uid)
    for k = 4, #KEYS do
      redis.call('LPUSH', KEYS[k], entry)
      redis.call('LTRIM', KEYS[k], 0, tonumber(ARGV[3]) - 1)
      redis.call('EXPIRE', KEYS[k], ttl)
    end
  end
end
redis.call('SET', KEYS[1], verdict, 'EX', ttl)
return verdict
"""


class RedisDuplicateIndex(_TextIndex):
    """The duplicate index in Redis, shared by every extract worker (keys in the module notes)."""

    def __init__(self, client: Any, namespace: str = "ingest", rules: DuplicateRules | None = None) -> None:
        self.rules = rules or DuplicateRules()
        self._namespace = namespace
        self._script = client.register_script(_DUP_LUA)

    def band_keys(self, fingerprint: int, lead: int | None = None) -> list[str]:
        """The Redis keys of the 8 band buckets of an article's hashes (see :func:`band_slots`)."""
        slots = band_slots(fingerprint, fingerprint if lead is None else lead)
        return [f"{self._namespace}:dup:band:{i}:{value:04x}" for i, value in slots]

    def check_and_add_hashed(
        self, url_id: str, content_sha256: str, fingerprint: int | None, lead: int | None = None
    ) -> Verdict:
        """See :meth:`DuplicateIndex.check_and_add_hashed`."""
        ns = self._namespace
        keys = [f"{ns}:dup:url:{url_id}", f"{ns}:dup:sha:{content_sha256[:32]}", f"{ns}:dup:seq"]
        hex_hash = hex_lead = ""
        if fingerprint is not None:
            lead = fingerprint if lead is None else lead
            keys += self.band_keys(fingerprint, lead)
            hex_hash, hex_lead = f"{fingerprint & _MASK64:016x}", f"{lead & _MASK64:016x}"
        rules = self.rules
        args = [url_id, rules.ttl_s, rules.bucket_size, MAX_DISTANCE, hex_hash, hex_lead]
        result = self._script(keys=keys, args=args)
        return _decode(result.decode() if isinstance(result, bytes) else str(result))
