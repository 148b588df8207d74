"""The page's byline: who wrote it, as trafilatura's ``extract_author`` finds it, for less.

``extract_author`` deep-copies the whole page, prunes comments, sidebars, dates, figures and share
bars from the copy with two XPaths, then scans it with up to three more whose EXSLT regex tests call
back into Python for every element: that was about half of our metadata time.  :func:`byline`
gives the same answer by looking only at the few elements whose attributes could pass those tests,
checking the pruning for these alone and copying just the chosen one.  Same results as
``extract_author`` on every corpus page and on random byline-heavy markup (trafilatura 2.3.1).
"""

from __future__ import annotations

import re
from copy import deepcopy

from lxml import etree
from lxml.etree import _Element
from trafilatura.json_metadata import normalize_authors
from trafilatura.utils import trim
from trafilatura.xml import delete_element

__all__ = ["byline"]

_BYLINE_TAGS = (
    frozenset({"a", "address", "div", "link", "p", "span", "strong"}),
    frozenset({"a", "div", "h3", "h4", "p", "span"}),
)
_BYLINE_CLASS = (
    re.compile("author-?name|AuthorName|authorName"),
    re.compile("author|channel-name|zuozhe|bianji|xiaobian|submitted-by|posted-by|journalist-name"),
    re.compile("[Aa]uthor|screenname|writer|[Bb]yline"),
)
_BYLINE_ID = (re.compile("author|zuozhe|bianji|xiaobian"), re.compile("[Aa]uthor"))
_NOT_BYLINE_TAGS = frozenset({"a", "div", "section", "span"})
_NOT_BYLINE_ID = re.compile("^comments|comment-?list|ProductReviews")
_NOT_BYLINE_CLASS = re.compile(
    "^[Cc]omments|commentlist|comments-list|sidebar|is-hidden|quote|embedly-instagram"
    "|article-(?:share|support)|print|category|meta-date|meta-reviewer"
)

# Every byline test needs one of these in the value of one of these attributes (or a <rel> child,
# or is <author>): finding the few elements that have one is most of the work.
_BYLINE_HINTS = (
    "Author", "author", "yline", "byl", "BBL", "username", "channel-name", "zuozhe", "bianji",
    "xiaobian", "submitted-by", "posted-by", "journalist-name", "screenname", "writer",
)  # fmt: skip
_BYLINE_ATTRIBUTES = ("class", "id", "itemprop", "rel", "data-testid", "data-component")
# Per attribute, its values and the elements that have it, both in document order, so that the
# n-th value is the n-th element's.  Not XPath's ``contains``: libxml2 allocates for every test of
# every element, and fifteen of them cost more than a Python loop over all elements.  Nor a regex
# of fifteen alternatives, which tries each at every character: ``str.find`` of each substring in
# all the values joined is a fast memory scan.
_VALUES = {name: etree.XPath(f"descendant-or-self::*/@{name}", smart_strings=False) for name in _BYLINE_ATTRIBUTES}
_HOLDERS = {name: etree.XPath(f"descendant-or-self::*[@{name}]") for name in _BYLINE_ATTRIBUTES}
# Candidates come per attribute; a union in libxml2 is sorted in document order (the order
# trafilatura's XPaths give, which decides the winner within a rank) and without duplicates.
_IN_DOCUMENT_ORDER = etree.XPath("$found | $found")


def _byline_rank(elem: _Element) -> int | None:
    """0, 1 or 2: how specific a byline element ``elem`` is; None when it is not one."""
    tag, get = elem.tag, elem.get
    if tag == "author":
        return 0
    cls, ident, prop = get("class") or "", get("id") or "", get("itemprop") or ""
    if tag in _BYLINE_TAGS[0] and (
        get("rel") == "author"
        or ident == "author"
        or cls == "author"
        or prop == "author name"
        or get("data-testid") in ("AuthorCard", "AuthorURL")
        or _BYLINE_CLASS[0].search(cls)
        # trafilatura's ``rel='me'``: a <rel> child whose text, once pruned, is "me".
        or any(_pruned(rel).text_content() == "me" for rel in elem.iterchildren("rel"))
    ):
        return 0
    if tag in _BYLINE_TAGS[1] and (
        cls in ("byline", "username", "byl", "BBL")
        or "author" in prop
        or _BYLINE_ID[0].search(ident)
        or _BYLINE_CLASS[1].search(cls)
    ):
        return 1
    if (
        "Byline" in (get("data-component") or "")
        or "author" in prop
        or _BYLINE_ID[1].search(ident)
        or _BYLINE_CLASS[2].search(cls)
    ):
        return 2
    return None


