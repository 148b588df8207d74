"""The seen-set: which URLs a crawl has already sent to fetch, shared by every discover worker.

A claim records *who* claimed a URL (the id of the discover message that found it), not just
that it was seen.  If a worker dies after claiming but before its fetch messages were sent,
the broker redelivers the same discover message, the claims come back as "yours", and the
fetches are sent again.  A plain set would answer "seen" and the article would be lost.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["MemorySeen", "RedisSeen", "Seen"]


class Seen(Protocol):
    """Claims URL ids for a crawl; a claim is granted to the first owner and to that owner again."""

    def claim(self, crawl_id: str, url_ids: Sequence[str], owner: str) -> list[bool]:
        """For each id: True when ``owner`` holds the claim (new, or claimed by it before)."""
        ...


class MemorySeen:
    """The embedded run's seen-set: a dict per crawl behind a lock."""

    def __init__(self) -> None:
        self._claims: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def claim(self, crawl_id: str, url_ids: Sequence[str], owner: str) -> list[bool]:
        """See :meth:`Seen.claim`."""
        with self._lock:
            claims = self._claims.setdefault(crawl_id, {})
            return [claims.setdefault(uid, owner) == owner for uid in url_ids]


# One round trip per discovered page, however many links it has: HSETNX each id, and for ids
# already present compare the stored owner.  Owners are short (a message id) to keep the
# hash small; the README's operations section gives the measured memory per million URLs.
_CLAIM_LUA = """
local out = {}
for i, uid in ipairs(ARGV) do
  if i > 1 then
    if redis.call('HSETNX', KEYS[1], uid, ARGV[1]) == 1 then
      out[#out + 1] = 1
    elseif redis.call('HGET', KEYS[1], uid) == ARGV[1] then
      out[#out + 1] = 1
    else
      out[#out + 1] = 0
    end
  end
end
return out
"""


class RedisSeen:
    """The seen-set in Redis: one hash per crawl, ``url_id -> owner``, shared by all hosts."""

    def __init__(self, client: Any, namespace: str = "ingest") -> None:
        self._client = client
        self._namespace = namespace
        self._script = client.register_script(_CLAIM_LUA)

    def claim(self, crawl_id: str, url_ids: Sequence[str], owner: str) -> list[bool]:
        """See :meth:`Seen.claim`."""
        if not url_ids:
            return []
        key = f"{self._namespace}:seen:{crawl_id}"
        result = self._script(keys=[key], args=[owner, *url_ids])
        return [bool(x) for x in result]
