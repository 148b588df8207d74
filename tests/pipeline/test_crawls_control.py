"""Per-crawl control with real worker processes on a real redis-server: pause, resume, cancel,
and a crawl that knows it is finished (log line, state, counts that match storage, a record)."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import orjson

from tests.conftest import RedisServer
from tests.support.pipeline import WorkerProcess, events_named, load_records, wait_for, worker_env, workers
from tests.support.site import Site, build_site, corpus_articles, serve_site
from workers.cli.main import build_parser
from workers.cli.ops import run_ops
from workers.core.broker import QUEUES
from workers.core.crawlstate import CRAWL_KEEP_S, RedisCrawls, crawl_key
from workers.core.deadletters import RedisDeadLetters
from workers.core.settings import Settings
from workers.core.storage import Storage, open_storage
from workers.pipeline.enqueue import enqueue_urls


def _site() -> Site:
    return build_site(corpus_articles(20), per_page=5)


def _env(redis_server: RedisServer, out: Path, rate: str) -> dict[str, str]:
    return worker_env(INGEST_BROKER_URL=redis_server.url, INGEST_STORAGE_URL=str(out), INGEST_ALLOW_PRIVATE="1",
                      INGEST_HOST_RATE=rate)


def _records(storage: Storage) -> int:
    return len(list(storage.keys("articles/")))


def _crawl(redis_server: RedisServer, crawl_id: str) -> dict[str, Any]:
    info = RedisCrawls(redis_server.client(), "ingest").get(crawl_id)
    assert info is not None
    return info


def _queues_empty(redis_server: RedisServer) -> bool:
    client = redis_server.client()
    return all(client.hlen(f"ingest:{q}.msgs") == 0 and client.hlen(f"ingest:{q}.DQ.msgs") == 0 for q in QUEUES)


def _events(procs: list[WorkerProcess], suffix: str) -> list[dict[str, Any]]:
    return [e for p in procs for e in p.events() if str(e.get("event", "")).endswith(suffix)]


def test_a_paused_crawl_stores_nothing_until_resumed_then_finishes(tmp_path: Path, redis_server: RedisServer) -> None:
    site, out = _site(), tmp_path / "out"
    env, storage = _env(redis_server, out, "4"), open_storage(str(out))
    crawls = RedisCrawls(redis_server.client(), "ingest")
    with serve_site(site) as server, workers((["--processes", "1", "--threads", "4"], tmp_path / "w.log"),
                                             env=env) as procs:
        enqueue_urls([("test", server.base_url + "/")], Settings.from_env(env), kind="listing", crawl_id="p")
        wait_for(lambda: _records(storage) >= 3, 60, "the first records")
        assert crawls.pause("p") == "paused"
        time.sleep(2.5)  # what was already extracted reaches the sink; nothing new starts
        held = _records(storage)
        requests = len(server.request_paths())
        time.sleep(4)
        assert _records(storage) == held < len(site.articles), "records stored while paused"
        assert len(server.request_paths()) == requests, "pages fetched while paused"
        paused = _events(procs, ".paused")
        assert paused and {e["crawl_id"] for e in paused} == {"p"}
        assert all(e["url"] and e["url_id"] and e["host"] == "127.0.0.1" for e in paused)
        info = _crawl(redis_server, "p")
        assert info["state"] == "paused" and info["remaining"] > 0
        letters = RedisDeadLetters(redis_server.client(), "ingest").list()
        # The only dead letter allowed is the 404 of the feed the fixture announces but lacks.
        assert [(x["reason"], x["message"]["args"][0]["url"].endswith("/feed/")) for x in letters] in (
            [], [("http_error", True)]), "a pause spends no retry"

        assert crawls.resume("p") == "running"
        wait_for(lambda: bool(events_named(procs, "crawl.finished")), 90, "crawl.finished")
        records = load_records(storage)
        fetched = len(events_named(procs, "fetch.done"))
    assert len(records) == len(site.articles)
    [finished] = events_named(procs, "crawl.finished")
    info = _crawl(redis_server, "p")
    assert finished["crawl_id"] == "p" and finished["state"] == "finished"
    assert info["state"] == "finished" and info["finished_at"] >= info["started_at"]
    # The root is read as a home page, as `ingest crawl` reads it: the feed its pages announce is
    # asked for and is missing on the fixture site (a 404, the crawl's one failure).
    missing = [e["url"] for e in events_named(procs, "fetch.http_error")]
    assert missing == [server.base_url + "/feed/"]
    assert (info["stored"], info["fetched"], info["failed"], info["remaining"]) == (len(records), fetched, 1, 0)
    assert info["discovered"] >= fetched and info["start_urls"] == [server.base_url + "/"]
    assert finished["stored"] == len(records) and finished["fetched"] == fetched
    completion = orjson.loads(storage.get("crawls/p.json"))
    assert completion["crawl_id"] == "p" and completion["state"] == "finished"
    assert (completion["stored"], completion["fetched"], completion["remaining"]) == (len(records), fetched, 0)
    # A finished crawl's seen-set and state go after a week, instead of living forever.
    client = redis_server.client()
    for key in ("ingest:seen:p", crawl_key("ingest", "p")):
        assert 0 < client.ttl(key) <= CRAWL_KEEP_S, key


def test_a_cancelled_crawl_drains_without_dead_letters(tmp_path: Path, redis_server: RedisServer) -> None:
    site, out = _site(), tmp_path / "out"
    env, storage = _env(redis_server, out, "3"), open_storage(str(out))
    crawls = RedisCrawls(redis_server.client(), "ingest")
    with serve_site(site) as server, workers((["--processes", "1", "--threads", "4"], tmp_path / "w.log"),
                                             env=env) as procs:
        enqueue_urls([("test", server.base_url + "/")], Settings.from_env(env), kind="listing", crawl_id="c")
        wait_for(lambda: _records(storage) >= 2, 60, "the first records")
        assert crawls.cancel("c") == "cancelled"
        wait_for(lambda: _queues_empty(redis_server), 60, "the queues drained")
        wait_for(lambda: _crawl(redis_server, "c")["finished_at"] is not None, 10, "the crawl known to be over")
        time.sleep(1.5)
        stored = _records(storage)
        cancelled = _events(procs, ".cancelled")
        out_text = io.StringIO()
        assert run_ops(build_parser().parse_args(["status"]), Settings.from_env(env), out=out_text) == 0
    assert stored < len(site.articles)
    assert cancelled and {e["crawl_id"] for e in cancelled} == {"c"}
    info = _crawl(redis_server, "c")
    assert info["state"] == "cancelled" and info["remaining"] == 0
    assert info["outcomes"].get("fetch.cancelled", 0) + info["outcomes"].get("extract.cancelled", 0) > 0
    assert RedisDeadLetters(redis_server.client(), "ingest").count() == 0, "cancelled is not dead"
    assert any(line.split()[:2] == ["c", "cancelled"] for line in out_text.getvalue().splitlines())


def test_status_of_a_live_system(tmp_path: Path, redis_server: RedisServer) -> None:
    site, out = build_site(corpus_articles(6), per_page=6), tmp_path / "out"
    env, storage = _env(redis_server, out, "0"), open_storage(str(out))
    settings = Settings.from_env(env)
    with serve_site(site) as server, workers((["--processes", "2", "--threads", "2"], tmp_path / "w.log"),
                                             env=env) as procs:
        enqueue_urls([("test", server.base_url + "/")], settings, kind="listing", crawl_id="live")
        wait_for(lambda: bool(events_named(procs, "crawl.finished")), 90, "crawl.finished")
        text = io.StringIO()
        assert run_ops(build_parser().parse_args(["status", "--json"]), settings, out=text) == 0
        doc = orjson.loads(text.getvalue())
        fetched = len(events_named(procs, "fetch.done"))
    records = _records(storage)
    assert records == len(site.articles)
    assert sum(m["fetched"] for m in doc["rates"]["minutes"]) == fetched
    assert sum(m["stored"] for m in doc["rates"]["minutes"]) == records
    [crawl] = doc["crawls"]
    assert (crawl["crawl_id"], crawl["state"], crawl["stored"], crawl["remaining"]) == ("live", "finished", records, 0)
    alive = doc["workers"]
    assert len(alive) == 2 and all(set(w["queues"]) == set(QUEUES) and w["age_s"] < 15 for w in alive)
    assert len({w["pid"] for w in alive}) == 2
    assert {"seen", "queues", "robots", "politeness", "health", "crawls", "rates", "workers"} <= set(
        doc["memory"]["kinds"])
    wait_for(lambda: not list(redis_server.client().scan_iter("ingest:workers:*")), 10,
             "stopped workers unregistered")
