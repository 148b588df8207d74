"""Redis memory stays bounded: poll-round seen-sets expire, legacy ones are given a TTL, and the
memory report says which kind of key holds how much."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from dramatiq import Worker

from tests.conftest import RedisServer
from tests.support.site import build_site, corpus_articles, serve_site
from workers.core.broker import make_broker
from workers.core.deadletters import RedisDeadLetters, make_letter
from workers.core.middleware import InFlight
from workers.core.redismemory import memory_by_kind
from workers.core.settings import Settings, SettingsError
from workers.discover.frontier import BloomSeen, RedisSeen, expire_poll_sets
from workers.discover.schedule import poll_id
from workers.discover.scheduler import fire_due
from workers.extract.health import PageHealth, RedisHealthStore
from workers.fetch.politeness import RedisHostPolicy
from workers.fetch.robots import RedisRobotsCache
from workers.pipeline.actors import declare_actors
from workers.pipeline.enqueue import enqueue_urls
from workers.pipeline.runtime import Runtime, build_runtime
from workers.sources.sourcefile import Source

FIRST_ROUND = 1_700_000_000.0
INTERVAL_S = 600.0


@contextmanager
def _pipeline(redis: RedisServer, out: Path, ttl: int) -> Iterator[tuple[Runtime, InFlight]]:
    settings = Settings.from_env({}, storage_url=str(out), allow_private=True, host_rate=0.0, seen_poll_ttl=ttl)
    rt = build_runtime(settings, redis_client=redis.client())
    in_flight = InFlight()
    broker = make_broker(settings, in_flight=in_flight, dead_letters=rt.dead_letter)
    declare_actors(broker, rt)
    worker = Worker(broker, worker_threads=4, worker_timeout=100)
    worker.start()
    try:
        yield rt, in_flight
    finally:
        worker.stop(timeout=5_000)
        broker.close()
        rt.close()


def test_poll_round_seen_sets_expire_and_the_crawl_set_stays(tmp_path: Path, redis_server: RedisServer) -> None:
    site = build_site(corpus_articles(4), sections=("world",), per_page=4)
    client = redis_server.client()
    with serve_site(site) as server, _pipeline(redis_server, tmp_path / "out", ttl=2) as (rt, in_flight):
        source = Source(name="fixture", start_urls=(server.base_url + "/world/",), kinds=("listing",),
                        allowed_hosts=("127.0.0.1",), interval_s=INTERVAL_S, max_depth=0)
        rt.sources.put(source)
        rounds = []
        for n in range(3):
            due = FIRST_ROUND + n * INTERVAL_S
            rt.schedule.set(source.name, source.interval_s, due_at=due)
            assert fire_due(rt.schedule, rt.sources, rt.send, rt.seen, now=due) == ["fixture"]
            assert in_flight.wait_idle(timeout=60)
            rounds.append(f"ingest:seen:fixture/{poll_id(due)}")
            assert 0 < client.ttl(rounds[-1]) <= 2, "a poll round's set expires"
            assert client.hlen(rounds[-1]) >= 1, "it holds the round's listing page"
        assert client.ttl("ingest:seen:fixture") == -1, "the articles' set of a scheduled source stays"
        assert client.hlen("ingest:seen:fixture") == len(site.articles)
        time.sleep(2.5)
        assert not any(client.exists(key) for key in rounds), "old poll rounds are gone"
        assert client.exists("ingest:seen:fixture")


def test_bloom_poll_sets_expire_too(redis_server: RedisServer) -> None:
    client = redis_server.client()
    seen = BloomSeen(client, "ingest", capacity=1000, poll_ttl_s=30)
    for scope in ("src/20240101T000000", "src"):
        assert seen.claim(scope, ["a", "b"], owner="o") == [True, True]
        seen.commit(scope, ["a", "b"])
        assert seen.claim(scope, ["a", "c"], owner="o") == [False, True]
    assert 0 < client.ttl("ingest:bloom:src/20240101T000000") <= 30
    assert client.ttl("ingest:bloom:src") == -1


def test_legacy_poll_sets_are_given_a_ttl(redis_server: RedisServer) -> None:
    client = redis_server.client()
    client.hset("ingest:seen:src/20240101T000000", "u1", "+")
    client.hset("ingest:seen:src/20240101T001500", "u1", "+")
    client.expire("ingest:seen:src/20240101T001500", 50)
    client.hset("ingest:seen:adhoc-crawl", "u1", "+")
    client.setbit("ingest:bloom:src/20240101T000000", 7, 1)
    assert expire_poll_sets(client, "ingest", ttl_s=100) == 2
    assert 0 < client.ttl("ingest:seen:src/20240101T000000") <= 100
    assert 0 < client.ttl("ingest:bloom:src/20240101T000000") <= 100
    assert client.ttl("ingest:seen:src/20240101T001500") <= 50, "a TTL already set is left alone"
    assert client.ttl("ingest:seen:adhoc-crawl") == -1, "a crawl's own set is not a poll round's"


def test_the_poll_ttl_setting(redis_server: RedisServer) -> None:
    assert Settings.from_env({}).seen_poll_ttl == 21600
    assert Settings.from_env({"INGEST_SEEN_POLL_TTL": "600"}).seen_poll_ttl == 600
    with pytest.raises(SettingsError, match="INGEST_SEEN_POLL_TTL"):
        Settings.from_env({"INGEST_SEEN_POLL_TTL": "-1"})
    client = redis_server.client()
    RedisSeen(client, "ingest", poll_ttl_s=0).claim("src/20240101T000000", ["u"], owner="o")
    assert client.ttl("ingest:seen:src/20240101T000000") == -1, "0 keeps poll rounds' sets (the old behaviour)"


def _fill_every_kind(redis_server: RedisServer) -> None:
    client = redis_server.client()
    RedisSeen(client, "ingest").claim("crawl", ["u1", "u2"], owner="o")
    RedisDeadLetters(client, "ingest").add(make_letter(letter_id="l1", stage="fetch", reason="http_error",
                                                       error="HTTP 404", message={}, attempts=1))
    RedisRobotsCache(client, "ingest").put("http://news.example", 200, b"User-agent: *\nAllow: /\n", 60)
    RedisHostPolicy(client, "ingest", lease_ttl_s=60).acquire("news.example", interval_s=1.0, max_concurrency=2)
    RedisHealthStore(client, "ingest").record(PageHealth(host="news.example", empty=False, has_date=True, words=500,
                                                         teaser_blocks_removed=0, day="2025-01-21"))
    enqueue_urls([("t", "http://127.0.0.1:9/a.html")], Settings.from_env({}, broker_url=redis_server.url),
                 crawl_id="crawl")
    client.set("somebody-else:key", b"x" * 1000)


def test_memory_report_groups_keys_by_kind(redis_server: RedisServer) -> None:
    _fill_every_kind(redis_server)
    report = memory_by_kind(redis_server.client(), "ingest")
    kinds = report["kinds"]
    assert {"seen", "dlq", "robots", "politeness", "health", "queues", "crawls"} <= set(kinds)
    assert "other" not in kinds, "keys outside the namespace are not ours to report"
    assert all(k["bytes"] > 0 and k["keys"] > 0 for k in kinds.values())
    assert report["complete"] is True and report["sampled_keys"] == sum(k["keys"] for k in kinds.values())
    assert report["used_bytes"] >= sum(k["bytes"] for k in kinds.values())
    assert list(kinds) == sorted(kinds, key=lambda k: -kinds[k]["bytes"]), "largest first"


def test_memory_report_on_a_sample_says_so_and_estimates(redis_server: RedisServer) -> None:
    _fill_every_kind(redis_server)
    client = redis_server.client()
    for i in range(300):
        client.hset(f"ingest:seen:many-{i}", "u", "+")
    report = memory_by_kind(client, "ingest", sample=50)
    assert report["complete"] is False and report["sampled_keys"] == 50
    estimated = sum(k["keys"] for k in report["kinds"].values())
    assert 250 <= estimated <= int(client.dbsize()), "scaled up from the sample to the whole keyspace"
