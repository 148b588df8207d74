"""The fixture site's discovery sources, over real HTTP: robots.txt, feeds, sitemaps, calendar trap."""

from __future__ import annotations

import gzip
import re
import urllib.error
import urllib.request
from collections import deque
from dataclasses import replace

import pytest

from tests.support.site import Site, SiteServer, add_article, build_site, corpus_articles, serve_site
from tests.support.site_feeds import (
    ATOM_FEED,
    CHILD_SITEMAPS,
    FEEDS,
    JSON_FEED,
    LEGACY_FEED,
    NEWS_SITEMAP,
    ROBOTS,
    RSS_FEED,
    SITEMAP_INDEX,
    TRACKING_QUERY,
    DiscoveryFixture,
    add_discovery_sources,
    calendar_path,
)
from workers.discover.feeds import find_feeds, looks_like_feed, parse_feed
from workers.discover.links import ARTICLE, LISTING, discover_links
from workers.discover.sitemaps import looks_like_sitemap, parse_sitemap, sitemaps_from_robots

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
HOSTS = frozenset({"127.0.0.1"})


def fetch(url: str, method: str = "GET") -> tuple[int, bytes, str]:
    request = urllib.request.Request(url, method=method)
    try:
        with _OPENER.open(request, timeout=5) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("Content-Type", "")


def get(url: str) -> bytes:
    status, body, _ = fetch(url)
    assert status == 200, url
    return body


def make_site(n: int = 30) -> tuple[Site, DiscoveryFixture]:
    site = build_site(corpus_articles(n), per_page=4)
    return site, add_discovery_sources(site)


# --- what is where ------------------------------------------------------------------------


def test_groups_are_disjoint_and_cover_every_article() -> None:
    site, fx = make_site()
    everything = [a.path for a in site.articles]
    assert len(fx.only_feed) == len(fx.only_listing) == len(fx.only_sitemap) == 3
    assert fx.only_feed == everything[:3] and fx.only_listing == everything[3:6] and fx.only_sitemap == everything[-3:]
    assert all(fx.sources(p) for p in everything)
    assert set(fx.listed) | set(fx.in_feeds) | set(fx.in_sitemaps) == set(everything)
    assert not set(fx.only_feed) & set(fx.listed) and not set(fx.only_sitemap) & set(fx.listed)
    # Every feed differs, each feed item is in exactly two feeds, and feeds are newest first.
    assert len({tuple(fx.feeds[f]) for f in FEEDS}) == 3
    for path in fx.in_feeds:
        assert sum(path in fx.feeds[f] for f in FEEDS) == 2
    for feed in FEEDS:
        times = [fx.published[p] for p in fx.feeds[feed]]
        assert times == sorted(times, reverse=True)
    # Publication times follow the site's newest-first order.
    assert [fx.published[p] for p in everything] == sorted(fx.published.values(), reverse=True)


def test_unlisted_articles_are_on_no_listing_page_and_listings_stay_whole() -> None:
    site = build_site(corpus_articles(30), per_page=4)
    assert "/world/page/3/" in site.listing_paths  # 10 articles a section before
    fx = add_discovery_sources(site)
    listing_html = b"".join(site.pages[p][0] for p in site.listing_paths)
    for path in fx.only_feed + fx.only_sitemap:
        assert path.encode() not in listing_html, path
        assert site.pages[path][0] is fx.spec(path).html  # still served
    for path in fx.listed:
        assert f'href="{path}"'.encode() in listing_html, path
    # 24 listed articles, 8 a section, 4 a page: 2 pages each; the third pages are gone.
    assert site.listing_paths == ["/"] + [p for s in site.sections for p in (f"/{s}/", f"/{s}/page/2/")]
    assert not any(re.fullmatch(r"/\w+/page/\d+/", p) for p in site.pages if p not in site.listing_paths)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="articles"):
        add_discovery_sources(build_site(corpus_articles(9)))
    site, _ = make_site(12)
    with pytest.raises(ValueError, match="already"):
        add_discovery_sources(site)
    plain = build_site(corpus_articles(3))
    new = replace(corpus_articles(4)[3], path="/world/2025/02/01/not-syndicated-anywhere-1.html")
    with pytest.raises(ValueError, match="add_discovery_sources"):
        add_article(plain, new, syndicate=True)


# --- over HTTP ----------------------------------------------------------------------------


