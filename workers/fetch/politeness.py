"""Per-host politeness shared by every fetch worker on every machine: rate, concurrency, back-off.

Politeness is a schedule, not a spin.  :meth:`HostPolicy.acquire` answers "may I send to this
host now?" with a :class:`Permit`: either *go* (a send slot and a concurrency lease are taken) or
*come back in ``wait_s`` seconds holding ``slot_at``* (the message goes back to the queue with that
delay; no thread sleeps, no retry is burnt).  In Redis every decision is one Lua call on the
server's clock, so workers with skewed clocks still agree.  The rules, per host:

* **Effective interval** = max(the caller's ``interval_s`` (1/rate, or robots.txt Crawl-delay if
  larger: the caller folds it in), the host's penalty, the latency EWMA once it exceeds
  ``slow_latency_s``).  A slow server thus gets about one request in flight at a time.
* **Spacing** (the hard guarantee): a send is granted only when ``now >= last_send + interval``
  and ``now >= blocked_until``.  Nothing else can grant a send, so two sends to one host are never
  closer than the interval in the policy's clock, however late a delayed message wakes.
* **Reservations** (fairness, no thundering herd): a new caller is never sent before earlier
  waiters.  It takes ``max(now, next_slot, earliest allowed)``; if that is in the future it holds
  that slot and ``next_slot`` moves one interval on, so N waiters get N distinct slots.
* **Holders** come back with ``slot_at``: they go once their slot has come and spacing allows.  If
  someone before them sent late, they wait for the spacing (keeping their slot); if they were
  pushed further than one interval past their slot (Retry-After, a new penalty) or the host is at
  its concurrency cap, they take a fresh slot at the end of the line.
* **Concurrency**: each send holds a lease until :meth:`HostPolicy.release`; at most
  ``max_concurrency`` live leases.  Leases expire after ``lease_ttl_s`` so a dead worker cannot
  block a host.  A caller refused for concurrency comes back after max(interval, EWMA, 0.1 s).
* **Back-off**: a 429 or 503 sets the penalty to max(2 x penalty, 2 x interval, 1 s), capped at
  ``max_penalty_s``; any other answer below 500 halves it (under 1 s it is dropped).  Retry-After
  (seconds, capped at ``max_penalty_s``) blocks the host for *every* worker until now + that; the
  fetch stage has already cut it to ``INGEST_MAX_RETRY_AFTER``, the same wait its message takes.
* **Latency**: each response's time feeds an EWMA (alpha :data:`EWMA_ALPHA`).

:class:`MemoryHostPolicy` (embedded run) and :class:`RedisHostPolicy` run the same rules: the pure
functions :func:`plan_acquire` and :func:`after_response`, mirrored line by line in ``_POLICY_LUA``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

__all__ = [
    "HostPolicy",
    "HostState",
    "MemoryHostPolicy",
    "Permit",
    "PolicyRules",
    "RedisHostPolicy",
    "after_response",
    "describe",
    "effective_interval",
    "plan_acquire",
]

#: Smallest penalty a 429/503 sets; a decaying penalty below it is dropped.
MIN_PENALTY_S = 1.0
#: Weight of the newest response time in the latency EWMA.  Low enough that one read timeout among
#: fast answers does not flip a host to slow (which would space every queued fetch seconds apart
#: for as long as those reservations last); a host answering slowly three times running is slow.
EWMA_ALPHA = 0.1
#: Shortest wait for a caller refused because the host is at its concurrency cap.
BUSY_WAIT_S = 0.1
#: How long a host's state outlives its last reservation (penalty and latency memory).
IDLE_TTL_S = 6 * 3600
#: Statuses that mean "you are sending too much".
BACK_OFF_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class PolicyRules:
    """The tunables of a host policy."""

    lease_ttl_s: float = 120.0
    slow_latency_s: float = 1.0
    max_penalty_s: float = 600.0


@dataclass(frozen=True)
class Permit:
    """The answer to "may I send to this host now?"."""

    #: 0 = send now (slot and lease taken); > 0 = come back after this many seconds.
    wait_s: float
    #: Token for :meth:`HostPolicy.release` after the request (only when ``wait_s == 0``).
    lease: str | None
    #: The effective interval the decision used (for logs).
    interval_s: float
    #: The slot held while waiting (epoch seconds, policy clock): pass it back verbatim as ``slot_at``.
    slot_at: float | None
    #: The policy's clock at the decision (for logs and tests; Redis server time in Redis).
    at: float


@dataclass(frozen=True)
class HostState:
    """One host's shared state (times in the policy's clock, seconds)."""

    next_slot: float = 0.0
    last_send: float | None = None
    blocked_until: float = 0.0
    penalty_s: float = 0.0
    ewma_s: float | None = None
    #: The caller's interval at the last acquire: the base of a first penalty.
    interval_s: float = 0.0


class HostPolicy(Protocol):
    """Per-host rate, concurrency and back-off, shared by every fetch worker."""

    def acquire(self, host: str, *, interval_s: float, max_concurrency: int,
                slot_at: float | None = None, now: float | None = None) -> Permit:
        """Take a send slot and a lease now, or say when to come back (see the module rules)."""
        ...

    def release(self, host: str, lease: str | None, *, latency_s: float | None, status: int | None,
                retry_after_s: float | None, now: float | None = None) -> None:
        """Return the lease and feed the response (time, status, Retry-After) into the host's state."""
        ...

    def state(self, host: str, now: float | None = None) -> dict[str, float]:
        """The host's state for tests and metrics (see :func:`describe`)."""
        ...


