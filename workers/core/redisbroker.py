"""Dramatiq's Redis broker, taught to settle messages whose bytes could not be decoded.

The encoder turns undecodable bytes into a message for the poison actor, but it cannot know
which queue the bytes came from nor their Redis id, and Dramatiq's worker needs both: the
queue to find the consumer, the id to ack or nack.  This consumer wrapper fills them in from
what it does know (its queue, its broker id, the digest of the bytes), so the message is
dead-lettered like any other and its prefetched neighbours carry on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from dramatiq.broker import Consumer, MessageProxy
from dramatiq.brokers.redis import RedisBroker

from workers.core.encoder import POISON_ACTOR

__all__ = ["CrawlRedisBroker"]


class CrawlRedisBroker(RedisBroker):
    """A RedisBroker whose consumers settle poison messages instead of choking on them."""

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Consumer:
        """Wrap the stock consumer (see the module docstring)."""
        return _PoisonAwareConsumer(super().consume(queue_name, prefetch, timeout), self, queue_name)


class _PoisonAwareConsumer(Consumer):
    def __init__(self, inner: Consumer, broker: RedisBroker, queue_name: str) -> None:
        self._inner = inner
        self._broker = broker
        self._queue_name = queue_name

    def ack(self, message: MessageProxy) -> None:
        self._inner.ack(message)

    def nack(self, message: MessageProxy) -> None:
        self._inner.nack(message)

    def requeue(self, messages: Iterable[MessageProxy]) -> None:
        self._inner.requeue(messages)

    def close(self) -> None:
        self._inner.close()

    def __next__(self) -> MessageProxy | None:
        proxy = next(self._inner)
        if proxy is None or proxy.actor_name != POISON_ACTOR or not proxy.options.get("poison"):
            return proxy
        message = proxy._message.copy(queue_name=self._queue_name)
        redis_id = self._find_id(str(message.kwargs.get("raw_sha256", "")))
        message.options["redis_message_id"] = redis_id or "unknown"
        proxy._message = message
        return proxy

    def _find_id(self, raw_sha256: str) -> str | None:
        """The Redis id of the fetched-but-unacked message whose bytes have this digest."""
        client: Any = self._broker.client
        ns, q = self._broker.namespace, self._queue_name
        ids = list(client.smembers(f"{ns}:__acks__.{self._broker.broker_id}.{q}"))
        if not ids:
            return None
        for mid, data in zip(ids, client.hmget(f"{ns}:{q}.msgs", ids), strict=True):
            if data is not None and hashlib.sha256(data).hexdigest() == raw_sha256:
                return mid.decode() if isinstance(mid, bytes) else str(mid)
        return None
