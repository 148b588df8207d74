"""Conditional GET: the ETag and Last-Modified each URL answered with, remembered for the next visit.

A listing page, feed or sitemap is fetched again every poll, and a refreshed article on every
refresh; when the server answers 304 Not Modified, the visit costs one small request and no
extraction, no discovery and no write.  Only URLs whose server sent a validator are stored.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

__all__ = ["MemoryValidators", "RedisValidators", "Validators"]

_SEP = "\x1f"  # ASCII unit separator: never inside an ETag or an HTTP date


class Validators(Protocol):
    """ETag / Last-Modified per URL id."""

    def get(self, url_id: str) -> tuple[str | None, str | None]:
        """(etag, last_modified) from the URL's last 200 answer; (None, None) when unknown."""
        ...

    def put(self, url_id: str, etag: str | None, last_modified: str | None) -> None:
        """Remember a 200 answer's validators (forgets them when it had none)."""
        ...


class MemoryValidators:
    """Validators of the embedded run."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[str | None, str | None]] = {}
        self._lock = threading.Lock()

    def get(self, url_id: str) -> tuple[str | None, str | None]:
        """See :meth:`Validators.get`."""
        with self._lock:
            return self._data.get(url_id, (None, None))

    def put(self, url_id: str, etag: str | None, last_modified: str | None) -> None:
        """See :meth:`Validators.put`."""
        with self._lock:
            if etag or last_modified:
                self._data[url_id] = (etag, last_modified)
            else:
                self._data.pop(url_id, None)


class RedisValidators:
    """Validators in one Redis hash ``{ns}:validators`` (url_id -> "etag<US>last-modified")."""

    def __init__(self, client: Any, namespace: str = "ingest") -> None:
        self._client = client
        self._key = f"{namespace}:validators"

    def get(self, url_id: str) -> tuple[str | None, str | None]:
        """See :meth:`Validators.get`."""
        raw = self._client.hget(self._key, url_id)
        if raw is None:
            return None, None
        etag, _, modified = (raw.decode() if isinstance(raw, bytes) else str(raw)).partition(_SEP)
        return etag or None, modified or None

    def put(self, url_id: str, etag: str | None, last_modified: str | None) -> None:
        """See :meth:`Validators.put`."""
        if etag or last_modified:
            self._client.hset(self._key, url_id, f"{etag or ''}{_SEP}{last_modified or ''}")
        else:
            self._client.hdel(self._key, url_id)
