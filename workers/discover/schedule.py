"""The recrawl schedule: each source's listing pages, feeds and sitemaps polled again every interval.

The schedule is a sorted set of ``source name -> next due time``.  Claiming due sources moves
their next due time forward in the same atomic step, so however many discover workers tick at
once, a poll fires once per interval.  In Redis (with AOF on) it survives restarts of every
worker and of Redis itself; the embedded run keeps the same structure in memory.
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
        claimed = []
        with self._lock:
            for name, due in sorted(self._due.items(), key=lambda kv: kv[1]):
                if due > now:
                    continue
                claimed.append((name, due))
                interval = self._interval[name]
                if interval > 0:
                    self._due[name] = _next_due(due, interval, now)
                else:
                    del self._due[name], self._interval[name]
        return claimed

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


class RedisSchedule:
    """The schedule in Redis: ``{ns}:schedule`` (name -> due) and ``{ns}:schedule:interval``."""

    def __init__(self, client: Any, namespace: str = "ingest") -> None:
        self._client = client
        self._due_key = f"{namespace}:schedule"
        self._interval_key = f"{namespace}:schedule:interval"
        self._claim = client.register_script(_CLAIM_LUA)

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

    def entries(self) -> dict[str, tuple[float, float]]:
        """See :meth:`Schedule.entries`."""
        due = self._client.zrange(self._due_key, 0, -1, withscores=True)
        intervals = self._client.hgetall(self._interval_key)
        return {_text(n): (float(s), float(intervals.get(n, 0))) for n, s in due}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
