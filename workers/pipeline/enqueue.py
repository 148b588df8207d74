"""Sending work from scripts: validate URLs, claim them for the crawl, put them on the fetch queue.

Used by ``ingest enqueue`` and importable from Python (``enqueue_urls``).  Bad lines are
reported with where they came from and skipped; the good ones are always sent.

Each URL is claimed, sent, then committed in the seen-set.  The claim's owner is the same for
every enqueue into one crawl, so when a run dies (or Redis goes away) after a claim and before
its send, running the same enqueue again finds the uncommitted claim its own and sends the URL;
committed URLs are duplicates.  Two enqueues of one URL into one crawl at the same moment may
both send it: a duplicate fetch, which the sink absorbs, never a lost URL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dramatiq.message import Message

from workers.core.broker import make_broker
from workers.core.messages import fetch_task
from workers.core.settings import Settings
from workers.core.urls import InvalidURL, host_of, normalize_url, url_id
from workers.discover.frontier import make_seen
from workers.pipeline.actors import DEFAULT_MAX_DEPTH
from workers.pipeline.crawl import new_crawl_id

__all__ = ["EnqueueReport", "enqueue_urls", "send_task"]


@dataclass
class EnqueueReport:
    """What an enqueue did: how many were sent, already claimed in this crawl, or rejected and why."""

    crawl_id: str
    enqueued: int = 0
    duplicates: int = 0
    rejected: list[tuple[str, str, str]] = field(default_factory=list)


def send_task(broker: Any, stage: str, task: dict[str, Any]) -> None:
    """Put one task on a stage's queue without declaring actors (the workers own them)."""
    broker.enqueue(Message(queue_name=stage, actor_name=stage, args=(task,), kwargs={}, options={}))


def enqueue_urls(
    lines: Iterable[tuple[str, str]],
    settings: Settings,
    *,
    kind: str = "article",
    crawl_id: str | None = None,
    max_depth: int = DEFAULT_MAX_DEPTH,
    redis_client: Any = None,
) -> EnqueueReport:
    """Send each valid URL of ``(where, url)`` pairs to the fetch queue once for the crawl."""

    from workers.core.redisclient import redis_client as open_redis
    client = redis_client or open_redis(settings.broker_url)
    broker = make_broker(settings, redis_client=client)
    seen = make_seen(client, settings.namespace, settings.seen_backend, capacity=settings.bloom_capacity,
                     error_rate=settings.bloom_error)
    report = EnqueueReport(crawl_id=crawl_id or new_crawl_id())
    owner = f"enqueue:{report.crawl_id}"
    try:
        for where, raw in lines:
            raw = raw.strip()
            if not raw or raw.startswith("#"):
                continue
            try:
                url = normalize_url(raw)
            except InvalidURL as exc:
                report.rejected.append((where, raw, str(exc)))
                continue
            uid = url_id(url)
            # A URL repeated in the input, or sent by an earlier run into the same crawl, was
            # committed after its send and is a duplicate; one claimed but never sent is ours again.
            if not seen.claim(report.crawl_id, [uid], owner=owner)[0]:
                report.duplicates += 1
                continue
            task = fetch_task(
                crawl_id=report.crawl_id,
                url=url,
                url_id=uid,
                kind=kind,
                max_depth=max_depth,
                allowed_hosts=[host_of(url)],
            )
            send_task(broker, "fetch", task)
            seen.commit(report.crawl_id, [uid])
            report.enqueued += 1
    finally:
        broker.close()
    return report