def effective_interval(state: HostState, interval_s: float, rules: PolicyRules) -> float:
    """The caller's interval raised by the host's penalty and, when it is slow, its latency."""
    eff = max(interval_s, state.penalty_s)
    if state.ewma_s is not None and state.ewma_s > rules.slow_latency_s:
        eff = max(eff, state.ewma_s)
    return eff


def _earliest(state: HostState, eff: float) -> float:
    if state.last_send is None:
        return state.blocked_until
    return max(state.blocked_until, state.last_send + eff)


def plan_acquire(state: HostState, rules: PolicyRules, *, now: float, interval_s: float, max_concurrency: int,
                 in_flight: int, slot_at: float | None) -> tuple[HostState, float | None, float | None, float]:
    """Decide one acquire: (new state, come-back time or None for "send now", slot held, effective interval)."""
    eff = effective_interval(state, interval_s, rules)
    earliest = _earliest(state, eff)
    busy = in_flight >= max_concurrency
    state = replace(state, interval_s=interval_s)
    if slot_at is not None:
        target = max(slot_at, earliest)
        if now >= target and not busy:
            return replace(state, last_send=now, next_slot=max(state.next_slot, now + eff)), None, None, eff
        if now < target and target <= slot_at + eff:
            return state, target, slot_at, eff
    floor = now + max(eff, state.ewma_s or 0.0, BUSY_WAIT_S) if busy else now
    slot = max(floor, state.next_slot, earliest)
    if slot <= now:
        return replace(state, last_send=now, next_slot=now + eff), None, None, eff
    return replace(state, next_slot=slot + eff), slot, slot, eff


def after_response(state: HostState, rules: PolicyRules, *, now: float, latency_s: float | None,
                   status: int | None, retry_after_s: float | None) -> HostState:
    """The host's state after one response: latency EWMA, penalty up (429/503) or down, Retry-After."""
    ewma, penalty = state.ewma_s, state.penalty_s
    if latency_s is not None:
        ewma = latency_s if ewma is None else EWMA_ALPHA * latency_s + (1 - EWMA_ALPHA) * ewma
    if status in BACK_OFF_STATUSES:
        penalty = min(rules.max_penalty_s, max(2 * penalty, 2 * state.interval_s, MIN_PENALTY_S))
    elif status is not None and status < 500:
        penalty = penalty / 2 if penalty / 2 >= MIN_PENALTY_S else 0.0
    blocked, next_slot = state.blocked_until, state.next_slot
    if retry_after_s is not None and retry_after_s > 0:
        blocked = max(blocked, now + min(retry_after_s, rules.max_penalty_s))
        next_slot = max(next_slot, blocked)
    return replace(state, ewma_s=ewma, penalty_s=penalty, blocked_until=blocked, next_slot=next_slot)


def describe(state: HostState, rules: PolicyRules, in_flight: int) -> dict[str, float]:
    """Flat numbers for tests and metrics; ``next_send`` is when a new caller could go at the earliest."""
    eff = effective_interval(state, state.interval_s, rules)
    out = {
        "next_send": max(state.next_slot, _earliest(state, eff)),
        "next_slot": state.next_slot,
        "blocked_until": state.blocked_until,
        "penalty_s": state.penalty_s,
        "ewma_latency_s": state.ewma_s or 0.0,
        "interval_s": eff,
        "in_flight": float(in_flight),
    }
    if state.last_send is not None:
        out["last_send"] = state.last_send
    return out


def _check(interval_s: float, max_concurrency: int) -> None:
    if not interval_s >= 0 or max_concurrency < 1:
        raise ValueError(f"need interval_s >= 0 and max_concurrency >= 1, got {interval_s!r}, {max_concurrency!r}")


