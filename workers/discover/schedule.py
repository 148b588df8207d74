"""The recrawl schedule: each source's listing pages, feeds and sitemaps polled again every interval.

The schedule is a sorted set of ``source name -> next due time``.  The scheduler reads the due
rounds (``due``), sends each round's start tasks, and only then moves the round's due time
forward (``advance``, a compare-and-set on the due time): a worker dying in between leaves the
round due, so the next tick fires it again (the same round id, so the seen-sets keep its pages
from being fetched twice); however many discover workers tick, one of them advances each round.
``claim_due`` does both steps at once, for callers with nothing to do in between.  In Redis
(with AOF on) it survives restarts of every worker and of Redis itself; the embedded run keeps
the same structure in memory.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

__all__ = ["MemorySchedule", "RedisSchedule", "Schedule", "poll_id"]


def poll_id(due_at: float) -> str:
    """A poll round's id: its due time, so every claimer of the same round names it alike."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(due_at))


class Schedule(Protocol):
    """Due times per source; ``claim_due`` hands each due round to exactly one caller."""

    def set(self, name: str, interval_s: float, due_at: float) -> None:
        """Register or update a source, next due at ``due_at`` (epoch seconds)."""
        ...

    def remove(self, name: str) -> None:
        """Stop polling a source."""
        ...

    def claim_due(self, now: float | None = None) -> list[tuple[str, float]]:
        """Sources due at ``now``, as (name, due time); each is rescheduled one interval later."""
        ...

    def due(self, now: float | None = None) -> list[tuple[str, float]]:
        """Sources due at ``now``, as (name, due time), earliest first; nothing changes."""
        ...

    def advance(self, name: str, due_at: float, now: float | None = None) -> bool:
        """Reschedule the round due at ``due_at`` one interval on (or end a once-only source);
        False, changing nothing, when that round was advanced already or the source was reset."""
        ...

    def entries(self) -> dict[str, tuple[float, float]]:
        """Every source with (next due time, interval seconds)."""
        ...


class MemorySchedule:
    """The schedule of the embedded run (one process)."""

    def __init__(self) -> None:
        self._due: dict[str, float] = {}
        self._interval: dict[str, float] = {}
        self._lock = threading.Lock()

    def set(self, name: str, interval_s: float, due_at: float) -> None:
        """See :meth:`Schedule.set`."""
        with self._lock:
            self._due[name], self._interval[name] = due_at, interval_s

    def remove(self, name: str) -> None:
        """See :meth:`Schedule.remove`."""
        with self._lock:
            self._due.pop(name, None)
            self._interval.pop(name, None)

    def claim_due(self, now: float | None = None) -> list[tuple[str, float]]:
        """See :meth:`Schedule.claim_due`."""
        now = time.time() if now is None else now
        with self._lock:
            return [(name, due) for name, due in self._due_locked(now) if self._advance_locked(name, due, now)]

    def due(self, now: float | None = None) -> list[tuple[str, float]]:
        """See :meth:`Schedule.due`."""
        now = time.time() if now is None else now
        with self._lock:
            return self._due_locked(now)

    def advance(self, name: str, due_at: float, now: float | None = None) -> bool:
        """See :meth:`Schedule.advance`."""
        now = time.time() if now is None else now
        with self._lock:
            return self._advance_locked(name, due_at, now)

    def _due_locked(self, now: float) -> list[tuple[str, float]]:
        return [(name, due) for name, due in sorted(self._due.items(), key=lambda kv: kv[1]) if due <= now]

    def _advance_locked(self, name: str, due_at: float, now: float) -> bool:
        if self._due.get(name) != due_at:
            return False
        interval = self._interval[name]
        if interval > 0:
            self._due[name] = _next_due(due_at, interval, now)
        else:
            del self._due[name], self._interval[name]
        return True

    def entries(self) -> dict[str, tuple[float, float]]:
        """See :meth:`Schedule.entries`."""
        with self._lock:
            return {name: (due, self._interval[name]) for name, due in self._due.items()}