def test_documents_are_served_with_their_content_types() -> None:
    site, _ = make_site()
    expected = {
        ROBOTS: "text/plain; charset=utf-8",
        RSS_FEED: "application/rss+xml; charset=utf-8",
        LEGACY_FEED: "application/rss+xml; charset=utf-8",
        ATOM_FEED: "application/atom+xml; charset=utf-8",
        JSON_FEED: "application/feed+json; charset=utf-8",
        SITEMAP_INDEX: "application/xml; charset=utf-8",
        CHILD_SITEMAPS[0]: "application/x-gzip",
        CHILD_SITEMAPS[1]: "application/xml; charset=utf-8",
        NEWS_SITEMAP: "text/xml; charset=utf-8",
    }
    with serve_site(site) as server:
        bodies = {}
        for path, content_type in expected.items():
            status, bodies[path], served_type = fetch(server.url(path))
            assert (status, served_type) == (200, content_type), path
        assert fetch(server.url(RSS_FEED), method="HEAD")[:2] == (200, b"")
    assert bodies[LEGACY_FEED] == bodies[RSS_FEED]
    for feed in FEEDS:
        assert looks_like_feed(bodies[feed], expected[feed]) and not looks_like_sitemap(bodies[feed], None)
    for sitemap in (SITEMAP_INDEX, *CHILD_SITEMAPS, NEWS_SITEMAP):
        assert looks_like_sitemap(bodies[sitemap], expected[sitemap]) and not looks_like_feed(bodies[sitemap], None)
    gz = bodies[CHILD_SITEMAPS[0]]
    assert gz[:2] == b"\x1f\x8b" and gzip.decompress(gz).startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<urlset')
    assert f"Sitemap: {server.base_url}{SITEMAP_INDEX}".encode() in bodies[ROBOTS]
    assert b"User-agent: *" in bodies[ROBOTS]


def test_served_feeds_parse_to_their_articles_with_dates() -> None:
    site, fx = make_site()
    with serve_site(site) as server:
        for feed in FEEDS:
            entries = parse_feed(get(server.url(feed)), server.url(feed))
            assert [e.url for e in entries] == [server.url(p) for p in fx.feeds[feed]], feed
            assert [e.published for e in entries] == [fx.published_iso(p) for p in fx.feeds[feed]], feed
            assert [e.title for e in entries] == [" ".join(fx.spec(p).title.split()) for p in fx.feeds[feed]], feed
        rss = get(server.url(RSS_FEED)).decode()
    # The RSS feed links with tracking parameters; the other sources name the same pages plainly.
    for path in fx.feeds[RSS_FEED]:
        assert f"{server.url(path)}{TRACKING_QUERY.replace('&', '&amp;')}</link>" in rss
        assert f"<comments>{server.url(path)}#comments</comments>" in rss


def test_served_sitemaps_parse_to_their_articles_with_dates() -> None:
    site, fx = make_site()
    with serve_site(site) as server:
        roots = sitemaps_from_robots(get(server.url(ROBOTS)), server.url(ROBOTS))
        assert roots == [server.url(SITEMAP_INDEX), server.url(NEWS_SITEMAP)]
        index = parse_sitemap(get(server.url(SITEMAP_INDEX)), server.url(SITEMAP_INDEX))
        assert index.kind == "index" and [e.url for e in index.entries] == [server.url(p) for p in CHILD_SITEMAPS]
        assert all(e.lastmod and e.lastmod.endswith("Z") for e in index.entries)
        gzipped, plain = (parse_sitemap(get(e.url), e.url) for e in index.entries)
        news = parse_sitemap(get(server.url(NEWS_SITEMAP)), server.url(NEWS_SITEMAP))
    assert gzipped.kind == plain.kind == news.kind == "urlset"
    gz_paths, plain_paths = fx.sitemaps[CHILD_SITEMAPS[0]], fx.sitemaps[CHILD_SITEMAPS[1]]
    assert [(e.url, e.lastmod) for e in gzipped.entries] == [(server.url(p), fx.published_iso(p)) for p in gz_paths]
    assert [(e.url, e.lastmod) for e in plain.entries] == [
        (server.url(p), fx.published[p].date().isoformat()) for p in plain_paths
    ]
    assert [(e.url, e.news_published, e.news_title) for e in news.entries] == [
        (server.url(p), fx.published_iso(p), " ".join(fx.spec(p).title.split())) for p in fx.sitemaps[NEWS_SITEMAP]
    ]


def test_front_page_announces_the_feeds_and_links_the_calendar_and_tracked_twins() -> None:
    site, fx = make_site()
    with serve_site(site) as server:
        front = get(server.url("/"))
        assert find_feeds(front, server.url("/")) == [server.url(p) for p in (LEGACY_FEED, *FEEDS)]
        links = discover_links(front, server.url("/"), allowed_hosts=HOSTS)
    text = front.decode()
    assert len(fx.most_read) == 3
    for path in fx.most_read:
        assert f'href="{path}{TRACKING_QUERY.replace("&", "&amp;")}"' in text
        assert server.url(path) in {link.url for link in links if link.kind == ARTICLE}
    assert not any("utm_" in link.url or "#" in link.url for link in links)
    assert (server.url(fx.calendar_entry), LISTING) in {(link.url, link.kind) for link in links}
    assert fx.calendar_entry == "/calendar/2025/01/"