def _permit(now: float, come_back: float | None, slot: float | None, eff: float, lease: str) -> Permit:
    if come_back is None:
        return Permit(wait_s=0.0, lease=lease, interval_s=eff, slot_at=None, at=now)
    return Permit(wait_s=come_back - now, lease=None, interval_s=eff, slot_at=slot, at=now)


class MemoryHostPolicy:
    """The policy of the embedded run, where every fetch thread lives in this process."""

    def __init__(self, *, lease_ttl_s: float = 120.0, slow_latency_s: float = 1.0, max_penalty_s: float = 600.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.rules = PolicyRules(lease_ttl_s, slow_latency_s, max_penalty_s)
        self._clock = clock
        self._hosts: dict[str, HostState] = {}
        self._leases: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    def _live(self, host: str, now: float) -> dict[str, float]:
        leases = {k: v for k, v in self._leases.get(host, {}).items() if v > now}
        self._leases[host] = leases
        return leases

    def acquire(self, host: str, *, interval_s: float, max_concurrency: int,
                slot_at: float | None = None, now: float | None = None) -> Permit:
        """See :meth:`HostPolicy.acquire`."""
        _check(interval_s, max_concurrency)
        lease = uuid.uuid4().hex
        with self._lock:
            now = self._clock() if now is None else now
            leases = self._live(host, now)
            state, come_back, slot, eff = plan_acquire(
                self._hosts.get(host, HostState()), self.rules, now=now, interval_s=interval_s,
                max_concurrency=max_concurrency, in_flight=len(leases), slot_at=slot_at)
            self._hosts[host] = state
            if come_back is None:
                leases[lease] = now + self.rules.lease_ttl_s
        return _permit(now, come_back, slot, eff, lease)

    def release(self, host: str, lease: str | None, *, latency_s: float | None, status: int | None,
                retry_after_s: float | None, now: float | None = None) -> None:
        """See :meth:`HostPolicy.release`."""
        with self._lock:
            now = self._clock() if now is None else now
            if lease is not None:
                self._leases.get(host, {}).pop(lease, None)
            self._hosts[host] = after_response(self._hosts.get(host, HostState()), self.rules, now=now,
                                               latency_s=latency_s, status=status, retry_after_s=retry_after_s)

    def state(self, host: str, now: float | None = None) -> dict[str, float]:
        """See :meth:`HostPolicy.state`."""
        with self._lock:
            now = self._clock() if now is None else now
            return describe(self._hosts.get(host, HostState()), self.rules, len(self._live(host, now)))


# The Lua twin of plan_acquire / after_response: keep the two in step (tests compare them).
# Times are seconds as doubles, stored with 17 significant digits so both sides compute alike.
_POLICY_LUA = """
local function num(x) if x == nil or x == false or x == '' then return nil end return tonumber(x) end
local function fmt(x) return string.format('%.17g', x) end
local now = num(ARGV[2])
if not now then local t = redis.call('TIME'); now = tonumber(t[1]) + tonumber(t[2]) / 1000000 end
local lease_ttl, slow, max_pen = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local h = redis.call('HMGET', KEYS[1], 'next_slot', 'last_send', 'blocked_until', 'penalty', 'ewma', 'interval')
local next_slot, last_send, blocked = num(h[1]) or 0, num(h[2]), num(h[3]) or 0
local penalty, ewma, base = num(h[4]) or 0, num(h[5]), num(h[6]) or 0
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', fmt(now))
local in_flight = redis.call('ZCARD', KEYS[2])
local function save()
  redis.call('HSET', KEYS[1], 'next_slot', fmt(next_slot), 'blocked_until', fmt(blocked),
             'penalty', fmt(penalty), 'interval', fmt(base))
  if last_send then redis.call('HSET', KEYS[1], 'last_send', fmt(last_send)) end
  if ewma then redis.call('HSET', KEYS[1], 'ewma', fmt(ewma)) end
  local keep = math.max(next_slot, blocked, now) - now + tonumber(ARGV[10])
  redis.call('PEXPIRE', KEYS[1], math.ceil(keep * 1000))
end
local op = ARGV[1]
if op == 'state' then
  return {fmt(next_slot), last_send and fmt(last_send) or '', fmt(blocked), fmt(penalty),
          ewma and fmt(ewma) or '', fmt(base), in_flight}
end
if op == 'release' then
  if ARGV[6] ~= '' then redis.call('ZREM', KEYS[2], ARGV[6]) end
  local latency, status, retry_after = num(ARGV[7]), num(ARGV[8]), num(ARGV[9])
  if latency then
    if ewma then ewma = ALPHA * latency + (1 - ALPHA) * ewma else ewma = latency end
  end
  if status == 429 or status == 503 then
    penalty = math.min(max_pen, math.max(2 * penalty, 2 * base, 1.0))
  elseif status and status < 500 then
    if penalty / 2 >= 1.0 then penalty = penalty / 2 else penalty = 0.0 end
  end
  if retry_after and retry_after > 0 then
    blocked = math.max(blocked, now + math.min(retry_after, max_pen))
    next_slot = math.max(next_slot, blocked)
  end
  save()
  return 1
end
local interval, max_conc, slot_at, lease = tonumber(ARGV[6]), tonumber(ARGV[7]), num(ARGV[8]), ARGV[9]
local eff = math.max(interval, penalty)
if ewma and ewma > slow then eff = math.max(eff, ewma) end
local earliest = blocked
if last_send then earliest = math.max(blocked, last_send + eff) end
local busy = in_flight >= max_conc
base = interval
local function grant(nxt)
  last_send, next_slot = now, nxt
  redis.call('ZADD', KEYS[2], fmt(now + lease_ttl), lease)
  redis.call('PEXPIRE', KEYS[2], math.ceil((lease_ttl + 60) * 1000))
  save()
  return {1, '', '', fmt(eff), fmt(now)}
end
if slot_at then
  local target = math.max(slot_at, earliest)
  if now >= target and not busy then return grant(math.max(next_slot, now + eff)) end
  if now < target and target <= slot_at + eff then
    save()
    return {0, fmt(target), fmt(slot_at), fmt(eff), fmt(now)}
  end
end
local floor = now
if busy then floor = now + math.max(eff, ewma or 0, 0.1) end
local slot = math.max(floor, next_slot, earliest)
if slot <= now then return grant(now + eff) end
next_slot = slot + eff
save()
return {0, fmt(slot), fmt(slot), fmt(eff), fmt(now)}
"""


def _arg(x: float | int | None) -> str:
    return "" if x is None else repr(x)


class RedisHostPolicy:
    """The policy in Redis: ``{ns}:host:{<host>}`` (hash) and ``{ns}:leases:{<host>}`` (zset lease -> expiry).

    The braces around the host are a Redis Cluster hash tag: both keys of one host live on one
    shard, as a multi-key script needs.  Both keys expire when the host goes idle.
    """

    def __init__(self, client: Any, namespace: str = "ingest", *, lease_ttl_s: float = 120.0,
                 slow_latency_s: float = 1.0, max_penalty_s: float = 600.0) -> None:
        self.rules = PolicyRules(lease_ttl_s, slow_latency_s, max_penalty_s)
        self._namespace = namespace
        self._script = client.register_script(_POLICY_LUA.replace("ALPHA", repr(EWMA_ALPHA)))

    def _call(self, op: str, host: str, now: float | None, *args: str) -> Any:
        keys = [f"{self._namespace}:host:{{{host}}}", f"{self._namespace}:leases:{{{host}}}"]
        r = self.rules
        return self._script(keys=keys, args=[op, _arg(now), repr(r.lease_ttl_s), repr(r.slow_latency_s),
                                             repr(r.max_penalty_s), *args, repr(IDLE_TTL_S)])

    def acquire(self, host: str, *, interval_s: float, max_concurrency: int,
                slot_at: float | None = None, now: float | None = None) -> Permit:
        """See :meth:`HostPolicy.acquire`."""
        _check(interval_s, max_concurrency)
        lease = uuid.uuid4().hex
        granted, come_back, slot, eff, at = self._call(
            "acquire", host, now, repr(float(interval_s)), str(max_concurrency), _arg(slot_at), lease)
        if int(granted):
            return _permit(float(at), None, None, float(eff), lease)
        return _permit(float(at), float(come_back), float(slot), float(eff), lease)

    def release(self, host: str, lease: str | None, *, latency_s: float | None, status: int | None,
                retry_after_s: float | None, now: float | None = None) -> None:
        """See :meth:`HostPolicy.release`."""
        self._call("release", host, now, lease or "", _arg(latency_s), _arg(status), _arg(retry_after_s))

    def state(self, host: str, now: float | None = None) -> dict[str, float]:
        """See :meth:`HostPolicy.state`."""
        raw = self._call("state", host, now, "", "", "", "")
        nxt, last, blocked, penalty, ewma, base, in_flight = raw
        state = HostState(next_slot=float(nxt), last_send=float(last) if last else None,
                          blocked_until=float(blocked), penalty_s=float(penalty),
                          ewma_s=float(ewma) if ewma else None, interval_s=float(base))
        return describe(state, self.rules, int(in_flight))
