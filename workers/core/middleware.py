"""Dramatiq middleware of our own: log context, dead letters, and in-flight accounting.

Plain classes with Dramatiq's before/after hooks, one concern each, installed in order by
:mod:`workers.core.broker`.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import structlog
from dramatiq.broker import Broker, MessageProxy
from dramatiq.message import Message
from dramatiq.middleware import Middleware

from workers.core.deadletters import DeadLetterStore, make_letter
from workers.core.encoder import POISON_ACTOR
from workers.core.logs import get_logger

__all__ = ["DeadLetters", "InFlight", "LogContext", "PoisonMessage", "reason_code"]


class LogContext(Middleware):
    """Bind the message's identity to every log line its actor writes, and clear it afterwards."""

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        """Start each message with a clean context (threads are reused across messages)."""
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            message_id=message.message_id,
            queue=message.queue_name,
            # The delivery count as operators read it: 1 for the first (a stage's own count wins).
            attempt=int(message.options.get("retries", 0)) + 1,
        )
        task = message.args[0] if message.args and isinstance(message.args[0], dict) else {}
        if isinstance(task.get("source"), str):
            structlog.contextvars.bind_contextvars(source=task["source"])

    def after_process_message(
        self, broker: Broker, message: MessageProxy, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        """Drop the context so it cannot leak into the next message's lines."""
        structlog.contextvars.clear_contextvars()

    after_skip_message = after_process_message


DeadLetterSink = Callable[[str, str, dict[str, Any]], None]


class PoisonMessage(Exception):
    """A message that can never succeed (it does not validate): dead-letter it, do not retry."""

    #: The dead letter's ``reason``: a short code an operator filters by (``ingest dlq list --reason``).
    reason_code = "poison"


def reason_code(exception: BaseException | None, retries_spent: bool) -> str:
    """The short reason a failed message is dead-lettered with."""
    if isinstance(exception, PoisonMessage):
        return exception.reason_code
    return "retries_exhausted" if retries_spent else "error"


class DeadLetters(Middleware):
    """Record every message that ends failed: one ``<stage>.dead`` line and a dead letter with reason.

    Its after-hook runs after :class:`dramatiq.middleware.Retries`', so it sees the final verdict: a message is
    dead when Retries gave up, when the actor raised :class:`PoisonMessage`, or when the encoder
    turned undecodable bytes into a message for the poison actor (see :mod:`workers.core.redisbroker`).
    The letter goes to ``store`` (Redis, no expiry: the durable copy) and to ``record`` (a copy in
    storage, best effort: storage may be what is down).
    """

    def __init__(self, record: DeadLetterSink | None = None, store: DeadLetterStore | None = None) -> None:
        self.log = get_logger()
        self.record = record
        self.store = store

    def after_process_message(
        self, broker: Broker, message: MessageProxy, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        """Fail poison messages (no retry) and report every failed message once."""
        if isinstance(exception, PoisonMessage):
            message.fail()
        if exception is None or not getattr(message, "failed", False):
            return
        stage = message.queue_name.removesuffix(".DQ")
        error = f"{type(exception).__name__}: {exception}"
        code = reason_code(exception, retries_spent=not isinstance(exception, PoisonMessage))
        task = message.args[0] if message.args and isinstance(message.args[0], dict) else {}
        fields = {k: task.get(k) for k in ("url", "url_id", "crawl_id", "source") if k in task}
        if isinstance(task.get("url"), str):
            fields["host"] = urlsplit(task["url"]).hostname
        if message.actor_name == POISON_ACTOR:
            fields["original"] = message.kwargs
        # Retries counts a failed attempt before it gives up, but not one it aborts (a PoisonMessage).
        attempts = int(message.options.get("retries", 0)) + (1 if isinstance(exception, PoisonMessage) else 0)
        self.log.error(f"{stage}.dead", reason=code, error=error[:500], attempt=attempts, **fields)
        letter = make_letter(
            letter_id=message.message_id, stage=stage, reason=code, error=error, attempts=attempts,
            traceback="".join(traceback.format_exception(exception)),
            message={
                "queue_name": stage,
                "actor_name": message.actor_name,
                "args": list(message.args),
                "kwargs": message.kwargs,
                "message_id": message.message_id,
            },
            fields=fields,
        )
        if self.store is not None:
            try:
                self.store.add(letter)
            except Exception as exc:  # Redis away: the message is nacked into Dramatiq's own queue still
                self.log.error("deadletter.unrecorded", error=str(exc)[:300], message_id=message.message_id)
        if self.record is not None:
            try:
                self.record(stage, message.message_id, letter)
            except Exception as exc:  # a storage outage must not turn a dead letter into a crash
                self.log.warning("deadletter.unmirrored", error=str(exc)[:300], message_id=message.message_id)


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
