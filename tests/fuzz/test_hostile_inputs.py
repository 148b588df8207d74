"""Named hostile inputs, always run: the cases the fuzzers found or were written to find.

Random search may or may not draw a 5,000-deep page or a megabyte attribute on a given run; these
are drawn every time, through every reader they can reach.
"""

from __future__ import annotations

import codecs
from typing import Any

import pytest

from tests.fuzz.hostile import BASE, HOST, timed
from workers.core import htmlparse
from workers.core.encoder import SafeOrjsonEncoder, envelope_problem
from workers.core.urls import host_of
from workers.discover.classify import classify_page
from workers.discover.feeds import normalize_date, parse_feed
from workers.discover.pages import found_on_page
from workers.discover.probes import json_links
from workers.discover.sitemaps import parse_sitemap
from workers.extract.article import extract_article
from workers.extract.metadata import decode_html
from workers.fetch.robots import verdict
from workers.sources.sourcefile import SourcesError, parse_sources

MB = 1_000_000
PAGES: dict[str, bytes] = {
    "nested-div-5000": b"<html><body>"
    + b"<div>" * 5000
    + b"<p>deep text</p><a href='/a/b-c-d.html'>x</a>"
    + b"</div>" * 5000
    + b"</body></html>",
    "nested-div-unclosed": b"<html><body>" + b"<div><p>x " * 5000,
    "nested-table": b"<html><body>" + b"<table><tr><td>" * 2000 + b"x" + b"</td></tr></table>" * 2000,
    "nested-inline": b"<html><body><p>" + b"<b>" * 10000 + b"x" + b"</b>" * 10000 + b"</p></body></html>",
    "attribute-1mb": b"<html><body><p class='" + b"a" * MB + b"'>text</p></body></html>",
    "href-1mb": b"<html><body><a href='/" + b"a" * MB + b"'>x</a></body></html>",
    "keywords-tabs-1mb": b"<html><head><meta name='keywords' content='a"
    + b"\t" * MB
    + b"x'></head><body><p>t</p></body></html>",
    "meta-flood-invalid-utf8": b"<meta" * 13_000 + b"\xff",
    "meta-flood": b"<meta" * 1600 + b"<?xml" * 1600,
    "json-ld-deep": b"<html><head><script type='application/ld+json'>"
    + b"[" * 100_000
    + b"]" * 100_000
    + b"</script></head><body><p>t</p></body></html>",
    "json-ld-graph-deep": b"<html><head><script type='application/ld+json'>"
    + b'{"@graph":' * 990
    + b"1"
    + b"}" * 990
    + b"</script></head><body><p>t</p></body></html>",
    "doctype-brackets": b"<!DOCTYPE " + b"[]" * 40 + b"<rss><channel><item><link>/a</link></item></channel></rss>",
    "utf16-xml-declarations": codecs.BOM_UTF16_LE + ("<?xml " * 100_000).encode("utf-16-le"),
    "title-html-lt": b"<rss><channel><item><title type='html'>"
    + b"&lt;" * 100_000
    + b"</title><link>https://news.example.com/a</link></item></channel></rss>",
    "feed-date-parens": b"<rss><channel><item><link>https://news.example.com/a</link><pubDate>"
    + b"00:00 CET (" * 50_000
    + b"</pubDate></item></channel></rss>",
    "feed-date-kelvin": "<rss><channel><item><link>https://news.example.com/a</link><pubDate>"
    "Mon, 20 Jan 2025 17:00:00 \u212aST</pubDate></item></channel></rss>".encode(),
    "meta-content-lt-1mb": b"<html><head><meta name='description' content='" + b"<" * MB + b"'></head><body><p>t</p>"
    b"</body></html>",
    "attribute-comment-openers": b"<html><head><meta name='description' content='"
    + b"<!--a" * 200_000
    + b"'></head><body><p class='"
    + b"<!--" * 100_000
    + b"'>text</p></body></html>",
    "json-deep": b"[" * 100_000 + b"]" * 100_000,
    "json-dict-deep": b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    "json-many-html": b'{"items": [' + b",".join(b'{"html": "<a href=/a/%d>Story %d of many</a>"}' % (i, i)
                                                for i in range(3_000)) + b"]}",
    "many-anchors": b"<html><body>"
    + b"".join(b"<a href='/s/story-%d-of-the-day'>Story %d</a>" % (i, i) for i in range(5_000))
    + b"</body></html>",
}


