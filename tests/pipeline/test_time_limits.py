"""A page that takes too long to parse ends as ``<stage>.timeout`` with a dead letter, and the crawl
goes on: in the embedded run as on Redis workers."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from tests.conftest import RedisServer
from tests.support.pipeline import events_named, load_records, wait_for, worker_env, workers
from tests.support.site import Site, build_site, corpus_articles, section_page_path, serve_site
from workers.core.deadletters import RedisDeadLetters
from workers.core.settings import Settings
from workers.core.storage import open_storage
from workers.pipeline.crawl import run_embedded
from workers.pipeline.enqueue import enqueue_urls


def _links_page(n: int) -> bytes:
    """A listing of ``n`` links (about 40 bytes each): many seconds of link classification."""
    links = "".join(f'<li><a href="/sport/item-{i}.html">Item {i}</a></li>' for i in range(n))
    return f"<!DOCTYPE html><html><head><title>Sport</title></head><body><ul>{links}</ul></body></html>".encode()


def _long_article(paragraphs: int) -> bytes:
    body = "".join(f"<p>Paragraph {i} of a very long article with enough words to count as text.</p>"
                   for i in range(paragraphs))
    head = "<!DOCTYPE html><html><head><title>Long</title></head>"
    return f"{head}<body><article>{body}</article></body></html>".encode()


def _hostile_site() -> tuple[Site, str, str]:
    site = build_site(corpus_articles(8), per_page=4)
    hostile = site.sections[-1]
    sport = section_page_path(hostile, 1)
    site.pages[sport] = (_links_page(150_000), "text/html; charset=utf-8")
    victim = next(a for a in site.articles if site.section_of[a.path] != hostile)
    site.pages[victim.path] = (_long_article(60_000), "text/html; charset=utf-8")
    return site, sport, victim.path


def test_pages_over_the_time_limit_end_as_timeouts_and_the_crawl_finishes(tmp_path: Path) -> None:
    site, sport, victim = _hostile_site()
    out = tmp_path / "out"
    settings = Settings.from_env({}, storage_url=str(out), allow_private=True, host_rate=0, page_time_limit=1.0)
    with serve_site(site) as server:
        started = time.monotonic()
        summary = run_embedded([server.base_url + "/"], settings, processes=1, threads=4)
        took = time.monotonic() - started
    assert summary.outcomes.get("discover.timeout") == 1, summary.outcomes
    assert summary.outcomes.get("extract.timeout") == 1, summary.outcomes
    assert took < 60, f"the crawl took {took:.0f}s"
    storage = open_storage(str(out))
    letters = [orjson.loads(storage.get(k)) for k in storage.keys("deadletters/")]
    timeouts = {(x["stage"], x["url"].removeprefix(server.base_url)) for x in letters if x["reason"] == "timeout"}
    assert timeouts == {("discover", sport), ("extract", victim)}
    stored = {r["url"].removeprefix(server.base_url) for r in load_records(storage)}
    assert stored and victim not in stored


def test_a_worker_survives_a_page_over_the_time_limit(tmp_path: Path, redis_server: RedisServer) -> None:
    site, _, _ = _hostile_site()
    out = tmp_path / "out"
    env = worker_env(INGEST_BROKER_URL=redis_server.url, INGEST_STORAGE_URL=str(out), INGEST_ALLOW_PRIVATE="1",
                     INGEST_HOST_RATE="0", INGEST_PAGE_TIME_LIMIT="1")
    with serve_site(site) as server, workers(
        (["--processes", "1", "--threads", "4"], tmp_path / "w.log"), env=env
    ) as procs:
        enqueue_urls([("test", server.base_url + "/")], Settings.from_env(env), kind="listing", crawl_id="tl")
        dead = RedisDeadLetters(redis_server.client(), "ingest")
        wait_for(lambda: len(dead.list(reason="timeout")) == 2, 90, "two timeouts dead-lettered")
        assert procs[0].proc.poll() is None, "the worker is alive"
        expected = len(site.articles) - 1
        storage = open_storage(str(out))
        wait_for(lambda: len(list(storage.keys("articles/"))) >= expected // 2, 60, "records after the timeouts")
        assert procs[0].stop() == 0
    assert {x["stage"] for x in dead.list(reason="timeout")} == {"discover", "extract"}
    assert len(events_named(procs, "discover.timeout")) == 1 and len(events_named(procs, "extract.timeout")) == 1
