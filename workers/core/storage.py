"""Object storage behind one small interface, and the key layout every stage agrees on.

obstore speaks to a local folder, S3 (and S3-compatible servers such as MinIO), GCS, Azure and
memory with the same calls, including conditional puts: ``mode="create"`` is what makes a
repeated delivery of the same article a no-op instead of a second write.

Raw pages keep their response (status, headers, final URL, fetch time) in a sidecar next to
them: ``raw/…/<sha>.html`` and ``raw/…/<sha>.headers.json`` (:func:`raw_headers_key`).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

import obstore
from obstore.exceptions import AlreadyExistsError, NotFoundError
from obstore.exceptions import BaseError as ObstoreError
from obstore.store import AzureStore, GCSStore, LocalStore, MemoryStore, ObjectStore, S3Store

__all__ = [
    "RAW_HEADERS_SUFFIX",
    "RAW_PAGE_SUFFIX",
    "STORE_ERRORS",
    "Storage",
    "StorageError",
    "deadletter_key",
    "is_raw_page",
    "open_storage",
    "raw_headers_key",
    "raw_key",
    "record_key",
    "version_key",
]

#: How a raw page's key ends, and how its response sidecar's key ends instead.
RAW_PAGE_SUFFIX = ".html"
RAW_HEADERS_SUFFIX = ".headers.json"


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


def raw_headers_key(page_key: str) -> str:
    """Where the response of the raw page under ``page_key`` is kept: the same key, ``.headers.json``
    instead of ``.html``, so it is keyed (and made idempotent) exactly like the page."""
    if not page_key.endswith(RAW_PAGE_SUFFIX):
        raise ValueError(f"{page_key!r} is not a raw page key (it should end with {RAW_PAGE_SUFFIX})")
    return page_key.removesuffix(RAW_PAGE_SUFFIX) + RAW_HEADERS_SUFFIX


def is_raw_page(key: str) -> bool:
    """Whether a key listed under ``raw/`` is a page, not its headers sidecar (or anything else)."""
    return key.endswith(RAW_PAGE_SUFFIX)


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


def open_storage(
    url: str,
    *,
    s3_endpoint: str | None = None,
    gcs_endpoint: str | None = None,
    azure_endpoint: str | None = None,
) -> Storage:
    """Open the store a URL names: a folder, ``file://…``, ``s3://bucket/prefix``,
    ``gs://bucket/prefix``, ``az://container/prefix`` or ``memory://name``.

    Credentials come from each cloud's usual variables, read by obstore: ``AWS_*`` for S3,
    ``GOOGLE_APPLICATION_CREDENTIALS`` / ``GOOGLE_SERVICE_ACCOUNT*`` for GCS,
    ``AZURE_STORAGE_ACCOUNT_NAME`` / ``AZURE_STORAGE_ACCOUNT_KEY`` (or ``AZURE_STORAGE_USE_EMULATOR``)
    for Azure.  The endpoints (``INGEST_S3_ENDPOINT``, ``INGEST_GCS_ENDPOINT``,
    ``INGEST_AZURE_ENDPOINT`` when not given) point at MinIO, moto, a GCS emulator, Azurite or
    another compatible server.  The same ``memory://`` URL gives the same store within one
    process, which is what lets the embedded run's stages share it.
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
    if scheme in _CLOUD_SCHEMES:
        if not parts.netloc:
            example = _CLOUD_SCHEMES[scheme]
            raise StorageError(f"{url!r}: a {scheme}:// URL needs a {example}, as in {scheme}://{example}/prefix")
        if scheme == "s3":
            return Storage(_s3_store(parts, s3_endpoint), url)
        if scheme in {"gs", "gcs"}:
            return Storage(_gcs_store(url, parts, gcs_endpoint or os.environ.get("INGEST_GCS_ENDPOINT")), url)
        return Storage(_azure_store(url, parts, azure_endpoint or os.environ.get("INGEST_AZURE_ENDPOINT")), url)
    raise StorageError(f"{url!r}: expected a folder, file://, s3://, gs://, az:// or memory:// URL")


