"""Discovery by content end to end: each generated site layout, crawled from its front page only.

Small versions of ``bench/discovery.py``: every layout of ``tests/support/layouts.py`` is served on
127.0.0.1 and crawled embedded from its front page; at least 98% of its articles must become
records (all of them here), and nothing else may (precision 1.0).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.conftest import RedisServer
from tests.support.layout_crawl import crawl_layout
from tests.support.layouts import LAYOUTS, Layout, build_layout_site
from tests.support.pipeline import ROOT, events_named, wait_for, worker_env, workers
from tests.support.site import serve_site
from workers.core.storage import open_storage


@pytest.mark.parametrize("layout", LAYOUTS, ids=[lay.name for lay in LAYOUTS])
def test_every_layout_gives_every_article_and_nothing_else(tmp_path: Path, layout: Layout) -> None:
    score = crawl_layout(layout, tmp_path, articles=24, per_page=5)
    assert score.recall >= 0.98, f"missing {score.missing[:3]}"
    assert score.non_articles == 0 and score.precision == 1.0, f"non-article records {score.extra[:3]}"
    assert score.summary.by_reason("failed") == {}


def test_a_plain_front_page_with_unknown_section_urls_leads_to_every_article(tmp_path: Path) -> None:
    """The issue's site: /index.html, whose <nav> links sections at /section/<name>/page/1.html, no
    sitemap, no feed. The section links are probes; each page's verdict and reasons are logged."""
    layout = next(lay for lay in LAYOUTS if lay.name == "plain-local")
    with capture_logs() as logs:
        score = crawl_layout(layout, tmp_path, articles=20, per_page=5)
    assert score.found == score.existing == 20 and score.non_articles == 0
    classified = [e for e in logs if e["event"] == "discover.classified"]
    assert classified, "probes were judged by their content"
    for e in classified:
        assert {"url", "url_id", "crawl_id", "host", "verdict", "reasons", "shape"} <= e.keys()
        assert e["reasons"] and e["verdict"] in {"article", "listing", "other"}
    sections = [e for e in classified if "/section/" in e["url"]]
    assert sections and {e["verdict"] for e in sections} <= {"listing", "other"}
    policy = [e for e in classified if e["url"].endswith("/editorial-standards-and-corrections")]
    assert [e["verdict"] for e in policy] == ["other"], "a long policy text is not an article"


def test_site_memory_routes_a_hosts_known_shapes_without_probing_them(tmp_path: Path) -> None:
    """Once three pages of /section/<name>/page/{n}.html (one after another, by rel=next) proved
    listings, the section's further pages are read as listings straight away, without a verdict."""
    layout = next(lay for lay in LAYOUTS if lay.name == "paged-sections")
    with capture_logs() as logs:
        score = crawl_layout(layout, tmp_path, articles=80, per_page=4)
    assert score.recall == 1.0 and score.non_articles == 0
    judged = {e["url"] for e in logs if e["event"] == "discover.classified" and "/section/" in e["url"]}
    pages = {e["url"] for e in logs if e["event"] == "fetch.done" and "/section/" in e["url"]}
    assert len(pages) == 20 and len(judged) < len(pages), (len(judged), len(pages))


def test_workers_on_redis_find_a_layout_through_probes_and_remember_its_shapes(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    layout = next(lay for lay in LAYOUTS if lay.name == "numeric-ids")  # /c/12345 sections, "load more" JSON
    built = build_layout_site(layout, 24, 5)
    out = tmp_path / "out"
    env = worker_env(INGEST_BROKER_URL=redis_server.url, INGEST_STORAGE_URL=str(out), INGEST_ALLOW_PRIVATE="1",
                     INGEST_HOST_RATE="0")
    storage = open_storage(str(out))
    with serve_site(built.site) as server, workers(
        (["--stages", "discover,fetch,extract,sink", "--processes", "1", "--threads", "8"], tmp_path / "w.log"),
        env=env,
    ) as procs:
        sent = subprocess.run([sys.executable, "-m", "workers.cli", "enqueue", server.base_url + "/", "--kind",
                               "listing"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert sent.returncode == 0, sent.stderr
        wait_for(lambda: len(list(storage.keys("articles/"))) >= 24, 90, "every article stored")
        wait_for(lambda: redis_server.client().llen("ingest:fetch") == 0, 10, "an empty fetch queue")
        for p in procs:
            assert p.stop() == 0
        expected = built.article_urls(server.base_url)
    import orjson

    urls = {orjson.loads(storage.get(k))["url"] for k in storage.keys("articles/")}
    assert urls == expected
    assert events_named(procs, "discover.classified")
    assert redis_server.client().hgetall("ingest:shapes:127.0.0.1"), "verdicts kept in Redis per host"


def test_articles_without_url_shape_or_headline_link_are_probed_until_their_shape_is_known(tmp_path: Path) -> None:
    """"Read more" links to /p/123.html say nothing: the first articles are judged by their content
    (a byline, a date, one long text), the later ones are routed by the host's memory of the shape."""
    layout = next(lay for lay in LAYOUTS if lay.name == "read-more")
    with capture_logs() as logs:
        score = crawl_layout(layout, tmp_path, articles=60, per_page=5)
    assert score.found == 60 and score.non_articles == 0
    verdicts = [e for e in logs if e["event"] == "discover.classified" and "/p/" in e["url"]]
    assert verdicts and {e["verdict"] for e in verdicts} == {"article"}
    assert set(verdicts[0]["reasons"]) >= {"a byline", "a date"}
    assert len(verdicts) < 60, "the host's memory of /p/{n}.html spares the later articles their probe"
