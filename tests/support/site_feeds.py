"""Discovery sources for the fixture site: robots.txt, RSS/Atom/JSON feeds, sitemaps, a calendar trap.

:func:`add_discovery_sources` turns a :class:`tests.support.site.Site` into one a discovery stage has to
work for: every article is reachable, but some only through the listings, some only through a
feed and some only through a sitemap (the returned :class:`DiscoveryFixture` says which), links
come with tracking parameters and ``#comments`` beside their plain twins, and an archive calendar
pages back and forth through months forever.

The feeds, sitemaps and robots.txt are computed per request (a ``Site.dynamic`` route) from the
fixture's lists, so their absolute URLs name the server they are served from, and an article added
with ``add_article(site, spec, syndicate=True)`` is in them on the next request. Dates are
deterministic: each article's publication time comes from the date in its path.
"""

from __future__ import annotations

import gzip
import html
import json
import re
import zlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from email.utils import format_datetime

from tests.support.site import NEWEST_DAY, ArticleSpec, Site, render_listings, render_page, teaser_html

__all__ = [
    "ATOM_FEED",
    "CHILD_SITEMAPS",
    "FEEDS",
    "JSON_FEED",
    "LEGACY_FEED",
    "NEWS_SITEMAP",
    "ROBOTS",
    "RSS_FEED",
    "SITEMAP_INDEX",
    "TRACKING_QUERY",
    "DiscoveryFixture",
    "add_discovery_sources",
    "calendar_path",
]

ROBOTS = "/robots.txt"
RSS_FEED = "/feeds/rss.xml"
ATOM_FEED = "/feeds/atom.xml"
JSON_FEED = "/feed.json"
#: The site-wide ``<link rel="alternate" href="/feed/">`` every page of the layout has: the RSS feed again.
LEGACY_FEED = "/feed/"
FEEDS = (RSS_FEED, ATOM_FEED, JSON_FEED)
SITEMAP_INDEX = "/sitemap_index.xml"
GZIPPED_CHILD = "/sitemaps/articles-1.xml.gz"
PLAIN_CHILD = "/sitemaps/articles-2.xml"
CHILD_SITEMAPS = (GZIPPED_CHILD, PLAIN_CHILD)
NEWS_SITEMAP = "/sitemaps/news.xml"
#: What the RSS feed and the front page's "Most read" box append to article links.
TRACKING_QUERY = "?utm_source=rss&utm_medium=feed"

_CONTENT_TYPES = {
    ROBOTS: "text/plain; charset=utf-8",
    RSS_FEED: "application/rss+xml; charset=utf-8",
    LEGACY_FEED: "application/rss+xml; charset=utf-8",
    ATOM_FEED: "application/atom+xml; charset=utf-8",
    JSON_FEED: "application/feed+json; charset=utf-8",
    SITEMAP_INDEX: "application/xml; charset=utf-8",
    GZIPPED_CHILD: "application/x-gzip",
    PLAIN_CHILD: "application/xml; charset=utf-8",
    NEWS_SITEMAP: "text/xml; charset=utf-8",
}
_CALENDAR = re.compile(r"/calendar/(\d{4})/(0[1-9]|1[0-2])/")
_DATE_IN_PATH = re.compile(r"/(\d{4})/(\d{2})/(\d{2})/")
_EST = timezone(timedelta(hours=-5))
_CET = timezone(timedelta(hours=1))
_NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"