def _next_due(due: float, interval: float, now: float) -> float:
    # Keep the cadence (due + k * interval) but never schedule in the past: a schedule that
    # was down for a day fires once on return, not once per missed interval.
    missed = max(0, int((now - due) // interval))
    return due + (missed + 1) * interval


# ARGV: now, limit. KEYS: due zset, interval hash. Interval 0 means "once": the entry is removed.
_CLAIM_LUA = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
local now = tonumber(ARGV[1])
for i = 1, #due, 2 do
  local name, at = due[i], tonumber(due[i + 1])
  local interval = tonumber(redis.call('HGET', KEYS[2], name) or '0')
  if interval > 0 then
    local missed = math.max(0, math.floor((now - at) / interval))
    redis.call('ZADD', KEYS[1], at + (missed + 1) * interval, name)
  else
    redis.call('ZREM', KEYS[1], name)
    redis.call('HDEL', KEYS[2], name)
  end
  out[#out + 1] = name
  out[#out + 1] = due[i + 1]
end
return out
"""


# KEYS: due zset, interval hash. ARGV: name, due time of the round, now.  Advances only the
# round the caller fired: a round advanced by another ticker, or reset by ``set``, stays as it is.
_ADVANCE_LUA = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then
  return 0
end
local at, now = tonumber(ARGV[2]), tonumber(ARGV[3])
local interval = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if interval > 0 then
  local missed = math.max(0, math.floor((now - at) / interval))
  redis.call('ZADD', KEYS[1], at + (missed + 1) * interval, ARGV[1])
else
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return 1
"""


class RedisSchedule:
    """The schedule in Redis: ``{ns}:schedule`` (name -> due) and ``{ns}:schedule:interval``."""

    def __init__(self, client: Any, namespace: str = "ingest") -> None:
        self._client = client
        self._due_key = f"{namespace}:schedule"
        self._interval_key = f"{namespace}:schedule:interval"
        self._claim = client.register_script(_CLAIM_LUA)
        self._advance = client.register_script(_ADVANCE_LUA)

    def set(self, name: str, interval_s: float, due_at: float) -> None:
        """See :meth:`Schedule.set`."""
        pipe = self._client.pipeline(transaction=True)
        pipe.hset(self._interval_key, name, repr(float(interval_s)))
        pipe.zadd(self._due_key, {name: due_at})
        pipe.execute()

    def remove(self, name: str) -> None:
        """See :meth:`Schedule.remove`."""
        pipe = self._client.pipeline(transaction=True)
        pipe.zrem(self._due_key, name)
        pipe.hdel(self._interval_key, name)
        pipe.execute()

    def claim_due(self, now: float | None = None) -> list[tuple[str, float]]:
        """See :meth:`Schedule.claim_due`."""
        now = time.time() if now is None else now
        flat = self._claim(keys=[self._due_key, self._interval_key], args=[repr(now), 100])
        return [(_text(flat[i]), float(flat[i + 1])) for i in range(0, len(flat), 2)]

    def due(self, now: float | None = None) -> list[tuple[str, float]]:
        """See :meth:`Schedule.due`."""
        now = time.time() if now is None else now
        due = self._client.zrangebyscore(self._due_key, "-inf", repr(now), start=0, num=100, withscores=True)
        return [(_text(name), float(score)) for name, score in due]

    def advance(self, name: str, due_at: float, now: float | None = None) -> bool:
        """See :meth:`Schedule.advance`."""
        now = time.time() if now is None else now
        return bool(self._advance(keys=[self._due_key, self._interval_key], args=[name, repr(due_at), repr(now)]))

    def entries(self) -> dict[str, tuple[float, float]]:
        """See :meth:`Schedule.entries`."""
        due = self._client.zrange(self._due_key, 0, -1, withscores=True)
        intervals = self._client.hgetall(self._interval_key)
        return {_text(n): (float(s), float(intervals.get(n, 0))) for n, s in due}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
