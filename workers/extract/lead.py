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

__all__ = ["LEAD_TAGS", "find_lead", "is_lead_name"]

_LEAD_WORDS = frozenset(
    {
        *("lead", "lede", "intro", "introduction", "teaser", "teasertext", "abstract", "excerpt", "summary"),
        *("standfirst", "deck", "dek", "subline", "strapline", "perex", "chapo", "sapo"),
        *("entradilla", "bajada", "sumario", "leadtext", "introtext"),
    }
)
# Names that share a word with a lead but name something else: an author's summary, a video's.
_NOT_LEAD_WORDS = frozenset({"author", "autor", "bio", "comment", "comments", "video", "newsletter", "related"})
# Every lead word contains one of these; one search in C rules out most names.
_LEAD_HINT = re.compile(
    "lead|lede|intro|teaser|abstract|excerpt|summary|standfirst|deck|dek|subline|strapline|perex|chapo|sapo"
    "|entradilla|bajada|sumario"
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT = re.compile(r"[^a-z0-9]+")
#: Elements that can hold a lead.
LEAD_TAGS = frozenset({"p", "div", "h2", "span", "section", "strong"})
_FOLLOWED_BY = etree.XPath("boolean(following::*[starts-with(normalize-space(.), $start)])")
_OUTSIDE = frozenset({"a", "nav", "aside", "footer", "li", "button", "form", "label", "figcaption", "figure"})
_MIN_WORDS, _MAX_WORDS = 8, 120
_MAX_LINK_SHARE = 0.3


# Names longer than this are answered without the cache, whose keys would otherwise keep a
# hostile page's megabyte class attributes alive long after the page.
_CACHED_NAMES_CHARS = 256


def is_lead_name(names: str) -> bool:
    """Whether a class attribute names an article's lead ("article-lead", "teaser-text", "ts-intro")."""
    if len(names) > _CACHED_NAMES_CHARS:
        return _is_lead_name(names)
    return _cached_is_lead_name(names)


def _is_lead_name(names: str) -> bool:
    if not _LEAD_HINT.search(names.lower()):
        return False
    words = set(_SPLIT.split(_CAMEL.sub("-", names).lower()))
    return bool(words & _LEAD_WORDS) and not words & _NOT_LEAD_WORDS


# Pages and sites repeat their class names: most answers are found here.
_cached_is_lead_name = lru_cache(maxsize=4096)(_is_lead_name)


def _lead_text(elem: _Element, body_start: str) -> str:
    """The text of ``elem`` when it can be a lead where it stands, else ""."""
    if any(up.tag in _OUTSIDE for up in elem.iterancestors()):
        return ""
    text = " ".join(elem.text_content().split())
    if not _MIN_WORDS <= len(text.split()) <= _MAX_WORDS or "©" in text:
        return ""
    if sum(len(a.text_content()) for a in elem.iter("a")) > _MAX_LINK_SHARE * len(text):
        return ""
    if not body_start or not _FOLLOWED_BY(elem, start=body_start):
        return ""
    return text


def find_lead(named: list[_Element], body_start: str) -> str | None:
    """The text of the lead among elements ``named`` like one, or None when none is clearly it.

    ``named`` are in document order (see :func:`workers.extract.boilerplate.prune_widgets`);
    ``body_start`` is the beginning of the extracted text's first paragraph: a lead comes before it.
    Without a body there is no lead: a page trafilatura found no article on gets none from here.
    """
    eligible = [(elem, text) for elem in named if (text := _lead_text(elem, body_start))]
    # Teaser lists repeat their class, a lead is alone.
    classes = Counter(elem.get("class") for elem, _ in eligible)
    found: _Element | None = None
    text = ""
    for elem, inner in eligible:
        if found is not None and found not in elem.iterancestors():
            break  # the first lead wins; a lead inside it (a wrapper's inner lead) is more precise
        if classes[elem.get("class")] == 1:
            found, text = elem, inner
    return text or None
