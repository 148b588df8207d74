"""Dramatiq's Redis broker, taught not to lose or strand messages when Redis or a message is bad.

Three things the stock consumer gets wrong for a crawler that runs for weeks:

- **Poison.**  Undecodable bytes, and envelopes naming a queue or actor this worker does not have,
  would stop a consumer or a worker thread.  The encoder turns bytes into a message for the poison
  actor; this wrapper does the same for bad envelopes and fills in the queue and Redis id the
  worker needs to settle them, so each is dead-lettered and its neighbours carry on.
- **Stranded messages.**  When Redis goes away, Dramatiq drops the consumer together with the
  delayed messages it held in memory and the messages it had prefetched, yet they stay in this
  live worker's unacked set, where no maintenance pass looks (the worker still heartbeats).  After
  the consumer reconnects, every message of the set that no worker thread is processing goes back
  to its queue (:meth:`_PoisonAwareConsumer._recover`).
- **Retries lost in a blip.**  A retry that cannot be enqueued (Redis away) would be swallowed and
  its message acked.  :class:`SafeRetries` notes the pending retry on the message instead, and the
  ack here enqueues it first; while Redis is away the ack raises a connection error, which
  Dramatiq's worker retries until Redis is back.  A message is acked only once its retry is safe.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterable
from typing import Any

import redis
from dramatiq.broker import Consumer, MessageProxy
from dramatiq.brokers.redis import RedisBroker
from dramatiq.errors import ConnectionClosed
from dramatiq.message import Message
from dramatiq.middleware import Retries

from workers.core.encoder import POISON_ACTOR

__all__ = ["CrawlRedisBroker", "SafeRetries"]

#: The attribute of a message proxy holding a retry that could not be enqueued yet (its delay).
_PENDING_RETRY = "_ingest_pending_retry"


class SafeRetries(Retries):
    """Dramatiq's Retries, except a retry that cannot be enqueued is kept for the ack to send."""

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        """Schedule the retry as Retries does; on a broker error, leave it pending on the message."""
        try:
            super().after_process_message(broker, message, result=result, exception=exception)  # type: ignore[no-untyped-call]
        except (redis.RedisError, ConnectionClosed, OSError):
            # Only the retry's enqueue talks to Redis in there.  Its delay: the one the failure
            # asked for, else the shortest backoff (after an outage, sooner is better than never).
            delay = getattr(exception, "delay", None)
            if delay is None:
                actor = broker.get_actor(message.actor_name)
                delay = message.options.get("min_backoff", actor.options.get("min_backoff", self.min_backoff))
            setattr(message, _PENDING_RETRY, int(delay))
            self.logger.warning("Retry of message %r deferred until the broker is back.", message.message_id)


