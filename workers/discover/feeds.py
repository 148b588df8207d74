"""Feeds as a source of article URLs: RSS 0.9x/1.0/2.0, Atom and JSON Feed, plus feed autodiscovery.

Pure functions over bytes already fetched (never a network call): :func:`parse_feed` turns a feed
into :class:`FeedEntry` values, :func:`looks_like_feed` tells a feed from an HTML page, and
:func:`find_feeds` reads the ``<link rel="alternate">`` tags of a page.

feedparser does RSS and Atom (encodings, xml:base, RSS guids that are permalinks, the sloppy feeds
of the real web); its released versions do not read JSON Feed, which is small enough to read here.
The date helpers :func:`normalize_date` and :func:`date_bounds` are shared with
:mod:`workers.discover.sitemaps`.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from html import unescape
from typing import Any
from urllib.parse import urljoin

import feedparser  # type: ignore[import-untyped]
from lxml import etree

from workers.core.htmlparse import parse_html
from workers.core.urls import InvalidURL, normalize_url

__all__ = [
    "FeedEntry",
    "as_utf8",
    "date_bounds",
    "find_feeds",
    "looks_like_feed",
    "normalize_date",
    "parse_feed",
    "sniff_root",
]

#: Media types a ``<link rel="alternate">`` must have to count as a feed.
FEED_TYPES = frozenset(
    {"application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/feed+json"}
)
#: Media types that say "feed" in a response header (some servers use the older x- forms).
_FEED_CONTENT_TYPES = FEED_TYPES | {"application/x-rss+xml", "application/x-atom+xml", "application/rss"}
_FEED_ROOTS = frozenset({"rss", "feed", "rdf", "channel"})
_SNIFF_BYTES = 8192

_TAG = re.compile(r"<[^>]*>")
_ISO = re.compile(
    r"(\d{4})([-/])(\d{2})\2(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?\s*(Z|z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?)?"
)
# Zone names seen in RSS dates beyond the US ones email.utils knows.
_ZONES = {
    "CET": "+0100", "CEST": "+0200", "MET": "+0100", "MEST": "+0200", "BST": "+0100", "WET": "+0000",
    "WEST": "+0100", "EET": "+0200", "EEST": "+0300", "MSK": "+0300", "IST": "+0530", "HKT": "+0800",
    "SGT": "+0800", "JST": "+0900", "KST": "+0900", "AEST": "+1000", "AEDT": "+1100", "NZST": "+1200",
    "NZDT": "+1300", "WIB": "+0700",
}  # fmt: skip
_NAMED_ZONE = re.compile(r"\d\d:\d\d(?::\d\d)?\s+(" + "|".join(_ZONES) + r")(?:\s*\([^)]*\))?$", re.IGNORECASE)
# The same without the comment "(…)": for dates that do not end with ")", where the comment cannot
# match but searching for its ")" would scan to the end once for every "(".
_NAMED_ZONE_BARE = re.compile(r"\d\d:\d\d(?::\d\d)?\s+(" + "|".join(_ZONES) + r")$", re.IGNORECASE)
# IGNORECASE matches by Unicode case folding: the Kelvin sign matches the K of "KST", yet its
# upper() is itself, so the offsets are looked up by casefold.
_ZONES_FOLDED = {name.casefold(): offset for name, offset in _ZONES.items()}
# Prolog items before the first element (XML declaration, processing instructions, comments,
# DOCTYPE) are read by _prolog_item in one pass: the regex it replaces backtracked exponentially
# over a DOCTYPE of "[]" pairs with no ">" (26 pairs took 10 s and froze the worker's heartbeats).
_SPACE = re.compile(rb"\s*")
_DOCTYPE_STOP = re.compile(rb"[\[>]")
_FIRST_TAG = re.compile(rb"\s*<([A-Za-z_][\w:.-]*)")
# The encoding pseudo-attribute of an XML declaration; see _declare_utf8 for where it may start.
_ENCODING_ATTRIBUTE = re.compile(r"""encoding\s*=\s*["'][^"']*["']""")
_FEED_MARK = re.compile(rb"<(?:rss|feed|rdf:RDF)[\s>]")


@dataclass(frozen=True)
class FeedEntry:
    """One item of a feed."""

    url: str  #: normalised with :func:`workers.core.urls.normalize_url`
    published: str | None  #: ISO 8601, the newer of the item's published and updated dates
    title: str | None


# --------------------------------------------------------------------------------------------
# Parsing


def parse_feed(data: bytes, base_url: str) -> list[FeedEntry]:
    """The items of an RSS, Atom or JSON feed, in feed order, each URL once; ``[]`` for anything else.

    Relative links resolve against xml:base, then ``base_url`` (the URL the feed was fetched from).
    Items without a usable http(s) link are skipped. A URL listed twice (say once with
    ``?utm_source=rss``) gives one entry at its first place, with the newest date of the two.
    """
    kind = sniff_root(data)
    if kind == "json":
        raw = _json_items(data, base_url)
    elif kind in _FEED_ROOTS or (kind != "html" and _FEED_MARK.search(data, 0, _SNIFF_BYTES)):
        # The second case: a feed behind stray output (a PHP warning, a stray <br>) that the
        # lenient parser still reads.
        raw = _feedparser_items(data, base_url)
    else:
        return []
    merged: dict[str, FeedEntry] = {}
    for link, published, title in raw:
        try:
            url = normalize_url(urljoin(base_url, link.strip()))
        except (InvalidURL, ValueError):
            continue
        seen = merged.get(url)
        if seen is None:
            merged[url] = FeedEntry(url, published, title)
        else:
            merged[url] = FeedEntry(url, _newer(seen.published, published), seen.title or title)
    return list(merged.values())


def _feedparser_items(data: bytes, base_url: str) -> list[tuple[str, str | None, str | None]]:
    # A BytesIO, never the bytes themselves: feedparser treats a bare string as a file name or URL.
    headers = {"content-location": base_url}
    try:
        parsed = feedparser.parse(io.BytesIO(_without_dtd(data)), response_headers=headers, sanitize_html=False)
    except Exception:  # whatever a hostile document makes feedparser trip over, it is not a feed
        return []
    items = []
    for entry in parsed.entries:
        # dict.get: FeedParserDict.get maps a missing "updated" to "published" with a warning.
        link = dict.get(entry, "link")
        if not isinstance(link, str) or not link:
            continue
        # Our own reading of the raw strings: feedparser's *_parsed values turn "2025/01/21" into
        # 1 November and "2025-02-30" into 2 March, and a wrong date is worse than none.
        dates = [normalize_date(dict.get(entry, key)) for key in ("published", "updated", "created")]
        items.append((link, _newest(dates), _entry_title(entry)))
    return items


def _without_dtd(data: bytes) -> bytes:
    """The feed without an internal DTD subset (``<!DOCTYPE rss [ … ]>``).

    Entity definitions are how XML bombs and external entities arrive. feedparser strips them only
    when each starts a line; otherwise expat expands them until its amplification guard trips,
    about 8 MB and two CPU seconds later. Feeds have no use for them.
    """
    data = as_utf8(data)
    position = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    while (item := _prolog_item(data, position)) is not None:
        start, end = item
        if data[start : start + 9].upper() == b"<!DOCTYPE" and b"[" in data[start:end]:
            return data[:position] + data[end:]
        position = end
    return data


def _prolog_item(data: bytes, position: int) -> tuple[int, int] | None:
    r"""(start, end) of the prolog item at ``position`` after optional whitespace, or None.

    Reads what ``\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE(?:[^\[>]|\[.*?\])*>)`` (DOTALL, IGNORECASE)
    matches, in one pass: a PI ends at the first ``?>``, a comment at the first ``-->``, a DOCTYPE at
    the first ``>`` outside brackets, each ``[`` closing at the first ``]`` after it.  Taking the
    first ``]`` loses nothing: a later one leads to the same ``>`` or to none, so where the
    backtracking regex finds a match this finds the same one, and where it finds none neither does this.
    """
    space = _SPACE.match(data, position)
    start = space.end() if space is not None else position
    if data.startswith(b"<?", start):
        close = data.find(b"?>", start + 2)
        return None if close < 0 else (start, close + 2)
    if data.startswith(b"<!--", start):
        close = data.find(b"-->", start + 4)
        return None if close < 0 else (start, close + 3)
    if data[start : start + 9].upper() != b"<!DOCTYPE":
        return None
    cursor = start + 9
    while (stop := _DOCTYPE_STOP.search(data, cursor)) is not None:
        if stop.group() == b">":
            return start, stop.end()
        close = data.find(b"]", stop.end())
        if close < 0:
            return None
        cursor = close + 1
    return None


def as_utf8(data: bytes) -> bytes:
    """A UTF-16 document (with a byte order mark) as UTF-8, its XML declaration changed to match,
    so byte-level checks and repairs see characters; other documents as they are."""
    if not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data
    text = data.decode("utf-16", "replace")
    return _declare_utf8(text).encode("utf-8")


def _declare_utf8(text: str) -> str:
    r"""``text`` with its first ``encoding="…"`` inside a ``<?xml …>`` changed to ``utf-8``.

    What ``re.sub(r"(?<=<\?xml)([^>]*?)encoding\s*=\s*[\"'][^\"']*[\"']", r'\1encoding="utf-8"', text,
    count=1)`` does, without its quadratic time (a megabyte of ``<?xml `` took minutes): once the
    attribute is not found before the first ``>`` after a ``<?xml``, no ``<?xml`` before that ``>``
    can have it either, so the search resumes after it.
    """
    position = 0
    while (start := text.find("<?xml", position)) >= 0:
        end = text.find(">", start + 5)
        end = len(text) if end < 0 else end
        candidate = text.find("encoding", start + 5, end)
        while candidate >= 0:
            found = _ENCODING_ATTRIBUTE.match(text, candidate)
            if found is not None:
                return text[:candidate] + 'encoding="utf-8"' + text[found.end() :]
            candidate = text.find("encoding", candidate + 1, end)
        position = end
    return text


def _entry_title(entry: Any) -> str | None:
    title = dict.get(entry, "title")
    if not isinstance(title, str):
        return None
    detail = dict.get(entry, "title_detail") or {}
    if detail.get("type") in ("text/html", "application/xhtml+xml"):
        title = unescape(_without_tags(title))
    return " ".join(title.split()) or None


def _without_tags(html: str) -> str:
    """``_TAG.sub(" ", html)`` in linear time.

    Past the last ">" no tag can end, but every "<" there would scan to the end of the text looking
    for one (a title of "<" repeated took seconds); in front of it every "<" finds its ">".
    """
    end = html.rfind(">") + 1
    return _TAG.sub(" ", html[:end]) + html[end:]


def _json_items(data: bytes, base_url: str) -> list[tuple[str, str | None, str | None]]:
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return []
    if not isinstance(doc, dict) or "jsonfeed.org/version" not in str(doc.get("version", "")):
        return []
    items = doc.get("items")
    if not isinstance(items, list):
        return []
    found = []
    for item in items:
        if not isinstance(item, dict):
            continue
        # "url" is the item's permalink; "id" often is too. "external_url" points elsewhere on purpose.
        link = item.get("url")
        if not isinstance(link, str) or not link.strip():
            ident = item.get("id")
            link = ident if isinstance(ident, str) and ident.startswith(("http://", "https://")) else None
        if link is None:
            continue
        dates = [normalize_date(_str(item.get(key))) for key in ("date_published", "date_modified")]
        title = " ".join((_str(item.get("title")) or "").split())
        found.append((link, _newest(dates), title or None))
    return found


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


# --------------------------------------------------------------------------------------------
# Sniffing and autodiscovery


def sniff_root(data: bytes) -> str | None:
    """What the document starts with: the lower-case local name of its first element (``"rss"``,
    ``"feed"``, ``"rdf"``, ``"urlset"``, ``"html"``…), ``"json"`` for a JSON object, else None."""
    head = data[:_SNIFF_BYTES]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        head = head.decode("utf-16", "ignore").encode("utf-8")
    head = head.removeprefix(codecs.BOM_UTF8).lstrip()
    if head.startswith(b"{"):
        return "json"
    position = 0
    while (item := _prolog_item(head, position)) is not None:
        position = item[1]
    first = _FIRST_TAG.match(head, position)
    if first is None:
        return None
    return first.group(1).decode("ascii").rsplit(":", 1)[-1].lower()


def looks_like_feed(data: bytes, content_type: str | None) -> bool:
    """Whether a response is a feed: the document's first element (or JSON Feed version) decides;
    the Content-Type only when the start of the body says nothing either way."""
    kind = sniff_root(data)
    if kind == "json":
        return b"jsonfeed.org/version" in data[:_SNIFF_BYTES]
    if kind is not None:
        return kind in _FEED_ROOTS
    return _media_type(content_type) in _FEED_CONTENT_TYPES


def find_feeds(html: str | bytes | etree._Element, base_url: str) -> list[str]:
    """Feed URLs a page announces with ``<link rel="alternate" type="application/rss+xml|atom+xml|
    feed+json" href>``: absolute, normalised, in document order, each once (``<base href>`` honoured)."""
    root = parse_html(html)
    if root is None:
        return []
    base = base_url
    for el in root.iter("base"):
        href = (el.get("href") or "").strip()
        if href:
            base = urljoin(base_url, href)
            break
    found: dict[str, None] = {}
    for el in root.iter("link"):
        rel = (el.get("rel") or "").lower().split()
        href = (el.get("href") or "").strip()
        if "alternate" not in rel or not href or _media_type(el.get("type")) not in FEED_TYPES:
            continue
        if _is_comment_feed(href, el.get("title") or ""):
            continue
        try:
            found.setdefault(normalize_url(urljoin(base, href)), None)
        except (InvalidURL, ValueError):
            continue
    return list(found)


