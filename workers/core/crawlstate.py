"""Crawls as the workers share them in Redis: which exist, whether they run, how far they got.

A crawl is born with its first claimed URL (the seen-set registers it, see
:mod:`workers.discover.frontier`) and counts each claim: one URL, one chain of messages (fetch,
then discover or extract and sink), open from the claim until the chain's last message settles.
``remaining`` is claims minus settled chains; it is counted *before* a URL is sent, so it never
touches zero while work remains, and the crawl is finished when it does.

Keys (``{ns}`` the namespace):

* ``{ns}:crawl:{id}`` hash: ``state`` (running, paused, cancelled, finished), ``started_at``,
  ``finished_at``, ``claimed``, ``ended``, ``source``, and ``o:<stage.outcome>`` counters;
* ``{ns}:crawl-starts:{id}`` set: the first start URLs (a few, for ``ingest crawls``);
* ``{ns}:crawls`` sorted set: crawl id -> start time;
* ``{ns}:rate:{minute}`` hash: pages fetched and records stored in that minute (an hour kept).

A finished crawl's keys and seen-sets expire after :data:`CRAWL_KEEP_S`, unless it is a
scheduled source's (its next poll reopens it); any new claim reopens a finished crawl.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any, TypeVar

__all__ = ["CRAWL_KEEP_S", "CrawlError", "RedisCrawls", "bloom_key", "crawl_key", "crawls_key", "scope_crawl",
           "seen_key", "starts_key"]

#: How long a finished crawl's state and seen-sets are kept (then a new crawl may reuse its id).
CRAWL_KEEP_S = 7 * 86400
#: Per-minute counters are kept this long (``ingest status`` shows the last minutes).
RATE_KEEP_S = 3600 + 120
#: Start URLs remembered per crawl (an enqueue of a million articles must not copy them all).
MAX_STARTS = 10
#: Outcomes that are not failures: everything else that ends a page (a 404, not HTML, a dead letter) is.
_NOT_FAILED = {"done", "stored", "exists", "updated", "stale", "empty", "delayed", "absent", "not_modified", "retry",
               "limit", "robots_wait", "paused", "cancelled", "timeout", "classified"}
# A poll round's scope: "<crawl id>/<poll id>", the poll id being the round's due time (schedule.poll_id).
_POLL_SCOPE = re.compile(r"^(?P<crawl>.+)/(?P<poll>\d{8}T\d{6})$")


class CrawlError(ValueError):
    """A crawl that does not exist, or cannot go to the state asked for."""


def scope_crawl(scope: str) -> tuple[str, bool]:
    """(crawl id, is a poll round's scope) of a seen-set scope (``crawl`` or ``crawl/poll``)."""
    match = _POLL_SCOPE.match(scope)
    return (match.group("crawl"), True) if match else (scope, False)


def claim_scope(task: dict[str, Any], kind: str, refresh: bool = False) -> str:
    """The seen-set a URL of ``kind`` found on ``task``'s page is claimed in: articles once per
    crawl (or per poll when the source asks for refreshes), discovery pages once per poll round,
    so each round re-reads them."""
    poll = task.get("poll_id")
    if poll and (kind != "article" or refresh):
        return f"{task['crawl_id']}/{poll}"
    return str(task["crawl_id"])


def seen_key(ns: str, scope: str) -> str:
    """The exact seen-set of a scope."""
    return f"{ns}:seen:{scope}"


def bloom_key(ns: str, scope: str) -> str:
    """The Bloom-filter seen-set of a scope."""
    return f"{ns}:bloom:{scope}"


def crawl_key(ns: str, crawl_id: str) -> str:
    """The hash holding a crawl's state and counters."""
    return f"{ns}:crawl:{crawl_id}"


def starts_key(ns: str, crawl_id: str) -> str:
    """The set of a crawl's first start URLs."""
    return f"{ns}:crawl-starts:{crawl_id}"


def crawls_key(ns: str) -> str:
    """The index of crawls by start time."""
    return f"{ns}:crawls"


def claim_keys(ns: str, crawl_id: str) -> list[str]:
    """The keys a claim touches after its seen-set (see :data:`OPEN_LUA`)."""
    return [crawl_key(ns, crawl_id), crawls_key(ns), starts_key(ns, crawl_id), seen_key(ns, crawl_id),
            bloom_key(ns, crawl_id)]


#: Lua appended to a claim script, after its seen-set is KEYS[1] and KEYS[2..6] are :func:`claim_keys`:
#: ``opened(crawl_id, n)`` registers ``n`` new claims, creating the crawl or reopening a finished one
#: (whose keys were set to expire).  Called in the script that claims, so no URL is ever sent unseen.
OPEN_LUA = """
local function opened(crawl_id, n)
  if n <= 0 then return end
  local now = redis.call('TIME')
  local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
  if redis.call('HSETNX', KEYS[2], 'started_at', t) == 1 then
    redis.call('HSET', KEYS[2], 'state', 'running', 'claimed', 0, 'ended', 0)
    redis.call('ZADD', KEYS[3], t, crawl_id)
  elseif redis.call('HEXISTS', KEYS[2], 'finished_at') == 1 then
    if redis.call('HGET', KEYS[2], 'state') == 'finished' then redis.call('HSET', KEYS[2], 'state', 'running') end
    redis.call('HDEL', KEYS[2], 'finished_at')
    for i = 2, 6 do redis.call('PERSIST', KEYS[i]) end
  end
  redis.call('HINCRBY', KEYS[2], 'claimed', n)
end
"""

# KEYS[1] crawl hash, KEYS[2..4] its other keys, KEYS[5] the poll schedule, KEYS[6] the seen-set the
# chain's URL was claimed in; ARGV[1] crawl id, ARGV[2] keep seconds, ARGV[3] the URL id or "",
# ARGV[4] ENDED_MARK, ARGV[5] the dead-letter outcome to count or "".  One chain ended; returns the
# state when that drained the crawl.  A chain ends once: its claim becomes ENDED_MARK, and a second
# end (the same message handled twice after a kill or a Redis restart) counts nothing.  A scheduled
# source's crawl keeps its keys: its next poll reopens it, and its seen-set must not be forgotten.
_SETTLE_LUA = """
if ARGV[3] ~= '' then
  local v = redis.call('HGET', KEYS[6], ARGV[3])
  if v == ARGV[4] then return false end
  if v then redis.call('HSET', KEYS[6], ARGV[3], ARGV[4]) end
end
if ARGV[5] ~= '' and redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'o:' .. ARGV[5], 1) end
-- A straggler after the end (a redelivery, a dead letter retried) changes nothing.
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'finished_at') == 1 then return false end
local ended = redis.call('HINCRBY', KEYS[1], 'ended', 1)
local claimed = tonumber(redis.call('HGET', KEYS[1], 'claimed') or '0')
if claimed <= 0 or ended < claimed then return false end
local now = redis.call('TIME')
-- Redeliveries after a crash can end a chain twice: the crawl's next round starts level.
redis.call('HSET', KEYS[1], 'finished_at', tonumber(now[1]) + tonumber(now[2]) / 1000000, 'ended', claimed)
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'running' or state == 'paused' then
  state = 'finished'
  redis.call('HSET', KEYS[1], 'state', state)
end
if not redis.call('ZSCORE', KEYS[5], ARGV[1]) then
  for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ARGV[2]) end
end
return state
"""

# KEYS[1] crawl hash; ARGV[1] action.  Returns {new state, changed (0/1)} or {"error", why}.
_CONTROL_LUA = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'error', 'missing'} end
local to = ({pause = 'paused', resume = 'running', cancel = 'cancelled'})[ARGV[1]]
local from = ({pause = {running = 1}, resume = {paused = 1}, cancel = {running = 1, paused = 1}})[ARGV[1]]
if state == to then return {state, 0} end
if not from[state] then return {'error', state} end
redis.call('HSET', KEYS[1], 'state', to)
return {to, 1}
"""

# KEYS[1] crawl hash, KEYS[2] minute bucket; ARGV[1] event, ARGV[2] rate field or "", ARGV[3] source or "".
_OBSERVE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'o:' .. ARGV[1], 1)
  if ARGV[3] ~= '' then redis.call('HSETNX', KEYS[1], 'source', ARGV[3]) end
  if ARGV[5] ~= '' then redis.call('HINCRBY', KEYS[1], ARGV[5], tonumber(ARGV[6])) end
end
if ARGV[2] ~= '' then
  redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[4]))
end
"""