@dataclass
class DiscoveryFixture:
    """Where each article of a site with discovery sources can be found (paths, newest first)."""

    site: Site
    feeds: dict[str, list[str]]  #: RSS_FEED / ATOM_FEED / JSON_FEED -> article paths in it
    sitemaps: dict[str, list[str]]  #: each child sitemap and NEWS_SITEMAP -> article paths in it
    published: dict[str, datetime]  #: article path -> publication time (UTC), as every source states it
    calendar_entry: str  #: the calendar month linked from the front page
    most_read: list[str] = field(default_factory=list)  #: linked from the front page with TRACKING_QUERY

    @property
    def listed(self) -> list[str]:
        """Articles on the listing pages."""
        return [a.path for a in self.site.articles if a.path not in self.site.unlisted]

    @property
    def in_feeds(self) -> list[str]:
        """Articles in at least one feed."""
        return self._in(self.feeds)

    @property
    def in_sitemaps(self) -> list[str]:
        """Articles in at least one sitemap (a child of the index or the news sitemap)."""
        return self._in(self.sitemaps)

    @property
    def only_listing(self) -> list[str]:
        """Articles a crawler finds only by walking the listings."""
        return [p for p in self._all() if self.sources(p) == {"listing"}]

    @property
    def only_feed(self) -> list[str]:
        """Articles a crawler finds only in the feeds."""
        return [p for p in self._all() if self.sources(p) == {"feed"}]

    @property
    def only_sitemap(self) -> list[str]:
        """Articles a crawler finds only in the sitemaps."""
        return [p for p in self._all() if self.sources(p) == {"sitemap"}]

    def sources(self, path: str) -> frozenset[str]:
        """Which of "listing", "feed", "sitemap" lead to the article at ``path``."""
        found = {"listing"} if path in self.listed else set()
        if any(path in paths for paths in self.feeds.values()):
            found.add("feed")
        if any(path in paths for paths in self.sitemaps.values()):
            found.add("sitemap")
        return frozenset(found)

    def published_iso(self, path: str) -> str:
        """The publication time of an article as ``workers.discover.feeds.normalize_date`` writes it."""
        return self.published[path].strftime("%Y-%m-%dT%H:%M:%SZ")

    def route(self, path: str, origin: str) -> tuple[bytes, str] | None:
        """The ``Site.dynamic`` route: robots.txt, feeds, sitemaps and calendar pages, for ``origin``."""
        build = {
            ROBOTS: self._robots,
            RSS_FEED: self._rss,
            LEGACY_FEED: self._rss,
            ATOM_FEED: self._atom,
            JSON_FEED: self._json_feed,
            SITEMAP_INDEX: self._sitemap_index,
            GZIPPED_CHILD: lambda o: gzip.compress(self._urlset(GZIPPED_CHILD, o), mtime=0),
            PLAIN_CHILD: lambda o: self._urlset(PLAIN_CHILD, o),
            NEWS_SITEMAP: self._news,
        }.get(path)
        if build is not None:
            return build(origin), _CONTENT_TYPES[path]
        month = _CALENDAR.fullmatch(path)
        if month and int(month[1]) >= 1:
            return self._calendar(int(month[1]), int(month[2])), "text/html; charset=utf-8"
        return None

    def document(self, path: str, origin: str = "http://fixture.invalid") -> bytes:
        """The body :meth:`route` serves at ``path`` (for tests that need no server)."""
        found = self.route(path, origin)
        if found is None:
            raise KeyError(path)
        return found[0]

    def publish(self, spec: ArticleSpec, syndicate: bool) -> None:
        """The ``Site.on_publish`` hook: date a new article, newest of all, and syndicate it if asked."""
        newest = max(self.published.values(), default=_published_at(spec.path))
        self.published[spec.path] = max(_published_at(spec.path), newest + timedelta(hours=1))
        if syndicate:
            for paths in (*self.feeds.values(), self.sitemaps[GZIPPED_CHILD], self.sitemaps[NEWS_SITEMAP]):
                paths.insert(0, spec.path)

    def _all(self) -> list[str]:
        return [a.path for a in self.site.articles]

    def _in(self, groups: dict[str, list[str]]) -> list[str]:
        members = {p for paths in groups.values() for p in paths}
        return [p for p in self._all() if p in members]

    def spec(self, path: str) -> ArticleSpec:
        """The article at ``path``."""
        return next(a for a in self.site.articles if a.path == path)

    # --- documents ------------------------------------------------------------------------

    def _robots(self, origin: str) -> bytes:
        return (
            "# robots.txt for The Fixture Times\n"
            "User-agent: *\nDisallow: /search\nDisallow: /login\nDisallow: /subscribe\nAllow: /\n\n"
            "User-agent: BadBot\nDisallow: /\n\n"
            f"Sitemap: {origin}{SITEMAP_INDEX}\nSitemap: {origin}{NEWS_SITEMAP}\n"
        ).encode()

    def _rss(self, origin: str) -> bytes:
        items = []
        for i, path in enumerate(self.feeds[RSS_FEED]):
            spec, when = self.spec(path), self.published[path]
            # Alternate GMT and a US zone: readers must convert, not copy.
            stamp = format_datetime(when, usegmt=True) if i % 2 == 0 else format_datetime(when.astimezone(_EST))
            items.append(
                f"<item><title>{_x(spec.title)}</title>"
                f"<link>{_x(origin + path + TRACKING_QUERY)}</link><comments>{_x(origin + path)}#comments</comments>"
                f'<guid isPermaLink="false">fixture-{zlib.crc32(path.encode()):08x}</guid><pubDate>{stamp}</pubDate>'
                f"<category>{_x(self.site.section_of.get(path, ''))}</category>"
                f"<description>{_x(_summary(spec))}</description></item>"
            )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">\n'
            f"<channel><title>The Fixture Times</title><link>{origin}/</link><description>Latest stories</description>"
            f'<language>en</language><atom:link href="{origin}{RSS_FEED}" rel="self" type="application/rss+xml"/>\n'
            + "\n".join(items)
            + "\n</channel></rss>\n"
        ).encode()

    def _atom(self, origin: str) -> bytes:
        entries = []
        for path in self.feeds[ATOM_FEED]:
            spec, when = self.spec(path), self.published[path]
            # Relative hrefs against the feed's xml:base, as many generators write them.
            entries.append(
                f"<entry><title>{_x(spec.title)}</title>"
                f'<link rel="alternate" type="text/html" href="{_x(path.lstrip("/"))}"/>'
                f'<link rel="replies" type="text/html" href="{_x(path.lstrip("/"))}#comments"/>'
                f"<id>tag:fixture.invalid,2025:{_x(path)}</id>"
                f"<published>{_w3c(when, _CET)}</published><updated>{_w3c(when)}</updated>"
                f"<summary>{_x(_summary(spec))}</summary></entry>"
            )
        updated = _w3c(max((self.published[p] for p in self.feeds[ATOM_FEED]), default=_published_at("/")))
        return (
            f'<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" xml:base="{origin}/">\n'
            f'<title>The Fixture Times</title><id>{origin}/</id><updated>{updated}</updated>'
            f'<link rel="self" href="{ATOM_FEED.lstrip("/")}"/><link rel="alternate" href="./"/>\n'
            + "\n".join(entries)
            + "\n</feed>\n"
        ).encode()

    def _json_feed(self, origin: str) -> bytes:
        items = [
            {
                "id": origin + path,
                "url": origin + path,
                "title": self.spec(path).title,
                "summary": _summary(self.spec(path)),
                "date_published": _w3c(self.published[path]),
            }
            for path in self.feeds[JSON_FEED]
        ]
        doc = {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "The Fixture Times",
            "home_page_url": origin + "/",
            "feed_url": origin + JSON_FEED,
            "items": items,
        }
        return json.dumps(doc, ensure_ascii=False, indent=1).encode()

    def _sitemap_index(self, origin: str) -> bytes:
        rows = []
        for child in CHILD_SITEMAPS:
            stamps = [self.published[p] for p in self.sitemaps[child]]
            lastmod = f"<lastmod>{_w3c(max(stamps))}</lastmod>" if stamps else ""
            rows.append(f"<sitemap><loc>{origin}{child}</loc>{lastmod}</sitemap>")
        return _xml("sitemapindex", "", rows)

    def _urlset(self, child: str, origin: str) -> bytes:
        rows = []
        for path in self.sitemaps[child]:
            when = self.published[path]
            # The gzipped child has full W3C datetimes, the plain one bare dates: both are common.
            stamp = when.strftime("%Y-%m-%dT%H:%M:%S+00:00") if child == GZIPPED_CHILD else when.date().isoformat()
            rows.append(f"<url><loc>{_x(origin + path)}</loc><lastmod>{stamp}</lastmod></url>")
        return _xml("urlset", "", rows)

    def _news(self, origin: str) -> bytes:
        rows = [
            f"<url><loc>{_x(origin + path)}</loc><news:news><news:publication><news:name>The Fixture Times"
            "</news:name><news:language>en</news:language></news:publication>"
            f"<news:publication_date>{_w3c(self.published[path], _CET)}</news:publication_date>"
            f"<news:title>{_x(self.spec(path).title)}</news:title></news:news></url>"
            for path in self.sitemaps[NEWS_SITEMAP]
        ]
        return _xml("urlset", f' xmlns:news="{_NEWS_NS}"', rows)

    def _calendar(self, year: int, month: int) -> bytes:
        first = date(year, month, 1)
        label = f"{first:%B} {year:04d}"
        month_prefix = f"{first:%Y-%m}"
        listed = [a for a in self.site.articles if a.path not in self.site.unlisted]
        specs = [a for a in listed if _day_of(a.path)[:7] == month_prefix]
        cards = "\n".join(teaser_html(self.site, a) for a in specs) or "<p>No stories this month.</p>"
        links, head = [], []
        for rel, text, other in (("prev", "‹ ", _shift(year, month, -1)), ("next", "", _shift(year, month, 1))):
            if other is None:
                continue
            href = calendar_path(*other)
            caption = f"{text}{date(other[0], other[1], 1):%B} {other[0]:04d}" + (" ›" if rel == "next" else "")
            links.append(f'<a class="pagination__{rel}" rel="{rel}" href="{href}">{caption}</a>')
            head.append(f'<link rel="{rel}" href="{href}">')
        main = (
            f'<main class="archive"><h1>Archive: {label}</h1>\n<div class="teaser-list">\n{cards}\n</div>\n'
            f'<nav class="pagination" aria-label="Months">{" ".join(links)}</nav></main>'
        )
        return render_page(self.site, f"Archive: {label}", main, "".join(head))


