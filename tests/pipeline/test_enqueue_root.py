"""One start URL, one crawl: a site root enqueued to the Redis workers is read as ``ingest crawl`` reads it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from tests.conftest import RedisServer
from tests.support.pipeline import ROOT, assert_site_stored, load_records, mixed_site, wait_for, worker_env, workers
from tests.support.site import serve_site
from tests.support.site_feeds import FEEDS, NEWS_SITEMAP, add_discovery_sources
from workers.core.settings import Settings
from workers.core.storage import open_storage
from workers.pipeline.crawl import run_embedded
from workers.pipeline.enqueue import enqueue


def test_enqueued_root_reads_robots_sitemaps_and_feeds_like_the_embedded_crawl(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Given a site whose oldest and newest articles are only in its sitemaps and feeds, when its
    root is enqueued as a listing to workers on Redis, then every article is stored, as embedded."""
    site = mixed_site(corpus=14, seed_per_style=1)
    fixture = add_discovery_sources(site)
    only_elsewhere = set(site.unlisted)
    assert only_elsewhere, "the fixture keeps some articles off the listings"
    out = tmp_path / "out"
    env = worker_env(INGEST_BROKER_URL=redis_server.url, INGEST_STORAGE_URL=str(out), INGEST_ALLOW_PRIVATE="1",
                     INGEST_HOST_RATE="0")
    storage = open_storage(str(out))
    with serve_site(site) as server, workers(
        (["--stages", "discover,fetch,extract,sink", "--processes", "1", "--threads", "8"], tmp_path / "w.log"),
        env=env,
    ) as procs:
        sent = subprocess.run(
            [sys.executable, "-m", "workers.cli", "enqueue", server.base_url + "/", "--kind", "listing",
             "--crawl-id", "root"],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
        )
        assert sent.returncode == 0, sent.stderr
        wait_for(lambda: len(list(storage.keys("articles/"))) >= len(site.articles), 120, "every record")
        wait_for(lambda: redis_server.client().llen("ingest:fetch") == 0, 10, "an empty fetch queue")
        for p in procs:
            assert p.stop() == 0
        requested = {p for p, _ in server.requests}
    assert {*FEEDS, NEWS_SITEMAP, "/robots.txt", "/sitemap_index.xml"} <= requested
    assert_site_stored(site, server.base_url, load_records(storage))
    del fixture

    embedded_out = tmp_path / "embedded"
    settings = Settings.from_env({}, storage_url=str(embedded_out), allow_private=True, host_rate=0.0)
    with serve_site(site) as server:
        summary = run_embedded([server.base_url + "/"], settings, processes=1, threads=8)
    assert summary.stored == len(site.articles) == len(load_records(storage))


def test_enqueue_reads_a_root_as_home_and_keeps_other_kinds(redis_server: RedisServer) -> None:
    """The fetch task of an enqueued root is a home page with its www. twin; an article stays an article."""
    client = redis_server.client()
    enqueue(["https://news.example/", "https://news.example/world/"], broker_url=redis_server.url,
            crawl_id="kinds", redis_client=client)
    enqueue(["https://news.example/a/1"], kind="article", broker_url=redis_server.url, crawl_id="kinds",
            redis_client=client)
    tasks = [orjson.loads(v)["args"][0] for v in client.hvals("ingest:fetch.msgs")]
    kinds = {t["url"]: (t["kind"], t["allowed_hosts"]) for t in tasks}
    assert kinds["https://news.example/"] == ("home", ["news.example", "www.news.example"])
    assert kinds["https://news.example/world/"][0] == "listing"
    assert kinds["https://news.example/a/1"] == ("article", ["news.example"])
