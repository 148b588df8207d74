"""What holds Redis's memory, by kind of key: ``MEMORY USAGE`` over a SCAN of the keyspace.

Each key under the namespace is put in a kind by its prefix (seen-sets, queues, dead letters,
robots.txt cache, politeness, health, …).  Up to ``sample`` keys are measured; when the keyspace
is larger, the figures are scaled up by the share of the keyspace scanned (``complete`` is then
False), so a glance at a Redis with millions of keys costs a bounded number of commands.
"""

from __future__ import annotations

from typing import Any

from workers.core.encoder import POISON_QUEUE

__all__ = ["DEFAULT_SAMPLE", "key_kind", "memory_by_kind"]

DEFAULT_SAMPLE = 5000

# Dramatiq's own keys: "<queue>", "<queue>.msgs", "<queue>.DQ…", "<queue>.XQ…", "__acks__.…", "__heartbeats__"
# (the stage queues of workers.core.broker, named here to keep this module free of Dramatiq).
_QUEUES = {"discover", "fetch", "extract", "sink", POISON_QUEUE}
# First segment after "{ns}:" -> kind.
_KINDS = {
    "seen": "seen", "bloom": "seen",
    "dlq": "dlq",
    "robots": "robots", "robots-good": "robots", "robots-lock": "robots",
    "host": "politeness", "leases": "politeness",
    "health": "health",
    "sitemem": "site_memory", "shapes": "site_memory",
    "dup": "duplicates",
    "budget": "limits", "variants": "limits", "compacted": "limits",
    "schedule": "sources", "sources": "sources",
    "validators": "validators",
    "crawl": "crawls", "crawl-starts": "crawls", "crawls": "crawls",
    "rate": "rates",
    "workers": "workers",
}


def key_kind(key: str, namespace: str) -> str | None:
    """The kind of one key, or None when it is not under the namespace (not ours to count)."""
    if not key.startswith(namespace + ":"):
        return None
    rest = key[len(namespace) + 1 :]
    head = rest.split(":", 1)[0]
    if head in _KINDS:
        return _KINDS[head]
    if head.startswith("__") or head.split(".", 1)[0] in _QUEUES:
        return "queues"
    return "other"


def memory_by_kind(client: Any, namespace: str, sample: int = DEFAULT_SAMPLE) -> dict[str, Any]:
    """Bytes and keys per kind (largest first), Redis's ``used_bytes``, and whether every key was measured."""
    keys: list[Any] = []
    kinds: list[str] = []
    scanned = 0
    complete = True
    cursor = 0
    while True:
        cursor, batch = client.scan(cursor=cursor, count=1000)
        for key in batch:
            scanned += 1
            kind = key_kind(key.decode() if isinstance(key, bytes) else str(key), namespace)
            if kind is not None:
                keys.append(key)
                kinds.append(kind)
                if len(keys) >= sample:
                    break
        if len(keys) >= sample:
            complete = int(cursor) == 0 and scanned >= int(client.dbsize())
            break
        if int(cursor) == 0:
            break
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.memory_usage(key)
    sizes = pipe.execute() if keys else []
    # The share of the keyspace the sample saw: every key was visited once when the scan ended.
    scale = 1.0 if complete else max(1.0, int(client.dbsize()) / max(1, scanned))
    totals: dict[str, dict[str, int]] = {}
    for kind, size in zip(kinds, sizes, strict=True):
        if size is None:  # expired between the scan and the measure
            continue
        entry = totals.setdefault(kind, {"keys": 0, "bytes": 0})
        entry["keys"] += 1
        entry["bytes"] += int(size)
    if scale != 1.0:
        totals = {k: {"keys": round(v["keys"] * scale), "bytes": round(v["bytes"] * scale)} for k, v in totals.items()}
    info = client.info("memory")
    return {
        "used_bytes": int(info.get("used_memory", 0)),
        "sampled_keys": sum(1 for s in sizes if s is not None),
        "complete": complete,
        "kinds": dict(sorted(totals.items(), key=lambda kv: -kv[1]["bytes"])),
    }