def add_discovery_sources(
    site: Site, *, per_group: int = 3, feed_depth: int = 6, news_depth: int = 4
) -> DiscoveryFixture:
    """Give ``site`` robots.txt, feeds, sitemaps and a calendar trap; the fixture says what is where.

    Of ``site.articles`` (newest first): the newest ``per_group`` are only in the feeds (left off the
    listings), the next ``per_group`` only on the listings, the oldest ``per_group`` only in the
    sitemaps, and the rest ("shared") on the listings and in the sitemaps, the newest ``feed_depth``
    of them in the feeds as well and the newest ``news_depth`` in the news sitemap. Each feed item
    is in two of the three feeds, so every feed differs. The RSS feed links with TRACKING_QUERY,
    the Atom feed with relative hrefs under xml:base; the front page gains ``<link rel=alternate>``
    tags for the feeds, a "Most read" box linking listed articles with TRACKING_QUERY, and a link
    to the calendar, whose month pages (any ``/calendar/YYYY/MM/``) link the months either side.
    """
    count = len(site.articles)
    if per_group < 1 or count < 3 * per_group + 1:
        raise ValueError(f"need per_group >= 1 and at least {3 * per_group + 1} articles, got {count}")
    if site.on_publish:
        raise ValueError("the site already has discovery sources")
    paths = [a.path for a in site.articles]
    # paths[per_group : 2 * per_group] stay on the listings and nowhere else.
    only_feed = paths[:per_group]
    shared, only_sitemap = paths[2 * per_group : count - per_group], paths[count - per_group :]
    published = _publication_times(paths)
    pool = sorted(only_feed + shared[:feed_depth], key=published.__getitem__, reverse=True)
    feeds: dict[str, list[str]] = {feed: [] for feed in FEEDS}
    for j, path in enumerate(pool):
        for k in (j % 3, (j + 1) % 3):
            feeds[FEEDS[k]].append(path)
    mapped = shared + only_sitemap
    fixture = DiscoveryFixture(
        site=site,
        feeds=feeds,
        sitemaps={GZIPPED_CHILD: mapped[0::2], PLAIN_CHILD: mapped[1::2], NEWS_SITEMAP: shared[:news_depth]},
        published=published,
        calendar_entry=calendar_path(*_month_of(shared[0])),
    )
    site.unlisted.update(only_feed + only_sitemap)
    listed = [p for p in paths if p not in site.unlisted]
    fixture.most_read = listed[6:9] or listed[:3]  # older than the front page's own teasers
    site.front_head = "".join(
        f'\n<link rel="alternate" type="{kind}" title="{title}" href="{href}">'
        for kind, title, href in (
            ("application/rss+xml", "RSS 2.0", RSS_FEED),
            ("application/atom+xml", "Atom", ATOM_FEED),
            ("application/feed+json", "JSON Feed", JSON_FEED),
        )
    )
    most_read = "".join(
        f'<li><a href="{html.escape(p + TRACKING_QUERY)}">{html.escape(fixture.spec(p).title)}</a></li>'
        for p in fixture.most_read
    )
    site.front_extra = (
        f'<aside class="most-read"><h2>Most read</h2><ol>{most_read}</ol></aside>\n'
        f'<aside class="archive"><h2>Archive</h2><a href="{fixture.calendar_entry}">'
        f"{_month_label(fixture.calendar_entry)}</a></aside>\n"
    )
    render_listings(site)
    site.dynamic.append(fixture.route)
    site.on_publish.append(fixture.publish)
    return fixture