# Blogs announce a feed of their readers' comments beside the feed of their posts ("… » Comments
# Feed", ``/comments/feed/``): it lists no articles, only costs fetches.
_COMMENT_FEED_PATH = re.compile(r"/comments?/(?:feed|rss|atom)\b|[?&]feed=comments", re.IGNORECASE)
_COMMENT_FEED_TITLE = re.compile(
    # Plural (WordPress says "Comments Feed", "Kommentar-Feed"): "Comment is free" is a section of articles.
    r"\b(?:comments|kommentare|kommentar-feed|commentaires|comentarios|commenti|komentarze|komentarzy)\b",
    re.IGNORECASE,
)


def _is_comment_feed(href: str, title: str) -> bool:
    """Whether a feed link announces the comments of a site or of one post."""
    return bool(_COMMENT_FEED_PATH.search(href) or _COMMENT_FEED_TITLE.search(title))


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


# --------------------------------------------------------------------------------------------
# Dates


def normalize_date(text: str | None) -> str | None:
    """ISO 8601 of a feed or sitemap date (W3C datetime, RFC 822, date only), or None.

    A date alone stays a date (``2025-01-21``); a time with a zone becomes UTC with ``Z``; a W3C
    time without a zone stays as given (no ``Z``). RFC 822 dates without a zone count as GMT, as
    feeds conventionally mean. Year-only and year-month values give None (too coarse to order by).
    """
    if not isinstance(text, str):
        return None
    text = " ".join(text.split())
    if not text:
        return None
    iso = _ISO.fullmatch(text)
    if iso:
        return _from_iso(iso)
    named = _named_zone(text)
    offset = _ZONES_FOLDED.get(named.group(1).casefold()) if named else None
    if named and offset:
        # email.utils knows only the US zones; an unknown name would silently count as GMT.
        text = text[: named.start(1)] + offset
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _utc(moment)


