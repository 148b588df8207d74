"""The services an actor needs, built once per process and handed to the actors explicitly.

Keeping clients here (storage, HTTP, Redis-backed shared state) instead of in module globals is
what lets a test build a whole pipeline on a fresh broker, and lets the embedded run and the
Redis workers share every line of stage code.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import httpx
import orjson
from dramatiq.middleware import CurrentMessage

from workers.core.bounded import BoundedPool
from workers.core.deadletters import DeadLetterStore, MemoryDeadLetters, RedisDeadLetters, make_letter
from workers.core.logs import get_logger
from workers.core.metrics import PipelineMetrics
from workers.core.settings import Settings
from workers.core.storage import STORE_ERRORS, Storage, deadletter_key, open_storage
from workers.discover.frontier import Limits, MemoryLimits, MemorySeen, RedisLimits, Seen, make_seen
from workers.discover.schedule import MemorySchedule, RedisSchedule, Schedule
from workers.discover.shapes import MemoryShapeMemory, RedisShapeMemory, ShapeMemory

# Imported up front, not lazily inside a worker thread: threads racing through a first import of
# trafilatura were seen to get a half-initialised module (ImportError) instead of waiting.
from workers.extract.article import extract_article
from workers.extract.duplicates import DuplicateIndex, MemoryDuplicateIndex, RedisDuplicateIndex
from workers.extract.health import HealthStore, MemoryHealthStore, RedisHealthStore
from workers.extract.sitememory import MemorySiteMemory, RedisSiteMemory, SiteMemory
from workers.fetch.politeness import HostPolicy, MemoryHostPolicy, RedisHostPolicy
from workers.fetch.robots import MemoryRobotsCache, RedisRobotsCache, RobotsCache
from workers.fetch.validators import MemoryValidators, RedisValidators, Validators
from workers.sources.registry import MemoryRegistry, RedisRegistry, Registry

__all__ = ["Runtime", "build_runtime"]

T = TypeVar("T")

#: Fields of an outcome worth keeping in a dead letter.
_LETTER_FIELDS = {"url", "url_id", "crawl_id", "source", "host", "status", "ms", "bytes"}

#: Outcomes that are not failures, logged at info; everything else is a warning.
_QUIET_OUTCOMES = {"done", "stored", "exists", "updated", "stale", "empty", "delayed", "absent", "not_modified",
                   "classified"}


def _extract_inline(html: bytes, url: str, encoding: str | None) -> dict[str, Any]:
    return extract_article(html, url, encoding=encoding)


#: What the children of the page pool import once, before they are forked.
POOL_PRELOAD = ["workers.pipeline.runtime", "workers.extract.article", "workers.discover.pages",
                "workers.discover.classify"]


def page_pool_size(settings: Settings, cpus: int) -> int:
    """Children of a worker process's page pool: ``INGEST_PAGE_PROCESSES``, else one and a half per CPU.

    The half keeps the cores busy while a killed child is replaced.  An extract-only host does
    better with one worker process whose pool has one child per CPU and twice as many threads:
    a thread then does its message's Redis and storage work while the children parse (README,
    "Scaling out"); a cap also bounds the memory of the children (~130 MB each).
    """
    return settings.page_processes or max(2, cpus * 3 // 2)


def page_pool(settings: Settings, size: int) -> BoundedPool:
    """The killable child processes that parse pages within ``INGEST_PAGE_TIME_LIMIT``."""
    return BoundedPool(size, settings.page_time_limit, preload=POOL_PRELOAD)


@dataclass
class Runtime:
    """Everything the stage actors share within one process."""

    settings: Settings
    storage: Storage
    seen: Seen
    policy: HostPolicy
    robots: RobotsCache
    limits: Limits
    sources: Registry
    schedule: Schedule
    validators: Validators
    site_memory: SiteMemory
    duplicates: DuplicateIndex
    health: HealthStore
    client_factory: Callable[[], httpx.Client]
    pool: BoundedPool | None = None
    dead_letters: DeadLetterStore = field(default_factory=MemoryDeadLetters)
    #: Probe verdicts per host and URL shape (discover's site memory).
    shapes: ShapeMemory = field(default_factory=MemoryShapeMemory)
    metrics: PipelineMetrics | None = None
    outcomes: Counter[str] = field(default_factory=Counter)
    bytes_fetched: int = 0
    #: Links a page budget left unsent (summed over ``discover.limit``), and the largest such budget:
    #: a one-shot crawl has no next poll for them, so its summary must say so.
    over_budget: int = 0
    budget_cut: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _client: httpx.Client | None = None
    send: Callable[[str, dict[str, Any]], None] = field(default=lambda stage, task: None)
    send_later: Callable[[str, dict[str, Any], int], None] = field(default=lambda stage, task, ms: None)
    #: Called with every outcome after it is counted (the workers' crawl progress in Redis).
    observers: list[Callable[[str, dict[str, Any]], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.log = get_logger()

    @property
    def client(self) -> httpx.Client:
        """The process's HTTP client (one connection pool shared by all fetch threads)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self.client_factory()
        return self._client

    def extract(self, html: bytes, url: str, encoding: str | None) -> dict[str, Any]:
        """Extract a page within the per-page time limit (in the page pool; inline without one)."""
        return self.bounded(_extract_inline, html, url, encoding)

    def bounded(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in the page pool, killed past the per-page time limit (PageTimeout)."""
        if self.pool is None:
            return fn(*args, **kwargs)
        return self.pool.run(partial(fn, *args, **kwargs) if kwargs else fn, *([] if kwargs else args))

    def outcome(self, event: str, **fields: Any) -> None:
        """Record one outcome: count it, feed the metrics and write its one log line."""
        stage, _, result = event.partition(".")
        if self.metrics is not None:
            self.metrics.outcome(event, fields)
        with self._lock:
            self.outcomes[event] += 1
            if stage == "fetch" and result == "done":
                self.bytes_fetched += int(fields.get("bytes") or 0)
            elif event == "discover.limit":
                self.over_budget += int(fields.get("deferred") or 0)
                self.budget_cut = max(self.budget_cut, int(fields.get("limit") or 0))
        for observe in self.observers:
            observe(event, fields)
        if result in {"delayed", "robots_wait"}:  # one per wait: for debugging, counted in the metrics
            self.log.debug(event, **fields)
        elif result in _QUIET_OUTCOMES:
            self.log.info(event, **fields)
        else:
            self.log.warning(event, **fields)

    def dead_letter(self, stage: str, message_id: str, letter: dict[str, Any]) -> None:
        """Mirror a dead letter under ``deadletters/`` in storage and count it (the broker's
        middleware has already kept it in the dead-letter store)."""
        with self._lock:
            self.outcomes[f"{stage}.dead"] += 1
        self._mirror(stage, message_id, letter)

    def _mirror(self, stage: str, letter_id: str, letter: dict[str, Any]) -> None:
        if self.metrics is not None:
            self.metrics.dead_letter(stage, str(letter.get("reason", "error")))
        self.storage.put(deadletter_key(stage, letter_id), orjson.dumps(letter, default=str))

    def give_up(self, stage: str, reason: str, error: str, message: dict[str, Any], **fields: Any) -> None:
        """Dead-letter a message the stage settled itself as a permanent failure (a 404, a page
        that is not HTML): no exception, no retry, but an operator sees it and can retry it."""
        current = CurrentMessage.get_current_message()
        letter_id = current.message_id if current is not None else f"{stage}-{message.get('url_id', '')}"
        letter = make_letter(letter_id=letter_id, stage=stage, reason=reason, error=error,
                             attempts=int(current.options.get("retries", 0)) + 1 if current is not None else 1,
                             message={"queue_name": stage, "actor_name": stage, "args": [message], "kwargs": {},
                                      "message_id": letter_id},
                             fields={k: v for k, v in fields.items() if k in _LETTER_FIELDS})
        self.dead_letters.add(letter)
        try:
            self._mirror(stage, letter_id, letter)
        except STORE_ERRORS as exc:  # the durable copy is in the store above; this one is a convenience
            self.log.warning("deadletter.unmirrored", error=str(exc)[:300], **fields)

    def close(self) -> None:
        """Release the HTTP client and the page pool (its children are killed, busy or not)."""
        if self.pool is not None:
            self.pool.close()
        if self._client is not None:
            self._client.close()


def build_runtime(
    settings: Settings,
    *,
    redis_client: Any = None,
    pool: BoundedPool | None = None,
    resolver: Any = None,
) -> Runtime:
    """Wire the services for the settings' broker: in-process state, or shared state in Redis."""
    from workers.fetch.netguard import build_client

    shared = _memory_state(settings) if redis_client is None else _redis_state(settings, redis_client)
    return Runtime(
        settings=settings,
        storage=open_storage(settings.storage_url, s3_endpoint=settings.s3_endpoint),
        client_factory=lambda: build_client(settings, resolver=resolver),
        pool=pool,
        **shared,
    )


def _lease_ttl(settings: Settings) -> float:
    # Leases outlive the longest request, so a live fetch never loses its place to a "dead" one.
    return settings.request_timeout + 60


def _memory_state(settings: Settings) -> dict[str, Any]:
    """The embedded run's state: everything in this process."""
    return {
        "seen": MemorySeen(),
        "policy": MemoryHostPolicy(lease_ttl_s=_lease_ttl(settings)),
        "robots": MemoryRobotsCache(),
        "limits": MemoryLimits(),
        "sources": MemoryRegistry(),
        "schedule": MemorySchedule(),
        "validators": MemoryValidators(),
        "site_memory": MemorySiteMemory(),
        "duplicates": MemoryDuplicateIndex(),
        "health": MemoryHealthStore(),
        "dead_letters": MemoryDeadLetters(),
        "shapes": MemoryShapeMemory(),
    }


def _redis_state(settings: Settings, client: Any) -> dict[str, Any]:
    """State shared through Redis by every worker on every host."""
    ns = settings.namespace
    return {
        "seen": make_seen(client, ns, settings.seen_backend, capacity=settings.bloom_capacity,
                          error_rate=settings.bloom_error, poll_ttl_s=settings.seen_poll_ttl),
        "policy": RedisHostPolicy(client, ns, lease_ttl_s=_lease_ttl(settings)),
        "robots": RedisRobotsCache(client, ns),
        "limits": RedisLimits(client, ns),
        "sources": RedisRegistry(client, ns),
        "schedule": RedisSchedule(client, ns),
        "validators": RedisValidators(client, ns),
        "site_memory": RedisSiteMemory(client, ns),
        "duplicates": RedisDuplicateIndex(client, ns),
        "health": RedisHealthStore(client, ns),
        "dead_letters": RedisDeadLetters(client, ns),
        "shapes": RedisShapeMemory(client, ns),
    }