def calendar_path(year: int, month: int) -> str:
    """Path of the calendar page of one month."""
    return f"/calendar/{year:04d}/{month:02d}/"


def _publication_times(paths: list[str]) -> dict[str, datetime]:
    """On the day in the path (or NEWEST_DAY): the first of a day at 20:00 UTC, each later one of
    that day ten minutes earlier, so times follow the site's newest-first order."""
    times: dict[str, datetime] = {}
    rank: dict[str, int] = {}
    for path in paths:
        day = _day_of(path)
        rank[day] = rank.get(day, -1) + 1
        times[path] = _published_at(path) - timedelta(minutes=10 * min(rank[day], 80))
    return times


def _published_at(path: str) -> datetime:
    return datetime.combine(date.fromisoformat(_day_of(path)), time(20), UTC)


def _day_of(path: str) -> str:
    found = _DATE_IN_PATH.search(path)
    if found:
        try:
            return date(int(found[1]), int(found[2]), int(found[3])).isoformat()
        except ValueError:
            pass
    return NEWEST_DAY.isoformat()


def _month_of(path: str) -> tuple[int, int]:
    day = date.fromisoformat(_day_of(path))
    return day.year, day.month


def _month_label(calendar: str) -> str:
    year, month = (int(part) for part in calendar.strip("/").split("/")[1:])
    return f"{date(year, month, 1):%B} {year:04d}"


def _shift(year: int, month: int, step: int) -> tuple[int, int] | None:
    index = year * 12 + (month - 1) + step
    year, month = divmod(index, 12)
    return (year, month + 1) if 1 <= year <= 9999 else None


def _summary(spec: ArticleSpec) -> str:
    return " ".join((spec.must_have[0] if spec.must_have else spec.title).split())[:200]


def _w3c(when: datetime, zone: timezone = UTC) -> str:
    local = when.astimezone(zone)
    return local.strftime("%Y-%m-%dT%H:%M:%SZ") if zone is UTC else local.isoformat(timespec="seconds")


def _x(text: str) -> str:
    return html.escape(text, quote=True)


def _xml(root: str, namespaces: str, rows: list[str]) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<{root} xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"{namespaces}>\n'
        + "\n".join(rows)
        + f"\n</{root}>\n"
    ).encode()
