"""Dramatiq middleware of our own: log context, dead letters, and in-flight accounting.

Plain classes with Dramatiq's before/after hooks, one concern each, installed in order by
:mod:`workers.core.broker`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import structlog
from dramatiq.broker import Broker, MessageProxy
from dramatiq.message import Message
from dramatiq.middleware import Middleware

from workers.core.logs import get_logger

__all__ = ["DeadLetters", "InFlight", "LogContext", "PoisonMessage"]


class PoisonMessage(Exception):
    """A message that can never succeed (it does not validate): dead-letter it, do not retry."""


class LogContext(Middleware):
    """Bind the message's identity to every log line its actor writes, and clear it afterwards."""

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        """Start each message with a clean context (threads are reused across messages)."""
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            message_id=message.message_id,
            queue=message.queue_name,
            retries=message.options.get("retries", 0),
        )

    def after_process_message(
        self, broker: Broker, message: MessageProxy, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        """Drop the context so it cannot leak into the next message's lines."""
        structlog.contextvars.clear_contextvars()

    after_skip_message = after_process_message


DeadLetterSink = Callable[[str, str, dict[str, Any]], None]


class DeadLetters(Middleware):
    """Record every message that ends failed: one ``<stage>.dead`` line and a stored copy with reason.

    Its after-hook runs after :class:`dramatiq.middleware.Retries`', so it sees the final verdict: a message is
    dead when Retries gave up, when the actor raised :class:`PoisonMessage`, or when the encoder
    turned undecodable bytes into a message for the poison actor (see :mod:`workers.core.redisbroker`).
    """

    def __init__(self, record: DeadLetterSink | None = None) -> None:
        self.log = get_logger()
        self.record = record

    def after_process_message(
        self, broker: Broker, message: MessageProxy, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        """Fail poison messages (no retry) and report every failed message once."""
        if isinstance(exception, PoisonMessage):
            message.fail()
        if exception is None or not getattr(message, "failed", False):
            return
        stage = message.queue_name.removesuffix(".DQ")
        reason = f"{type(exception).__name__}: {exception}"
        task = message.args[0] if message.args and isinstance(message.args[0], dict) else {}
        fields = {k: task.get(k) for k in ("url", "url_id", "crawl_id") if isinstance(task, dict) and k in task}
        self.log.error(f"{stage}.dead", reason=reason[:500], retries=message.options.get("retries", 0), **fields)
        if self.record is not None:
            letter = {
                "stage": stage,
                "reason": reason,
                "dead_at": time.time(),
                "retries": message.options.get("retries", 0),
                "message": {
                    "message_id": message.message_id,
                    "actor_name": message.actor_name,
                    "args": list(message.args),
                    "kwargs": message.kwargs,
                },
            }
            try:
                self.record(stage, message.message_id, letter)
            except Exception as exc:  # a storage outage must not turn a dead letter into a crash
                self.log.error("deadletter.unrecorded", reason=str(exc)[:300], message_id=message.message_id)


class InFlight(Middleware):
    """Count messages enqueued but not yet settled, so the embedded run knows when it is done.

    Every message (a retry or a delayed message moving queues included) is counted once on
    enqueue and once on ack or nack; a stage always enqueues its successor before its own
    message is acked, so the count cannot touch zero while work remains.
    """

    def __init__(self) -> None:
        self._count = 0
        self._done = 0
        self._cond = threading.Condition()

    @property
    def count(self) -> int:
        """Messages waiting, delayed or being processed."""
        return self._count

    def after_enqueue(self, broker: Broker, message: Message[Any], delay: int | None) -> None:
        """One more message to wait for."""
        with self._cond:
            self._count += 1

    def _settled(self) -> None:
        with self._cond:
            self._count -= 1
            self._done += 1
            if self._count <= 0:
                self._cond.notify_all()

    def after_ack(self, broker: Broker, message: MessageProxy) -> None:
        """A message finished."""
        self._settled()

    def after_nack(self, broker: Broker, message: MessageProxy) -> None:
        """A message was dead-lettered: finished too."""
        self._settled()

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is in flight or ``timeout`` seconds pass; True when idle."""
        with self._cond:
            return self._cond.wait_for(lambda: self._count <= 0, timeout=timeout)
