"""A fixture news site on 127.0.0.1, built from real article pages, for integration tests and benchmarks.

``corpus_articles()`` turns the annotated corpus (``INGEST_CORPUS_DIR``, default
/work/shared/corpus/trafilatura-eval) into article pages at news-like paths; ``build_site()`` wraps
them in a front page, paginated section listings with teaser cards and a few footer pages; and
``serve_site()`` serves the result with a real HTTP server in a daemon thread, recording every
request. Everything is deterministic: the same arguments give byte-identical pages.

Hooks for richer fixtures (``tests/site_feeds.py`` adds feeds, sitemaps, robots.txt and a calendar
trap through them): ``Site.dynamic`` routes computed per request, ``Site.unlisted`` articles kept
off the listings, ``Site.front_head``/``front_extra`` HTML for the front page, and
``Site.on_publish`` callbacks that :func:`add_article` calls.
"""

from __future__ import annotations

import codecs
import functools
import gzip
import html
import json
import os
import random
import re
import socket
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = [
    "CORPUS_ENV",
    "DEFAULT_SECTIONS",
    "ArticleSpec",
    "CorpusMissing",
    "DynamicRoute",
    "Site",
    "SiteServer",
    "add_article",
    "build_site",
    "corpus_articles",
    "corpus_dir",
    "render_listings",
    "render_page",
    "section_page_path",
    "serve_site",
    "teaser_html",
]

CORPUS_ENV = "INGEST_CORPUS_DIR"
DEFAULT_CORPUS_DIR = "/work/shared/corpus/trafilatura-eval"
DEFAULT_SECTIONS = ("world", "culture", "science")
#: Article 0 is dated this day; every further round of sections is one day older.
NEWEST_DAY = date(2025, 1, 21)
FRONT_PAGE_TEASERS = 6
UTF8_HTML = "text/html; charset=utf-8"


class CorpusMissing(RuntimeError):
    """The annotated corpus is not where ``INGEST_CORPUS_DIR`` says it is."""


@dataclass(frozen=True)
class ArticleSpec:
    """One article page of the fixture site and what extraction must (not) find in it."""

    path: str  #: site-relative URL path, e.g. "/world/2025/01/21/some-slug-12.html"
    html: bytes  #: the full page, in its own encoding
    title: str
    must_have: tuple[str, ...]  #: snippets that must be in the extracted text
    must_not: tuple[str, ...]  #: teaser/boilerplate snippets that must not be


# --------------------------------------------------------------------------------------------
# Corpus


@dataclass(frozen=True)
class _BasePage:
    html: bytes
    title: str
    slug: str
    must_have: tuple[str, ...]
    must_not: tuple[str, ...]
    title_end: int | None  # offset of </title>, where the title marker goes
    marker_at: tuple[int, ...]  # offsets (in the body) where the text marker goes


