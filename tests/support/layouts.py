"""Generated news-site layouts for discovery tests: every URL shape real sites use, served on 127.0.0.1.

Each :class:`Layout` names how a site builds its section URLs (``/world``, ``/news/world``,
``/section/world/page/1.html``, ``/index.php?cat=3``, ``/c/12345``), its article URLs
(``/2024/05/01/slug``, ``/a/12345``, ``/story.php?id=9``, ``/slug-123456.html``,
``/news/articles/c0abc123``, bare ``/slug``), its pagination (``rel=next``, ``?page=N``,
``/page/N/``, bare numbered links, a "load more" button backed by a JSON endpoint), where its
navigation sits (``<nav>``, a ``<ul>`` in the header, a ``<select>``), how its articles say what
they are (``og:type``, JSON-LD, or only a byline and a date), whether its teasers link their
headline or only a "Read more" (``/p/123.html``: no URL shape, no headline link, so every article
is a probe until the site memory knows the shape) and whether it has a sitemap and a feed.
:data:`LAYOUTS` holds fifteen of them, eight without sitemap and feed.

:func:`build_layout_site` renders one as a :class:`tests.support.site.Site` (serve it with
``serve_site``); :attr:`LayoutSite.article_urls` are the pages that must become records, everything
else (front page, sections, their pages, the JSON endpoint, a corrections-policy page with a long
text, a weather page) must not.

Article text: paragraphs of the gold article texts of the Dragnet data set
(``/work/shared/corpus/dragnet-dev/gold``, see its README; AGPL, for tests only), headline from
their first short line. Everything is deterministic.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from tests.support.site import Site

__all__ = ["LAYOUTS", "Layout", "LayoutSite", "build_layout_site"]

GOLD_DIR = Path("/work/shared/corpus/dragnet-dev/gold")
SECTIONS = ("world", "business", "science", "culture")
NEWEST = date(2024, 5, 1)
HTML = "text/html; charset=utf-8"


@dataclass(frozen=True)
class Layout:
    """How one kind of news site is built (see the module docstring for the values)."""

    name: str
    sections: str  # slash | news | sectionpage | cat | cid
    articles: str  # dated | aid | storyphp | slugid | bbc | bare | shortid (/p/123.html)
    pagination: str  # rel_next | query | path | numbers | load_more
    nav: str  # nav | header_ul | select
    meta: str  # og | jsonld | plain
    sitemap: bool = False
    front: str = "/"
    teasers: str = "headline"  # headline (linked) | readmore (headline text, the link says "Read more")


LAYOUTS: tuple[Layout, ...] = (
    Layout("plain-local", "sectionpage", "slugid", "numbers", "nav", "plain", front="/index.html"),
    Layout("dated-wordpress", "slash", "dated", "path", "nav", "og", sitemap=True),
    Layout("bbc-like", "news", "bbc", "query", "header_ul", "jsonld", sitemap=True),
    Layout("php-portal", "cat", "storyphp", "numbers", "select", "plain"),
    Layout("numeric-ids", "cid", "aid", "load_more", "nav", "jsonld"),
    Layout("bare-slugs", "slash", "bare", "path", "header_ul", "og", sitemap=True),
    Layout("slug-ids", "news", "slugid", "rel_next", "select", "plain"),
    Layout("paged-sections", "sectionpage", "aid", "rel_next", "header_ul", "og", sitemap=True),
    Layout("cid-stories", "cid", "storyphp", "query", "select", "og", sitemap=True),
    Layout("cat-dated", "cat", "dated", "load_more", "nav", "plain"),
    Layout("hex-more", "slash", "bbc", "load_more", "select", "jsonld", sitemap=True),
    Layout("news-bare", "news", "bare", "numbers", "nav", "plain"),
    Layout("cid-slugid", "cid", "slugid", "path", "header_ul", "plain", sitemap=True),
    Layout("sectionpage-dated", "sectionpage", "dated", "query", "select", "jsonld"),
    Layout("read-more", "news", "shortid", "numbers", "header_ul", "plain", teasers="readmore"),
)


@dataclass(frozen=True)
class _Story:
    path: str
    title: str
    paragraphs: tuple[str, ...]
    day: date
    section: int


@dataclass
class LayoutSite:
    """A rendered layout: the site to serve, where to start, and which URLs are articles."""

    layout: Layout
    site: Site
    article_paths: list[str] = field(default_factory=list)

    @property
    def start_path(self) -> str:
        """The front page: the only URL a crawl is given."""
        return self.layout.front

    def article_urls(self, base_url: str) -> set[str]:
        """Absolute URLs of every article of the site."""
        return {base_url + p for p in self.article_paths}


@functools.lru_cache(maxsize=1)
def _bodies() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(headline, paragraphs) of every gold text long enough to be a real article."""
    out = []
    for path in sorted(GOLD_DIR.glob("*.txt")):
        lines = [" ".join(line.split()) for line in path.read_text(encoding="utf-8").splitlines()]
        paragraphs = tuple(line for line in lines if len(line.split()) >= 12)
        if sum(len(p) for p in paragraphs) < 2000 or len(paragraphs) < 5:
            continue
        heads = [line for line in lines if 3 <= len(line.split()) <= 16 and not re.search(r"\d{1,2}:\d\d", line)]
        title = heads[0] if heads else " ".join(paragraphs[0].split()[:9])
        out.append((title.strip(" .")[:140], paragraphs[:14]))
    return tuple(out)


