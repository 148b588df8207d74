"""Crawls in the workers: pause and cancel take effect, progress is counted, and a crawl knows
when it is finished (``workers.core.crawlstate`` holds the state; this puts it to work).

* Before a stage runs a message, its crawl's state is read (cached a second): a *paused*
  crawl's fetch, discover and extract messages go back to their queue :data:`PAUSED_DELAY_MS`
  later (``<stage>.paused``, a new message: no retry spent; the sink still writes what was
  extracted), a *cancelled* crawl's are dropped (``<stage>.cancelled``, not a dead letter).
* Every outcome is counted for its crawl and, for pages fetched and records stored, per minute.
* Each claimed URL opens a chain of messages (fetch, then discover or extract and sink).  A
  message that hands its URL on (a send from fetch, extract, or a paused message sent back)
  keeps the chain open; any other message, once settled for good (acknowledged or dead, not
  retried), closes it.  The settlement that closes the crawl's last chain logs ``crawl.finished``
  with the counts and writes them to storage as ``crawls/<crawl_id>.json``.

Installed by :func:`workers.pipeline.actors.declare_actors` on a broker with Redis; the embedded
crawl has its own progress and summary.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import orjson
import redis
from dramatiq.broker import Broker, MessageProxy
from dramatiq.middleware import CurrentMessage, Middleware

from workers.core.crawlstate import RedisCrawls, claim_scope
from workers.core.logs import get_logger
from workers.core.middleware import DeadLetters
from workers.core.storage import STORE_ERRORS
from workers.core.urls import host_of
from workers.discover.frontier import expire_poll_sets
from workers.pipeline.presence import WorkerPresence
from workers.pipeline.runtime import Runtime

__all__ = ["PAUSED_DELAY_MS", "CrawlTracking", "completion_key", "crawl_tracking"]

#: How long a paused crawl's message waits before it looks again.
PAUSED_DELAY_MS = 5_000
#: Set on a message proxy whose processing handed its URL on to another message.
_CONTINUES = "_ingest_continues"
#: How long a chain's end waits for Redis to come back before its count is given up.
_SETTLE_RETRY_FOR_S = 600.0
#: One worker in the cluster gives legacy poll-round seen-sets a TTL, at most this often.
_COMPACT_EVERY_S = 3600

Stage = Callable[[Runtime, Any], None]


def completion_key(crawl_id: str) -> str:
    """Where a finished crawl's counts are written in storage."""
    return f"crawls/{quote(crawl_id, safe='-_.@+=')}.json"


def _task(message: Any) -> dict[str, Any]:
    args = getattr(message, "args", None) or ()
    return args[0] if args and isinstance(args[0], dict) else {}