@pytest.mark.parametrize("body", PAGES.values(), ids=PAGES.keys())
def test_every_reader_survives(body: bytes) -> None:
    hosts = frozenset({HOST})
    for kind in ("listing", "home", "feed", "sitemap", "robots"):
        assert isinstance(timed(found_on_page, kind, body, BASE, None, allowed_hosts=hosts), list)
    assert isinstance(timed(parse_feed, body, BASE), list)
    assert timed(classify_page, body, BASE).kind in {"article", "listing", "other"}
    assert isinstance(timed(json_links, body, BASE, allowed_hosts=hosts), list)
    assert isinstance(timed(parse_sitemap, body, BASE).entries, list)
    assert isinstance(timed(decode_html, body), str)
    tree = timed(htmlparse.parse_html, body)
    assert tree is None or tree.tag == "html"
    record = timed(extract_article, body, BASE)
    assert isinstance(record["text"], str) and record["url"] == BASE
    assert timed(verdict, body, 200, BASE, "ingest/1.0").reason


def test_a_zone_matched_by_case_folding_is_read() -> None:
    # IGNORECASE lets the Kelvin sign match the K of "KST"; its upper() is itself, which was a KeyError.
    assert timed(normalize_date, "Mon, 20 Jan 2025 17:00:00 \u212aST") == "2025-01-20T08:00:00Z"
    assert parse_feed(PAGES["feed-date-kelvin"], BASE)[0].published == "2025-01-20T08:00:00Z"


def test_deep_json_ld_is_ignored_not_raised() -> None:
    record = timed(extract_article, PAGES["json-ld-deep"], BASE)
    assert record["tags"] == [] and record["image"] is None


@pytest.mark.parametrize(
    "text",
    [
        "[[source]]\nname = 'a'\nstart = " + "[" * 5000 + "]" * 5000,
        "[[source]]\nname = 'a'\nstart = " + "{a = " * 3000 + "1" + "}" * 3000,
        "[[source]]\nname = 'a'\nstart = ['https://a.example/']\narticles = ['" + "(" * 1000 + ")" * 1000 + "']",
        "[[source]]\nname = 'a'\nstart = ['https://a.example/']\narticles = ['a{99999999999999}']",
        "[[source]]\nname = 'a'\nstart = ['https://a.example/']\ninterval = '" + "1" * 100_000 + "'",
    ],
    ids=["nested-arrays", "nested-tables", "nested-groups", "huge-repeat", "long-duration"],
)
def test_a_hostile_sources_file_is_a_sources_error(text: str) -> None:
    with pytest.raises(SourcesError) as caught:
        timed(parse_sources, text)
    assert all(problem.line >= 1 for problem in caught.value.problems)


@pytest.mark.parametrize("url", ["http://[", "https://[::1", "http://[not-an-ip]/x"])
def test_host_of_an_unparsable_url_is_empty(url: str) -> None:
    assert host_of(url) == ""


@pytest.mark.parametrize(
    "data",
    [b"[" * 100_000, b'{"a":' * 2000 + b"1" + b"}" * 2000, b'{"queue_name":"' + b"x" * MB, b"\xff\xfe\x00", b""],
    ids=["deep-list", "deep-object", "unterminated-1mb", "utf16-noise", "empty"],
)
def test_the_encoder_turns_hostile_bytes_into_poison(data: bytes) -> None:
    message: Any = timed(SafeOrjsonEncoder().decode, data)
    assert envelope_problem(message) is None
    assert message["actor_name"] == "poison"


def test_long_class_names_stay_out_of_the_caches() -> None:
    # Cached, one megabyte class attribute per page added up to gigabytes in a long-running worker.
    from workers.extract import boilerplate, lead

    widgets, leads = (
        boilerplate._cached_widget_kind.cache_info().currsize,
        lead._cached_is_lead_name.cache_info().currsize,
    )
    filler = " " + "x" * 10_000
    assert boilerplate.widget_kind("newsletter" + filler) == "newsletter"
    assert lead.is_lead_name("article-lead" + filler) is True
    assert boilerplate._cached_widget_kind.cache_info().currsize == widgets
    assert lead._cached_is_lead_name.cache_info().currsize == leads
    assert boilerplate.widget_kind("newsletter") == "newsletter"  # short names are still cached
    assert boilerplate._cached_widget_kind.cache_info().currsize >= 1


def test_a_few_comment_openers_in_an_attribute_are_kept_as_written() -> None:
    from workers.extract.metadata import parse_html

    kept = "a <!-- b <!-- c"
    tree = parse_html(f"<html><body><p title='{kept}' class='{'<!--x' * 20}'>t</p></body></html>")
    assert tree is not None
    p = next(tree.iter("p"))
    assert p.get("title") == kept
    assert "<!--" not in p.get("class", "") and p.get("class") == "< !--x" * 20