#: What a URL's claim in its crawl's seen-set becomes once its record was counted (no owner, a
#: short hash, and not the discover stage's "sent" mark either).
STORED_MARK = "*"
#: What it becomes once the URL's chain ended (stored, failed, empty): counted, and never again.
ENDED_MARK = "#"

# KEYS[1] crawl hash, KEYS[2] minute bucket, KEYS[3] the crawl's seen-set; ARGV[1] url id, ARGV[2] the
# event to count when the URL was counted already, ARGV[3] source or "", ARGV[4] rate keep seconds,
# ARGV[5] STORED_MARK, ARGV[6] ENDED_MARK (a chain that ended has its record counted, if any).
# A record is counted once per URL: its claim in the seen-set becomes STORED_MARK.  A URL without a
# claim there (a Bloom seen-set, an expired one) is counted each time (at least once).
_STORED_LUA = """
local v = redis.call('HGET', KEYS[3], ARGV[1])
local event = 'sink.stored'
if v == ARGV[5] or v == ARGV[6] then event = ARGV[2] elseif v then redis.call('HSET', KEYS[3], ARGV[1], ARGV[5]) end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'o:' .. event, 1)
  if ARGV[3] ~= '' then redis.call('HSETNX', KEYS[1], 'source', ARGV[3]) end
end
if event == 'sink.stored' then
  redis.call('HINCRBY', KEYS[2], 'stored', 1)
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[4]))
end
return event
"""

