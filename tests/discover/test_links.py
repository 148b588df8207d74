"""Link discovery on listing pages: URL shapes, pagination, context, junk, and the fixture site."""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.site import build_site, corpus_articles, corpus_dir, section_page_path
from workers.core.urls import InvalidURL, host_of, normalize_url
from workers.discover.links import ARTICLE, LISTING, Link, classify_url, discover_links
from workers.discover.pages import Found, admissible

BASE = "https://news.example.com"
HOSTS = frozenset({"news.example.com"})


def links(body: str | bytes, page: str = BASE + "/world/", hosts: frozenset[str] = HOSTS) -> list[Link]:
    return discover_links(body, page, allowed_hosts=hosts)


def kinds(body: str | bytes, page: str = BASE + "/world/") -> dict[str, str]:
    return {link.url.removeprefix(BASE): link.kind for link in links(body, page)}


# --- classify_url -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/world/2025/01/21/some-slug-12.html",
        "/2025/01/21/budget/",
        "/politics/2024/11/05/election-night-live",
        "/news/uk-politics-12345678",
        "/some-long-article-slug",
        "/world/europe/floods-leave-thousands-homeless/",
        "/story.php?id=12345",
        "/index.php?p=4711",
        "/wirtschaft/zinsen-steigen.html",
        "/blog/2020-10-18-cdpath-replacement/",
        "/thema/vw-chef-warnt-vor-tesla/497533355",
        "/2021/03/08/uk/meghan-harry-oprah-interview/index.html",
        "/articles/pipenv-docker",
        "/a/0a12df42d1764095989ab078ee0f940b",
        "/welt/%C3%BCberschwemmung-in-der-stadt-heute/",
        "/sport/football/transfer-news-live-updates",
    ],
)
def test_article_shaped_urls(path: str) -> None:
    assert classify_url(BASE + path) == ARTICLE


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/world/",
        "/world",
        "/sport/football/",
        "/world/middle-east/",
        "/lifestyle/food-and-drink/",
        "/category/food-and-drink-recipes",
        "/topics/climate",
        "/2025/01/",
        "/2025/",
        "/index.html",
        "/world/index.html",
        "/world/page/2/",
        "/world/?page=3",
        "/?paged=4",
        "/p/4",
        "/news/seite-2",
        "/world/2/",
        "/category/science?page=7",
    ],
)
def test_listing_shaped_urls(path: str) -> None:
    assert classify_url(BASE + path) == LISTING


@pytest.mark.parametrize(
    "path",
    [
        "/login",
        "/login?next=%2F",
        "/search?q=storm",
        "/?s=storm",
        "/tag/elections/",
        "/tags/",
        "/author/jane-doe",
        "/about",
        "/contact/",
        "/privacy",
        "/impressum",
        "/feed/",
        "/rss",
        "/img/photo.jpg",
        "/static/site.css",
        "/static/app.js",
        "/files/report-2024-final.pdf",
        "/feeds/world.xml",
        "/world/2025/01/21/some-slug-12.html?share=twitter",
        "/print/world/2025/01/21/some-slug",
        "/world/some-long-article-slug/comments/",
        "/world/some-long-article-slug?page=2",
        "/2019/43/klimaschutz-banken-unternehmen/seite-2",
        "/wp-admin/",
        "/a/b/c/d",
    ],
)
def test_junk_and_undecided_urls_are_not_followed(path: str) -> None:
    assert classify_url(BASE + path) is None


def test_classify_url_refuses_non_http() -> None:
    assert classify_url("ftp://news.example.com/world/2025/01/21/story-title-here") is None
    assert classify_url("mailto:desk@news.example.com") is None


def test_real_article_urls_mostly_look_like_articles() -> None:
    """A floor on the corpus's own article URLs (news, blogs, corporate pages): 85% measured."""
    pages = json.loads((corpus_dir() / "annotations.json").read_text(encoding="utf-8"))["pages"]
    urls = []
    for page in pages:
        try:
            urls.append(normalize_url(page["url"]))
        except InvalidURL:
            continue
    articles = sum(classify_url(u) == ARTICLE for u in urls)
    assert len(urls) > 250 and articles / len(urls) >= 0.8


