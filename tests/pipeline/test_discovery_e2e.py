"""Discovery end to end: every article once, from listings, feeds and sitemaps; new ones on the next poll."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tests.conftest import RedisServer, free_port
from tests.support.pipeline import (
    ROOT,
    assert_site_stored,
    events_named,
    load_records,
    mixed_site,
    seed_articles,
    wait_for,
    worker_env,
    workers,
)
from tests.support.site import ArticleSpec, add_article, serve_site
from tests.support.site_feeds import FEEDS, NEWS_SITEMAP, add_discovery_sources
from workers.core.settings import Settings
from workers.core.storage import open_storage
from workers.core.urls import normalize_url
from workers.discover.schedule import RedisSchedule
from workers.pipeline.crawl import run_embedded


def _article_requests(requests: list[str], paths: set[str]) -> Counter[str]:
    return Counter(p.split("?", 1)[0] for p in requests if p.split("?", 1)[0] in paths)


def test_a_site_root_alone_finds_every_article_once_through_listings_feeds_and_sitemaps(tmp_path: Path) -> None:
    site = mixed_site(corpus=20, seed_per_style=1)
    fixture = add_discovery_sources(site)
    settings = Settings.from_env({}, storage_url=str(tmp_path), allow_private=True, host_rate=0.0)
    with serve_site(site) as server:
        summary = run_embedded([server.base_url + "/"], settings, processes=1, threads=8)
        requested = [p for p, _ in server.requests]
    paths = {a.path for a in site.articles}
    fetched = _article_requests(requested, paths)
    assert set(fetched) == paths and set(fetched.values()) == {1}, "every article fetched exactly once"
    assert not [p for p in requested if "?" in p and p.split("?")[0] in paths], "tracking twins not fetched"
    assert {*FEEDS, NEWS_SITEMAP, "/robots.txt", "/sitemap_index.xml", "/sitemaps/articles-1.xml.gz"} <= set(
        requested
    ), "robots.txt, the autodiscovered feeds and every sitemap were read"
    assert len([p for p in requested if p.startswith("/calendar/")]) <= 4, "the calendar trap stays shallow"
    assert summary.stored == len(paths)
    records = load_records(open_storage(str(tmp_path)))
    assert_site_stored(site, server.base_url, records)
    del fixture


def test_crawl_with_a_sources_file_applies_its_patterns(tmp_path: Path) -> None:
    site = mixed_site(corpus=8, seed_per_style=1)
    with serve_site(site) as server:
        sources = tmp_path / "sources.toml"
        sources.write_text(
            f"""
[[source]]
name = "fixture"
start = ["{server.base_url}/world/"]
exclude = ['/culture/', '/science/']
interval = "once"
"""
        )
        done = subprocess.run(
            [sys.executable, "-m", "workers.cli", "crawl", "--sources", str(sources), "--out", str(tmp_path / "o"),
             "--allow-private", "--host-rate", "0", "--processes", "1", "--json"],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )
        requested = {p for p, _ in server.requests}
    assert done.returncode == 0, done.stderr[-2000:]
    world = {a.path for a in site.by_section["world"] if "/culture/" not in a.path and "/science/" not in a.path}
    excluded = {a.path for a in site.articles} - world
    assert world and excluded
    assert world <= requested and not excluded & requested, "only the world section, minus excluded URLs"
    assert not [p for p in requested if p.startswith(("/culture/", "/science/"))]
    records = load_records(open_storage(str(tmp_path / "o")))
    assert {normalize_url(server.base_url + p) for p in world} == {r["url"] for r in records}


def test_sources_validate_reports_every_error_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[source]]\nname = "a"\nstart = ["ftp://x.example/"]\nmax_depth = -1\nintervall = "5m"\n')
    done = subprocess.run([sys.executable, "-m", "workers.cli", "sources", "validate", str(bad)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert any(line.startswith(f"{bad}:3:") for line in lines), done.stderr
    assert any(line.startswith(f"{bad}:4:") for line in lines)
    assert any(line.startswith(f"{bad}:5:") and "interval" in line for line in lines)
    good = ROOT / "examples" / "sources.toml"
    ok = subprocess.run([sys.executable, "-m", "workers.cli", "sources", "validate", str(good)],
                        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "no problems" in ok.stdout


def _new_article(n: int) -> ArticleSpec:
    template = seed_articles(1)[n % 3]
    path = f"/world/2025/01/22/fresh-report-number-{n}.html"
    html = template.html.replace(template.title.encode(), f"Fresh report number {n}".encode())
    return ArticleSpec(path=path, html=html, title=f"Fresh report number {n}", must_have=template.must_have,
                       must_not=template.must_not)


def test_polls_fetch_exactly_the_new_articles_with_three_discover_workers_and_a_redis_restart(
    tmp_path: Path,
) -> None:
    redis = RedisServer(port=free_port(), directory=tmp_path, appendonly=True)
    redis.start()
    site = mixed_site(corpus=12, seed_per_style=1)
    add_discovery_sources(site)
    out = tmp_path / "out"
    env = worker_env(INGEST_BROKER_URL=redis.url, INGEST_STORAGE_URL=str(out), INGEST_ALLOW_PRIVATE="1",
                     INGEST_HOST_RATE="0")
    storage = open_storage(str(out))
    try:
        with serve_site(site) as server:
            sources = tmp_path / "sources.toml"
            sources.write_text(f'[[source]]\nname = "fixture"\nstart = ["{server.base_url}/"]\ninterval = "10m"\n')
            specs = [(["--stages", "discover", "--processes", "1", "--threads", "2"], tmp_path / f"d{i}.log")
                     for i in range(3)]
            specs.append((["--stages", "fetch,extract,sink", "--processes", "1", "--threads", "8"], tmp_path / "w.log"))
            with workers(*specs, env=env) as procs:
                loaded = subprocess.run([sys.executable, "-m", "workers.cli", "sources", "load", str(sources)],
                                        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
                assert loaded.returncode == 0, loaded.stderr
                first_round = len(site.articles)
                wait_for(lambda: len(list(storage.keys("articles/"))) == first_round, 120, "the first poll")
                before = Counter(p for p, _ in server.requests)

                fresh = [_new_article(i) for i in range(3)]
                for spec in fresh:
                    add_article(site, spec, syndicate=True)
                redis.stop()  # an outage mid-way: SIGKILL, then back with its append-only file
                time.sleep(1)
                redis.start()
                # The interval passes: the next round is due now.
                schedule = RedisSchedule(redis.client(), "ingest")
                assert "fixture" in schedule.entries(), "the schedule survived the restart"
                schedule.set("fixture", 600, due_at=time.time())
                wait_for(lambda: len(list(storage.keys("articles/"))) == first_round + 3, 120, "the new articles")
                time.sleep(2)  # let any stray duplicate show itself
                after = Counter(p for p, _ in server.requests)
                fired = events_named(procs, "schedule.fired")
            records = load_records(storage)
        new_requests = after - before
        fresh_paths = {s.path for s in fresh}
        old_paths = {a.path for a in site.articles} - fresh_paths
        assert {p: n for p, n in new_requests.items() if p in fresh_paths} == dict.fromkeys(fresh_paths, 1)
        assert not [p for p in new_requests if p.split("?")[0] in old_paths], "a seen article was fetched again"
        assert max(before[p] for p in old_paths) == 1
        assert len(fired) == 2, "one firing per round, whatever the number of discover workers"
        assert len({r["url"] for r in records}) == len(records) == first_round + 3
        stored = events_named(procs, "sink.stored")
        assert len(stored) == first_round + 3, "each article written once"
    finally:
        redis.stop()
