"""The fixture news site: corpus pages, unique copies, listings, and serving over real HTTP."""

from __future__ import annotations

import hashlib
import http.client
import threading
import urllib.error
import urllib.request
from codecs import BOM_UTF8
from collections import deque
from dataclasses import replace
from pathlib import Path

import pytest
import trafilatura

from tests.support.site import (
    CORPUS_ENV,
    ArticleSpec,
    CorpusMissing,
    add_article,
    build_site,
    corpus_articles,
    section_page_path,
    serve_site,
)
from workers.discover.links import ARTICLE, classify_url, discover_links

# Never let an http_proxy variable route a test request off this machine.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url: str, method: str = "GET") -> tuple[int, bytes, str]:
    request = urllib.request.Request(url, method=method)
    try:
        with _OPENER.open(request, timeout=5) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("Content-Type", "")


def strip_marker(page: bytes, marker: bytes) -> bytes:
    return page.replace(marker + b" ", b"").replace(b" " + marker, b"")


# --- corpus_articles ----------------------------------------------------------------------


def test_corpus_pages_once_with_unique_article_paths() -> None:
    specs = corpus_articles()
    assert len(specs) == 300
    assert len({s.path for s in specs}) == 300
    assert all(classify_url("http://127.0.0.1" + s.path) == ARTICLE for s in specs)
    assert all(
        s.must_have and s.must_not and s.title and s.html.removeprefix(BOM_UTF8).lstrip()[:1] == b"<" for s in specs
    )
    assert specs == corpus_articles()  # deterministic


def test_more_than_the_corpus_repeats_pages_at_new_paths() -> None:
    specs = corpus_articles(650)
    assert len({s.path for s in specs}) == 650
    assert specs[0].html == specs[300].html == specs[600].html
    assert specs[0].must_have == specs[300].must_have
    assert len({hashlib.sha256(s.html).digest() for s in specs}) == 300


def test_unique_markers_make_every_copy_distinct_and_change_nothing_else() -> None:
    plain = corpus_articles(650)
    marked = corpus_articles(650, unique_marker=True)
    assert len({hashlib.sha256(s.html).digest() for s in marked}) == 650
    for i, (p, m) in enumerate(zip(plain, marked, strict=True)):
        marker = f"[copy {i:04d}]".encode()
        assert m.path == p.path and m.must_have == p.must_have and m.must_not == p.must_not
        assert m.title == f"{p.title} [copy {i:04d}]"
        assert m.html.count(marker) >= 2, m.path  # the <title> and at least one body paragraph
        assert strip_marker(m.html, marker) == p.html, m.path


def test_markers_keep_every_page_in_its_own_encoding() -> None:
    for plain, marked in zip(corpus_articles(), corpus_articles(unique_marker=True), strict=True):
        for encoding in ("utf-8", "cp1250", "cp1252", "gb2312"):
            try:
                plain.html.decode(encoding)
            except UnicodeDecodeError:
                continue
            marked.html.decode(encoding)  # raises if an insertion split a character
            break


def test_the_marker_reaches_the_extracted_text() -> None:
    """The copies differ in what an extractor keeps, not only in their bytes (first 8 pages)."""
    for i, spec in enumerate(corpus_articles(8, unique_marker=True)):
        text = trafilatura.extract(spec.html) or ""
        assert f"[copy {i:04d}]" in text, spec.path


def test_seed_changes_the_page_order_deterministically() -> None:
    default, shuffled, again = corpus_articles(5), corpus_articles(5, seed=7), corpus_articles(5, seed=7)
    assert [s.html for s in shuffled] == [s.html for s in again]
    assert [s.html for s in shuffled] != [s.html for s in default]


def test_missing_corpus_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CORPUS_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(CorpusMissing, match=CORPUS_ENV):
        corpus_articles(3)


# --- build_site ---------------------------------------------------------------------------