# --- pagination ---------------------------------------------------------------------------


def test_rel_next_and_prev_on_anchors_and_link_elements() -> None:
    body = """<html><head><link rel="next" href="/a/b/c/next-one"><link rel="stylesheet" href="/x/y/z">
    </head><body><a rel="prev nofollow" href="/a/b/c/prev-one">newer</a></body></html>"""
    assert kinds(body) == {"/a/b/c/next-one": LISTING, "/a/b/c/prev-one": LISTING}


@pytest.mark.parametrize(
    "text", ["Next", "next page", "Older posts", "»", "›", "→", "Weiter", "Suivant", "Siguiente", "Następna ›"]
)
def test_pagination_anchor_texts(text: str) -> None:
    # /a/b/c/d has no telling shape: only the anchor text can make it a listing page.
    assert kinds(f'<p><a href="/a/b/c/d">{text}</a></p>') == {"/a/b/c/d": LISTING}


def test_read_more_is_not_pagination() -> None:
    assert kinds('<p><a href="/a/b/c/d">Read more</a> <a href="/a/b/c/e">Weiterlesen</a></p>') == {}


def test_bare_numbers_count_only_inside_a_pagination_container() -> None:
    # /list/x1/2 is no pagination URL pattern (x1 is not a section name): the container decides.
    body = """<div class="pager"><a href="/list/x1/2">2</a><a href="/list/x1/3">3</a></div>
    <nav aria-label="Pagination"><a href="/list/x2/4">4</a></nav>
    <p><a href="/list/x3/5">5</a></p>"""
    assert kinds(body) == {"/list/x1/2": LISTING, "/list/x1/3": LISTING, "/list/x2/4": LISTING}


def test_pagination_url_patterns_without_any_markup() -> None:
    body = '<a href="?page=2">x</a> <a href="/world/page/3/">x</a> <a href="/p/4">x</a> <a href="/seite/5">x</a>'
    assert kinds(body) == {"/world/?page=2": LISTING, "/world/page/3/": LISTING, "/p/4": LISTING, "/seite/5": LISTING}


# --- context ------------------------------------------------------------------------------


def test_undecided_urls_become_articles_under_headlines_and_in_teasers() -> None:
    body = """<h2><a href="/politik/klimaschutz.html">Klimaschutz</a></h2>
    <article><a href="/a/b/c/d">A story</a></article>
    <div class="teaser-card"><a href="/e/f/g/h">Another story</a></div>
    <nav><a href="/i/j/k/l">Menu entry</a></nav>
    <p><a href="/m/n/o/p">Plain link</a></p>"""
    assert kinds(body) == {"/politik/klimaschutz.html": ARTICLE, "/a/b/c/d": ARTICLE, "/e/f/g/h": ARTICLE}


def test_sections_stay_listings_inside_teasers_unless_the_headline_is_a_sentence() -> None:
    body = """<article class="teaser"><a class="kicker" href="/science/">Science</a>
      <h2><a href="/fische-schmerzen/">Empfinden Fische Schmerzen? Eine neue Studie</a></h2></article>
    <h2><a href="/middle-east/">Middle East</a></h2>"""
    assert kinds(body) == {"/science/": LISTING, "/fische-schmerzen/": ARTICLE, "/middle-east/": LISTING}


# --- resolution, hosts, junk, duplicates ----------------------------------------------------


def test_relative_links_and_base_href() -> None:
    plain = '<a href="2025/01/02/a-long-story-title">s</a> <a href="../culture/">c</a>'
    assert kinds(plain, BASE + "/world/") == {"/world/2025/01/02/a-long-story-title": ARTICLE, "/culture/": LISTING}
    based = '<head><base href="/archive/world/"></head>' + plain
    assert kinds(based, BASE + "/world/") == {
        "/archive/world/2025/01/02/a-long-story-title": ARTICLE,
        "/archive/culture/": LISTING,
    }
    absolute_base = '<base href="https://news.example.com/sport/">' + plain
    assert kinds(absolute_base, BASE + "/world/") == {
        "/sport/2025/01/02/a-long-story-title": ARTICLE,
        "/culture/": LISTING,
    }


