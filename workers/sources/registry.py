"""Where workers look up a source by name: the sources an operator loaded, shared by all hosts.

Messages carry only the source's name; its rules (patterns, hosts, limits) live here, so an
operator who edits the sources file and loads it again changes every worker's behaviour
without a restart.  Workers cache a source for a short while to keep Redis off the hot path.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, fields
from typing import Any, Protocol

import orjson

from workers.sources.sourcefile import Source

__all__ = ["MemoryRegistry", "RedisRegistry", "Registry", "source_from_json", "source_to_json"]

_CACHE_S = 30.0


def source_to_json(source: Source) -> bytes:
    """A source as JSON (tuples become lists)."""
    return orjson.dumps(asdict(source))


def source_from_json(data: bytes | str) -> Source:
    """The inverse of :func:`source_to_json`; unknown keys (from a newer version) are ignored."""
    raw: dict[str, Any] = orjson.loads(data)
    known = {f.name: f for f in fields(Source)}
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in known}
    return Source(**values)


class Registry(Protocol):
    """Sources by name."""

    def get(self, name: str) -> Source | None:
        """The source called ``name``, or None when none is loaded under that name."""
        ...

    def put(self, source: Source) -> None:
        """Register or replace a source."""
        ...

    def remove(self, name: str) -> None:
        """Forget a source."""
        ...

    def all(self) -> list[Source]:
        """Every loaded source, by name."""
        ...


class MemoryRegistry:
    """Sources of the embedded run."""

    def __init__(self, sources: list[Source] | None = None) -> None:
        self._sources = {s.name: s for s in sources or []}

    def get(self, name: str) -> Source | None:
        """See :meth:`Registry.get`."""
        return self._sources.get(name)

    def put(self, source: Source) -> None:
        """See :meth:`Registry.put`."""
        self._sources[source.name] = source

    def remove(self, name: str) -> None:
        """See :meth:`Registry.remove`."""
        self._sources.pop(name, None)

    def all(self) -> list[Source]:
        """See :meth:`Registry.all`."""
        return [self._sources[n] for n in sorted(self._sources)]


class RedisRegistry:
    """Sources in the Redis hash ``{ns}:sources`` (name -> JSON), cached per process."""

    def __init__(self, client: Any, namespace: str = "ingest") -> None:
        self._client = client
        self._key = f"{namespace}:sources"
        self._cache: dict[str, tuple[float, Source | None]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Source | None:
        """See :meth:`Registry.get` (a cached answer is at most 30 s old)."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(name)
        if hit is not None and now - hit[0] < _CACHE_S:
            return hit[1]
        data = self._client.hget(self._key, name)
        source = source_from_json(data) if data is not None else None
        with self._lock:
            self._cache[name] = (now, source)
        return source

    def put(self, source: Source) -> None:
        """See :meth:`Registry.put`."""
        self._client.hset(self._key, source.name, source_to_json(source))
        with self._lock:
            self._cache.pop(source.name, None)

    def remove(self, name: str) -> None:
        """See :meth:`Registry.remove`."""
        self._client.hdel(self._key, name)
        with self._lock:
            self._cache.pop(name, None)

    def all(self) -> list[Source]:
        """See :meth:`Registry.all`."""
        raw = self._client.hgetall(self._key)
        return sorted((source_from_json(v) for v in raw.values()), key=lambda s: s.name)
