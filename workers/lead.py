"""The article's lead (standfirst): the sentence or two under the headline that trafilatura drops.

Content management systems mark the lead by name (``article-lead``, ``teaser-text``, ``intro``,
``entry-summary``, ``abstract``, ``standfirst``), and trafilatura discards elements named
"teaser" on purpose, because the same word names the boxes that advertise other articles.  On
the annotated corpus the lead is the largest single cause of missing text.  A lead is taken back
only when it is unmistakable: one element so named (teaser lists repeat their class), mostly not
link text, with no credit line, and placed before the article's first paragraph.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

from lxml import etree
from lxml.etree import _Element

__all__ = ["find_lead"]

_LEAD_WORDS = frozenset(
    {
        *("lead", "lede", "intro", "introduction", "teaser", "teasertext", "abstract", "excerpt", "summary"),
        *("standfirst", "deck", "dek", "subline", "strapline", "perex", "chapo", "sapo"),
        *("entradilla", "bajada", "sumario", "leadtext", "introtext"),
    }
)
# Names that share a word with a lead but name something else: an author's summary, a video's.
_NOT_LEAD_WORDS = frozenset({"author", "autor", "bio", "comment", "comments", "video", "newsletter", "related"})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT = re.compile(r"[^a-z0-9]+")
_CANDIDATES = etree.XPath(
    "//*[self::p or self::div or self::h2 or self::span or self::section or self::strong][@class]"
    "[contains(@class, 'ead') or contains(@class, 'ede') or contains(@class, 'ntro') or contains(@class, 'easer')"
    " or contains(@class, 'bstract') or contains(@class, 'xcerpt') or contains(@class, 'ummary')"
    " or contains(@class, 'tandfirst') or contains(@class, 'eck') or contains(@class, 'ek')"
    " or contains(@class, 'ubline') or contains(@class, 'trapline')"
    " or contains(@class, 'erex') or contains(@class, 'hapo') or contains(@class, 'apo')"
    " or contains(@class, 'ntradilla') or contains(@class, 'ajada') or contains(@class, 'umario')]"
)
_FOLLOWED_BY = etree.XPath("boolean(following::*[starts-with(normalize-space(.), $start)])")
_OUTSIDE = frozenset({"a", "nav", "aside", "footer", "li", "button", "form", "label", "figcaption", "figure"})
_MIN_WORDS, _MAX_WORDS = 8, 120
_MAX_LINK_SHARE = 0.3


@lru_cache(maxsize=4096)
def _is_lead_name(names: str) -> bool:
    words = set(_SPLIT.split(_CAMEL.sub("-", names).lower()))
    return bool(words & _LEAD_WORDS) and not words & _NOT_LEAD_WORDS


def find_lead(tree: _Element, body_start: str) -> str | None:
    """The text of the page's lead, or None when no single element is clearly it.

    ``body_start`` is the beginning of the extracted text's first paragraph: a lead comes before it.
    """
    named = [e for e in _CANDIDATES(tree) if _is_lead_name(e.get("class") or "")]
    classes = Counter(e.get("class") for e in named)
    found: _Element | None = None
    text = ""
    for elem in named:
        if found is not None and found not in elem.iterancestors():
            break  # the first lead wins; a lead inside it (a wrapper's inner lead) is more precise
        if classes[elem.get("class")] > 1 or any(up.tag in _OUTSIDE for up in elem.iterancestors()):
            continue
        inner = " ".join(elem.text_content().split())
        if not _MIN_WORDS <= len(inner.split()) <= _MAX_WORDS or "©" in inner:
            continue
        links = sum(len(a.text_content()) for a in elem.iter("a"))
        if links > _MAX_LINK_SHARE * len(inner):
            continue
        if body_start and not _FOLLOWED_BY(elem, start=body_start):
            continue
        found, text = elem, inner
    return text or None
