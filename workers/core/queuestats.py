"""Queue state as Redis holds it, for metrics, autoscalers and ``ingest status``.

Dramatiq's Redis layout: ``{ns}:<q>`` lists the ids ready to be taken (oldest first) and
``{ns}:<q>.msgs`` holds every unacknowledged message, so their difference is in flight; delayed
messages live in the ``<q>.DQ`` queue (counted from its ``.msgs``, since workers hold delayed
messages until due).  A few commands per queue, pipelined: cheap enough for every scrape.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import orjson

__all__ = ["dead_letter_counts", "frontier_size", "queue_stats"]


def queue_stats(client: Any, namespace: str, queues: Iterable[str]) -> list[dict[str, Any]]:
    """Per queue: ``ready``, ``in_flight``, ``delayed`` and ``oldest_age_s`` (of the oldest ready message)."""
    queues = list(queues)
    pipe = client.pipeline(transaction=False)
    for q in queues:
        base = f"{namespace}:{q}"
        pipe.llen(base)
        pipe.hlen(f"{base}.msgs")
        pipe.hlen(f"{base}.DQ.msgs")
        pipe.lindex(base, 0)
    replies = pipe.execute()
    heads = [replies[4 * i + 3] for i in range(len(queues))]
    pipe = client.pipeline(transaction=False)
    for q, head in zip(queues, heads, strict=True):
        pipe.hget(f"{namespace}:{q}.msgs", head if head is not None else b"-")
    bodies = pipe.execute()
    now_ms = time.time() * 1000
    out = []
    for i, q in enumerate(queues):
        ready, pending, delayed = (int(r) for r in replies[4 * i : 4 * i + 3])
        age = 0.0
        if bodies[i]:
            try:
                age = max(0.0, (now_ms - float(orjson.loads(bodies[i])["message_timestamp"])) / 1000)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                age = 0.0
        out.append({"queue": q, "ready": ready, "in_flight": max(0, pending - ready), "delayed": delayed,
                    "oldest_age_s": round(age, 3)})
    return out


def dead_letter_counts(client: Any, namespace: str) -> dict[str, int]:
    """Dead letters kept, by stage (kept up to date by the dead-letter store)."""
    raw = client.hgetall(f"{namespace}:dlq:counts")
    return {(k.decode() if isinstance(k, bytes) else str(k)): max(0, int(v)) for k, v in raw.items()}


def frontier_size(client: Any, namespace: str, limit: int = 10_000) -> int:
    """URLs in the crawls' exact seen-sets (Bloom filters have no count; at most ``limit`` sets read)."""
    keys = []
    for key in client.scan_iter(match=f"{namespace}:seen:*", count=500):
        keys.append(key)
        if len(keys) >= limit:
            break
    if not keys:
        return 0
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.type(key)
    hashes = [k for k, t in zip(keys, pipe.execute(), strict=True) if t in (b"hash", "hash")]
    pipe = client.pipeline(transaction=False)
    for key in hashes:
        pipe.hlen(key)
    return int(sum(pipe.execute())) if hashes else 0