def _slug(title: str) -> str:
    words = re.findall(r"[a-z0-9]+", title.lower())
    words = [w for w in words if w.isalpha()][:7] or ["story"]
    return "-".join(words + ["report", "update", "today"][: max(0, 3 - len(words))])


def _section_url(layout: Layout, s: int, page: int = 1) -> str:
    name = SECTIONS[s]
    if layout.sections == "sectionpage":
        return f"/section/{name}/page/{page}.html"
    base = {"slash": f"/{name}", "news": f"/news/{name}", "cat": f"/index.php?cat={3 + s}",
            "cid": f"/c/{48213 + 7919 * s}"}[layout.sections]
    if page == 1:
        return base
    if layout.pagination == "path" and layout.sections != "cat":
        return f"{base}/page/{page}/"
    return f"{base}{'&' if '?' in base else '?'}page={page}"


def _article_path(layout: Layout, i: int, title: str, day: date) -> str:
    slug = _slug(title)
    digest = hashlib.sha1(f"{layout.name}/{i}".encode()).hexdigest()
    return {
        "dated": f"/{day:%Y/%m/%d}/{slug}",
        "aid": f"/a/{310000 + 13 * i}",
        "storyphp": f"/story.php?id={9 + i}",
        "slugid": f"/{slug}-{123456 + i}.html",
        "bbc": f"/news/articles/c{i % 10}{digest[:10]}",
        "bare": f"/{slug}",
        "shortid": f"/p/{100 + i}.html",
    }[layout.articles]


