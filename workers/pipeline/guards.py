"""What wraps every stage function when it becomes an actor: time limits, store outages, retry policy.

A stage function raises whatever its work raised.  The guard turns that into the message's fate:

- a page over the per-page time limit (:class:`PageTimeout`) is logged as ``<stage>.timeout`` and
  dead-lettered (a PoisonMessage: retrying would only time out again);
- an object-store failure is retried with backoff for as long as the store stays down, up to
  ``INGEST_STORAGE_RETRY_FOR`` (hours by default), then dead-lettered as ``storage_unavailable``;
  every other error gets a few retries.

The clock of a store outage starts at the first storage failure of the message (kept in its
options, which travel with its retries), not at its enqueue time: a message that waited in a
backlog for hours still gets its full window.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from workers.core.bounded import PageTimeout
from workers.core.middleware import PoisonMessage
from workers.core.storage import STORE_ERRORS
from workers.core.urls import host_of

__all__ = ["StorageGaveUp", "StoreDown", "guarded", "retry_policy"]

#: Where the time of a message's first storage failure is kept.
_DOWN_SINCE = "ingest_store_down_since"
_MIN_STORE_BACKOFF_MS = 2_000
_MAX_STORE_BACKOFF_MS = 60_000


class StoreDown(dramatiq.Retry):
    """Object storage failed: retry later with backoff (a Retry, so no traceback is logged)."""


class StorageGaveUp(PoisonMessage):
    """Object storage stayed down longer than the retry window: dead-letter, an operator retries."""

    reason_code = "storage_unavailable"


def retry_policy(limit: int) -> Callable[[int, BaseException], bool]:
    """Retries' ``retry_when``: store outages always (the guard bounds them by time), others ``limit`` times."""

    def retry_when(retries: int, exception: BaseException) -> bool:
        return isinstance(exception, StoreDown) or retries < limit

    return retry_when


def _trace(message: Any) -> dict[str, Any]:
    task = message if isinstance(message, dict) else {}
    fields = {k: task[k] for k in ("url", "url_id", "crawl_id") if k in task}
    if isinstance(task.get("url"), str):
        fields["host"] = host_of(task["url"])
    return fields


def guarded(stage: str, fn: Callable[[Any, Any], None], rt: Any) -> Callable[[Any], None]:
    """``fn(rt, message)`` with the fates of the module docstring."""
    retry_for = float(rt.settings.storage_retry_for)

    def run(message: Any) -> None:
        try:
            fn(rt, message)
        except PageTimeout as exc:
            rt.outcome(f"{stage}.timeout", reason=str(exc), **_trace(message))
            raise
        except STORE_ERRORS as exc:
            current = CurrentMessage.get_current_message()
            options: dict[str, Any] = current.options if current is not None else {}
            since = float(options.setdefault(_DOWN_SINCE, time.time()))
            down_s = time.time() - since
            attempt = int(options.get("retries", 0))
            error = f"{type(exc).__name__}: {str(exc)[:300]}"
            if down_s > retry_for:
                raise StorageGaveUp(f"object storage failing for {down_s:.0f} s: {error}") from None
            delay = min(_MAX_STORE_BACKOFF_MS, _MIN_STORE_BACKOFF_MS * 2 ** min(attempt, 10))
            delay = int(delay * random.uniform(0.8, 1.2))  # outages end for everyone at once: spread the rush
            rt.outcome(f"{stage}.retry", reason="storage unavailable", error=error, attempt=attempt + 1,
                       delay_ms=delay, **_trace(message))
            raise StoreDown(error, delay=delay) from None

    run.__name__ = stage
    return run