def test_site_layout() -> None:
    specs = corpus_articles(23)
    site = build_site(specs, per_page=4)
    assert site.listing_paths[0] == "/"
    # Round-robin: 8 world, 8 culture, 7 science articles -> 2 pages each.
    assert [len(site.by_section[s]) for s in site.sections] == [8, 8, 7]
    assert site.listing_paths[1:] == [section_page_path(s, n) for s in site.sections for n in (1, 2)]
    for spec in specs:
        assert site.pages[spec.path][0] is spec.html
    for path in ("/about", "/contact", "/privacy", *site.listing_paths):
        body, content_type = site.pages[path]
        assert content_type == "text/html; charset=utf-8" and body.startswith(b"<!DOCTYPE html>")
    front = site.pages["/"][0].decode()
    assert all(f'href="{a.path}"' in front for a in specs[:6]) and f'href="{specs[6].path}"' not in front
    assert all(f'href="{p}"' in front for p in ("/about", "/contact", "/privacy"))
    second = site.pages["/world/page/2/"][0].decode()
    assert '<link rel="prev" href="/world/">' in second and 'rel="next"' not in second


def test_articles_outside_the_sections_go_round_robin() -> None:
    base = corpus_articles(4)
    specs = [replace(b, path=f"/politics/2025/01/0{i + 1}/a-long-story-title-{i}.html") for i, b in enumerate(base)]
    site = build_site(specs, sections=("world", "culture"), per_page=10)
    assert [site.section_of[s.path] for s in specs] == ["world", "culture", "world", "culture"]
    front = site.pages["/"][0].decode()
    assert front.count('<a class="teaser__kicker" href="/culture/">') == 2


def test_articles_keep_their_declared_charset() -> None:
    site = build_site(corpus_articles())
    types = {site.pages[s.path][1] for s in site.articles}
    assert {"text/html; charset=utf-8", "text/html; charset=windows-1250", "text/html; charset=gb2312"} <= types


def test_bad_site_arguments_are_refused() -> None:
    specs = corpus_articles(2)
    with pytest.raises(ValueError, match="unique"):
        build_site([specs[0], specs[0]])
    with pytest.raises(ValueError):
        build_site(specs, per_page=0)


# --- serving ------------------------------------------------------------------------------


def test_serves_pages_404s_and_records_requests() -> None:
    site = build_site(corpus_articles(12), per_page=5)
    article = site.articles[3]
    with serve_site(site) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        status, body, content_type = fetch(server.url("/"))
        assert (status, content_type) == (200, "text/html; charset=utf-8") and body == site.pages["/"][0]
        assert fetch(server.url(article.path))[:2] == (200, article.html)
        assert fetch(server.url("/world/?utm_source=feed"))[:2] == (200, site.pages["/world/"][0])
        assert fetch(server.url("/about"))[0] == 200
        assert fetch(server.url("/nothing-here"))[0] == 404
        assert fetch(server.url("/world/page/9/"))[0] == 404
        assert fetch(server.url("/login?next=%2F"))[0] == 404
        status, body, _ = fetch(server.url("/world/"), method="HEAD")
        assert (status, body) == (200, b"")
        paths = server.request_paths()
        times = [t for _, t in server.requests]
    assert paths == [
        "/",
        article.path,
        "/world/?utm_source=feed",
        "/about",
        "/nothing-here",
        "/world/page/9/",
        "/login?next=%2F",
        "/world/",
    ]
    assert times == sorted(times)


def test_non_ascii_paths_are_served_percent_encoded_too() -> None:
    site = build_site(corpus_articles(1))
    site.pages["/welt/straße-gesperrt.html"] = (b"<html>ok</html>", "text/html; charset=utf-8")
    with serve_site(site) as server:
        assert fetch(server.url("/welt/stra%C3%9Fe-gesperrt.html"))[:2] == (200, b"<html>ok</html>")


def test_stopped_server_refuses_connections() -> None:
    with serve_site(build_site(corpus_articles(3))) as server:
        url = server.url("/")
        assert fetch(url)[0] == 200
    with pytest.raises(urllib.error.URLError):
        fetch(url)
    server.stop()  # a second stop is harmless