def build_layout_site(layout: Layout, n_articles: int = 24, per_page: int = 5) -> LayoutSite:
    """Render ``layout`` with ``n_articles`` articles (newest first, spread over four sections)."""
    bodies = _bodies()
    stories: list[_Story] = []
    used: set[str] = set()
    for i in range(n_articles):
        title, paragraphs = bodies[(i * 7 + len(layout.name)) % len(bodies)]
        if n_articles > len(bodies):
            title = f"{title} ({i})"
        path = _article_path(layout, i, title, NEWEST - timedelta(days=i // len(SECTIONS)))
        while path in used:  # two headlines with one slug
            title += " again"
            path = _article_path(layout, i, title, NEWEST - timedelta(days=i // len(SECTIONS)))
        used.add(path)
        stories.append(_Story(path, title, paragraphs, NEWEST - timedelta(days=i // len(SECTIONS)), i % len(SECTIONS)))
    site = Site(pages={}, articles=[], listing_paths=[])
    pages = site.pages
    for k, story in enumerate(stories):
        related = [stories[(k + j) % len(stories)] for j in (1, 2, 3) if len(stories) > 3]
        pages[story.path] = (_article_page(layout, story, related), HTML)
    by_section = [[st for st in stories if st.section == s] for s in range(len(SECTIONS))]
    for s, items in enumerate(by_section):
        _render_section(layout, site, s, items, per_page)
    front = _page(layout, "Top stories", _front_main(layout, stories[:8]), kind="website")
    pages[layout.front] = (front, HTML)
    if layout.front != "/":
        pages["/"] = (front, HTML)
    pages["/editorial-standards-and-corrections"] = (_page(layout, "Editorial standards", _policy()), HTML)
    pages["/weather"] = (_page(layout, "Weather", "<main><h1>Weather</h1><p>Sunny, 21°C.</p></main>"), HTML)
    if layout.sitemap:
        _add_sitemap(site, stories)
    return LayoutSite(layout, site, [st.path for st in stories])


def _render_section(layout: Layout, site: Site, s: int, items: list[_Story], per_page: int) -> None:
    count = max(1, -(-len(items) // per_page))
    name = SECTIONS[s].title()
    for page in range(1, count + 1):
        chunk = items[(page - 1) * per_page : page * per_page]
        cards = "\n".join(_teaser(layout, st) for st in chunk)
        head = ""
        if layout.pagination == "rel_next" and page < count:
            head = f'<link rel="next" href="{html.escape(_section_url(layout, s, page + 1))}">'
        more = "" if layout.pagination == "load_more" and page > 1 else _pager(layout, s, page, count)
        intro = f"The latest {name.lower()} news, analysis and comment from our correspondents."
        main = (f'<main class="section"><h1>{name}</h1><p class="intro">{intro}</p>\n'
                f'<div class="stream">{cards}</div>\n{more}</main>')
        if layout.pagination == "load_more" and page > 1:
            site.pages[_endpoint(s, page)] = (_json_page(layout, s, chunk, page, count), "application/json")
            continue
        site.pages[_section_url(layout, s, page)] = (_page(layout, f"{name} news", main, head, "website"), HTML)


def _endpoint(s: int, page: int) -> str:
    return f"/api/sections/{s}/more?page={page}"


def _json_page(layout: Layout, s: int, chunk: list[_Story], page: int, count: int) -> bytes:
    """The "load more" answer: items as URL + title, or as ready HTML, and the next page."""
    nxt = _endpoint(s, page + 1) if page < count else None
    if layout.sections == "cat":
        doc: dict[str, object] = {"html": "".join(_teaser(layout, st) for st in chunk), "next": nxt}
    else:
        doc = {"items": [{"title": st.title, "url": st.path, "date": st.day.isoformat()} for st in chunk],
               "next": nxt}
    return json.dumps(doc).encode()


def _pager(layout: Layout, s: int, page: int, count: int) -> str:
    if layout.pagination == "load_more":
        return (f'<button class="load-more" data-href="{_endpoint(s, 2)}">Load more</button>' if count > 1 else "")
    if layout.pagination == "numbers":
        links = " ".join(f'<a href="{html.escape(_section_url(layout, s, n))}">{n}</a>' if n != page else f"<b>{n}</b>"
                         for n in range(1, count + 1))
        return f'<div class="pages">{links}</div>'
    if page >= count:
        return ""
    href = html.escape(_section_url(layout, s, page + 1))
    if layout.pagination == "rel_next":
        return f'<p><a rel="next" href="{href}">Older stories</a></p>'
    return f'<nav class="pagination"><a href="{href}">Next page ›</a></nav>'


def _teaser(layout: Layout, st: _Story) -> str:
    href = html.escape(st.path)
    summary = html.escape(st.paragraphs[0][:150].rsplit(" ", 1)[0] + "…")
    if layout.teasers == "readmore":
        return (f'<div class="card"><h3>{html.escape(st.title)}</h3><p>{summary}</p>'
                f'<a class="more" href="{href}">Read more</a></div>')
    return (f'<article class="card"><a href="{href}"><img src="/img/{st.day:%Y%m%d}-{st.section}.jpg" alt=""></a>'
            f'<h3><a href="{href}">{html.escape(st.title)}</a></h3><p>{summary}</p>'
            f'<time datetime="{st.day.isoformat()}">{st.day:%d %B %Y}</time></article>')


def _front_main(layout: Layout, top: list[_Story]) -> str:
    cards = "\n".join(_teaser(layout, st) for st in top)
    more = "".join(f'<li><a href="{html.escape(_section_url(layout, s))}">More {name}</a></li>'
                   for s, name in enumerate(SECTIONS))
    return f'<main class="front"><h1>Top stories</h1>\n{cards}\n<ul class="more">{more}</ul></main>'


def _nav(layout: Layout) -> str:
    items = [(html.escape(_section_url(layout, s)), name.title()) for s, name in enumerate(SECTIONS)]
    if layout.nav == "select":
        options = "".join(f'<option value="{href}">{label}</option>' for href, label in items)
        return (f'<header><a class="logo" href="/">The Layout Post</a><select onchange="location=this.value">'
                f'<option value="">Sections</option>{options}</select></header>')
    lis = "".join(f'<li><a href="{href}">{label}</a></li>' for href, label in items)
    if layout.nav == "header_ul":
        return f'<header class="masthead"><a class="logo" href="/">The Layout Post</a><ul>{lis}</ul></header>'
    return f'<header><a class="logo" href="/">The Layout Post</a></header><nav><ul>{lis}</ul></nav>'


def _page(layout: Layout, title: str, main: str, head: str = "", kind: str | None = None) -> bytes:
    og = f'<meta property="og:type" content="{kind}">' if kind and layout.meta == "og" else ""
    if kind and layout.meta == "jsonld":
        ld = json.dumps({"@context": "https://schema.org", "@type": "CollectionPage", "name": title})
        og = f'<script type="application/ld+json">{ld}</script>'
    feed = '<link rel="alternate" type="application/rss+xml" href="/rss.xml">' if layout.sitemap else ""
    doc = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)} - The Layout Post</title>
{og}{feed}{head}<link rel="stylesheet" href="/static/main.css"></head><body>
{_nav(layout)}
{main}
<footer><a href="/editorial-standards-and-corrections">Editorial standards</a> <a href="/weather">Weather</a>
<a href="/about">About</a> <a href="/privacy">Privacy</a></footer></body></html>"""
    return doc.encode("utf-8")


def _article_page(layout: Layout, st: _Story, related: list[_Story]) -> bytes:
    paras = "\n".join(f"<p>{html.escape(p)}</p>" for p in st.paragraphs)
    title = html.escape(st.title)
    head = ""
    if layout.meta == "og":
        head = f'<meta property="og:type" content="article"><meta property="og:title" content="{title}">'
    elif layout.meta == "jsonld":
        ld = {"@context": "https://schema.org", "@type": "NewsArticle", "headline": st.title,
              "datePublished": st.day.isoformat()}
        head = f'<script type="application/ld+json">{json.dumps(ld)}</script>'
    rel = "".join(f'<li><a href="{html.escape(r.path)}">{html.escape(r.title)}</a></li>' for r in related)
    main = (f'<main><article><h1>{title}</h1><p class="byline">By Morgan Lee</p>'
            f'<time datetime="{st.day.isoformat()}">{st.day:%d %B %Y}</time>\n<div class="story-body">{paras}</div>'
            f'</article><aside class="related"><h2>Related</h2><ul>{rel}</ul></aside></main>')
    return _page(layout, st.title, main, head)


def _policy() -> str:
    text = " ".join(["We correct errors promptly and say so at the foot of the page concerned."] * 12)
    return f"<main><h1>Editorial standards and corrections</h1><p>{text}</p><p>{text}</p></main>"


def _add_sitemap(site: Site, stories: list[_Story]) -> None:
    def route(path: str, origin: str) -> tuple[bytes, str] | None:
        if path == "/robots.txt":
            return f"User-agent: *\nAllow: /\nSitemap: {origin}/sitemap.xml\n".encode(), "text/plain"
        if path == "/sitemap.xml":
            urls = "".join(f"<url><loc>{html.escape(origin + st.path)}</loc>"
                           f"<lastmod>{st.day.isoformat()}</lastmod></url>" for st in stories)
            return (f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                    f"{urls}</urlset>").encode(), "application/xml"
        if path == "/rss.xml":
            items = "".join(f"<item><title>{html.escape(st.title)}</title><link>{html.escape(origin + st.path)}</link>"
                            f"</item>" for st in stories[:10])
            return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>The Layout Post</title>{items}'
                    f"</channel></rss>").encode(), "application/rss+xml"
        return None

    site.dynamic.append(route)
