"""Sitemaps as a source of article URLs: index files, urlsets, gzip, plain text, ``news:`` entries.

Pure functions over bytes already fetched; the fetcher (with its politeness and private-address
guard) does every request, which is why no sitemap library that fetches on its own is used.
Parsing is defensive because sitemaps come from anywhere: gzip is recognised by its magic bytes
and inflated only up to ``max_bytes``; the XML parser resolves no entities, loads no DTD, touches
no network and keeps libxml2's size limits; unescaped ``&`` in URLs (common) is repaired first.
"""

from __future__ import annotations

import codecs
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urljoin

from lxml import etree
from protego import Protego

from workers.core.urls import InvalidURL, normalize_url
from workers.discover.feeds import as_utf8, date_bounds, normalize_date, parse_feed, sniff_root

__all__ = [
    "Sitemap",
    "SitemapEntry",
    "looks_like_sitemap",
    "newest_first",
    "parse_sitemap",
    "sitemaps_from_robots",
]

GZIP_MAGIC = b"\x1f\x8b"
#: The sitemap protocol's own limit on an uncompressed sitemap.
MAX_SITEMAP_BYTES = 50_000_000
_SNIFF_INFLATE = 65536
_FEED_ROOTS = frozenset({"rss", "feed", "rdf"})
_BARE_AMPERSAND = re.compile(rb"&(?![A-Za-z][A-Za-z0-9._-]*;|#[0-9]+;|#[xX][0-9A-Fa-f]+;)")
_ROOT_END = re.compile(rb"</(?:[\w.-]+:)?(?:urlset|sitemapindex)\s*>", re.IGNORECASE)
_ENTRY_END = re.compile(rb"</(?:[\w.-]+:)?(?:url|sitemap)\s*>", re.IGNORECASE)
_URL_LINE = re.compile(r"https?://\S+", re.IGNORECASE)


@dataclass(frozen=True)
class SitemapEntry:
    """One ``<url>`` of a urlset (a page) or one ``<sitemap>`` of an index (a child sitemap)."""

    url: str  #: normalised with :func:`workers.core.urls.normalize_url`
    lastmod: str | None  #: ISO 8601
    news_published: str | None  #: ISO 8601, from ``<news:publication_date>``
    news_title: str | None  #: from ``<news:title>``


@dataclass(frozen=True)
class Sitemap:
    """A parsed sitemap: ``kind`` is ``"index"`` (entries are child sitemaps) or ``"urlset"`` (pages)."""

    kind: str
    entries: list[SitemapEntry]


def parse_sitemap(data: bytes, base_url: str, *, max_bytes: int = MAX_SITEMAP_BYTES) -> Sitemap:
    """The entries of a sitemap index, urlset (gzipped or not), plain-text sitemap (one URL a line)
    or RSS/Atom feed used as a sitemap, each URL once in document order.

    At most ``max_bytes`` of (inflated) sitemap are read: a bigger one gives the entries before the
    cut, a gzip bomb costs no more than that. Garbage gives ``Sitemap("urlset", [])``.
    """
    data, cut = _inflate(data, max_bytes)
    root_name = sniff_root(data)
    if root_name in _FEED_ROOTS:
        return Sitemap("urlset", [SitemapEntry(e.url, e.published, None, None) for e in parse_feed(data, base_url)])
    data = as_utf8(data)  # so the byte-level repairs below cannot split a character
    if root_name is None:
        if cut:
            data = data[: data.rfind(b"\n") + 1]  # the last line may be half a URL
        return Sitemap("urlset", _text_entries(data, base_url))
    root = _parse_xml(_complete_entries(data))
    if root is None:
        return Sitemap("urlset", [])
    name = _local(root)
    if name == "sitemapindex":
        kind, child = "index", "sitemap"
    elif name == "urlset":
        kind, child = "urlset", "url"
    else:
        return Sitemap("urlset", [])
    entries: dict[str, SitemapEntry] = {}
    for el in root:
        if _local(el) != child:
            continue
        entry = _entry(el, base_url)
        if entry is not None and entry.url not in entries:
            entries[entry.url] = entry
    return Sitemap(kind, list(entries.values()))


def looks_like_sitemap(data: bytes, content_type: str | None) -> bool:
    """Whether a response is a sitemap (urlset or index, gzipped or not, or a plain list of URLs).

    The body decides; ``content_type`` is not trusted (sitemaps come as application/xml, text/xml,
    application/x-gzip, application/octet-stream, text/plain…).
    """
    del content_type  # accepted for symmetry with looks_like_feed; the body is more reliable
    if data.startswith(GZIP_MAGIC):
        data = _inflate(data, _SNIFF_INFLATE)[0]
    root_name = sniff_root(data)
    if root_name is not None:
        return root_name in ("urlset", "sitemapindex")
    first = data[:4096].removeprefix(codecs.BOM_UTF8).lstrip().split(b"\n", 1)[0].strip()
    return _URL_LINE.fullmatch(first.decode("utf-8", "replace")) is not None


def sitemaps_from_robots(robots_txt: str | bytes, base_url: str) -> list[str]:
    """The ``Sitemap:`` URLs of a robots.txt: absolute (relative ones against ``base_url``), normalised,
    in file order, each once."""
    if isinstance(robots_txt, bytes):
        robots_txt = robots_txt.decode("utf-8-sig", "replace")
    found: dict[str, None] = {}
    for raw in Protego.parse(robots_txt).sitemaps:
        try:
            found.setdefault(normalize_url(urljoin(base_url, raw.strip())), None)
        except (InvalidURL, ValueError):
            continue
    return list(found)


