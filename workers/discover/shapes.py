"""URL shapes and the site memory of probe verdicts: which shapes of a host are articles, which listings.

A probe (a link whose URL said nothing, see :mod:`workers.discover.classify`) costs a trip through
discover before its page reaches extraction.  After a few pages a host's patterns are plain:
every ``/a/{id}`` was an article, every ``/c/{id}`` a section.  The memory counts each host's
verdicts by URL **shape** (:func:`url_shape`: the path with numbers, ids and slugs generalised,
query values too), and :func:`learned_kind` routes later links of a shape without a probe once
``MIN_VERDICTS`` verdicts agree (at least ``AGREEMENT`` of them).

Bounds: at most ``MAX_SHAPES`` shapes per host (a shape never seen before is not counted when the
host is full: the first patterns of a site are its main ones) and ``MAX_HOSTS`` hosts in memory;
in Redis each host's hash ``{ns}:shapes:{host}`` (field ``shape<TAB>verdict`` -> count) expires
``TTL_S`` after its last verdict.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, Final, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = [
    "AGREEMENT",
    "MAX_SHAPES",
    "MIN_VERDICTS",
    "MemoryShapeMemory",
    "RedisShapeMemory",
    "ShapeMemory",
    "learned_kind",
    "url_shape",
]

#: Verdicts of one shape needed before links of that shape skip the probe.
MIN_VERDICTS: Final = 3
#: Share of those verdicts that must agree.
AGREEMENT: Final = 0.9
MAX_SHAPES: Final = 256
MAX_HOSTS: Final = 4096
TTL_S: Final = 30 * 86400
#: The verdicts that route a link (``other`` pages are still probed: a shape's next page may differ).
ROUTED: Final = ("article", "listing")

_TOKENS = re.compile(r"[-_+~.,]+")
_HEX_ID = re.compile(r"(?=[0-9a-z]*\d)(?=[0-9a-z]*[a-z])[0-9a-z]{8,}")
_ISO_DATE = re.compile(r"(?:19|20)\d\d-?[01]\d-?[0-3]\d")
_EXT = re.compile(r"\.([a-z0-9]{1,5})$")


@lru_cache(maxsize=65536)
def url_shape(url: str) -> str:
    """The URL's pattern: ``/2024/05/01/some-story`` -> ``/{n}/{n}/{n}/{slug}``, ``/c/12345`` -> ``/c/{id}``.

    Numbers of up to four digits are ``{n}``, longer ones and mixed ids ``{id}``; segments of three
    or more words ``{slug}`` (with ``-{id}`` when a long number ends them); one- and two-word
    segments stay as they are (section names differ in meaning, not in form). Query keys stay,
    values become ``{n}`` or ``{s}``. The host is not part of the shape.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    raw = [unquote(s).lower() for s in parts.path.split("/") if s]
    segments = [_segment(s) for s in raw]
    path = "/" + "/".join(segments)
    if segments and parts.path.endswith("/"):
        path += "/"
    query = sorted({f"{k.lower()}={'{n}' if v.isdigit() else '{s}'}" for k, v in parse_qsl(parts.query)})
    return path + ("?" + "&".join(query) if query else "")


def _segment(segment: str) -> str:
    ext = ""
    found = _EXT.search(segment)
    if found and not found.group(1).isdigit() and found.start() > 0:
        ext, segment = found.group(0), segment[: found.start()]
    if segment.isdigit():
        return ("{n}" if len(segment) <= 4 else "{id}") + ext
    if _HEX_ID.fullmatch(segment):
        return "{id}" + ext
    tokens = [t for t in _TOKENS.split(segment) if t]
    long_number = any(t.isdigit() and len(t) >= 5 for t in tokens)
    words = [t for t in tokens if not t.isdigit()]
    if _ISO_DATE.match(segment) and words:
        return "{date}-{slug}" + ext
    if long_number:
        return ("{slug}-{id}" if words else "{id}") + ext
    if len(words) >= 3:
        return "{slug}" + ext
    return segment[:40] + ext