def _trace(task: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {k: task[k] for k in ("url", "url_id", "crawl_id") if k in task}
    if isinstance(task.get("url"), str):
        fields["host"] = host_of(task["url"])
    return fields


def _is_start(task: dict[str, Any]) -> bool:
    """A start page: enqueued or a poll's start, not found on a page."""
    found = task.get("found")
    return task.get("depth", 0) == 0 and not (isinstance(found, dict) and found.get("referrer"))


def _hand_on(target: str) -> None:
    """Called on every send: note when the message being processed passes its URL on."""
    current = CurrentMessage.get_current_message()
    if current is None:  # the scheduler's ticker: start pages, claimed and counted as new URLs
        return
    # What discovery sends to fetch are new URLs, each claimed (and counted) in the seen-set.
    if current.queue_name.removesuffix(".DQ") == "discover" and target == "fetch":
        return
    setattr(current, _CONTINUES, True)


class CrawlTracking:
    """The crawl checks, counters and completion of one worker process's runtime."""

    def __init__(self, rt: Runtime, client: Any) -> None:
        self.rt = rt
        self.client = client
        self.crawls = RedisCrawls(client, rt.settings.namespace)
        self.log = get_logger()

    def controlled(self, stage: str, fn: Stage) -> Stage:
        """``fn`` behind its crawl's state: paused messages wait, cancelled ones are dropped."""

        def run(rt: Runtime, message: Any) -> None:
            task = message if isinstance(message, dict) else {}
            crawl_id = task.get("crawl_id")
            if isinstance(crawl_id, str) and crawl_id:
                state = self.crawls.control(crawl_id)
                if state == "cancelled":
                    rt.outcome(f"{stage}.cancelled", **_trace(task))
                    return
                if state == "paused" and stage != "sink":
                    # A held politeness slot is gone by the time the crawl resumes.
                    rt.send_later(stage, {k: v for k, v in task.items() if k != "slot_at"}, PAUSED_DELAY_MS)
                    rt.outcome(f"{stage}.paused", delay_ms=PAUSED_DELAY_MS, **_trace(task))
                    return
                if stage == "fetch" and isinstance(task.get("url"), str) and _is_start(task):
                    self.crawls.add_start(crawl_id, task["url"])
            fn(rt, message)

        run.__name__ = getattr(fn, "__name__", stage)
        return run

    def install(self, broker: Broker) -> None:
        """Wrap the runtime's sends, observe its outcomes, add the settlement and presence middleware."""
        send, send_later = self.rt.send, self.rt.send_later

        def tracked_send(stage: str, task: dict[str, Any]) -> None:
            _hand_on(stage)
            send(stage, task)

        def tracked_send_later(stage: str, task: dict[str, Any], delay_ms: int) -> None:
            _hand_on(stage)
            send_later(stage, task, delay_ms)

        self.rt.send, self.rt.send_later = tracked_send, tracked_send_later
        self.rt.observers.append(self.observe)
        # Before DeadLetters in the list, so after it (and Retries) in the after-hooks: the verdict is final.
        broker.add_middleware(_Settlements(self), before=DeadLetters)
        broker.add_middleware(WorkerPresence(self.client, self.rt.settings.namespace))

    def observe(self, event: str, fields: dict[str, Any]) -> None:
        """Count an outcome for its crawl.  Most counts are not worth failing a message for; a
        record's is (``stored`` must match storage), so it raises and the message is retried."""
        current = CurrentMessage.get_current_message()
        raw_source = _task(current).get("source") if current is not None else None
        source = raw_source if isinstance(raw_source, str) else None
        crawl_id, url_id = fields.get("crawl_id"), fields.get("url_id")
        if (event == "sink.stored" or (event == "sink.exists" and fields.get("again"))) and crawl_id and url_id:
            self.crawls.stored(str(crawl_id), str(url_id), source, again=event == "sink.exists")
            return
        try:
            over = int(fields.get("deferred") or 0) if event == "discover.limit" else 0
            self.crawls.observe(event, crawl_id, source, over_budget=over)
        except redis.RedisError as exc:
            self.log.debug("crawl.uncounted", reason=f"{type(exc).__name__}: {exc}"[:200], outcome=event)

    def settled(self, message: MessageProxy, *, dead: bool) -> None:
        """A message settled for good: close its chain unless it handed its URL on."""
        task = _task(message)
        crawl_id = task.get("crawl_id")
        if not isinstance(crawl_id, str) or not crawl_id:
            return
        raw_source = task.get("source")
        source = raw_source if isinstance(raw_source, str) else None
        dead_event = f"{message.queue_name.removesuffix('.DQ')}.dead" if dead else None
        if getattr(message, _CONTINUES, False):
            if dead_event:
                self.crawls.observe(dead_event, crawl_id, source)
            return
        # The chain ends once per URL (its claim marked), so a message handled twice ends nothing twice.
        known = self.rt.sources.get(source) if source else None
        scope = claim_scope(task, str(task.get("kind", "article")), bool(known and known.refresh))
        url_id = task.get("url_id")
        state = self.crawls.settle(crawl_id, url_id=url_id if isinstance(url_id, str) else None, scope=scope,
                                   dead_event=dead_event)
        if state is not None:
            self._finished(crawl_id, state)

    def _finished(self, crawl_id: str, state: str) -> None:
        info = self.crawls.get(crawl_id) or {"crawl_id": crawl_id, "state": state}
        counts = {k: info.get(k) for k in ("discovered", "fetched", "stored", "failed", "remaining")}
        started, finished = info.get("started_at"), info.get("finished_at")
        seconds = round(finished - started, 1) if finished and started else None
        self.log.info("crawl.finished", crawl_id=crawl_id, state=state, seconds=seconds, source=info.get("source"),
                      **counts)
        try:
            self.rt.storage.put(completion_key(crawl_id), orjson.dumps(info, option=orjson.OPT_INDENT_2))
        except STORE_ERRORS as exc:  # the counts stay in Redis (a week) and in the log line
            self.log.warning("crawl.unrecorded", crawl_id=crawl_id, error=f"{type(exc).__name__}: {exc}"[:300])

    def compact(self) -> None:
        """Give poll-round seen-sets written before they expired a TTL (one worker an hour does it)."""
        ttl = int(self.rt.settings.seen_poll_ttl)
        if ttl <= 0 or not self.client.set(f"{self.rt.settings.namespace}:compacted", b"1", nx=True,
                                           ex=_COMPACT_EVERY_S):
            return
        n = expire_poll_sets(self.client, self.rt.settings.namespace, ttl)
        if n:
            self.log.info("seen.compacted", poll_sets=n, ttl_s=ttl)


class _Settlements(Middleware):
    """Tells :class:`CrawlTracking` about each message settled for good (not one going to a retry)."""

    def __init__(self, tracking: CrawlTracking) -> None:
        self.tracking = tracking
        self.log = get_logger()

    def after_worker_boot(self, broker: Broker, worker: Any) -> None:
        """Compact legacy seen-sets in the background (never in the way of the first messages)."""

        def run() -> None:
            try:
                self.tracking.compact()
            except redis.RedisError as exc:
                self.log.warning("seen.uncompacted", reason=f"{type(exc).__name__}: {exc}"[:200])

        threading.Thread(target=run, name="ingest-compact", daemon=True).start()

    def after_process_message(
        self, broker: Broker, message: MessageProxy, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        """Acknowledged, or dead after its last attempt: settled."""
        dead = exception is not None
        if dead and not getattr(message, "failed", False):
            return  # going to a retry: the same message comes back
        self._settle(message, dead)

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        """Skipped (too old): settled too."""
        self._settle(message, False)

    def _settle(self, message: MessageProxy, dead: bool) -> None:
        # A chain ends once per URL: an end that never reaches Redis would leave its crawl running
        # for ever.  So wait for Redis, as the message's acknowledgement does anyway, for a while.
        deadline, pause = time.monotonic() + _SETTLE_RETRY_FOR_S, 0.5
        while True:
            try:
                self.tracking.settled(message, dead=dead)
                return
            except redis.RedisError as exc:
                if time.monotonic() + pause > deadline:  # the message is done either way; its count is lost
                    self.log.error("crawl.unsettled", message_id=message.message_id,
                                   reason=f"{type(exc).__name__}: {exc}"[:200])
                    return
                self.log.warning("crawl.settle_retry", message_id=message.message_id, delay_ms=int(pause * 1000),
                                 reason=f"{type(exc).__name__}: {exc}"[:200])
                time.sleep(pause)
                pause = min(pause * 2, 5.0)


def crawl_tracking(broker: Broker, rt: Runtime) -> CrawlTracking | None:
    """The tracking for a broker on Redis (its client); None for an in-process broker."""
    client = getattr(broker, "client", None)
    return CrawlTracking(rt, client) if client is not None else None