def test_other_hosts_are_dropped_and_allowed_hosts_are_kept() -> None:
    body = """<a href="https://other.example.org/world/2025/01/02/a-long-story-title">o</a>
    <a href="//cdn.example.com/world/2025/01/02/a-long-story-title">p</a>
    <a href="https://WWW.news.example.com/world/2025/01/02/another-long-story">w</a>
    <a href="https://news.example.com:443/sport/">s</a>"""
    found = links(body, hosts=frozenset({"news.example.com", "www.news.example.com"}))
    assert [(link.url, link.kind) for link in found] == [
        ("https://www.news.example.com/world/2025/01/02/another-long-story", ARTICLE),
        ("https://news.example.com/sport/", LISTING),
    ]


def test_a_wildcard_host_admits_the_domain_and_its_subdomains_only() -> None:
    body = """<a href="https://sport.example.com/2025/01/02/a-long-story-title">s</a>
    <a href="https://example.com/world/2025/01/02/another-long-story">d</a>
    <a href="https://example.com.evil.org/world/2025/01/02/a-long-story-title">e</a>
    <a href="https://notexample.com/world/2025/01/02/a-long-story-title">n</a>"""
    found = links(body, hosts=frozenset({"*.example.com"}))
    assert [link.url for link in found] == [
        "https://sport.example.com/2025/01/02/a-long-story-title",
        "https://example.com/world/2025/01/02/another-long-story",
    ]


def test_junk_links_are_dropped() -> None:
    body = """<a href="mailto:desk@news.example.com">m</a> <a href="javascript:void(0)">j</a>
    <a href="tel:+44123">t</a> <a href="#top">top</a> <a href="">empty</a> <a>no href</a>
    <a href="/login?next=/">Sign in</a> <a href="/search?q=x">Search</a> <a href="/tag/climate/">climate</a>
    <a href="/feed/">RSS</a> <a href="/media/photo-of-the-day.jpg">photo</a> <a href="/about">About</a>
    <a href="/world/2025/01/02/a-long-story-title?share=facebook">share</a>
    <a href="http://[::1">broken</a> <a href="https://news.example.com:99999/x">bad port</a>
    <a href="https://user:pw@news.example.com/world/">creds</a>
    <a href="/world/2025/01/02/the-only-real-story">story</a>"""
    assert kinds(body) == {"/world/2025/01/02/the-only-real-story": ARTICLE}


def test_each_url_once_in_document_order_with_the_first_anchor_text() -> None:
    body = """<a href="/world/2025/01/02/first-long-story" aria-hidden="true"><img src="x.jpg" alt=""></a>
    <h2><a href="https://news.example.com/world/2025/01/02/first-long-story?utm_source=x">First
       story   headline</a></h2>
    <a href="/culture/">Culture</a>
    <a href="/world/2025/01/02/first-long-story#comments">12 comments</a>
    <a href="/culture/#top">Culture again</a>
    <a href="/world/2025/01/03/second-long-story">Second</a>"""
    assert links(body) == [
        Link(BASE + "/world/2025/01/02/first-long-story", ARTICLE, "First story headline"),
        Link(BASE + "/culture/", LISTING, "Culture"),
        Link(BASE + "/world/2025/01/03/second-long-story", ARTICLE, "Second"),
    ]


def test_the_page_itself_is_not_a_link() -> None:
    assert kinds('<a href="/world/">World</a><a href="./">Here</a><a href="/science/">S</a>') == {"/science/": LISTING}


def test_legacy_encodings_are_decoded_for_anchor_text() -> None:
    body = '<meta charset="windows-1252"><h2><a href="/welt/2025/01/02/caf-story-title">Café</a></h2>'
    assert [link.text for link in links(body.encode("cp1252"))] == ["Café"]


@pytest.mark.parametrize(
    "garbage",
    [b"", b"   \n", "", b"\x00\x01\x02\xff" * 500, bytes(range(256)) * 20, "<<<>>>", b"\xef\xbb\xbf"],
)
def test_garbage_gives_no_links(garbage: str | bytes) -> None:
    assert links(garbage) == []