def learned_kind(counts: Mapping[str, int]) -> str | None:
    """``"article"`` or ``"listing"`` when a shape's verdicts agree enough to skip the probe, else None."""
    total = sum(counts.values())
    if total < MIN_VERDICTS:
        return None
    kind, n = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
    return kind if kind in ROUTED and n >= AGREEMENT * total else None


class ShapeMemory(Protocol):
    """Probe verdicts per host and URL shape, shared by every discover worker."""

    def record(self, host: str, shape: str, verdict: str) -> None:
        """Count one verdict (``article``, ``listing`` or ``other``) for a shape of ``host``."""
        ...

    def counts(self, host: str, shapes: Sequence[str]) -> dict[str, dict[str, int]]:
        """Verdict counts of each shape asked for (shapes without verdicts are left out)."""
        ...


class MemoryShapeMemory:
    """The embedded run's site memory: a bounded dict in this process."""

    def __init__(self, max_shapes: int = MAX_SHAPES, max_hosts: int = MAX_HOSTS) -> None:
        self._hosts: OrderedDict[str, dict[str, dict[str, int]]] = OrderedDict()
        self._max_shapes, self._max_hosts = max_shapes, max_hosts
        self._lock = threading.Lock()

    def record(self, host: str, shape: str, verdict: str) -> None:
        """See :meth:`ShapeMemory.record`."""
        with self._lock:
            shapes = self._hosts.setdefault(host, {})
            self._hosts.move_to_end(host)
            while len(self._hosts) > self._max_hosts:
                self._hosts.popitem(last=False)
            if shape not in shapes and len(shapes) >= self._max_shapes:
                return
            counts = shapes.setdefault(shape, {})
            counts[verdict] = counts.get(verdict, 0) + 1

    def counts(self, host: str, shapes: Sequence[str]) -> dict[str, dict[str, int]]:
        """See :meth:`ShapeMemory.counts`."""
        with self._lock:
            known = self._hosts.get(host, {})
            return {s: dict(known[s]) for s in set(shapes) if s in known}


_RECORD_LUA = """
local key, field, shape_prefix = KEYS[1], ARGV[1], ARGV[2]
local max_shapes, ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call('HEXISTS', key, field) == 0 then
  local fields = redis.call('HKEYS', key)
  local shapes, known = {}, false
  for _, f in ipairs(fields) do
    local s = string.match(f, '^(.*)\\t')
    if s == shape_prefix then known = true end
    if s then shapes[s] = true end
  end
  if not known then
    local n = 0
    for _ in pairs(shapes) do n = n + 1 end
    if n >= max_shapes then return 0 end
  end
end
redis.call('HINCRBY', key, field, 1)
redis.call('EXPIRE', key, ttl)
return 1
"""


class RedisShapeMemory:
    """The site memory in Redis (``{ns}:shapes:{host}``), one Lua call per verdict."""

    def __init__(self, client: Any, namespace: str = "ingest", max_shapes: int = MAX_SHAPES) -> None:
        self._client, self._namespace, self._max_shapes = client, namespace, max_shapes
        self._record = client.register_script(_RECORD_LUA)

    def key(self, host: str) -> str:
        """The host's Redis hash."""
        return f"{self._namespace}:shapes:{host}"

    def record(self, host: str, shape: str, verdict: str) -> None:
        """See :meth:`ShapeMemory.record`."""
        self._record(keys=[self.key(host)], args=[f"{shape}\t{verdict}", shape, self._max_shapes, TTL_S])

    def counts(self, host: str, shapes: Sequence[str]) -> dict[str, dict[str, int]]:
        """See :meth:`ShapeMemory.counts`."""
        wanted = set(shapes)
        if not wanted:
            return {}
        out: dict[str, dict[str, int]] = {}
        for raw_field, raw_count in self._client.hgetall(self.key(host)).items():
            text = raw_field.decode() if isinstance(raw_field, bytes) else str(raw_field)
            shape, _, verdict = text.rpartition("\t")
            if shape in wanted:
                out.setdefault(shape, {})[verdict] = int(raw_count)
        return out