#: Cloud URL schemes and what their first part names.
_CLOUD_SCHEMES = {"s3": "bucket", "gs": "bucket", "gcs": "bucket", "az": "container", "azure": "container"}
#: A few quick retries of a dropped request, then the error: a store that is down for minutes is
#: waited out by the stages' own backoff (INGEST_STORAGE_RETRY_FOR), which frees the worker
#: thread instead of blocking it for a minute inside one request.
_RETRY: Any = {"max_retries": 3, "retry_timeout": timedelta(seconds=15)}
#: Variables through which obstore finds Google credentials of its own.
_GOOGLE_CREDENTIALS = ("GOOGLE_SERVICE_ACCOUNT", "GOOGLE_SERVICE_ACCOUNT_PATH", "GOOGLE_SERVICE_ACCOUNT_KEY",
                       "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_BEARER_TOKEN")


def _prefix(parts: SplitResult) -> str | None:
    return parts.path.strip("/") or None


def _http_options(endpoint: str | None) -> Any:
    return {"allow_http": True} if endpoint and endpoint.startswith("http://") else None


def _s3_store(parts: SplitResult, s3_endpoint: str | None) -> S3Store:
    endpoint = s3_endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    kwargs: dict[str, Any] = {}
    if endpoint:
        kwargs["endpoint"] = endpoint
        kwargs["virtual_hosted_style_request"] = False
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return S3Store(parts.netloc, prefix=_prefix(parts), region=region, client_options=_http_options(endpoint),
                   retry_config=_RETRY, **kwargs)


def _gcs_store(url: str, parts: SplitResult, endpoint: str | None) -> GCSStore:
    kwargs: dict[str, Any] = {}
    if endpoint and not any(os.environ.get(name) for name in _GOOGLE_CREDENTIALS):
        # An emulator without credentials: an OAuth-less service account, the form obstore knows,
        # so no token is ever asked of the cloud's metadata server (outside this machine).
        kwargs["service_account_key"] = json.dumps({"gcs_base_url": endpoint.rstrip("/"), "disable_oauth": True,
                                                    "client_email": "", "private_key": "", "private_key_id": ""})
    elif endpoint:
        kwargs["base_url"] = endpoint.rstrip("/")
    try:
        return GCSStore(parts.netloc, prefix=_prefix(parts), client_options=_http_options(endpoint),
                        retry_config=_RETRY, **kwargs)
    except (ObstoreError, ValueError) as exc:
        raise StorageError(f"{url!r}: cannot open the GCS bucket ({_first_line(exc)}); credentials come from "
                           "GOOGLE_APPLICATION_CREDENTIALS or GOOGLE_SERVICE_ACCOUNT, an emulator from "
                           "INGEST_GCS_ENDPOINT") from None


def _azure_store(url: str, parts: SplitResult, endpoint: str | None) -> AzureStore:
    kwargs: dict[str, Any] = {"endpoint": endpoint.rstrip("/")} if endpoint else {}
    try:
        return AzureStore(parts.netloc, prefix=_prefix(parts), client_options=_http_options(endpoint),
                          retry_config=_RETRY, **kwargs)
    except (ObstoreError, ValueError) as exc:
        raise StorageError(f"{url!r}: cannot open the Azure container ({_first_line(exc)}); set "
                           "AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY, or AZURE_STORAGE_USE_EMULATOR=1 "
                           "for Azurite") from None


def _first_line(exc: BaseException) -> str:
    # obstore's messages go on with a multi-line debug dump; the first line says what is wrong.
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


#: Failures of the object store itself (unreachable, erroring, refusing credentials), as opposed to
#: a missing key: worth retrying while the store is down (see ``INGEST_STORAGE_RETRY_FOR``).
STORE_ERRORS: tuple[type[BaseException], ...] = (ObstoreError,)