def _named_zone(text: str) -> re.Match[str] | None:
    """``_NAMED_ZONE.search(text)`` for a date with its whitespace collapsed, in linear time.

    A match ends the text and holds no ")" but perhaps its last character, so it starts after the
    last ")" before that one; without a final ")" only the form without a comment can match.
    """
    start = text.rfind(")", 0, len(text) - 1) + 1
    return (_NAMED_ZONE if text.endswith(")") else _NAMED_ZONE_BARE).search(text, start)


def _from_iso(match: re.Match[str]) -> str | None:
    year, _, month, day, hour, minute, second, zone = match.groups()
    try:
        if hour is None:
            return date(int(year), int(month), int(day)).isoformat()
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
    except ValueError:
        return None
    if zone is None:
        return moment.strftime("%Y-%m-%dT%H:%M:%S")
    offset = timedelta(0)
    if zone[0] in "+-":
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        if zone[0] == "-":
            offset = -offset
    try:
        return _utc(moment.replace(tzinfo=timezone(offset)))
    except (ValueError, OverflowError):
        return None


def _utc(moment: datetime) -> str | None:
    try:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError):
        return None


def date_bounds(iso: str) -> tuple[datetime, datetime] | None:
    """(earliest, latest) UTC instant an ISO date from :func:`normalize_date` may mean: a whole day
    for a date, one instant for a datetime (a time without a zone is taken as UTC); None if unreadable."""
    try:
        if len(iso) == 10:
            start = datetime.combine(date.fromisoformat(iso), datetime.min.time(), UTC)
            return start, start + timedelta(days=1) - timedelta(microseconds=1)
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment, moment


def _newer(a: str | None, b: str | None) -> str | None:
    return _newest([a, b])


def _newest(dates: list[str | None]) -> str | None:
    best: str | None = None
    best_key: datetime | None = None
    for value in dates:
        bounds = date_bounds(value) if value else None
        if bounds is not None and (best_key is None or bounds[0] > best_key):
            best, best_key = value, bounds[0]
    return best
