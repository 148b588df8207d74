"""Hostile input for the fuzz tests: strategies for what the web and the broker may send, and a
clock around each call.

Every reader of outside data must give a clear outcome for anything: a value of its documented
type, or its documented error, never a stray ``IndexError`` or ``RecursionError``, and never take
long.  The strategies mix blind noise (random bytes and text) with shapes that reach deep into
parsers: truncated real documents, token soup of the syntax the parsers look for, deep nesting,
megabyte attributes and the repeated tokens that make backtracking regexes slow.
"""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Callable
from typing import Final, ParamSpec, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

__all__ = [
    "BASE",
    "FUZZ",
    "HOST",
    "LIMIT_S",
    "documents",
    "html_documents",
    "pathological",
    "texts",
    "timed",
    "timed_or_error",
    "urls",
]

P = ParamSpec("P")
T = TypeVar("T")

#: CPU seconds one call may take; normal pages take milliseconds, the runaway regexes took minutes.
#: CPU time of the calling thread, not wall time: a machine busy with other work (CI, a parallel
#: test run) must not fail a bound that is about the input.
LIMIT_S: Final = 2.0
HOST: Final = "news.example.com"
BASE: Final = f"https://{HOST}/section/index.html"

#: Settings of every fuzz test: few examples each (the folder must stay under a minute; set
#: FUZZ_EXAMPLES to search longer), no deadline (each test asserts its own time bound), and the
#: generated megabyte inputs are on purpose.
FUZZ: Final = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def timed(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)``, failing the test when it takes :data:`LIMIT_S` or more.

    An exception passes through: no reader may raise anything it does not document.
    """
    started = time.thread_time()
    value = fn(*args, **kwargs)
    elapsed = time.thread_time() - started
    assert elapsed < LIMIT_S, f"{getattr(fn, '__name__', fn)} took {elapsed:.2f} s"
    return value


def timed_or_error(
    errors: type[BaseException] | tuple[type[BaseException], ...], fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T | BaseException:
    """Like :func:`timed`, but a documented error (one of ``errors``) is returned, not raised."""
    started = time.thread_time()
    try:
        value: T | BaseException = fn(*args, **kwargs)
    except errors as exc:
        value = exc
    elapsed = time.thread_time() - started
    assert elapsed < LIMIT_S, f"{getattr(fn, '__name__', fn)} took {elapsed:.2f} s"
    return value


# --------------------------------------------------------------------------------------------
# Building blocks

# The syntax the parsers and regexes look for, plus the characters that break naive code.
# fmt: off
TOKENS: Final = (
    "<", ">", "</", "/>", "<!DOCTYPE ", "<!doctype html>", "[", "]", "[]", "<!--", "-->", "<?xml ", "?>", "<?",
    "<![CDATA[", "]]>", "<!ENTITY a '", "&", "&amp;", "&#", "&#x", ";", "&lt;", "<html>", "<html/>", "<head>",
    "<body>", "<div>", "</div>", "<p>", "</p>", "<a href='", '<a href="', "'>", '">', "</a>", "<base href='",
    "<link rel='alternate' type='application/rss+xml' href='", "<link rel=next href='", "<meta charset=",
    "<meta name='keywords' content='", "<meta http-equiv='content-type' content='text/html; charset=", "<title>",
    "<script type='application/ld+json'>", '{"@graph":[', "{", "}", '"', "'", "=", "<rss>", "<channel>", "<item>",
    "<link>", "<feed>", "<entry>", "<urlset>", "<sitemapindex>", "<url>", "<loc>", "</loc>", "<lastmod>",
    "<news:publication_date>", "http://", "https://", "//", "/", "?", "#", "%", "%00", "%3b", ";jsessionid=", "..",
    ":", "(", ")", "©", "|", "-", " ", "\t", "\n", "\r", "\x00", "\x0b", "\ufeff", "\u200b", "é", "€", "日本", "12:00",
    "CET", "K", "\u212a", "2025-01-21", "Mon, 20 Jan 2025 17:00:00 GMT", "utf-8", "utf-16", "shift_jis",
    "User-agent: *", "Disallow: /", "Sitemap: ", "Crawl-delay: ", "page", "2", "article", "story-of-the-day",
)
# fmt: on

#: Short documents of each kind the discover and extract stages read, for truncation and mutation.
SAMPLES: Final = (
    b"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Floods - News Example</title>"
    b"<link rel='canonical' href='/world/2025/01/21/floods.html'>"
    b"<link rel='alternate' type='application/rss+xml' href='/feed.xml'>"
    b"<meta property='article:published_time' content='2025-01-21T08:30:00+01:00'>"
    b"<meta name='keywords' content='floods, storms; weather | climate'>"
    b'<script type=\'application/ld+json\'>{"@type":"NewsArticle","datePublished":"2025-01-21T08:30:00Z",'
    b'"author":{"name":"Jane Doe"},"image":"/img/a.jpg"}</script></head>'
    b"<body><nav><a href='/world/'>World</a><a href='/page/2'>Next</a></nav><article><h1>Floods and storms</h1>"
    b"<p class='byline'>By Jane Doe</p><p>Rivers rose across the region on Tuesday as storms moved east, and "
    b"officials said more rain was expected before the weekend.</p><p>Foto: dpa</p>"
    b"<h2><a href='/world/2025/01/20/storm-warnings-issued-for-the-coast.html'>Storm warnings issued</a></h2>"
    b"</article><footer>\xc2\xa9 2025 News Example. All rights reserved.</footer></body></html>",
    b"<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel><title>News</title>"
    b"<item><title>One</title><link>https://news.example.com/a/2025/01/21/one.html</link>"
    b"<pubDate>Tue, 21 Jan 2025 08:30:00 -0500</pubDate></item>"
    b"<item><title type='html'>&lt;b&gt;Two&lt;/b&gt;</title><link>/b/two.html</link>"
    b"<pubDate>21 Jan 2025 08:30 CET</pubDate></item></channel></rss>",
    b"<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom'><title>News</title>"
    b"<entry><title>Three</title><link href='https://news.example.com/c/three.html'/>"
    b"<updated>2025-01-21T08:30:00Z</updated></entry></feed>",
    b'{"version":"https://jsonfeed.org/version/1.1","items":[{"url":"https://news.example.com/j.html",'
    b'"date_published":"2025-01-21T08:30:00Z","title":"J"},{"id":"https://news.example.com/k"}]}',
    b"<?xml version='1.0' encoding='UTF-8'?><urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9' "
    b"xmlns:news='http://www.google.com/schemas/sitemap-news/0.9'><url><loc>https://news.example.com/d.html?a=1&b=2"
    b"</loc><lastmod>2025-01-21</lastmod><news:news><news:publication_date>2025-01-21T08:30:00Z"
    b"</news:publication_date><news:title>D</news:title></news:news></url></urlset>",
    b"<?xml version='1.0'?><sitemapindex xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'><sitemap>"
    b"<loc>https://news.example.com/sitemap-1.xml</loc><lastmod>2025-01-21T08:30:00+00:00</lastmod></sitemap>"
    b"</sitemapindex>",
    b"https://news.example.com/e.html\nhttps://news.example.com/f.html\n",
    b"User-agent: *\nDisallow: /private/\nCrawl-delay: 2\nSitemap: https://news.example.com/sitemap.xml\n"
    b"User-agent: ingest\nAllow: /\nRequest-rate: 1/5\nSitemap: /news-sitemap.xml\n",
)


def _cut(sample: bytes, at: int) -> bytes:
    return sample[: at % (len(sample) + 1)]


def _mutate(sample: bytes, at: int, insert: bytes, drop: int) -> bytes:
    at %= len(sample) + 1
    return sample[:at] + insert + sample[at + drop :]


#: Characters of repetition :func:`pathological` builds at most.  Enough for a quadratic regex to
#: take seconds (32 KB of tabs took the old keyword splitter seven); not so much that feedparser's
#: linear ~35 µs a tag (a megabyte of ``<feed>`` takes six seconds in its loose parser) blows
#: the time bound by itself.
REPEATED_CHARS: Final = 100_000


def pathological() -> st.SearchStrategy[str]:
    """A few tokens repeated many times over: the shape of input that makes regexes backtrack."""
    return st.builds(
        lambda head, unit, times, tail: head + unit * min(times, REPEATED_CHARS // max(len(unit), 1)) + tail,
        st.sampled_from(("", *TOKENS)),
        st.lists(st.sampled_from(TOKENS), min_size=1, max_size=4).map("".join),
        st.integers(min_value=1, max_value=200_000),
        st.sampled_from(("", ">", "]", "x", "\x00", "-->", "?>")),
    )


def texts() -> st.SearchStrategy[str]:
    """Strings of any kind: noise, token soup and pathological repetition."""
    return st.one_of(
        st.text(max_size=300),
        st.lists(st.sampled_from(TOKENS), max_size=60).map("".join),
        pathological(),
    )


def _nested(tag: str, depth: int, closed: bool, inner: str) -> bytes:
    tail = f"</{tag}>" * depth if closed else ""
    return f"<html><body>{f'<{tag}>' * depth}{inner}{tail}</body></html>".encode()


def _huge_attribute(name: str, value_char: str, size: int, element: str) -> bytes:
    value = value_char * size
    return (
        f"<html><head><meta name='keywords' content='{value if name == 'content' else 'a'}'></head><body>"
        f"<{element} {name}='{value}' href='/x/a-story-about-things.html'>text of it</{element}></body></html>"
    ).encode()


def documents() -> st.SearchStrategy[bytes]:
    """Bodies a fetch may return: of every kind discovery reads, whole, cut, mutated, compressed or garbage."""
    sample = st.sampled_from(SAMPLES)
    return st.one_of(
        st.binary(max_size=2000),
        sample,
        st.builds(_cut, sample, st.integers(min_value=0)),
        st.builds(
            _mutate, sample, st.integers(min_value=0), st.sampled_from(TOKENS).map(str.encode), st.integers(0, 40)
        ),
        st.builds(lambda s, at: gzip.compress(s)[: at % 400 + 10], sample, st.integers(min_value=0)),
        sample.map(gzip.compress),
        sample.map(lambda s: gzip.compress(gzip.compress(s))),
        sample.map(lambda s: "\ufeff".encode("utf-16-le") + s.decode("utf-8", "replace").encode("utf-16-le")),
        texts().map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.builds(
            _nested,
            st.sampled_from(("div", "rss", "url", "a", "b", "table", "ul")),
            st.integers(1, 5000),
            st.booleans(),
            st.sampled_from(("<a href='/a/b-c-d-e.html'>x</a>", "<p>text</p>", "")),
        ),
    )


def html_documents() -> st.SearchStrategy[bytes]:
    """HTML pages, including deep nesting and megabyte attributes, and everything :func:`documents` gives."""
    return st.one_of(
        documents(),
        st.builds(
            _huge_attribute,
            st.sampled_from(("class", "id", "href", "content", "title", "style")),
            st.sampled_from(("a", " ", "\t", "<", "-", "é", "%")),
            st.integers(min_value=1, max_value=1_000_000),
            st.sampled_from(("a", "div", "p", "img", "link")),
        ),
    )


def urls() -> st.SearchStrategy[str]:
    """URL-shaped strings: plausible ones, broken ones, and noise."""
    part = st.text(st.sampled_from("aZ09-._~:/?#[]@!$&'()*+,;=% \t\né日\x00\\"), max_size=40)
    return st.one_of(
        st.builds(
            lambda scheme, host, path: f"{scheme}{host}{path}",
            st.sampled_from(
                ("http://", "https://", "HTTP://", "ftp://", "", "//", "http:/", "javascript:", "https:///")
            ),
            st.sampled_from(
                (
                    HOST,
                    "WWW.Example.ORG",
                    "xn--bcher-kva.example",
                    "bücher.example",
                    "127.0.0.1",
                    "[::1]",
                    "[",
                    "a:b@host",
                    "host:99999",
                    "host:0",
                    "",
                    "a" * 300,
                    "例え.テスト",
                )
            ),
            part,
        ),
        texts(),
        st.builds(lambda n: f"https://{HOST}/" + "a/" * n, st.integers(0, 2000)),
    )
