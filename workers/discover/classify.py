"""What a fetched page is, by its content: an article, a listing, or neither, with the reasons.

Real news sites use every URL shape there is, so a link's URL cannot always say what it leads
to.  Such a link is fetched as a *probe*, and this module judges the page itself, from evidence
any news page carries, with no site names:

* **metadata**: ``og:type`` ``article``; JSON-LD ``@type`` NewsArticle/Article/BlogPosting/…
  (an article) or CollectionPage/ItemList/SearchResultsPage (a listing);
* **one long text block**: the largest run of ``<p>`` paragraphs under one parent, link text
  left out (an article has one; a listing's summaries each sit in their own card), which counts
  with metadata or with a byline or a date: alone it is as often an "about" or policy page;
* **a byline and a date** (``author`` meta or ``rel``/class/``itemprop``, ``article:published_time``,
  ``datePublished``, a lone ``<time>``);
* **many teaser links of a similar shape** (``/a/{id}``, ``/{n}/{n}/{n}/{slug}``: see
  :func:`workers.discover.shapes.url_shape`) with headline-like text: a listing.

The rules lean one way on purpose: a page is called an article only on clear evidence, because a
listing stored as an article is a wrong record, while an article called a listing only costs the
links on it being read.  Pure functions over the parsed page; the stage logs the verdict.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

from lxml import etree

from workers.core.htmlparse import parse_html
from workers.discover.shapes import url_shape

__all__ = ["ARTICLE", "LISTING", "OTHER", "PageEvidence", "Verdict", "classify_page", "page_evidence"]

ARTICLE: Final = "article"
LISTING: Final = "listing"
OTHER: Final = "other"

def _lower_words(text: str) -> frozenset[str]:
    return frozenset(text.lower().split())


_ARTICLE_TYPES = _lower_words(
    "NewsArticle Article ReportageNewsArticle AnalysisNewsArticle OpinionNewsArticle BackgroundNewsArticle "
    "ReviewNewsArticle AskPublicNewsArticle BlogPosting LiveBlogPosting SatiricalArticle Report TechArticle"
)
_LISTING_TYPES = _lower_words("CollectionPage ItemList SearchResultsPage")
_BYLINE_RE = re.compile(r"(?:^|[\s_-])(?:byline|author|autor|auteur|writer|reporter)(?:$|[\s_-])")
_HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4"})
#: Characters of one text block that, with a byline or a date, outweigh the teasers around it.
LONG_BLOCK: Final = 1500
#: With a byline or a date (a long text alone is a policy page as often as a story), or with metadata.
BLOCK_WITH_SIGNS: Final = 600
BLOCK_WITH_META: Final = 400
#: Teaser links of one shape that make a page a listing.
TEASER_GROUP: Final = 4
_MAX_JSONLD_BYTES = 200_000


@dataclass(frozen=True)
class PageEvidence:
    """What the classifier read from a page (also what the log line shows)."""

    og_type: str | None
    ld_types: tuple[str, ...]
    block_chars: int
    byline: bool
    dated: bool
    teaser_links: int
    teaser_group: int
    teaser_shape: str | None


@dataclass(frozen=True)
class Verdict:
    """What a page is (``article``, ``listing`` or ``other``) and why, in words."""

    kind: str
    reasons: tuple[str, ...]
    evidence: PageEvidence


def classify_page(html: str | bytes | etree._Element, url: str) -> Verdict:
    """Judge a fetched page by its content (see the module docstring): article, listing or other.

    Used on probes so that a page whose URL shape said nothing goes to extraction only when it is
    an article, and its links are read only when it is not. Garbage input is ``other``.
    """
    root = parse_html(html)
    if root is None:
        return Verdict(OTHER, ("not an HTML page",), PageEvidence(None, (), 0, False, False, 0, 0, None))
    ev = page_evidence(root, url)
    return _decide(ev)


def _decide(ev: PageEvidence) -> Verdict:
    meta_article = (ev.og_type or "").startswith("article") or any(t in _ARTICLE_TYPES for t in ev.ld_types)
    meta_listing = any(t in _LISTING_TYPES for t in ev.ld_types) and not meta_article
    block = f"one text block of {ev.block_chars} characters"
    teasers = f"{ev.teaser_group} teaser links shaped {ev.teaser_shape}" if ev.teaser_shape else "no teaser links"
    many_teasers = ev.teaser_group >= TEASER_GROUP
    meta = [f"og:type {ev.og_type}"] if ev.og_type else []
    meta += [f"JSON-LD @type {', '.join(ev.ld_types)}"] if ev.ld_types else []
    signs = [s for s, on in (("a byline", ev.byline), ("a date", ev.dated)) if on]
    if meta_listing:
        return Verdict(LISTING, (*meta, teasers), ev)
    if meta_article and ev.block_chars >= (BLOCK_WITH_META if many_teasers else BLOCK_WITH_META // 2):
        return Verdict(ARTICLE, (*meta, block, *signs), ev)
    # Teasers around a text (related stories) do not make it a listing once it is long enough.
    if ev.block_chars >= BLOCK_WITH_SIGNS and signs and (ev.block_chars >= LONG_BLOCK or not many_teasers):
        return Verdict(ARTICLE, (block, *signs), ev)
    if many_teasers:
        return Verdict(LISTING, (teasers, *meta), ev)
    if ev.teaser_links >= TEASER_GROUP:
        return Verdict(LISTING, (f"{ev.teaser_links} headline links", *meta), ev)
    reasons = (*meta, block, teasers) if meta else (block, teasers)
    return Verdict(OTHER, reasons, ev)


def page_evidence(root: etree._Element, url: str) -> PageEvidence:
    """Everything :func:`classify_page` weighs, read from a parsed page."""
    og_type = None
    dated = byline = False
    for el in root.iter("meta"):
        prop = (el.get("property") or el.get("name") or el.get("itemprop") or "").lower()
        content = (el.get("content") or "").strip()
        if prop == "og:type" and content:
            og_type = content.lower()[:40]
        elif prop in {"article:published_time", "datepublished", "date", "pubdate", "publishdate"} and content:
            dated = True
        elif prop in {"author", "article:author"} and content:
            byline = True
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        attrs = " ".join(v for v in (el.get("class"), el.get("rel"), el.get("itemprop")) if v).lower()
        if not byline and attrs and _BYLINE_RE.search(attrs):
            byline = True
        if not dated and (el.get("itemprop") or "").lower() == "datepublished":
            dated = True
    times = sum(1 for _ in root.iter("time"))
    dated = dated or 1 <= times <= 2
    teaser_links, group, shape = _teasers(root, url)
    return PageEvidence(og_type, _ld_types(root), _longest_block(root), byline, dated, teaser_links, group, shape)


def _ld_types(root: etree._Element) -> tuple[str, ...]:
    found: list[str] = []
    for el in root.iter("script"):
        if (el.get("type") or "").lower().strip() != "application/ld+json" or not el.text:
            continue
        text = el.text.strip()
        if len(text) > _MAX_JSONLD_BYTES:
            continue
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # "[[[[…" a hundred thousand deep
            continue
        _collect_types(data, found, 0)
    return tuple(dict.fromkeys(found))[:8]


def _collect_types(data: Any, out: list[str], depth: int) -> None:
    """@type values of the top-level objects and of their @graph (not nested authors or publishers)."""
    if depth > 2 or len(out) > 16:
        return
    if isinstance(data, list):
        for item in data[:50]:
            _collect_types(item, out, depth + 1)
    elif isinstance(data, dict):
        kind = data.get("@type")
        for k in kind if isinstance(kind, list) else [kind]:
            if isinstance(k, str):
                out.append(k.lower()[:40])
        if "@graph" in data:
            _collect_types(data["@graph"], out, depth + 1)


def _text_without_links(el: etree._Element) -> int:
    total = len(" ".join("".join(el.itertext()).split()))
    linked = sum(len(" ".join("".join(a.itertext()).split())) for a in el.iter("a"))
    return max(0, total - linked)


def _longest_block(root: etree._Element) -> int:
    """Characters of the largest run of paragraphs under one parent, link text left out.

    A parent whose paragraphs sit between linked headings is a list of teasers (summaries), not
    a text: it does not count.
    """
    by_parent: dict[int, list[Any]] = {}
    for p in root.iter("p"):
        parent = p.getparent()
        if parent is not None:
            entry = by_parent.setdefault(id(parent), [parent, 0])
            entry[1] += _text_without_links(p)
    # Text straight in one element (``<div>text<br>text</div>``) is a block too.
    for el in root.iter("div", "section", "article", "td", "main"):
        direct = len(" ".join((el.text or "").split())) + sum(
            len(" ".join((child.tail or "").split())) for child in el if child.tag in ("br", "b", "i", "em", "strong")
        )
        if direct:
            by_parent.setdefault(id(el), [el, 0])[1] += direct
    for parent, chars in sorted(by_parent.values(), key=lambda e: -int(e[1]))[:8]:
        if _linked_headings(parent) < 3:
            return int(chars)
    return 0


def _linked_headings(parent: etree._Element) -> int:
    return sum(1 for h in parent.iter("h2", "h3", "h4") if next(h.iter("a"), None) is not None)


def _teasers(root: etree._Element, url: str) -> tuple[int, int, str | None]:
    """(headline-like links to this host, the largest group of them by URL shape, that shape)."""
    host = (urlsplit(url).hostname or "").lower()
    own = url.split("#", 1)[0]
    shapes: Counter[str] = Counter()
    seen: set[str] = set()
    for a in root.iter("a"):
        href = (a.get("href") or "").strip()
        if not href or href.startswith(("#", "javascript:", "mailto:")):
            continue
        words = len("".join(a.itertext()).split())
        headed = any(anc.tag in _HEADING_TAGS for anc in a.iterancestors())
        if words < 4 and not (headed and words >= 2):
            continue
        try:
            target = urljoin(url, href).split("#", 1)[0]
        except ValueError:
            continue
        if target == own or target in seen or (urlsplit(target).hostname or "").lower() != host:
            continue
        seen.add(target)
        shapes[url_shape(target)] += 1
    if not shapes:
        return 0, 0, None
    shape, n = shapes.most_common(1)[0]
    return len(seen), n, shape