# KEYS[1] crawl hash, KEYS[2] its starts; ARGV[1] url, ARGV[2] how many are kept.  The set expires with the hash.
# Returns 0 (no such crawl), 1, or 2 when the set was full already (the caller stops asking a while).
_ADD_START_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[2]) then return 2 end
if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
end
return 1
"""
T = TypeVar("T")

#: How long a worker takes a crawl's start set for full without asking (a new crawl under the same
#: id, after the old one expired, gets its starts recorded again after this).
_STARTS_FULL_S = 60.0


def _rate_field(event: str) -> str:
    if event == "fetch.done":
        return "fetched"
    return "stored" if event in {"sink.stored", "sink.updated"} else ""


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisCrawls:
    """The crawls' shared state; the workers read :meth:`control` (cached ``cache_s``) per message."""

    def __init__(self, client: Any, namespace: str = "ingest", *, cache_s: float = 1.0) -> None:
        self.client = client
        self.ns = namespace
        self.cache_s = cache_s
        # Per crawl id: (when it was read, what was read): its state, and whether its start set is full.
        self._states: dict[str, tuple[float, str]] = {}
        self._starts_full: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()
        self._settle = client.register_script(_SETTLE_LUA)
        self._control = client.register_script(_CONTROL_LUA)
        self._observe = client.register_script(_OBSERVE_LUA)
        self._add_start = client.register_script(_ADD_START_LUA)
        self._stored = client.register_script(_STORED_LUA)

    # --- what the workers do ---------------------------------------------------------------------

    def control(self, crawl_id: str) -> str:
        """The crawl's state (``running`` for a crawl Redis does not know), at most ``cache_s`` old."""
        cached = self._recall(self._states, crawl_id, self.cache_s)
        if cached is not None:
            return cached
        raw = self.client.hget(crawl_key(self.ns, crawl_id), "state")
        state = _s(raw) if raw is not None else "running"
        self._keep(self._states, crawl_id, state)
        return state

    def observe(self, event: str, crawl_id: str | None, source: str | None, *, now: float | None = None,
                over_budget: int = 0) -> None:
        """Count one outcome for its crawl (and, for pages fetched and records stored, per minute);
        ``over_budget``: links a spent page budget left unsent (``discover.limit``), added up."""
        minute = int((time.time() if now is None else now) // 60)
        # Without a crawl id the first key is "{ns}:crawl:", which no crawl has (crawl ids are not empty).
        keys = [crawl_key(self.ns, crawl_id or ""), f"{self.ns}:rate:{minute}"]
        extra = ["over_budget", over_budget] if over_budget else ["", 0]
        self._observe(keys=keys, args=[event, _rate_field(event), source or "", RATE_KEEP_S, *extra])

    def stored(self, crawl_id: str, url_id: str, source: str | None, *, again: bool,
               now: float | None = None) -> str:
        """Count a record written for the crawl once per URL, however often its message is delivered.

        ``again``: the write found this very record already stored (a redelivery); it counts as
        ``sink.stored`` only when no delivery counted it before, else as ``sink.exists``.  Returns
        the event counted."""
        minute = int((time.time() if now is None else now) // 60)
        keys = [crawl_key(self.ns, crawl_id), f"{self.ns}:rate:{minute}", seen_key(self.ns, crawl_id)]
        fallback = "sink.exists" if again else "sink.stored"
        return _s(self._stored(keys=keys, args=[url_id, fallback, source or "", RATE_KEEP_S, STORED_MARK, ENDED_MARK]))

    def add_start(self, crawl_id: str, url: str) -> None:
        """Remember one of the crawl's start URLs (the first :data:`MAX_STARTS`).

        A URL list given to ``ingest enqueue`` makes every URL a start: once the set is full, this
        worker stops asking for :data:`_STARTS_FULL_S` (one round trip a page saved).
        """
        if self._recall(self._starts_full, crawl_id, _STARTS_FULL_S):
            return
        keys = [crawl_key(self.ns, crawl_id), starts_key(self.ns, crawl_id)]
        if self._add_start(keys=keys, args=[url, MAX_STARTS]) == 2:
            self._keep(self._starts_full, crawl_id, True)

    def _recall(self, memo: dict[str, tuple[float, T]], crawl_id: str, max_age_s: float) -> T | None:
        """What ``memo`` holds for the crawl when it is younger than ``max_age_s``, else None."""
        with self._lock:
            kept = memo.get(crawl_id)
        return kept[1] if kept is not None and time.monotonic() - kept[0] < max_age_s else None

    def _keep(self, memo: dict[str, tuple[float, T]], crawl_id: str, value: T) -> None:
        with self._lock:
            if len(memo) > 10_000:  # a worker sees few crawls at once; never let this grow
                memo.clear()
            memo[crawl_id] = (time.monotonic(), value)

    def settle(self, crawl_id: str, *, url_id: str | None = None, scope: str | None = None,
               dead_event: str | None = None) -> str | None:
        """A chain of the crawl ended (its URL's last message settled).  Returns the crawl's state
        when this drained it (the caller reports it, once); the crawl's keys then expire after
        :data:`CRAWL_KEEP_S`, except a scheduled source's.  With the chain's ``url_id`` and the
        ``scope`` it was claimed in, a chain ends once however often its last message is handled;
        ``dead_event`` (``fetch.dead``) is counted with that first end only."""
        keys = [crawl_key(self.ns, crawl_id), starts_key(self.ns, crawl_id), seen_key(self.ns, crawl_id),
                bloom_key(self.ns, crawl_id), f"{self.ns}:schedule",  # the schedule: workers.discover.schedule
                seen_key(self.ns, scope or crawl_id)]
        state = self._settle(keys=keys, args=[crawl_id, CRAWL_KEEP_S, url_id or "", ENDED_MARK, dead_event or ""])
        return _s(state) if state else None

    # --- what an operator does -------------------------------------------------------------------

    def pause(self, crawl_id: str) -> str:
        """Hold the crawl's messages (they wait in their queues); returns the new state."""
        return self._change(crawl_id, "pause")[0]

    def resume(self, crawl_id: str) -> str:
        """Let a paused crawl go on."""
        return self._change(crawl_id, "resume")[0]

    def cancel(self, crawl_id: str) -> str:
        """Drop the crawl's remaining messages as they come up."""
        return self._change(crawl_id, "cancel")[0]

    def change(self, crawl_id: str, action: str) -> tuple[str, bool]:
        """``pause``, ``resume`` or ``cancel``: (new state, whether it changed); raises CrawlError."""
        return self._change(crawl_id, action)

    def _change(self, crawl_id: str, action: str) -> tuple[str, bool]:
        state, changed = (_s(x) for x in self._control(keys=[crawl_key(self.ns, crawl_id)], args=[action]))
        if state == "error":
            if changed == "missing":
                raise CrawlError(f"no crawl {crawl_id!r}")
            raise CrawlError(f"crawl {crawl_id} is {changed}: it cannot be {_DONE[action]}")
        with self._lock:
            self._states.pop(crawl_id, None)
        return state, changed == "1"

    # --- what ``ingest crawls`` and ``ingest status`` read ---------------------------------------

    def get(self, crawl_id: str) -> dict[str, Any] | None:
        """One crawl's state and progress, or None."""
        found = self._read([crawl_id])
        return found[0] if found else None

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest ``limit`` crawls, newest first (ids whose state expired are dropped from the index)."""
        ids = [_s(x) for x in self.client.zrevrange(crawls_key(self.ns), 0, limit - 1)]
        found = self._read(ids)
        gone = set(ids) - {c["crawl_id"] for c in found}
        # The oldest entries too, a page per call: the index never outgrows the crawls kept.
        oldest = [_s(x) for x in self.client.zrange(crawls_key(self.ns), 0, 99)]
        pipe = self.client.pipeline(transaction=False)
        for crawl_id in oldest:
            pipe.exists(crawl_key(self.ns, crawl_id))
        gone |= {crawl_id for crawl_id, there in zip(oldest, pipe.execute(), strict=True) if not there}
        if gone:
            self.client.zrem(crawls_key(self.ns), *gone)
        return found

    def _read(self, ids: list[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for crawl_id in ids:
            pipe.hgetall(crawl_key(self.ns, crawl_id))
            pipe.smembers(starts_key(self.ns, crawl_id))
        replies = pipe.execute()
        out = []
        for i, crawl_id in enumerate(ids):
            fields = {_s(k): _s(v) for k, v in replies[2 * i].items()}
            if "state" in fields:
                out.append(progress(crawl_id, fields, sorted(_s(u) for u in replies[2 * i + 1])))
        return out

    def rates(self, minutes: int = 10, now: float | None = None) -> list[dict[str, Any]]:
        """Pages fetched and records stored in each of the last ``minutes`` minutes, oldest first."""
        current = int((time.time() if now is None else now) // 60)
        span = list(range(current - minutes + 1, current + 1))
        pipe = self.client.pipeline(transaction=False)
        for minute in span:
            pipe.hmget(f"{self.ns}:rate:{minute}", "fetched", "stored")
        out = []
        for minute, (fetched, stored) in zip(span, pipe.execute(), strict=True):
            out.append({"minute": time.strftime("%H:%M", time.gmtime(minute * 60)), "fetched": int(fetched or 0),
                        "stored": int(stored or 0)})
        return out


_DONE = {"pause": "paused", "resume": "resumed", "cancel": "cancelled"}


def progress(crawl_id: str, fields: dict[str, str], start_urls: list[str]) -> dict[str, Any]:
    """A crawl's figures from its hash: discovered, fetched, stored, failed, remaining, and each outcome."""
    outcomes = {k[2:]: int(v) for k, v in fields.items() if k.startswith("o:")}
    claimed, ended = int(fields.get("claimed", 0)), int(fields.get("ended", 0))
    finished = fields.get("finished_at")
    return {
        "crawl_id": crawl_id,
        "state": fields.get("state", "running"),
        "started_at": float(fields.get("started_at", 0)),
        "finished_at": float(finished) if finished else None,
        "source": fields.get("source"),
        "start_urls": start_urls,
        "discovered": claimed,
        "fetched": outcomes.get("fetch.done", 0),
        "stored": outcomes.get("sink.stored", 0) + outcomes.get("sink.updated", 0),
        "failed": sum(n for event, n in outcomes.items() if event.partition(".")[2] not in _NOT_FAILED),
        "remaining": 0 if finished else max(0, claimed - ended),
        # Links a page budget left (a source's next poll takes them; a crawl without polls never does).
        "over_budget": int(fields.get("over_budget", 0)),
        "outcomes": dict(sorted(outcomes.items())),
    }
