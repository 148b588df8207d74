"""Feeds, sitemaps and robots.txt: any body gives entries or nothing, quickly, never an exception."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.hostile import BASE, FUZZ, documents, texts, timed, timed_or_error, urls
from workers.core.urls import InvalidURL, normalize_url
from workers.discover.feeds import (
    FeedEntry,
    date_bounds,
    find_feeds,
    looks_like_feed,
    normalize_date,
    parse_feed,
    sniff_root,
)
from workers.discover.sitemaps import (
    Sitemap,
    SitemapEntry,
    looks_like_sitemap,
    newest_first,
    parse_sitemap,
    sitemaps_from_robots,
)
from workers.fetch.robots import RobotsVerdict, origin_of, product_token, verdict

STATUSES = st.one_of(st.none(), st.sampled_from((200, 204, 301, 304, 404, 410, 429, 500, 503)), st.integers(-5, 1000))


def _is_date(value: str | None) -> bool:
    return value is None or date_bounds(value) is not None


@FUZZ
@given(documents())
def test_parse_feed_gives_normalised_entries(body: bytes) -> None:
    entries = timed(parse_feed, body, BASE)
    assert isinstance(entries, list)
    assert len({e.url for e in entries}) == len(entries)
    for entry in entries:
        assert isinstance(entry, FeedEntry)
        assert normalize_url(entry.url) == entry.url
        assert _is_date(entry.published)
        assert entry.title is None or (isinstance(entry.title, str) and entry.title == " ".join(entry.title.split()))


@FUZZ
@given(documents(), st.sampled_from((None, "application/rss+xml", "text/html", "application/json", "x")))
def test_sniffers_answer(body: bytes, content_type: str | None) -> None:
    root = timed(sniff_root, body)
    assert root is None or (isinstance(root, str) and root == root.lower())
    assert isinstance(timed(looks_like_feed, body, content_type), bool)
    assert isinstance(timed(looks_like_sitemap, body, content_type), bool)
    feeds = timed(find_feeds, body, BASE)
    assert all(normalize_url(url) == url for url in feeds)


@FUZZ
@given(texts())
def test_normalize_date_gives_an_iso_date_or_none(text: str) -> None:
    value = timed(normalize_date, text)
    assert _is_date(value)


@FUZZ
@given(documents(), st.sampled_from((50_000_000, 4096, 100)))
def test_parse_sitemap_gives_normalised_entries(body: bytes, max_bytes: int) -> None:
    sitemap = timed(parse_sitemap, body, BASE, max_bytes=max_bytes)
    assert isinstance(sitemap, Sitemap)
    assert sitemap.kind in ("index", "urlset")
    assert len({e.url for e in sitemap.entries}) == len(sitemap.entries)
    for entry in sitemap.entries:
        assert isinstance(entry, SitemapEntry)
        assert normalize_url(entry.url) == entry.url
        assert _is_date(entry.lastmod) and _is_date(entry.news_published)
    since = timed_or_error(ValueError, newest_first, sitemap.entries, since="2025-01-01")
    assert isinstance(since, list) and all(isinstance(e, SitemapEntry) for e in since)


@FUZZ
@given(st.one_of(documents(), texts()))
def test_sitemaps_from_robots_gives_normalised_urls(body: bytes | str) -> None:
    found = timed(sitemaps_from_robots, body, BASE)
    assert all(normalize_url(url) == url for url in found)
    assert len(set(found)) == len(found)


@FUZZ
@given(texts())
def test_newest_first_refuses_a_bad_since_with_value_error(since: str) -> None:
    entries = [SitemapEntry("https://news.example.com/a", "2025-01-21", None, None)]
    result = timed_or_error(ValueError, newest_first, entries, since=since)
    assert isinstance(result, ValueError | list)


@FUZZ
@given(
    st.one_of(st.none(), documents()),
    STATUSES,
    st.sampled_from((BASE, "https://news.example.com/private/x?q=1")),
    texts(),
)
def test_robots_verdict_never_raises(body: bytes | None, status: int | None, url: str, user_agent: str) -> None:
    answer = timed(verdict, body, status, url, user_agent)
    assert isinstance(answer, RobotsVerdict)
    assert isinstance(answer.allowed, bool) and answer.reason
    assert answer.crawl_delay is None or answer.crawl_delay >= 0


@FUZZ
@given(urls(), texts())
def test_origin_and_product_token(url: str, user_agent: str) -> None:
    origin = timed_or_error(InvalidURL, origin_of, url)
    assert isinstance(origin, InvalidURL) or (isinstance(origin, str) and origin.startswith(("http://", "https://")))
    token = timed(product_token, user_agent)
    assert token == token.lower()
