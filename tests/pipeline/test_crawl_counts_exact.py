"""A crawl's ``stored`` count matches storage when the sink's message is delivered more than once.

The record is written, then counted, then the message acked: a worker killed between the write and
the count, or Redis unreachable at the count, used to leave a record that no count had seen (the
chaos suite's SIGKILL and Redis-outage runs ended at 299 counted for 300 stored).  Now the count is
idempotent per URL (marked in the crawl's seen-set) and a redelivery that finds its own record
already written counts it if nobody had; a count that cannot reach Redis fails the message, so it
is retried rather than forgotten.  Against a real redis-server and a real folder store.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import redis
from structlog.testing import capture_logs

from tests.conftest import RedisServer, free_port
from workers.core.crawlstate import RedisCrawls
from workers.core.messages import sink_task
from workers.core.settings import Settings
from workers.core.urls import normalize_url, url_id
from workers.discover.frontier import make_seen
from workers.pipeline.actors import sink_stage
from workers.pipeline.crawls import CrawlTracking
from workers.pipeline.runtime import Runtime, build_runtime

URL = normalize_url("https://news.example/world/2025/01/21/a-story.html")
CRAWL = "exact"


def _message(fetched_at: str = "2025-01-21T10:00:00.000Z") -> dict[str, Any]:
    text = "A story told once. " * 40
    record = {"schema_version": 1, "id": url_id(URL), "url": URL, "final_url": URL, "canonical_url": None,
              "host": "news.example", "crawl_id": CRAWL, "fetched_at": fetched_at, "status": 200,
              "title": "A story", "authors": [], "published": None, "language": "en", "sitename": None,
              "description": None, "text": text, "word_count": len(text.split()),
              "content_sha256": hashlib.sha256(text.encode()).hexdigest(), "raw_key": "raw/x",
              "extractor": {"name": "x", "version": "1", "options": {}}}
    return sink_task(crawl_id=CRAWL, url_id=url_id(URL), record=record)


def _runtime(tmp_path: Path, server: RedisServer) -> tuple[Runtime, RedisCrawls]:
    rt = build_runtime(Settings.from_env({}, storage_url=str(tmp_path / "out"), broker_url=server.url))
    client = server.client()
    tracking = CrawlTracking(rt, client)
    rt.observers.append(tracking.observe)
    seen = make_seen(client, "ingest", "exact", capacity=1000)
    assert seen.claim(CRAWL, [url_id(URL)], owner="enqueue") == [True]
    seen.commit(CRAWL, [url_id(URL)])
    return rt, RedisCrawls(server.client(), "ingest")


def _stored(crawls: RedisCrawls) -> int:
    info = crawls.get(CRAWL)
    assert info is not None
    return int(info["stored"])


def test_a_redelivery_counts_a_record_its_first_attempt_wrote_but_never_counted(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    rt, crawls = _runtime(tmp_path, redis_server)
    observers = rt.observers
    rt.observers = []  # attempt 1 writes the record, then its worker dies before counting it
    sink_stage(rt, _message())
    rt.observers = observers
    assert _stored(crawls) == 0
    with capture_logs() as logs:
        sink_stage(rt, _message())  # the broker hands the message to another worker
    assert [e["event"] for e in logs if e["event"].startswith("sink.")] == ["sink.exists"]
    assert _stored(crawls) == 1, "the record is stored: the crawl must say so"
    sink_stage(rt, _message())  # and once more, after it was counted
    assert _stored(crawls) == 1, "counted once"


def test_a_record_counted_at_once_is_not_counted_again_by_redeliveries(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    rt, crawls = _runtime(tmp_path, redis_server)
    for _ in range(3):
        sink_stage(rt, _message())
    assert _stored(crawls) == 1


def test_a_later_fetch_of_a_stored_article_is_not_counted(tmp_path: Path, redis_server: RedisServer) -> None:
    rt, crawls = _runtime(tmp_path, redis_server)
    sink_stage(rt, _message())
    sink_stage(rt, _message(fetched_at="2025-01-22T10:00:00.000Z"))  # a next poll's fetch, same text
    assert _stored(crawls) == 1


def test_a_count_that_cannot_reach_redis_fails_the_message(tmp_path: Path, redis_server: RedisServer) -> None:
    rt, crawls = _runtime(tmp_path, redis_server)
    live = rt.observers
    unreachable = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    rt.observers = [CrawlTracking(rt, unreachable).observe]  # Redis went away after the write
    with pytest.raises(redis.RedisError):
        sink_stage(rt, _message())
    rt.observers = live
    sink_stage(rt, _message())  # its retry, with Redis back
    assert _stored(crawls) == 1
