"""The one bootstrap of the message engine: encoder, broker, middleware, in that order.

Dramatiq's defaults suit other work.  Measured with its Redis broker: a worker killed with
SIGKILL had its messages back only after ~26 minutes (60 s heartbeat timeout plus a 0.1%
per-command chance of the maintenance pass that requeues them), and retries ran 20 times over
about 30 days.  Here a dead worker's messages come back within seconds (see
``Settings.heartbeat_timeout_ms`` and ``maintenance_chance``), retries are few and short, and
undecodable bytes become dead letters instead of stopping a consumer.

Nothing here runs at import time: :func:`make_broker` is called by the CLI entry points (and
by tests) with explicit settings, before any actor is declared.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AgeLimit, CurrentMessage, ShutdownNotifications, TimeLimit

from workers.core.deadletters import DeadLetterStore
from workers.core.encoder import POISON_ACTOR, POISON_QUEUE, SafeOrjsonEncoder
from workers.core.middleware import DeadLetters, DeadLetterSink, InFlight, LogContext, PoisonMessage
from workers.core.redisbroker import CrawlRedisBroker, SafeRetries
from workers.core.redisclient import redis_client as open_redis
from workers.core.settings import Settings

__all__ = ["QUEUES", "make_broker"]

#: One queue per stage, so an operator scales each kind of worker on its own.
QUEUES = ("discover", "fetch", "extract", "sink")

#: Retries of an unexpected error (a bug, a storage outage): a few, minutes apart, not days.
DEFAULT_MAX_RETRIES = 3
MIN_BACKOFF_MS = 2_000
MAX_BACKOFF_MS = 5 * 60_000


def make_broker(
    settings: Settings,
    *,
    dead_letters: DeadLetterSink | None = None,
    dead_letter_store: DeadLetterStore | None = None,
    in_flight: InFlight | None = None,
    redis_client: Any = None,
) -> dramatiq.Broker:
    """Build the broker the settings name, install our encoder and middleware, make it global."""
    dramatiq.set_encoder(SafeOrjsonEncoder())
    middleware = [
        AgeLimit(),
        # An actor's own timeouts (httpx's, the fetch deadline) end its work first; this is the
        # backstop for a hung extraction, not the normal path.
        TimeLimit(time_limit=10 * 60_000),
        ShutdownNotifications(),
        CurrentMessage(),
        LogContext(),
        # Dramatiq runs after_* hooks in reverse order: listed before Retries, DeadLetters sees
        # Retries' verdict (message.failed) instead of running ahead of it.
        DeadLetters(dead_letters, dead_letter_store),
        SafeRetries(max_retries=DEFAULT_MAX_RETRIES, min_backoff=MIN_BACKOFF_MS, max_backoff=MAX_BACKOFF_MS),
    ]
    if in_flight is not None:
        middleware.append(in_flight)
    broker: dramatiq.Broker
    if settings.embedded:
        broker = StubBroker(middleware=middleware)
    else:
        # One client factory for every URL form (TLS, Sentinel); see workers.core.redisclient.
        kwargs: dict[str, Any] = {"client": redis_client if redis_client is not None
                                  else open_redis(settings.broker_url)}
        broker = CrawlRedisBroker(
            middleware=middleware,
            namespace=settings.namespace,
            heartbeat_timeout=settings.heartbeat_timeout_ms,
            maintenance_chance=settings.maintenance_chance,
            **kwargs,
        )
    for queue in QUEUES:
        broker.declare_queue(queue)
    # Every broker can settle poison: undecodable bytes and bad envelopes are addressed to it.
    dramatiq.actor(actor_name=POISON_ACTOR, queue_name=POISON_QUEUE, throws=(PoisonMessage,), broker=broker)(poison)
    dramatiq.set_broker(broker)
    return broker


def poison(**kwargs: Any) -> None:
    """The address of undecodable messages (see workers.core.encoder): always dead-letters them."""
    raise PoisonMessage(str(kwargs.get("reason", "undecodable message")))