def test_an_unusable_page_url_gives_no_links() -> None:
    assert discover_links('<a href="/world/">w</a>', "not a url", allowed_hosts=HOSTS) == []


@settings(max_examples=150, deadline=None, database=None)
@given(st.one_of(st.binary(max_size=2000), st.text(max_size=2000)))
def test_never_crashes_on_arbitrary_input(data: str | bytes) -> None:
    for link in links(data):
        assert link.kind in (ARTICLE, LISTING)


@settings(max_examples=100, deadline=None, database=None)
@given(
    st.lists(st.sampled_from(["/world/", "/a-b-c-d", "?page=2", "#x", "../", "//evil.example/", "/tag/x"]), max_size=30)
)
def test_output_is_unique_and_on_allowed_hosts(hrefs: list[str]) -> None:
    body = "".join(f'<a href="{h}">t</a>' for h in hrefs)
    found = links(body)
    assert len({link.url for link in found}) == len(found)
    assert all(link.url.startswith(BASE + "/") for link in found)


# --- the fixture site ---------------------------------------------------------------------


def test_section_pages_yield_exactly_their_articles_and_pagination() -> None:
    site = build_site(corpus_articles(47), per_page=4)
    origin = "http://127.0.0.1:8123"
    for section in site.sections:
        items = site.by_section[section]
        count = -(-len(items) // site.per_page)
        for number in range(1, count + 1):
            path = section_page_path(section, number)
            found = discover_links(site.pages[path][0], origin + path, allowed_hosts=frozenset({"127.0.0.1"}))
            articles = [link.url for link in found if link.kind == ARTICLE]
            listings = {link.url.removeprefix(origin) for link in found if link.kind == LISTING}
            shown = items[(number - 1) * site.per_page : number * site.per_page]
            assert articles == [origin + a.path for a in shown], path
            assert listings <= set(site.listing_paths) - {path}
            assert {"/", *(f"/{s}/" for s in site.sections)} - {path} <= listings
            if number > 1:
                assert section_page_path(section, number - 1) in listings
            if number < count:
                assert section_page_path(section, number + 1) in listings
            assert all(link.text for link in found if link.kind == ARTICLE)


def test_front_page_yields_the_newest_articles_and_the_sections() -> None:
    site = build_site(corpus_articles(20), per_page=4)
    found = discover_links(site.pages["/"][0], "http://127.0.0.1:8123/", allowed_hosts=frozenset({"127.0.0.1"}))
    assert [link.url for link in found if link.kind == ARTICLE] == [
        "http://127.0.0.1:8123" + a.path for a in site.articles[:6]
    ]
    assert {link.url for link in found if link.kind == LISTING} == {
        f"http://127.0.0.1:8123/{s}/" for s in site.sections
    }


def test_real_pages_at_their_original_urls() -> None:
    """Every 10th corpus page, as if fetched from its original URL: unique on-host links of both kinds."""
    root = corpus_dir()
    pages = json.loads((root / "annotations.json").read_text(encoding="utf-8"))["pages"][::10]
    seen_kinds: set[str] = set()
    for page in pages:
        if not page["url"].startswith("http"):
            continue
        host = host_of(page["url"])
        found = discover_links(
            gzip.decompress((root / "html" / page["local_file"]).read_bytes()),
            page["url"],
            allowed_hosts=frozenset({host}),
        )
        assert len({link.url for link in found}) == len(found)
        assert all(host_of(link.url) == host for link in found)
        seen_kinds.update(link.kind for link in found)
    assert seen_kinds == {ARTICLE, LISTING}


def test_admissible_follows_a_wildcard_source_onto_subdomains() -> None:
    found = [
        Found("https://sport.example.com/2025/01/02/a-long-story-title", "article", "listing"),
        Found("https://other.org/2025/01/02/a-long-story-title", "article", "listing"),
    ]
    kept = admissible(found, allowed_hosts=frozenset({"*.example.com"}), source=None)
    assert [item.url for item in kept] == ["https://sport.example.com/2025/01/02/a-long-story-title"]
