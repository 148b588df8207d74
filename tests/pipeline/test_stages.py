"""The stage actors called directly on in-memory services: limits, scopes, prefixes, politeness."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from tests.support.pipeline import mixed_site
from tests.support.site import serve_site
from workers.core.messages import fetch_task, page_task, sink_task
from workers.core.settings import Settings
from workers.core.urls import normalize_url, url_id
from workers.pipeline.actors import discover_stage, fetch_stage, sink_stage
from workers.pipeline.runtime import Runtime, build_runtime
from workers.sources.sourcefile import Source

Sent = list[tuple[str, dict[str, Any], int]]
_SENT: dict[int, Sent] = {}


@pytest.fixture
def rt() -> Runtime:
    """A runtime on in-memory services whose ``send``s are recorded instead of enqueued."""
    settings = Settings.from_env({}, storage_url=f"memory://{uuid.uuid4().hex}", allow_private=True, host_rate=0.0)
    runtime = build_runtime(settings)
    sent: Sent = []
    _SENT[id(runtime)] = sent
    runtime.send = lambda stage, task: sent.append((stage, task, 0))
    runtime.send_later = lambda stage, task, delay_ms: sent.append((stage, task, delay_ms))
    return runtime


def _sent(rt: Runtime) -> Sent:
    return _SENT[id(rt)]


def _page(rt: Runtime, body: bytes, *, kind: str = "listing", depth: int = 0, source: str | None = None,
          poll_id: str | None = None, content_type: str = "text/html") -> dict[str, Any]:
    url = "https://news.example/world/"
    task = fetch_task(crawl_id="c", url=url, url_id=url_id(url), kind=kind, depth=depth, source=source,
                      poll_id=poll_id, allowed_hosts=None if source else ["news.example"])
    key = f"raw/{uuid.uuid4().hex}.html"
    rt.storage.put(key, body)
    return page_task(task, final_url=url, status=200, fetched_at="2025-01-01T00:00:00Z", raw_key=key,
                     content_type=content_type, encoding=None, size=len(body))


def _listing(n: int, *, query: bool = False, next_page: bool = False) -> bytes:
    links = "".join(
        f'<article><h2><a href="/world/2025/01/21/{"story.html?id=" + str(i) if query else f"story-number-{i}.html"}">'
        f"Story number {i} about the harbour</a></h2></article>"
        for i in range(n)
    )
    nxt = '<a rel="next" href="/world/page/2/">Next</a>' if next_page else ""
    return f"<html><body><main>{links}</main>{nxt}</body></html>".encode()


def test_the_page_budget_caps_a_poll_and_is_reported(rt: Runtime) -> None:
    rt.sources.put(Source(name="s", start_urls=("https://news.example/world/",), kinds=("listing",),
                          allowed_hosts=("news.example",), max_pages=3))
    discover_stage(rt, _page(rt, _listing(10), source="s", poll_id="p1"))
    assert len(_sent(rt)) == 3
    assert rt.outcomes["discover.limit"] == 1
    discover_stage(rt, _page(rt, _listing(12), source="s", poll_id="p1"))
    assert len(_sent(rt)) == 3, "the budget holds across pages of the same poll"


def test_listings_stop_at_the_depth_limit_articles_do_not(rt: Runtime) -> None:
    page = _page(rt, _listing(2, next_page=True), depth=5)
    page["max_depth"] = 5
    discover_stage(rt, page)
    kinds = sorted(t["kind"] for _, t, _ in _sent(rt))
    assert kinds == ["article", "article"]
    page = _page(rt, _listing(0, next_page=True), depth=4)
    page["max_depth"] = 5
    discover_stage(rt, page)
    assert [t["depth"] for _, t, _ in _sent(rt)][-1] == 5


def test_one_path_gets_a_bounded_number_of_query_variants(rt: Runtime) -> None:
    discover_stage(rt, _page(rt, _listing(80, query=True)))
    assert len(_sent(rt)) == 50


def test_articles_once_per_source_listings_once_per_poll_unless_refresh(rt: Runtime) -> None:
    rt.sources.put(Source(name="s", start_urls=("https://news.example/",), kinds=("home",),
                          allowed_hosts=("news.example",)))
    rt.sources.put(Source(name="r", start_urls=("https://news.example/",), kinds=("home",),
                          allowed_hosts=("news.example",), refresh=True))
    body = _listing(2, next_page=True)
    for poll in ("p1", "p2"):
        discover_stage(rt, _page(rt, body, source="s", poll_id=poll))
    kinds = [t["kind"] for _, t, _ in _sent(rt)]
    assert kinds.count("article") == 2 and kinds.count("listing") == 2
    _sent(rt).clear()
    for poll in ("p1", "p2"):
        discover_stage(rt, _page(rt, body, source="r", poll_id=poll))
    assert [t["kind"] for _, t, _ in _sent(rt)].count("article") == 4, "refresh re-fetches each poll"


def test_a_sources_storage_prefix_applies_to_records(rt: Runtime) -> None:
    rt.sources.put(Source(name="bbc", start_urls=("https://news.example/",), kinds=("home",),
                          storage_prefix="bbc/"))
    url = normalize_url("https://news.example/world/a-story.html")
    record = {"schema_version": 1, "id": url_id(url), "url": url, "final_url": url, "canonical_url": None,
              "host": "news.example", "crawl_id": "c", "fetched_at": "2025-01-01T00:00:00Z", "status": 200,
              "title": "t", "authors": [], "published": None, "language": None, "sitename": None,
              "description": None, "text": "x", "word_count": 1, "content_sha256": "0" * 64, "raw_key": "raw/x",
              "extractor": {"name": "x", "version": "1", "options": {}}}
    task = sink_task(crawl_id="c", url_id=url_id(url), record=record)
    task["source"] = "bbc"
    sink_stage(rt, task)
    keys = list(rt.storage.keys("bbc/"))
    assert len(keys) == 1 and keys[0].startswith("bbc/articles/news.example/")
    assert orjson.loads(rt.storage.get(keys[0]))["url"] == url


def test_a_sources_own_rate_spaces_its_fetches(rt: Runtime) -> None:
    site = mixed_site(corpus=1, seed_per_style=1)
    with serve_site(site) as server:
        rt.sources.put(Source(name="slow", start_urls=(server.base_url + "/",), kinds=("home",),
                              allowed_hosts=("127.0.0.1",), host_rate=0.5))
        for article in site.articles[:2]:
            url = normalize_url(server.base_url + article.path)
            fetch_stage(rt, fetch_task(crawl_id="c", url=url, url_id=url_id(url), kind="article", source="slow"))
        assert [p for p, _ in server.requests] == ["/robots.txt"], "robots.txt first, under the host's rate"
    sent = _sent(rt)
    assert sent[0][0] == "fetch" and sent[0][2] == 0, "the first page goes round again for its own permit"
    assert sent[1][0] == "fetch" and 1900 <= sent[1][2] <= 2100, "the second waits the source's 2 s interval"
    assert "slot_at" in sent[1][1] and "slot_at" not in sent[0][1]


def test_a_304_on_revisit_costs_no_discovery_and_no_write(rt: Runtime) -> None:
    from tests.support.hostile_server import HostileServer

    with HostileServer() as server:
        url = normalize_url(server.url("/html"))
        task = fetch_task(crawl_id="c", url=url, url_id=url_id(url), kind="listing", allowed_hosts=["127.0.0.1"])
        fetch_stage(rt, task)  # robots.txt first (404 here: allowed), the page comes round again
        fetch_stage(rt, _sent(rt).pop()[1])
        assert [stage for stage, _, _ in _sent(rt)] == ["discover"]
        raw_before = sorted(rt.storage.keys("raw/"))
        fetch_stage(rt, task)
        assert [stage for stage, _, _ in _sent(rt)] == ["discover"], "nothing handed on after a 304"
        assert sorted(rt.storage.keys("raw/")) == raw_before
        headers = [h for path, h in server.requests if path == "/html"]
    assert rt.outcomes["fetch.not_modified"] == 1
    assert headers[-1].get("If-None-Match") == '"v1"', "the revisit was conditional"