def newest_first(entries: Iterable[SitemapEntry], *, since: str | None = None) -> list[SitemapEntry]:
    """Entries by date, newest first (the newer of ``news_published`` and ``lastmod``), then the
    undated ones in their order; with ``since`` (ISO date or datetime) those certainly older are
    dropped: a date-only value counts as its whole day, so an entry dated the ``since`` day stays.

    Raises ValueError for a ``since`` that is not an ISO date.
    """
    cut: datetime | None = None
    if since is not None:
        bounds = date_bounds(normalize_date(since) or "")
        if bounds is None:
            raise ValueError(f"since must be an ISO 8601 date or datetime, got {since!r}")
        cut = bounds[0]
    dated: list[tuple[datetime, SitemapEntry]] = []
    undated: list[SitemapEntry] = []
    for entry in entries:
        spans = [b for b in (date_bounds(d) for d in (entry.news_published, entry.lastmod) if d) if b is not None]
        if not spans:
            undated.append(entry)
            continue
        if cut is not None and max(latest for _, latest in spans) < cut:
            continue
        dated.append((max(earliest for earliest, _ in spans), entry))
    # sorted() is stable with reverse=True as well: equal dates keep the sitemap's order.
    dated.sort(key=lambda pair: pair[0], reverse=True)
    return [entry for _, entry in dated] + undated


# --------------------------------------------------------------------------------------------
# Internals


def _inflate(data: bytes, limit: int) -> tuple[bytes, bool]:
    """Gunzip (twice at most: a .gz served with Content-Encoding gzip arrives wrapped once more,
    and clients do not always unwrap it) up to ``limit`` bytes; anything else is cut at ``limit``.
    Also says whether the result is cut short (by the limit or a truncated gzip stream)."""
    cut = False
    for _ in range(2):
        if not data.startswith(GZIP_MAGIC):
            break
        data, short = _gunzip(data, limit)
        cut = cut or short
    return data[:limit], cut or len(data) > limit


def _gunzip(data: bytes, limit: int) -> tuple[bytes, bool]:
    parts: list[bytes] = []
    total = 0
    rest = data
    # A gzip file may hold several members one after the other; read them all, within the limit.
    while rest.startswith(GZIP_MAGIC) and total < limit:
        inflater = zlib.decompressobj(wbits=31)
        try:
            chunk = inflater.decompress(rest, limit - total)
        except zlib.error:
            return b"".join(parts), True
        parts.append(chunk)
        total += len(chunk)
        if not inflater.eof:
            return b"".join(parts), True  # truncated input, or the limit was reached
        rest = inflater.unused_data
    return b"".join(parts), False


def _complete_entries(data: bytes) -> bytes:
    """The document up to its last closed entry when it lacks its closing root tag: a cut-off
    sitemap's last ``<loc>`` may be half a URL, and a wrong URL is worse than a missing one."""
    tail = data[-4096:]
    if _ROOT_END.search(tail):
        return data
    # Look near the end first: a whole 50 MB sitemap need not be scanned for its last entry.
    ends = [m.end() for m in _ENTRY_END.finditer(data, max(0, len(data) - 65536))]
    ends = ends or [m.end() for m in _ENTRY_END.finditer(data)]
    return data[: ends[-1]] if ends else data


def _parse_xml(data: bytes) -> etree._Element | None:
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        recover=True,
        remove_comments=True,
        remove_pis=True,
    )
    if b"\x00" not in data[:64]:  # UTF-16 without a BOM: the repair would split characters
        data = _BARE_AMPERSAND.sub(b"&amp;", data)
    try:
        return etree.fromstring(data, parser)
    except (etree.LxmlError, ValueError):
        return None


def _entry(el: etree._Element, base_url: str) -> SitemapEntry | None:
    loc = lastmod = published = title = None
    for child in el:
        name = _local(child)
        if name == "loc":
            loc = _text(child)
        elif name == "lastmod":
            lastmod = normalize_date(_text(child))
        elif name == "news":
            for item in child.iter():
                item_name = _local(item)
                if item_name == "publication_date":
                    published = normalize_date(_text(item))
                elif item_name == "title":
                    title = " ".join(_text(item).split()) or None
    url = _url(loc or "", base_url)
    return None if url is None else SitemapEntry(url, lastmod, published, title)


def _text_entries(data: bytes, base_url: str) -> list[SitemapEntry]:
    entries: dict[str, None] = {}
    for line in data.decode("utf-8-sig", "replace").splitlines():
        line = line.strip()
        if _URL_LINE.fullmatch(line):
            url = _url(line, base_url)
            if url is not None:
                entries.setdefault(url, None)
    return [SitemapEntry(url, None, None, None) for url in entries]


def _url(raw: str, base_url: str) -> str | None:
    # Whitespace inside <loc> is layout, except a space, which is part of the path.
    raw = raw.strip().replace("\t", "").replace("\n", "").replace("\r", "").replace(" ", "%20")
    if not raw:
        return None
    try:
        # Absolute is the rule in sitemaps: skip urljoin, a third of the time of a 50,000-URL sitemap.
        return normalize_url(raw if raw[:8].lower().startswith(("http://", "https://")) else urljoin(base_url, raw))
    except (InvalidURL, ValueError):
        return None


def _local(el: etree._Element) -> str:
    """Lower-case local name of an element ('' for comments and entities): real sitemaps get the
    namespace and the case of their tags wrong."""
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1].lower()


def _text(el: etree._Element) -> str:
    # The element's own text and its children's tails, never an entity's replacement text.
    parts = [el.text or ""]
    parts += [child.tail or "" for child in el]
    return "".join(parts).strip()
