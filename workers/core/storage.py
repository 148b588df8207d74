"""Object storage behind one small interface, and the key layout every stage agrees on.

obstore speaks to a local folder, S3 (and S3-compatible servers such as MinIO), GCS, Azure and
memory with the same calls, including conditional puts: ``mode="create"`` is what makes a
repeated delivery of the same article a no-op instead of a second write.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import obstore
from obstore.exceptions import AlreadyExistsError, NotFoundError
from obstore.exceptions import BaseError as ObstoreError
from obstore.store import LocalStore, MemoryStore, ObjectStore, S3Store

__all__ = [
    "STORE_ERRORS",
    "Storage",
    "StorageError",
    "deadletter_key",
    "open_storage",
    "raw_key",
    "record_key",
    "version_key",
]


class StorageError(ValueError):
    """A storage URL that cannot be opened; the message says which part is wrong."""


def record_key(host: str, url_id: str) -> str:
    """Where an article record lives: one object per URL id, grouped by host so a host is listable."""
    return f"articles/{host}/{url_id[:2]}/{url_id}.json"


def version_key(host: str, url_id: str, version: int) -> str:
    """Where version ``version`` of a record is kept once the record has changed (refreshed
    sources): outside ``articles/``, so listing the archive still gives one record per URL."""
    return f"versions/{host}/{url_id[:2]}/{url_id}/{version:06d}.json"


def raw_key(host: str, url_id: str, content_sha256: str) -> str:
    """Where a raw page lives: keyed by URL and content, so a refetch of unchanged bytes is a no-op."""
    return f"raw/{host}/{url_id[:2]}/{url_id}/{content_sha256[:32]}.html"


def deadletter_key(queue: str, message_id: str) -> str:
    """Where a message that can never succeed is kept, with its reason, for an operator to read."""
    return f"deadletters/{queue}/{message_id}.json"


class Storage:
    """A thin wrapper over an obstore store with the three operations the pipeline needs."""

    def __init__(self, store: ObjectStore, url: str) -> None:
        self.store = store
        self.url = url

    def put_new(self, key: str, data: bytes) -> bool:
        """Write ``data`` under ``key`` unless an object is there already; True when written."""
        try:
            obstore.put(self.store, key, data, mode="create")
        except AlreadyExistsError:
            return False
        return True

    def put(self, key: str, data: bytes) -> None:
        """Write ``data`` under ``key``, replacing what was there (atomically)."""
        obstore.put(self.store, key, data, mode="overwrite")

    def get(self, key: str) -> bytes:
        """The bytes under ``key``; raises ``KeyError`` when there is no such object."""
        try:
            return bytes(obstore.get(self.store, key).bytes())
        except (NotFoundError, FileNotFoundError):
            raise KeyError(key) from None

    def delete(self, key: str) -> None:
        """Remove the object under ``key`` (no error when there is none)."""
        try:
            obstore.delete(self.store, key)
        except (NotFoundError, FileNotFoundError):
            return

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        try:
            obstore.head(self.store, key)
        except (NotFoundError, FileNotFoundError):
            return False
        return True

    def keys(self, prefix: str) -> Iterator[str]:
        """Every key below ``prefix`` (a folder-like path such as ``articles/``)."""
        for batch in obstore.list(self.store, prefix=prefix):
            for meta in batch:
                yield meta["path"]


_memory_stores: dict[str, MemoryStore] = {}
_memory_lock = threading.Lock()


def open_storage(url: str, *, s3_endpoint: str | None = None) -> Storage:
    """Open the store a URL names: a folder, ``file://…``, ``s3://bucket/prefix`` or ``memory://name``.

    S3 credentials and region come from the usual ``AWS_*`` variables; ``s3_endpoint``
    (``INGEST_S3_ENDPOINT``) points at MinIO, moto or another S3-compatible server.  The same
    ``memory://`` URL gives the same store within one process, which is what lets the embedded
    run's stages share it.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in {"", "file"} or (len(scheme) == 1 and os.name == "nt"):
        path = Path(parts.path if scheme == "file" else url).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return Storage(LocalStore(prefix=path, mkdir=True), str(path))
    if scheme == "memory":
        with _memory_lock:
            store = _memory_stores.setdefault(url, MemoryStore())
        return Storage(store, url)
    if scheme == "s3":
        if not parts.netloc:
            raise StorageError(f"{url!r}: an s3:// URL needs a bucket, as in s3://bucket/prefix")
        prefix = parts.path.strip("/") or None
        endpoint = s3_endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        kwargs: dict[str, object] = {}
        if endpoint:
            kwargs["endpoint"] = endpoint
            kwargs["virtual_hosted_style_request"] = False
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        client_options = {"allow_http": True} if endpoint and endpoint.startswith("http://") else None
        # A few quick retries of a dropped request, then the error: a store that is down for
        # minutes is waited out by the stages' own backoff (INGEST_STORAGE_RETRY_FOR), which
        # frees the worker thread instead of blocking it for a minute inside one request.
        kwargs["retry_config"] = {"max_retries": 3, "retry_timeout": timedelta(seconds=15)}
        s3 = S3Store(parts.netloc, prefix=prefix, region=region, client_options=client_options, **kwargs)  # type: ignore[arg-type]
        return Storage(s3, url)
    raise StorageError(f"{url!r}: expected a folder, file://, s3:// or memory:// URL")


#: Failures of the object store itself (unreachable, erroring, refusing credentials), as opposed to
#: a missing key: worth retrying while the store is down (see ``INGEST_STORAGE_RETRY_FOR``).
STORE_ERRORS: tuple[type[BaseException], ...] = (ObstoreError,)
