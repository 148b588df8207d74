"""Per-host request slots, reserved atomically so every fetch worker on every host shares them.

Politeness is a schedule, not a spin: a fetch reserves its host's next free slot and, when the
slot lies in the future, goes back to the queue with exactly that delay, holding the slot.  No
thread sleeps and no retry is burnt.  In Redis the reservation is one Lua call using the
server's clock, so workers with skewed clocks still agree.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

__all__ = ["HostSlots", "MemorySlots", "RedisSlots"]


class HostSlots(Protocol):
    """Hands out per-host request times at least ``interval`` seconds apart."""

    def reserve(self, host: str, interval: float) -> float:
        """Reserve the host's next slot; return how many seconds from now it starts (0 = now)."""
        ...


class MemorySlots:
    """Slots for the embedded run, where every fetch thread lives in this process."""

    def __init__(self) -> None:
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def reserve(self, host: str, interval: float) -> float:
        """See :meth:`HostSlots.reserve`."""
        now = time.monotonic()
        with self._lock:
            slot = max(now, self._next.get(host, 0.0))
            self._next[host] = slot + interval
        return slot - now


_RESERVE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, nxt)
local interval = tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%d', slot + interval), 'PX', slot + interval - now + 60000)
return slot - now
"""


class RedisSlots:
    """Slots kept in Redis as ``{ns}:slot:{host}`` = next free time in ms (server clock)."""

    def __init__(self, client: Any, namespace: str = "ingest") -> None:
        self._namespace = namespace
        self._script = client.register_script(_RESERVE_LUA)

    def reserve(self, host: str, interval: float) -> float:
        """See :meth:`HostSlots.reserve`."""
        wait_ms = self._script(keys=[f"{self._namespace}:slot:{host}"], args=[max(1, round(interval * 1000))])
        return int(wait_ms) / 1000