_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.IGNORECASE)
_TITLE_OPEN = re.compile(rb"<title(?:\s[^>]*)?>", re.IGNORECASE)
_TITLE_CLOSE = re.compile(rb"</title\s*>", re.IGNORECASE)
_BODY_OPEN = re.compile(rb"<body(?:\s[^>]*)?>", re.IGNORECASE)
_P_OPEN = re.compile(rb"<p(?:\s[^>]*)?>", re.IGNORECASE)
_P_END = re.compile(rb"</?p[\s>/]", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_NON_SLUG = re.compile(r"[^a-z0-9]+")
# Letters NFKD does not take apart into an ASCII base letter.
_FOLD = str.maketrans({"ß": "ss", "æ": "ae", "ø": "o", "œ": "oe", "ł": "l", "đ": "d", "þ": "th"})


def corpus_dir() -> Path:
    """The corpus folder from ``INGEST_CORPUS_DIR`` (or the default); raises if it is not there."""
    path = Path(os.environ.get(CORPUS_ENV) or DEFAULT_CORPUS_DIR)
    if not (path / "annotations.json").is_file() or not (path / "html").is_dir():
        raise CorpusMissing(
            f"article corpus not found at {path} (expected annotations.json and html/*.html.gz); "
            f"set {CORPUS_ENV} to the trafilatura-eval folder"
        )
    return path


def corpus_articles(n: int | None = None, *, unique_marker: bool = False, seed: int = 0) -> list[ArticleSpec]:
    """``n`` article pages (all corpus pages once if None; they repeat past the corpus size).

    Paths are unique and article-shaped (``/<section>/<yyyy>/<mm>/<dd>/<slug>-<i>.html``), newest
    first. With ``unique_marker`` copy ``i`` carries "[copy 000i]" in its <title> and at the start
    of the body paragraphs that hold its ``must_have`` snippets, so every copy has distinct content.
    ``seed`` shuffles which corpus page comes first (0 keeps the corpus order).
    """
    if n is not None and n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    base = _load_corpus(str(corpus_dir()))
    order = list(range(len(base)))
    if seed:
        random.Random(seed).shuffle(order)
    count = len(base) if n is None else n
    specs = []
    for i in range(count):
        page = base[order[i % len(base)]]
        section = DEFAULT_SECTIONS[i % len(DEFAULT_SECTIONS)]
        day = NEWEST_DAY - timedelta(days=i // len(DEFAULT_SECTIONS))
        path = f"/{section}/{day:%Y/%m/%d}/{page.slug}-{i}.html"
        if unique_marker:
            marker = f"[copy {i:04d}]"
            specs.append(
                ArticleSpec(path, _with_marker(page, marker), f"{page.title} {marker}", page.must_have, page.must_not)
            )
        else:
            specs.append(ArticleSpec(path, page.html, page.title, page.must_have, page.must_not))
    return specs


def _with_marker(page: _BasePage, marker: str) -> bytes:
    # ASCII only, inserted between tags or before text: valid in every encoding the corpus uses.
    mark = marker.encode("ascii")
    inserts = [(at, mark + b" ") for at in page.marker_at]
    if page.title_end is not None:
        inserts.append((page.title_end, b" " + mark))
    inserts.sort()
    parts, prev = [], 0
    for at, data in inserts:
        parts += [page.html[prev:at], data]
        prev = at
    parts.append(page.html[prev:])
    return b"".join(parts)


@functools.lru_cache(maxsize=4)
def _load_corpus(path: str) -> tuple[_BasePage, ...]:
    root = Path(path)
    meta = json.loads((root / "annotations.json").read_text(encoding="utf-8"))
    pages = []
    for entry in meta["pages"]:
        data = gzip.decompress((root / "html" / entry["local_file"]).read_bytes())
        pages.append(_base_page(data, entry))
    return tuple(pages)


def _base_page(data: bytes, entry: dict[str, Any]) -> _BasePage:
    encoding = _page_encoding(data)
    body = _BODY_OPEN.search(data)
    body_at = body.end() if body else 0
    title_end = None
    title_text = ""
    opening = _TITLE_OPEN.search(data, 0, body_at or len(data))
    if opening:
        closing = _TITLE_CLOSE.search(data, opening.end())
        if closing:
            title_end = closing.start()
            title_text = _text(data[opening.end() : closing.start()], encoding)
    title = " ".join(str(entry.get("title") or "").split()) or title_text or "Untitled story"
    must_have = tuple(entry["with"])
    return _BasePage(
        html=data,
        title=title,
        slug=_slug(title, str(entry.get("url", ""))),
        must_have=must_have,
        must_not=tuple(entry["without"]),
        title_end=title_end,
        marker_at=_marker_offsets(data, encoding, body_at, must_have),
    )


def _marker_offsets(data: bytes, encoding: str, body_at: int, must_have: Sequence[str]) -> tuple[int, ...]:
    """Where to put the copy marker so it lands in the extracted text: at the start of every <p>
    holding a must-have snippet (one of them may be a teaser the extractor drops), else before the
    snippet itself, else in the first substantial paragraph."""
    probes = [" ".join(s.split())[:30] for s in must_have]
    holding: list[int] = []
    first_long: int | None = None
    for opening in _P_OPEN.finditer(data, body_at):
        end = _P_END.search(data, opening.end())
        text = _text(data[opening.end() : end.start() if end else len(data)], encoding)
        if any(p and p in text for p in probes):
            holding.append(opening.end())
        elif first_long is None and len(text) >= 80:
            first_long = opening.end()
    if holding:
        return tuple(holding)
    literal = [data.find(p.encode(encoding, "ignore"), body_at) for p in probes if p]
    found = sorted({at for at in literal if at >= 0})
    if found:
        return tuple(found)
    return (first_long if first_long is not None else body_at,)


def _page_encoding(data: bytes) -> str:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        declared = _META_CHARSET.search(data, 0, 65536)
        if declared:
            try:
                return codecs.lookup(declared.group(1).decode("ascii")).name
            except LookupError:
                pass
        return "cp1252"
    return "utf-8"


def _text(fragment: bytes, encoding: str) -> str:
    return " ".join(html.unescape(_TAG.sub(" ", fragment.decode(encoding, "replace"))).split())


def _slug(title: str, url: str) -> str:
    """A few ASCII words from the title (or the original URL) joined by hyphens."""
    folded = unicodedata.normalize("NFKD", title.lower().translate(_FOLD))
    ascii_title = folded.encode("ascii", "ignore").decode()
    words = [w for w in _NON_SLUG.split(ascii_title) if w][:7]
    if len(words) < 3:
        last = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1].split(".", 1)[0].lower()
        words += [w for w in _NON_SLUG.split(last) if w.isalpha()][:5]
    words += ["news", "report", "update"][: max(0, 3 - len(words))]
    return "-".join(words)


# --------------------------------------------------------------------------------------------
# The site


#: A computed route: (path, origin such as "http://127.0.0.1:8123") -> (body, content type), or None
#: when the path is not its own. Consulted, in order, for paths not in ``Site.pages``.
DynamicRoute = Callable[[str, str], tuple[bytes, str] | None]


@dataclass
class Site:
    """All pages of the fixture site; ``pages`` may be changed while it is being served."""

    pages: dict[str, tuple[bytes, str]]  #: path -> (body, content type)
    articles: list[ArticleSpec]  #: newest first
    listing_paths: list[str]  #: "/" and every page of every section
    sections: tuple[str, ...] = DEFAULT_SECTIONS
    per_page: int = 10
    by_section: dict[str, list[ArticleSpec]] = field(default_factory=dict)  #: newest first
    section_of: dict[str, str] = field(default_factory=dict)  #: article path -> its section
    #: Article paths served but left off the front page and the section listings.
    unlisted: set[str] = field(default_factory=set)
    front_head: str = ""  #: extra HTML for the front page's <head>
    front_extra: str = ""  #: extra HTML at the end of the front page's <main>
    dynamic: list[DynamicRoute] = field(default_factory=list)
    #: Called as ``hook(spec, syndicate)`` by :func:`add_article` after the listings are updated.
    on_publish: list[Callable[[ArticleSpec, bool], None]] = field(default_factory=list)


def build_site(
    articles: Sequence[ArticleSpec], *, sections: Sequence[str] = DEFAULT_SECTIONS, per_page: int = 10
) -> Site:
    """A front page, paginated section listings and footer pages around ``articles`` (newest first).

    An article goes to the section named by its path's first segment, or round-robin otherwise.
    """
    if not sections or per_page < 1:
        raise ValueError("need at least one section and per_page >= 1")
    paths = [a.path for a in articles]
    if len(set(paths)) != len(paths):
        raise ValueError("article paths must be unique")
    site = Site(pages={}, articles=list(articles), listing_paths=["/"], sections=tuple(sections), per_page=per_page)
    site.by_section = {s: [] for s in site.sections}
    for i, spec in enumerate(site.articles):
        site.section_of[spec.path] = _section_of(spec, site.sections, i)
        site.by_section[site.section_of[spec.path]].append(spec)
        site.pages[spec.path] = (spec.html, _content_type(spec.html))
    for name, title, text in _STATIC_PAGES:
        site.pages[name] = (_layout(title, f"<main><h1>{title}</h1><p>{text}</p></main>", site.sections), UTF8_HTML)
    for section in site.sections:
        _render_section(site, section)
    _render_front(site)
    return site


def add_article(site: Site, spec: ArticleSpec, *, listed: bool = True, syndicate: bool = False) -> None:
    """Publish ``spec``: it becomes the newest article, first on its section's first page.

    ``listed=False`` keeps it off the listings (reachable only through feeds or sitemaps);
    ``syndicate=True`` also puts it into the feeds and the news sitemap, which needs a site with
    discovery sources (``tests.support.site_feeds.add_discovery_sources``).
    """
    if spec.path in site.pages:
        raise ValueError(f"path already on the site: {spec.path}")
    if syndicate and not site.on_publish:
        raise ValueError("syndicate=True needs feeds and sitemaps: call add_discovery_sources(site) first")
    section = site.section_of[spec.path] = _section_of(spec, site.sections, len(site.articles))
    site.articles.insert(0, spec)
    site.by_section[section].insert(0, spec)
    site.pages[spec.path] = (spec.html, _content_type(spec.html))
    if listed:
        _render_section(site, section)
        _render_front(site)
    else:
        site.unlisted.add(spec.path)
    for hook in site.on_publish:
        hook(spec, syndicate)


def render_listings(site: Site) -> None:
    """Render the front page and every section listing again (after ``unlisted``, ``front_head`` or
    ``front_extra`` changed); section pages no longer needed leave ``pages`` and ``listing_paths``."""
    before = set(site.listing_paths)
    site.listing_paths = ["/"]
    for section in site.sections:
        _render_section(site, section)
    for path in before - set(site.listing_paths):
        site.pages.pop(path, None)
    _render_front(site)


def render_page(site: Site, title: str, main: str, head: str = "") -> bytes:
    """A page of the site around ``main`` (header, section navigation, footer), UTF-8."""
    return _layout(title, main, site.sections, head)


def teaser_html(site: Site, spec: ArticleSpec, heading: str = "h2") -> str:
    """The teaser card the listings show for ``spec``."""
    return _teaser(spec, site.section_of.get(spec.path, site.sections[0]), heading)


def section_page_path(section: str, number: int) -> str:
    """Path of page ``number`` (1-based) of a section listing."""
    return f"/{section}/" if number == 1 else f"/{section}/page/{number}/"


def _section_of(spec: ArticleSpec, sections: tuple[str, ...], index: int) -> str:
    first = spec.path.strip("/").split("/", 1)[0]
    return first if first in sections else sections[index % len(sections)]


def _content_type(page: bytes) -> str:
    if page.startswith(codecs.BOM_UTF8):
        return UTF8_HTML
    declared = _META_CHARSET.search(page, 0, 65536)
    return f"text/html; charset={declared.group(1).decode('ascii').lower()}" if declared else "text/html"


def _render_section(site: Site, section: str) -> None:
    items = [spec for spec in site.by_section[section] if spec.path not in site.unlisted]
    count = max(1, -(-len(items) // site.per_page))
    for number in range(1, count + 1):
        path = section_page_path(section, number)
        if path not in site.listing_paths:
            site.listing_paths.append(path)
        chunk = items[(number - 1) * site.per_page : number * site.per_page]
        cards = "\n".join(_teaser(spec, section, "h2") for spec in chunk)
        label = section.replace("-", " ").title()
        heading = label if number == 1 else f"{label} – page {number} of {count}"
        head = "".join(
            f'<link rel="{rel}" href="{section_page_path(section, other)}">'
            for rel, other in (("prev", number - 1), ("next", number + 1))
            if 1 <= other <= count
        )
        main = (
            f'<main class="section-page"><h1 class="section-page__title">{heading}</h1>\n'
            f'<div class="teaser-list">\n{cards}\n</div>\n{_pagination(section, number, count)}</main>\n'
            f"{_TAG_CLOUD}"
        )
        site.pages[path] = (_layout(heading, main, site.sections, head), UTF8_HTML)


def _render_front(site: Site) -> None:
    newest = [spec for spec in site.articles if spec.path not in site.unlisted][:FRONT_PAGE_TEASERS]
    cards = "\n".join(
        _teaser(spec, site.section_of[spec.path], "h2" if i == 0 else "h3") for i, spec in enumerate(newest)
    )
    blocks = "".join(
        f'<section class="section-block"><h2 class="section-block__title">'
        f'<a href="/{s}/">{s.replace("-", " ").title()}</a></h2></section>\n'
        for s in site.sections
    )
    main = (
        f'<main class="front"><h1 class="visually-hidden">Top stories</h1>\n{cards}\n{blocks}{site.front_extra}</main>'
    )
    site.pages["/"] = (_layout("Top stories", main, site.sections, site.front_head), UTF8_HTML)


_DATE_IN_PATH = re.compile(r"/(\d{4})/(\d{2})/(\d{2})/")


def _teaser(spec: ArticleSpec, section: str, heading: str) -> str:
    href = html.escape(spec.path)
    title = html.escape(spec.title)
    summary = " ".join((spec.must_have[0] if spec.must_have else "").split())
    if len(summary) > 160:
        summary = summary[:157].rsplit(" ", 1)[0] + "…"
    dated = _DATE_IN_PATH.search(spec.path)
    when = ""
    if dated:
        day = date(int(dated[1]), int(dated[2]), int(dated[3]))
        when = f'<time datetime="{day.isoformat()}">{day.day} {day:%B %Y}</time> · '
    stem = spec.path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return (
        f'<article class="teaser teaser--{heading}">\n'
        f'  <a class="teaser__media" href="{href}" tabindex="-1" aria-hidden="true">'
        f'<img src="/media/{html.escape(stem)}-640x360.jpg" alt="" width="640" height="360" loading="lazy"></a>\n'
        f'  <div class="teaser__body">\n'
        f'    <a class="teaser__kicker" href="/{section}/">{section.replace("-", " ").title()}</a>\n'
        f'    <{heading} class="teaser__headline"><a href="{href}">{title}</a></{heading}>\n'
        f'    <p class="teaser__summary">{html.escape(summary)}</p>\n'
        f'    <footer class="teaser__meta">{when}<a href="{href}#comments">Comments</a></footer>\n'
        f"  </div>\n</article>"
    )


def _pagination(section: str, current: int, count: int) -> str:
    if count == 1:
        return ""
    shown = sorted({1, count, *range(max(1, current - 2), min(count, current + 2) + 1)})
    parts = []
    if current > 1:
        parts.append(
            f'<a class="pagination__prev" rel="prev" href="{section_page_path(section, current - 1)}">‹ Previous</a>'
        )
    previous = 0
    for number in shown:
        if number > previous + 1:
            parts.append('<span class="pagination__gap">…</span>')
        if number == current:
            parts.append(f'<span class="pagination__current" aria-current="page">{number}</span>')
        else:
            parts.append(f'<a class="pagination__page" href="{section_page_path(section, number)}">{number}</a>')
        previous = number
    if current < count:
        parts.append(
            f'<a class="pagination__next" rel="next" href="{section_page_path(section, current + 1)}">Next ›</a>'
        )
    return '<nav class="pagination" aria-label="Pagination">\n  ' + "\n  ".join(parts) + "\n</nav>\n"


_STATIC_PAGES = (
    ("/about", "About us", "The Fixture Times is a newsroom that exists only in tests."),
    ("/contact", "Contact", "Write to newsroom@fixture.example."),
    ("/privacy", "Privacy", "We store nothing about you."),
)
_TAG_CLOUD = (
    '<aside class="tag-cloud"><h2>Trending</h2>'
    '<a href="/tag/elections/">elections</a> <a href="/tag/climate/">climate</a> '
    '<a href="/tag/space-exploration/">space exploration</a></aside>'
)


def _layout(title: str, main: str, sections: Sequence[str], head: str = "") -> bytes:
    nav = "".join(f'<li><a href="/{s}/">{s.replace("-", " ").title()}</a></li>' for s in sections)
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)} | The Fixture Times</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/site.css">
<link rel="alternate" type="application/rss+xml" title="RSS" href="/feed/">
<link rel="icon" href="/static/favicon.ico">{head}
<script src="/static/site.js" defer></script>
</head>
<body>
<a class="skip-link" href="#content">Skip to content</a>
<header class="site-header">
<a class="site-header__logo" href="/"><img src="/static/logo.svg" alt="The Fixture Times"></a>
<nav class="site-nav" aria-label="Sections"><ul><li><a href="/">Home</a></li>{nav}</ul></nav>
<div class="site-header__tools">
<form class="search" action="/search" method="get"><input type="search" name="q"><button>Search</button></form>
<a href="/login?next=%2F">Sign in</a> <a class="button" href="/subscribe">Subscribe</a>
</div>
</header>
<div id="content">
{main}
</div>
<footer class="site-footer">
<ul class="footer-links"><li><a href="/about">About us</a></li><li><a href="/contact">Contact</a></li>
<li><a href="/privacy">Privacy</a></li><li><a href="/feed/">RSS</a></li></ul>
<ul class="social"><li><a href="https://social.example.net/fixturetimes">Follow us</a></li>
<li><a href="mailto:newsroom@fixture.example">Email the newsroom</a></li>
<li><a href="javascript:window.print()">Print</a></li></ul>
<p class="copyright">© 2025 The Fixture Times</p>
</footer>
</body>
</html>
"""
    return page.encode("utf-8")


# --------------------------------------------------------------------------------------------
# Serving


class SiteServer:
    """A running fixture site: ``base_url``, the ``requests`` it received, ``stop()``."""

    def __init__(self, site: Site) -> None:
        self.site = site
        #: (path with query, time.monotonic()) of every request, in arrival order.
        self.requests: list[tuple[str, float]] = []
        self._lock = threading.Lock()
        self._httpd = _HTTPServer(self)
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fixture-site", daemon=True
        )
        self._stopped = False
        self._thread.start()

    def url(self, path: str) -> str:
        """Absolute URL of a site path."""
        return self.base_url + path

    def request_paths(self) -> list[str]:
        """A snapshot of the requested paths, in arrival order."""
        with self._lock:
            return [path for path, _ in self.requests]

    def record(self, path: str) -> None:
        """Note one request (called by the handler threads)."""
        with self._lock:
            self.requests.append((path, time.monotonic()))

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Idle keep-alive connections must not hold up stop().
    block_on_close = False

    def __init__(self, owner: SiteServer) -> None:
        self.owner = owner
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Cut open keep-alive connections, so a stopped site answers nobody (like a dead host)."""
        with self._open_lock:
            connections = list(self._open)
        for conn in connections:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FixtureNews/1.0"
    timeout = 10
    server: _HTTPServer

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

    def _respond(self, *, send_body: bool) -> None:
        owner = self.server.owner
        owner.record(self.path)
        pages = owner.site.pages
        path = urlsplit(self.path).path
        # Clients percent-encode non-ASCII paths; the site's keys may hold them raw.
        found = pages.get(self.path) or pages.get(path) or pages.get(unquote(path))
        for route in [] if found else owner.site.dynamic:
            found = route(unquote(path), owner.base_url)
            if found:
                break
        status, (body, content_type) = (200, found) if found else (404, (_NOT_FOUND, UTF8_HTML))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # Tests read self.server.owner.requests instead of a stderr access log.
        return


_NOT_FOUND = b"<!DOCTYPE html><html><head><title>Not found</title></head><body><h1>Not found</h1></body></html>"


@contextmanager
def serve_site(site: Site) -> Iterator[SiteServer]:
    """Serve ``site`` on 127.0.0.1 (a free port) for the duration of the ``with`` block."""
    server = SiteServer(site)
    try:
        yield server
    finally:
        server.stop()
