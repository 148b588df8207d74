"""A chain's end reaches Redis even when Redis is away at that moment.

Chain ends are counted exactly once per URL, so one that is lost leaves the crawl ``running`` with
``remaining: 1`` for ever (the chaos suite's Redis-outage run did).  The settlement waits for
Redis, with backoff, before the message is acknowledged.  Against a real redis-server behind a
proxy that refuses connections for 2 s.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.message import Message

from tests.conftest import RedisServer
from tests.support.chaos_proxy import TcpProxy
from workers.core.crawlstate import RedisCrawls
from workers.core.redisclient import redis_client
from workers.core.settings import Settings
from workers.discover.frontier import make_seen
from workers.pipeline.crawls import CrawlTracking, _Settlements
from workers.pipeline.runtime import build_runtime


def test_a_chain_end_during_a_redis_outage_is_settled_when_redis_returns(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    seen = make_seen(redis_server.client(), "ingest", "exact", capacity=1000)
    assert seen.claim("outage", ["a" * 32], owner="enqueue") == [True]
    seen.commit("outage", ["a" * 32])
    with TcpProxy(redis_server.port) as proxy:
        rt = build_runtime(Settings.from_env({}, storage_url=str(tmp_path / "out"), broker_url=redis_server.url))
        proxied = redis_client(proxy.url("redis", "/0"), socket_timeout=1.0, socket_connect_timeout=1.0)
        settlements = _Settlements(CrawlTracking(rt, proxied))
        broker = StubBroker()
        message = dramatiq.broker.MessageProxy(Message(
            queue_name="sink", actor_name="sink", args=({"crawl_id": "outage", "url_id": "a" * 32},), kwargs={},
            options={}))
        proxy.down()
        done = threading.Event()

        def settle() -> None:
            settlements.after_process_message(broker, message)
            done.set()

        threading.Thread(target=settle, daemon=True).start()
        time.sleep(2.0)
        assert not done.is_set(), "the settlement waits for Redis"
        proxy.up()
        assert done.wait(30), "settled once Redis is back"
    info = RedisCrawls(redis_server.client(), "ingest").get("outage")
    assert info is not None and (info["state"], info["remaining"]) == ("finished", 0)
