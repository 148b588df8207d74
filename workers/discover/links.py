"""Link discovery on listing pages: which links lead to articles, which to more listings.

A pure function over one page: HTML and the page's URL in, an ordered list of :class:`Link` out.
The rules are general (no site names) and work on two kinds of evidence:

* the **shape of the URL** (:func:`classify_url`, see :mod:`workers.discover.urlkinds`): a date
  in the path, a long numeric id or a slug of several hyphenated words says "article"; a short
  path of one- or two-word segments says "section"; ``?page=3`` or ``/page/3/`` says "next page
  of this listing";
* the **context of the anchor**: ``rel=next``, "Next ›" or a bare number inside a pagination
  container marks a listing page; a headline (``<h2>``/``<h3>``), an ``<article>`` or a teaser
  card turns a link whose URL shape alone is undecided into an article.

Links to other hosts, static files, feeds, login/search/share/print/comment links and tag pages
are dropped: they are neither articles nor listings this crawler should walk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urljoin, urlsplit

from lxml import etree

from workers.core.htmlparse import parse_html
from workers.core.urls import InvalidURL, host_allowed, host_of, normalize_url
from workers.discover.urlkinds import (
    ARTICLE,
    ID_QUERY_KEYS,
    JUNK,
    LISTING,
    PAGINATION,
    classify_url,
    id_only,
    last_segment_words,
    url_kind,
)

__all__ = [
    "ARTICLE", "ID_QUERY_KEYS", "LISTING", "PROBE", "Link", "classify_url", "discover_links", "id_only", "link_kind",
]

#: A link whose URL shape and context say too little: fetched, then judged by its content.
PROBE: Final = "probe"


# Anchor texts that mean "another page of this listing" (compared casefolded, arrows removed).
_PAGINATION_WORDS = frozenset(
    w.strip()
    for w in """
    next|next page|older|older posts|older entries|older articles|older stories|newer|newer posts|
    newer entries|previous|previous page|prev|more articles|more stories|load more|show more|
    weiter|nächste|nächste seite|vorherige|vorherige seite|ältere beiträge|neuere beiträge|
    suivant|suivante|page suivante|précédent|précédente|page précédente|siguiente|página siguiente|
    anterior|página anterior|następna|następna strona|poprzednia|poprzednia strona|dalej|
    successiva|successivo|pagina successiva|precedente|volgende|vorige|próxima|próxima página|seguinte
    """.replace("\n", "|").split("|")
    if w.strip()
)
_ARROW_CHARS = "«»‹›<>→←⟩⟨❯❮▶◀▸◂…·|-–—:"
_PAGINATION_CONTAINER_RE = re.compile(
    r"pagination|pager|paging|page-?numbers|page-?nav|pagenav|nav-links|wp-pagenavi|seitennavigation"
)
_TEASER_RE = re.compile(
    r"(?:^|[\s_-])(?:teaser|teasers|card|cards|story|stories|article|articles|headline|entry|post|"
    r"news-item|lead|tile|item-title)(?:$|[\s_-])"
)
_NAV_RE = re.compile(r"(?:^|[\s_-])(?:nav|navbar|navigation|menu|breadcrumbs?|footer-links)(?:$|[\s_-])")
_HEADLINE_TAGS = frozenset({"h1", "h2", "h3", "h4", "article"})
_SKIP_SCHEMES = ("mailto:", "javascript:", "tel:", "sms:", "data:", "callto:", "whatsapp:", "ftp:", "file:")


@dataclass(frozen=True, slots=True)
class Link:
    """One link worth following, found on a listing page."""

    url: str  #: normalised with :func:`workers.core.urls.normalize_url`
    kind: str  #: ``"article"`` or ``"listing"``
    text: str  #: anchor text, whitespace collapsed ("" for ``<link rel=next>``)


def discover_links(
    html: str | bytes | etree._Element, base_url: str, *, allowed_hosts: frozenset[str], probes: bool = False
) -> list[Link]:
    """Articles and listing pages linked from one page, each URL once, in document order.

    ``base_url`` is the URL the page was fetched from; ``<base href>`` is respected. Links to hosts
    outside ``allowed_hosts``, junk links and the page itself are dropped. Garbage input gives ``[]``.
    With ``probes``, links whose shape and context say too little (menus, section lists, ids
    without words) come back as ``"probe"`` instead of being dropped or guessed, so that their
    page decides; a later anchor with clear evidence for the same URL turns a probe into its kind.
    """
    root = parse_html(html)
    if root is None:
        return []
    try:
        page_url = normalize_url(base_url)
    except InvalidURL:
        return []
    base = _effective_base(root, base_url)
    hosts = frozenset(h.lower() for h in allowed_hosts)
    found: dict[str, list[str]] = {}  # url -> [kind, text]; dicts keep first-seen order
    ranks: dict[str, int] = {}  # url -> strength of the evidence for its kind (see _decide)
    resolved: dict[str, str | None] = {}
    for el in root.iter("a", "link"):
        href = el.get("href")
        if not href:
            continue
        rel = (el.get("rel") or "").lower().split()
        rel_pagination = "next" in rel or "prev" in rel or "previous" in rel
        if el.tag == "link" and not rel_pagination:
            continue
        if href not in resolved:
            resolved[href] = _resolve(href, base, hosts)
        url = resolved[href]
        if url is None or url == page_url:
            continue
        text = _anchor_text(el) if el.tag == "a" else ""
        entry = found.get(url)
        if entry is not None and not probes:
            if not entry[1]:
                entry[1] = text
            continue
        kind, rank = _decide(url, el, text, rel_pagination, probes)
        if entry is not None:
            # With probes the clearest evidence for a URL wins (a headline over an image link).
            if kind is not None and rank > ranks[url]:
                entry[0], ranks[url] = kind, rank
            entry[1] = entry[1] or text
        elif kind is not None:
            found[url] = [kind, text]
            ranks[url] = rank
    return [Link(url, kind, text) for url, (kind, text) in found.items()]


def link_kind(url: str, text: str, *, in_nav: bool = False) -> str | None:
    """The kind of a link found outside an anchor (a ``<select>`` menu, a JSON answer), as a probe rule.

    Section shapes are listings, "more"/"next" labels listings, clear article shapes articles
    (unless in a menu or without words), the rest probes; junk is None.
    """
    shape = url_kind(url)
    if shape == JUNK:
        return None
    if shape == PAGINATION or _is_pagination_text(text):
        return LISTING
    if shape == ARTICLE:
        return PROBE if in_nav or (id_only(url) and len(text.split()) < 3) else ARTICLE
    if shape == LISTING:
        headline = not in_nav and len(text.split()) >= 2 and last_segment_words(url) >= 2
        return PROBE if headline else LISTING
    return ARTICLE if len(text.split()) >= 4 and not in_nav else PROBE


def _decide(
    url: str, el: etree._Element, text: str, rel_pagination: bool, probes: bool = False
) -> tuple[str | None, int]:
    """The kind of one anchor from its URL's shape and where it sits on the page, and how sure:
    2 for clear evidence (pagination, an article shape or headline), 1 for a probe, 0 for a
    listing by its URL shape alone."""
    shape = url_kind(url)
    if shape == JUNK:
        return None, 0
    if rel_pagination or shape == PAGINATION:
        return LISTING, 2
    in_pagination, in_headline = _context(el)
    words = len(text.split())
    if shape == ARTICLE:
        if probes and (_in_menu(el) or (id_only(url) and words < 3)):
            return PROBE, 1
        return ARTICLE, 2
    if in_pagination or _is_pagination_text(text):
        return LISTING, 2
    if shape == LISTING:
        # "/fische-schmerzen/" is a section by shape, yet under a headline of five or more words it
        # is a story; one-word sections ("/world/") and short labels stay listings.
        if in_headline and words >= 5 and last_segment_words(url) >= 2:
            return ARTICLE, 2
        if probes and in_headline and words >= 2 and last_segment_words(url) >= 2:
            return PROBE, 1  # "/north-and-south" under a headline: its page decides
        return LISTING, 0
    if probes:
        # A headline of a few words is a story; a one- or two-word label ("World") may be a section.
        return (ARTICLE, 2) if in_headline and words >= 4 else (PROBE, 1)
    return (ARTICLE, 2) if in_headline else (None, 0)


def _in_menu(el: etree._Element) -> bool:
    """Inside a navigation menu, the page header or its footer (nearest decisive ancestor), not a teaser."""
    for anc in el.iterancestors():
        tag = anc.tag
        if tag in ("body", "html"):
            return False
        if tag in _HEADLINE_TAGS:
            return False
        attrs = " ".join(v for v in (anc.get("class"), anc.get("id"), anc.get("role")) if v).lower()
        if tag in ("nav", "header", "footer") or (attrs and _NAV_RE.search(attrs)):
            return True
        if attrs and _TEASER_RE.search(attrs):
            return False
    return False


def _context(el: etree._Element) -> tuple[bool, bool]:
    """(inside a pagination container, inside a headline/article/teaser) for an anchor."""
    in_headline: bool | None = None
    for anc in el.iterancestors():
        tag = anc.tag
        if tag in ("body", "html"):
            break
        attrs = " ".join(
            v for v in (anc.get("class"), anc.get("id"), anc.get("aria-label"), anc.get("role")) if v
        ).lower()
        if attrs and _PAGINATION_CONTAINER_RE.search(attrs):
            return True, False
        if in_headline is None:
            # The nearest decisive ancestor wins: a menu inside an article is still a menu.
            if tag in _HEADLINE_TAGS or (attrs and _TEASER_RE.search(attrs)):
                in_headline = True
            elif tag == "nav" or (attrs and _NAV_RE.search(attrs)):
                in_headline = False
    return False, bool(in_headline)


def _is_pagination_text(text: str) -> bool:
    if not text or len(text) > 40:
        return False
    bare = text.casefold().strip(_ARROW_CHARS + " ").strip()
    if not bare:
        return any(ch in text for ch in "»›→❯▶▸«‹←❮◀◂")
    return bare in _PAGINATION_WORDS


def _anchor_text(el: etree._Element) -> str:
    text = " ".join("".join(el.itertext()).split())
    if text:
        return text
    for attr in ("title", "aria-label"):
        value = el.get(attr)
        if value and value.strip():
            return " ".join(value.split())
    for img in el.iter("img"):
        alt = img.get("alt")
        if alt and alt.strip():
            return " ".join(alt.split())
    return ""


def _resolve(href: str, base: str, hosts: frozenset[str]) -> str | None:
    """The normalised absolute URL of ``href`` if it is on an allowed host, else None."""
    href = href.strip()
    if not href or href.startswith("#") or href.lower().startswith(_SKIP_SCHEMES):
        return None
    # Browsers drop tabs and newlines inside URLs and escape spaces; do the same.
    href = href.replace("\t", "").replace("\n", "").replace("\r", "").replace(" ", "%20")
    try:
        absolute = urljoin(base, href)
        # Refuse other hosts before the costlier normalisation.
        if not host_allowed((urlsplit(absolute).hostname or "").lower(), hosts):
            return None
        url = normalize_url(absolute)
    except (InvalidURL, ValueError):
        return None
    return url if host_allowed(host_of(url), hosts) else None


def _effective_base(root: etree._Element, base_url: str) -> str:
    for el in root.iter("base"):
        href = (el.get("href") or "").strip()
        if href:
            try:
                joined = urljoin(base_url, href)
            except ValueError:
                return base_url
            return joined if urlsplit(joined).scheme in ("http", "https") else base_url
    return base_url