def test_the_calendar_trap_is_endless_both_ways() -> None:
    site, fx = make_site()
    with serve_site(site) as server:
        for rel, steps in (("next", 40), ("prev", 40)):
            url, seen = server.url(fx.calendar_entry), set()
            for _ in range(steps):
                seen.add(url)
                page = get(url)
                follow = [
                    link.url for link in discover_links(page, url, allowed_hosts=HOSTS)
                    if link.kind == LISTING and "/calendar/" in link.url
                ]  # fmt: skip
                assert len(follow) == 2, url  # the month before and the month after
                url = follow[0] if rel == "prev" else follow[1]
                assert url not in seen
        assert fetch(server.url(calendar_path(1, 1)))[0] == 200
        assert fetch(server.url(calendar_path(9999, 12)))[0] == 200
        for bad in ("/calendar/2025/13/", "/calendar/2025/00/", "/calendar/0000/05/", "/calendar/2025/1/", "/calendar"):
            assert fetch(server.url(bad))[0] == 404, bad
        january = get(server.url("/calendar/2025/01/")).decode()
        empty = get(server.url("/calendar/1999/07/")).decode()
    assert all(f'href="{p}"' in january for p in fx.listed)
    assert not any(p in january for p in fx.only_feed + fx.only_sitemap)
    assert "No stories this month." in empty and 'rel="next" href="/calendar/1999/08/"' in empty
    assert fx.calendar_entry not in site.listing_paths


def discover_everything(server: SiteServer) -> dict[str, set[str]]:
    """Article URLs found through each kind of source, as a discovery stage would look for them."""
    found: dict[str, set[str]] = {"listing": set(), "feed": set(), "sitemap": set()}
    queue = deque(sitemaps_from_robots(get(server.url(ROBOTS)), server.url(ROBOTS)))
    while queue:
        url = queue.popleft()
        sitemap = parse_sitemap(get(url), url)
        if sitemap.kind == "index":
            queue.extend(e.url for e in sitemap.entries)
        else:
            found["sitemap"].update(e.url for e in sitemap.entries)
    front = get(server.url("/"))
    for feed in find_feeds(front, server.url("/")):
        found["feed"].update(e.url for e in parse_feed(get(feed), feed))
    pages, seen = deque([server.url("/")]), {server.url("/")}
    while pages:
        url = pages.popleft()
        for link in discover_links(get(url), url, allowed_hosts=HOSTS):
            if link.kind == ARTICLE:
                found["listing"].add(link.url)
            elif link.url not in seen and not (url.count("/calendar/") and "/calendar/" in link.url):
                # One calendar page from the front page, not the endless months behind it.
                seen.add(link.url)
                pages.append(link.url)
    return found


def test_every_article_is_found_and_each_source_kind_is_needed() -> None:
    site, fx = make_site()
    with serve_site(site) as server:
        found = discover_everything(server)
    everything = {server.url(a.path) for a in site.articles}
    assert found["listing"] | found["feed"] | found["sitemap"] == everything
    for kind, only in (("listing", fx.only_listing), ("feed", fx.only_feed), ("sitemap", fx.only_sitemap)):
        others = set().union(*(urls for other, urls in found.items() if other != kind))
        assert {server.url(p) for p in only} <= found[kind] - others, kind
    for path in everything:
        kinds = {kind for kind, urls in found.items() if path in urls}
        assert kinds == set(fx.sources(path.removeprefix(server.base_url))), path


def test_new_articles_appear_in_the_sources_asked_for_on_the_next_poll() -> None:
    site, fx = make_site()
    spare = corpus_articles(33)[30:]
    syndicated = replace(spare[0], path="/world/2025/02/01/syndicated-breaking-story-30.html")
    feed_only = replace(spare[1], path="/culture/2025/02/01/only-in-the-feeds-story-31.html")
    listed_only = replace(spare[2], path="/science/2025/02/01/only-on-the-listings-story-32.html")
    with serve_site(site) as server:
        before = discover_everything(server)
        add_article(site, syndicated, syndicate=True)
        add_article(site, feed_only, listed=False, syndicate=True)
        add_article(site, listed_only)
        after = discover_everything(server)
        rss = parse_feed(get(server.url(RSS_FEED)), server.url(RSS_FEED))
        news = parse_sitemap(get(server.url(NEWS_SITEMAP)), server.url(NEWS_SITEMAP))
    new = {kind: after[kind] - before[kind] for kind in after}
    assert new == {
        "listing": {server.url(syndicated.path), server.url(listed_only.path)},
        "feed": {server.url(syndicated.path), server.url(feed_only.path)},
        "sitemap": {server.url(syndicated.path), server.url(feed_only.path)},
    }
    assert all(before[kind] <= after[kind] for kind in before)
    # Each new article is dated after everything before it, and the newest comes first.
    assert [e.url for e in rss[:2]] == [server.url(feed_only.path), server.url(syndicated.path)]
    assert rss[0].published == fx.published_iso(feed_only.path) > fx.published_iso(syndicated.path)
    assert news.entries[0].news_published == fx.published_iso(feed_only.path)
    assert fx.sources(listed_only.path) == {"listing"} and fx.sources(feed_only.path) == {"feed", "sitemap"}
