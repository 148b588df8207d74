"""Turning sources into work: start tasks for a poll round, and the ticker that fires the schedule.

The ticker runs inside every worker process that consumes the discover queue (a Dramatiq
middleware, started after the worker boots).  Any number of them may tick: the schedule hands
each due round to exactly one of them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from dramatiq.broker import Broker
from dramatiq.middleware import Middleware

from workers.core.logs import get_logger
from workers.core.messages import fetch_task
from workers.core.urls import url_id
from workers.discover.frontier import Seen
from workers.discover.schedule import Schedule, poll_id
from workers.sources.registry import Registry
from workers.sources.sourcefile import Source

__all__ = ["SchedulerMiddleware", "fire_due", "start_tasks_for"]


def start_tasks_for(source: Source, *, crawl_id: str | None = None, poll: str | None = None) -> list[dict[str, Any]]:
    """The fetch tasks that begin one poll of ``source`` (crawl id = source name unless given)."""
    return [
        fetch_task(
            crawl_id=crawl_id or source.name,
            url=url,
            url_id=url_id(url),
            kind=kind,
            max_depth=source.max_depth,
            source=source.name,
            poll_id=poll,
            found={"via": "start"},
        )
        for url, kind in zip(source.start_urls, source.kinds, strict=True)
    ]


def fire_due(
    schedule: Schedule,
    registry: Registry,
    send: Callable[[str, dict[str, Any]], None],
    seen: Seen,
    now: float | None = None,
) -> list[str]:
    """Send the start tasks of each due poll round, then reschedule it; returns the sources fired.

    Send first, reschedule after: a failure in between (Redis gone, the process killed) leaves
    the round due and the next tick fires it again, where rescheduling first would lose it.
    Start URLs are claimed in the round's seen-set like any discovered page, by an owner every
    firing of the round shares, and committed once sent: a round fired again re-sends only
    what was not sent, and two tickers firing one round at once at worst both send a start
    page (a duplicate fetch whose pages the seen-sets dedupe; a lost round would not come back).
    Only the ticker that advances a round counts it as fired.
    """
    now = time.time() if now is None else now
    fired = []
    for name, due_at in schedule.due(now):
        source = registry.get(name)
        if source is None:  # unloaded since it was scheduled
            schedule.remove(name)
            continue
        poll = poll_id(due_at)
        tasks = start_tasks_for(source, poll=poll)
        scope = f"{source.name}/{poll}"
        mine = seen.claim(scope, [t["url_id"] for t in tasks], f"schedule:{poll}")
        for task, ok in zip(tasks, mine, strict=True):
            if ok:
                send("fetch", task)
                seen.commit(scope, [task["url_id"]])
        if schedule.advance(name, due_at, now):
            fired.append(name)
    return fired


class SchedulerMiddleware(Middleware):
    """Ticks the schedule every ``tick_s`` seconds in worker processes that consume ``discover``."""

    def __init__(
        self,
        schedule: Schedule,
        registry: Registry,
        send: Callable[[str, dict[str, Any]], None],
        seen: Seen,
        tick_s: float = 1.0,
    ) -> None:
        self.schedule, self.registry, self.send, self.seen = schedule, registry, send, seen
        self.tick_s = tick_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.log = get_logger()

    def after_worker_boot(self, broker: Broker, worker: Any) -> None:
        """Start ticking if this worker discovers."""
        # Dramatiq keeps ``--queues`` as ``consumer_whitelist`` (None: every queue).
        queues = getattr(worker, "consumer_whitelist", None)
        if queues is not None and "discover" not in queues:
            return
        self._thread = threading.Thread(target=self._run, name="ingest-scheduler", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        """Stop ticking before the worker stops."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                for name in fire_due(self.schedule, self.registry, self.send, self.seen, time.time()):
                    self.log.info("schedule.fired", source=name)
            except Exception as exc:  # Redis away for a moment: try again next tick
                self.log.warning("schedule.error", reason=f"{type(exc).__name__}: {exc}"[:300])
