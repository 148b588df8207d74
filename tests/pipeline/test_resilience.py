"""The engine as configured for crawling: poison bytes, a killed worker, retries that end."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from tests.conftest import RedisServer
from tests.support.pipeline import (
    assert_site_stored,
    events_named,
    load_records,
    mixed_site,
    wait_for,
    worker_env,
    workers,
)
from tests.support.site import serve_site
from workers.core.broker import make_broker
from workers.core.messages import sink_task, validate
from workers.core.settings import Settings
from workers.core.storage import open_storage
from workers.pipeline.enqueue import enqueue_urls, send_task


def _record(n: int) -> dict[str, object]:
    from workers.core.urls import url_id

    url = f"https://news.example/world/story-number-{n}.html"
    return {
        "schema_version": 1, "id": url_id(url), "url": url, "final_url": url, "canonical_url": None,
        "host": "news.example", "crawl_id": "poison-test", "fetched_at": "2025-01-01T00:00:00Z", "status": 200,
        "title": f"Story {n}", "authors": [], "published": None, "language": "en", "sitename": None,
        "description": None, "text": f"Body of story {n}.", "word_count": 4, "content_sha256": "a" * 64,
        "raw_key": "raw/x", "extractor": {"name": "t", "version": "0", "options": {}},
    }


def test_garbage_bytes_are_dead_lettered_and_their_neighbours_processed(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    out = tmp_path / "out"
    settings = Settings.from_env({}, broker_url=redis_server.url, storage_url=str(out))
    client = redis_server.client()
    broker = make_broker(settings, redis_client=client)
    first, last = validate("article", _record(1)), validate("article", _record(2))
    send_task(broker, "sink", sink_task(crawl_id="poison-test", url_id=first["id"], record=first))
    for i, garbage in enumerate([b"\x00\xff not a message \xfe", b'{"valid json": "but no envelope"}']):
        client.hset("ingest:sink.msgs", f"garbage-{i}", garbage)
        client.rpush("ingest:sink", f"garbage-{i}")
    invalid = {"schema_version": 1, "crawl_id": "poison-test", "url_id": "nope", "record": {}}
    send_task(broker, "sink", invalid)
    send_task(broker, "sink", sink_task(crawl_id="poison-test", url_id=last["id"], record=last))
    broker.close()
    env = worker_env(INGEST_BROKER_URL=redis_server.url, INGEST_STORAGE_URL=str(out))
    storage = open_storage(str(out))
    with workers((["--stages", "sink", "--processes", "1", "--threads", "2"], tmp_path / "w.log"), env=env) as procs:
        wait_for(lambda: len(list(storage.keys("articles/"))) == 2, 30, "both valid neighbours stored")
        wait_for(lambda: len(list(storage.keys("deadletters/"))) == 3, 30, "three dead letters recorded")
        wait_for(lambda: client.llen("ingest:sink") == 0, 10, "an empty queue")
        assert procs[0].proc.poll() is None, "the worker is still running"
        assert procs[0].stop() == 0
    letters = [orjson.loads(storage.get(k)) for k in storage.keys("deadletters/")]
    assert sorted(letter["reason"] for letter in letters) == ["poison"] * 3
    errors = [letter["last_error"]["error"] for letter in letters]
    assert any("undecodable" in r for r in errors) and any("malformed message" in r for r in errors)
    assert any("sink message invalid" in r for r in errors)
    dead_events = [e for p in procs for e in p.events() if str(e.get("event", "")).endswith(".dead")]
    assert len(dead_events) == 3 and all(e["reason"] for e in dead_events)
    # Settled, not stranded: nothing left unacknowledged, the garbage in Dramatiq's dead-letter set.
    assert not [k for k in client.keys("ingest:__acks__*") if client.scard(k)]
    assert {b"garbage-0", b"garbage-1"} <= set(client.zrange("ingest:sink.XQ", 0, -1))


def test_a_sigkilled_worker_loses_no_page_and_stores_none_twice(tmp_path: Path, redis_server: RedisServer) -> None:
    site = mixed_site(corpus=30, seed_per_style=2)
    out = tmp_path / "out"
    env = worker_env(INGEST_BROKER_URL=redis_server.url, INGEST_STORAGE_URL=str(out), INGEST_ALLOW_PRIVATE="1",
                     INGEST_HOST_RATE="8")
    storage = open_storage(str(out))
    settings = Settings.from_env(env)
    with serve_site(site) as server:
        with workers((["--processes", "1", "--threads", "4"], tmp_path / "a.log"), env=env) as first:
            report = enqueue_urls([("test", server.base_url + "/")], settings, kind="listing", crawl_id="kill")
            assert report.enqueued == 1
            wait_for(lambda: len(list(storage.keys("articles/"))) >= 5, 60, "the first records")
            first[0].kill()
        stored_before = len(list(storage.keys("articles/")))
        assert stored_before < len(site.articles), "the kill came too late to test anything"
        killed_at = time.monotonic()
        with workers((["--processes", "1", "--threads", "4"], tmp_path / "b.log"), env=env) as second:
            wait_for(lambda: len(list(storage.keys("articles/"))) == len(site.articles), 120, "every article")
            recovered = time.monotonic() - killed_at
            second[0].stop()
        records = load_records(storage)
        assert_site_stored(site, server.base_url, records)
    stored_events = events_named(first, "sink.stored") + events_named(second, "sink.stored")
    assert len(stored_events) == len(site.articles), "each article written exactly once"
    assert len({e["url_id"] for e in stored_events}) == len(site.articles)
    assert recovered < 90


def test_delayed_messages_survive_a_worker_death_and_a_redis_outage(tmp_path: Path) -> None:
    from tests.conftest import free_port

    redis = RedisServer(port=free_port(), directory=tmp_path, appendonly=True)
    redis.start()
    site = mixed_site(corpus=10, seed_per_style=1)
    out = tmp_path / "out"
    # 4 requests per second to the one host: most fetches wait in the delay queue, held by the worker.
    env = worker_env(INGEST_BROKER_URL=redis.url, INGEST_STORAGE_URL=str(out), INGEST_ALLOW_PRIVATE="1",
                     INGEST_HOST_RATE="4")
    storage = open_storage(str(out))
    client = redis.client()

    def delayed_held() -> int:
        return sum(int(client.scard(k)) for k in client.keys("ingest:__acks__.*.fetch.DQ"))

    try:
        with serve_site(site) as server:
            with workers((["--processes", "1", "--threads", "4"], tmp_path / "a.log"), env=env) as first:
                report = enqueue_urls([("test", server.base_url + "/")], Settings.from_env(env), kind="listing",
                                      crawl_id="outage")
                assert report.enqueued == 1
                wait_for(lambda: delayed_held() >= 5, 60, "fetches waiting in the delay queue")
                first[0].kill()
            held = delayed_held()
            redis.stop()  # and Redis goes down too, then comes back from its append-only file
            redis.start()
            client = redis.client()
            assert delayed_held() == held >= 5, "the held delayed messages are still on record after the restart"
            with workers((["--processes", "1", "--threads", "4"], tmp_path / "b.log"), env=env) as second:
                wait_for(lambda: len(list(storage.keys("articles/"))) == len(site.articles), 120, "every article")
                second[0].stop()
            records = load_records(storage)
            assert_site_stored(site, server.base_url, records)
        stored = events_named(first, "sink.stored") + events_named(second, "sink.stored")
        assert len(stored) == len(site.articles), "each article written exactly once"
    finally:
        redis.stop()