class CrawlRedisBroker(RedisBroker):
    """A RedisBroker whose consumers settle poison, recover stranded messages and never drop a retry."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self._lock = threading.Lock()
        #: Per queue: Redis ids handed to worker threads and not yet settled (they will be).
        self._in_work: dict[str, set[str]] = {}
        #: Queues whose consumer failed since it last recovered its stranded messages.
        self._stranded: set[str] = set()

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Consumer:
        """Wrap the stock consumer (see the module docstring)."""
        return _PoisonAwareConsumer(super().consume(queue_name, prefetch, timeout), self, queue_name)

    def in_work(self, queue_name: str) -> set[str]:
        """The live set of Redis ids being processed from ``queue_name``."""
        with self._lock:
            return self._in_work.setdefault(queue_name, set())


def _redis_id(message: MessageProxy) -> str | None:
    value = message.options.get("redis_message_id")
    # "unknown" is the encoder's placeholder for bytes it could not read (their id is looked up).
    return value if isinstance(value, str) and value != "unknown" else None


class _PoisonAwareConsumer(Consumer):
    def __init__(self, inner: Consumer, broker: CrawlRedisBroker, queue_name: str) -> None:
        self._inner = inner
        self._broker = broker
        self._queue_name = queue_name
        self._delayed = queue_name.endswith(".DQ")

    def _settle(self, message: MessageProxy, nack: bool) -> None:
        try:
            pending = getattr(message, _PENDING_RETRY, False)
            if pending is not False and not nack:
                self._broker.enqueue(message._message, delay=pending)
                setattr(message, _PENDING_RETRY, False)
            if nack:
                self._inner.nack(message)
            else:
                self._inner.ack(message)
        except (redis.RedisError, OSError) as exc:
            # Any Redis error, not only a refused connection: Dramatiq's worker retries the
            # settlement on ConnectionClosed, and gives up (stranding the message) on anything else.
            raise ConnectionClosed(exc) from None
        redis_id = _redis_id(message)
        if redis_id is not None:
            self._broker.in_work(self._queue_name).discard(redis_id)

    def ack(self, message: MessageProxy) -> None:
        self._settle(message, nack=False)

    def nack(self, message: MessageProxy) -> None:
        self._settle(message, nack=True)

    def requeue(self, messages: Iterable[MessageProxy]) -> None:
        try:
            self._inner.requeue(messages)
        except (redis.RedisError, OSError) as exc:
            # Raised raw, this would end Dramatiq's consumer thread for good (it only expects
            # ConnectionClosed while closing); what it failed to requeue is recovered later.
            raise ConnectionClosed(exc) from None

    def close(self) -> None:
        # Dramatiq closes a consumer to replace it after an error, dropping what it held in
        # memory (delayed and prefetched messages): the next consumer of the queue recovers them.
        self._broker._stranded.add(self._queue_name)
        try:
            self._inner.close()
        except (redis.RedisError, OSError) as exc:
            raise ConnectionClosed(exc) from None

    def __next__(self) -> MessageProxy | None:
        try:
            if self._queue_name in self._broker._stranded:
                self._recover()
            proxy = next(self._inner)
        except (redis.RedisError, OSError) as exc:
            self._broker._stranded.add(self._queue_name)
            raise ConnectionClosed(exc) from None
        except Exception:
            self._broker._stranded.add(self._queue_name)
            raise
        if proxy is None:
            return None
        proxy = self._checked(proxy)
        redis_id = _redis_id(proxy)
        if redis_id is not None and not self._delayed:
            self._broker.in_work(self._queue_name).add(redis_id)
        return proxy

    def _recover(self) -> None:
        """Send back to the queue every message this worker took from it and nobody will settle."""
        client: Any = self._broker.client
        acks = f"{self._broker.namespace}:__acks__.{self._broker.broker_id}.{self._queue_name}"
        held = {m.decode() if isinstance(m, bytes) else str(m) for m in client.smembers(acks)}
        busy = set() if self._delayed else set(self._broker.in_work(self._queue_name))
        orphans = sorted(held - busy)
        if orphans:
            self._broker.do_requeue(self._queue_name, *orphans)
            self._broker.logger.warning("Requeued %d stranded messages on %r after a reconnect.",
                                        len(orphans), self._queue_name)
        self._broker._stranded.discard(self._queue_name)

    def _checked(self, proxy: MessageProxy) -> MessageProxy:
        """The message, or a poison message in its place when it cannot be processed here."""
        message = proxy._message
        reason: str | None = None
        if message.actor_name == POISON_ACTOR and message.options.get("poison"):
            pass
        elif message.queue_name != self._queue_name:
            reason = f"malformed message: it names queue {message.queue_name!r}, but came from {self._queue_name!r}"
        elif message.actor_name not in self._broker.actors:
            reason = f"malformed message: no actor named {message.actor_name!r}"
        elif _redis_id(proxy) is None:
            reason = "malformed message: no redis_message_id option"
        else:
            return proxy
        redis_id = _redis_id(proxy) or self._find_id(message)
        kwargs = dict(message.kwargs) if reason is None else {
            "reason": reason, "envelope": {"queue_name": message.queue_name, "actor_name": message.actor_name,
                                           "message_id": message.message_id}}
        proxy._message = Message(
            queue_name=self._queue_name, actor_name=POISON_ACTOR, args=(), kwargs=kwargs,
            options={"redis_message_id": redis_id or "unknown", "poison": True},
            message_id=message.message_id, message_timestamp=message.message_timestamp or int(time.time() * 1000),
        )
        return proxy

    def _find_id(self, message: Message[Any]) -> str | None:
        """The Redis id of the fetched-but-unacked message these bytes or this envelope came from."""
        raw_sha256 = str(message.kwargs.get("raw_sha256", "")) if message.actor_name == POISON_ACTOR else ""
        client: Any = self._broker.client
        ns, q = self._broker.namespace, self._queue_name
        ids = list(client.smembers(f"{ns}:__acks__.{self._broker.broker_id}.{q}"))
        if not ids:
            return None
        for mid, data in zip(ids, client.hmget(f"{ns}:{q}.msgs", ids), strict=True):
            if data is None:
                continue
            if raw_sha256 and hashlib.sha256(data).hexdigest() == raw_sha256:
                return mid.decode() if isinstance(mid, bytes) else str(mid)
            if not raw_sha256 and message.message_id.encode() in data:
                return mid.decode() if isinstance(mid, bytes) else str(mid)
        return None