def _not_byline(elem: _Element) -> bool:
    """Whether trafilatura drops ``elem`` (a, div, section or span) before its byline search."""
    cls, ident = elem.get("class") or "", elem.get("id") or ""
    return bool(
        ident == "comments"
        or cls in ("comments", "title", "date")
        or _NOT_BYLINE_ID.search(ident)
        or _NOT_BYLINE_CLASS.search(cls)
        or "Figure" in (elem.get("data-component") or "")
    )


def byline(tree: _Element) -> str | None:
    """The author(s) named in the page's byline, as trafilatura's ``extract_author`` finds them.

    trafilatura deep-copies the page, prunes comments, sidebars, dates, figures and share bars
    from the copy, then scans it with three XPaths (regex tests calling back into Python for every
    element).  Here only the elements whose attributes could pass those tests are looked at, the
    pruning is only checked for them, and just the chosen candidate is copied and pruned.
    """
    ranked: list[list[_Element]] = [[], [], []]
    for elem in _candidates(tree):
        if (rank := _byline_rank(elem)) is not None:
            ranked[rank].append(elem)
    for candidates in ranked:
        for elem in candidates:
            if _dropped(elem, tree):
                continue
            content = trim(" ".join(_pruned(elem).itertext()))
            if content and 2 < len(content) < 120:
                found: str | None = normalize_authors(None, content)
                return found
    return None


def _candidates(tree: _Element) -> list[_Element]:
    """In document order, the elements under ``tree`` (itself included) that may be a byline."""
    found: list[_Element] = list(tree.iter("author"))
    found += (parent for rel in tree.iter("rel") if rel is not tree and (parent := rel.getparent()) is not None)
    for name in _BYLINE_ATTRIBUTES:
        joined = "\0".join(_VALUES[name](tree))  # attribute values cannot hold NUL: a safe separator
        starts: set[int] = set()
        for hint in _BYLINE_HINTS:
            at = joined.find(hint)
            while at >= 0:
                starts.add(at)
                at = joined.find(hint, at + 1)
        if not starts:
            continue
        holders = _HOLDERS[name](tree)
        index, previous, last = 0, 0, -1
        for at in sorted(starts):
            index += joined.count("\0", previous, at)
            previous = at
            if index != last:
                found.append(holders[index])
                last = index
    if len(found) < 2:
        return found
    ordered: list[_Element] = _IN_DOCUMENT_ORDER(tree, found=found)
    return ordered


def _doomed(elem: _Element, tree: _Element) -> bool:
    """Whether trafilatura prunes ``elem`` from its copy of ``tree`` before the byline search."""
    tag = elem.tag
    if tag in ("time", "figure"):
        return True
    return tag in _NOT_BYLINE_TAGS and elem is not tree and _not_byline(elem)


def _dropped(elem: _Element, tree: _Element) -> bool:
    """Whether ``elem`` is not in trafilatura's pruned copy of ``tree``: pruned itself or inside a pruned one."""
    if _doomed(elem, tree):
        return True
    if elem is tree:
        return False
    for up in elem.iterancestors():
        if _doomed(up, tree):
            return True
        if up is tree:
            break
    return False


def _pruned(elem: _Element) -> _Element:
    """A copy of ``elem`` without what trafilatura prunes inside it, removed in trafilatura's order.

    The order decides where the tails of removed elements go: first the comments, sidebars and so
    on, then times and figures, each kind in document order.
    """
    inside = list(elem.iter())
    first = [i for i, node in enumerate(inside) if i and node.tag in _NOT_BYLINE_TAGS and _not_byline(node)]
    then = [i for i, node in enumerate(inside) if i and node.tag in ("time", "figure")]
    if not first and not then:
        return elem
    copy = deepcopy(elem)
    copies = list(copy.iter())
    for i in first + then:
        delete_element(copies[i])
    return copy
