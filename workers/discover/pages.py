"""What a fetched discovery page leads to: the pure core of the discover stage.

One function, :func:`found_on_page`, reads any page discovery fetches (a listing page, a home
page, a feed, a sitemap or robots.txt) and returns the URLs it leads to, each with its kind and
how it was found.  The page's declared kind is a hint, not a promise: operators paste feed URLs
as listings and sitemaps as feeds, so the content decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urljoin

from workers.core.htmlparse import parse_html
from workers.core.messages import DISCOVERY_KINDS
from workers.core.urls import InvalidURL, host_allowed, host_of, normalize_url
from workers.discover.feeds import find_feeds, looks_like_feed, parse_feed
from workers.discover.links import PROBE, classify_url, discover_links
from workers.discover.probes import json_links, looks_like_json, widget_links
from workers.discover.shapes import learned_kind, url_shape
from workers.discover.sitemaps import looks_like_sitemap, newest_first, parse_sitemap, sitemaps_from_robots
from workers.discover.traps import strip_session_params, trap_reason
from workers.sources.sourcefile import Source, classify_with

__all__ = ["DISCOVERY_KINDS", "Found", "admissible", "found_on_page", "routed_by_memory", "sniff_kind"]



@dataclass(frozen=True)
class Found:
    """A URL discovery will hand to fetch, with its kind and provenance."""

    url: str
    kind: str  # "article" | "listing" | "probe" | "feed" | "sitemap" | "robots"
    via: str  # the kind of page it was found on
    published: str | None = None
    title: str | None = None


def sniff_kind(declared: str, body: bytes, content_type: str | None) -> str:
    """The kind of page ``body`` really is, starting from what the task declared."""
    if declared == "robots":
        return "robots"
    if looks_like_sitemap(body, content_type):
        return "sitemap"
    if looks_like_feed(body, content_type):
        return "feed"
    return declared if declared in {"listing", "home"} else "listing"


def found_on_page(
    declared: str,
    body: bytes,
    base_url: str,
    content_type: str | None,
    *,
    allowed_hosts: frozenset[str],
    since: str | None = None,
    probes: bool = True,
) -> list[Found]:
    """Every URL a discovery page leads to (unfiltered by source rules; see :func:`admissible`).

    With ``probes`` (``INGEST_PROBES``), links whose URL shape and context say too little come
    back as ``"probe"`` and "load more" endpoints and ``<select>`` menus are read too; without,
    such links are dropped as before (URL shape and anchor context alone decide).
    """
    kind = sniff_kind(declared, body, content_type)
    if kind == "robots":
        return [Found(url, "sitemap", "robots") for url in sitemaps_from_robots(body, base_url)]
    if kind == "sitemap":
        sitemap = parse_sitemap(body, base_url)
        if sitemap.kind == "index":
            return [Found(e.url, "sitemap", "sitemap", e.lastmod) for e in sitemap.entries]
        return [
            Found(e.url, "article", "sitemap", e.news_published or e.lastmod, e.news_title)
            for e in newest_first(sitemap.entries, since=since)
        ]
    if kind == "feed":
        entries = parse_feed(body, base_url)
        if since is not None:
            entries = [e for e in entries if e.published is None or e.published[:10] >= since[:10]]
        return [Found(e.url, "article", "feed", e.published, e.title) for e in entries]
    if looks_like_json(body, content_type):
        # The answer of a "load more" endpoint: its items and its next page.
        return [Found(link.url, link.kind, "listing", title=link.text or None)
                for link in json_links(body, base_url, allowed_hosts=allowed_hosts)]
    tree = parse_html(body)
    if tree is None:
        return []
    links = discover_links(tree, base_url, allowed_hosts=allowed_hosts, probes=probes)
    if probes:
        links += widget_links(tree, base_url, allowed_hosts=allowed_hosts)
    found = [Found(link.url, link.kind, "listing", title=link.text or None) for link in links]
    if kind == "home":
        found += [Found(url, "feed", "home") for url in find_feeds(tree, base_url)]
        found.append(Found(_robots_url(base_url), "robots", "home"))
    return found


def admissible(found: Iterable[Found], *, allowed_hosts: frozenset[str], source: Source | None) -> list[Found]:
    """The found URLs a crawl may follow: allowed hosts, no traps, the source's patterns applied.

    Session ids are stripped first so the same page under two sessions is one URL; the first
    occurrence of a URL wins (a sitemap entry's date over a listing's lack of one).
    """
    out: dict[str, Found] = {}
    for item in found:
        try:
            url = normalize_url(strip_session_params(item.url))
        except InvalidURL:
            continue
        if url in out or not host_allowed(host_of(url), allowed_hosts) or trap_reason(url) is not None:
            continue
        kind: str | None = item.kind
        if source is not None and item.kind in {"article", "listing", "probe"}:
            kind = classify_with(source, url, item.kind)
        if kind is None:
            continue
        out[url] = Found(url, kind, item.via, item.published, item.title)
    return list(out.values())


def routed_by_memory(found: Iterable[Found], learned: Mapping[str, Mapping[str, int]]) -> list[Found]:
    """Links a listing led to, routed by what the host's probes taught (``learned``: verdict counts
    by :func:`url_shape`): a probe of a known shape goes straight to its kind, and an article by
    URL shape whose shape has proved a listing (``/c/{id}`` sections) is read as a listing."""
    out = []
    for f in found:
        if f.via == "listing" and f.kind in (PROBE, "article"):
            counts = learned.get(url_shape(f.url))
            kind = learned_kind(counts) if counts else None
            # A section-shaped probe ("/food-and-drink" under a headline) shares "/{slug}" with a
            # bare-slug site's stories: only its own page may make it an article.
            sectionlike = kind == "article" and classify_url(f.url) == "listing"
            if kind is not None and (f.kind == PROBE or kind == "listing") and not sectionlike:
                f = Found(f.url, kind, f.via, f.published, f.title)
        out.append(f)
    return out


def _robots_url(base_url: str) -> str:
    return normalize_url(urljoin(base_url, "/robots.txt"))