def test_stop_cuts_open_keep_alive_connections() -> None:
    with serve_site(build_site(corpus_articles(3))) as server:
        conn = http.client.HTTPConnection("127.0.0.1", int(server.base_url.rsplit(":", 1)[1]), timeout=5)
        conn.request("GET", "/about")
        response = conn.getresponse()
        assert response.status == 200 and not response.will_close
        response.read()
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        conn.request("GET", "/about")
        conn.getresponse()
    conn.close()


def test_concurrent_requests_are_all_recorded() -> None:
    site = build_site(corpus_articles(30), per_page=5)
    with serve_site(site) as server:
        statuses: list[int] = []

        def worker(paths: list[str]) -> None:
            for path in paths:
                statuses.append(fetch(server.url(path))[0])

        threads = [threading.Thread(target=worker, args=(site.listing_paths,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(server.request_paths()) == sorted(site.listing_paths * 4)
    assert statuses == [200] * (4 * len(site.listing_paths))


def test_pages_can_be_replaced_and_added_while_serving() -> None:
    site = build_site(corpus_articles(3))
    with serve_site(site) as server:
        assert fetch(server.url("/late"))[0] == 404
        site.pages["/late"] = (b"<html><body>late</body></html>", "text/html; charset=utf-8")
        site.pages["/about"] = (b"<html><body>new about</body></html>", "text/html; charset=utf-8")
        assert fetch(server.url("/late"))[:2] == (200, b"<html><body>late</body></html>")
        assert fetch(server.url("/about"))[1] == b"<html><body>new about</body></html>"


def test_a_new_article_appears_first_and_pushes_the_oldest_to_page_two() -> None:
    specs = corpus_articles(31)  # 11 world articles; the newest 10 fill /world/
    site = build_site(specs[:30], per_page=10)
    assert "/world/page/2/" not in site.listing_paths
    oldest_on_front = site.by_section["world"][-1]
    new = ArticleSpec(
        "/world/2025/02/01/breaking-story-just-published-1.html",
        specs[30].html,
        "Breaking story",
        specs[30].must_have,
        specs[30].must_not,
    )
    with serve_site(site) as server:
        before = fetch(server.url("/world/"))[1]
        add_article(site, new)
        status, first, _ = fetch(server.url("/world/"))
        assert status == 200 and first != before
        found = discover_links(first, server.url("/world/"), allowed_hosts=frozenset({"127.0.0.1"}))
        articles = [link.url for link in found if link.kind == ARTICLE]
        assert articles[0] == server.url(new.path) and server.url(oldest_on_front.path) not in articles
        assert f'href="{oldest_on_front.path}"' in fetch(server.url("/world/page/2/"))[1].decode()
        assert fetch(server.url(new.path))[:2] == (200, new.html)
        assert f'href="{new.path}"' in fetch(server.url("/"))[1].decode()
    assert "/world/page/2/" in site.listing_paths and site.articles[0] is new
    with pytest.raises(ValueError):
        add_article(site, new)


def test_crawling_the_listings_over_http_finds_every_article() -> None:
    """Breadth-first over listing links only, as discover would: all articles, no dead listings."""
    site = build_site(corpus_articles(57), per_page=4)
    with serve_site(site) as server:
        hosts = frozenset({"127.0.0.1"})
        queue, seen, articles = deque([server.url("/")]), {server.url("/")}, set()
        while queue:
            url = queue.popleft()
            status, body, _ = fetch(url)
            assert status == 200, url
            for link in discover_links(body, url, allowed_hosts=hosts):
                if link.kind == ARTICLE:
                    articles.add(link.url)
                elif link.url not in seen:
                    seen.add(link.url)
                    queue.append(link.url)
        fetched = server.request_paths()
    assert articles == {server.url(a.path) for a in site.articles}
    assert sorted(fetched) == sorted(site.listing_paths)
