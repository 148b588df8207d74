"""Pages that hold several articles one after another, as "infinite scroll" news pages do.

Such a page repeats the article template for the next stories, each an ``<article>`` with its own
``<h1>``; trafilatura takes them all as one text.  The first article's heading starts the record,
the next one's heading ends it.
"""

from __future__ import annotations

from collections.abc import Sequence

from lxml.etree import _Element

from workers.extract.teasers import Block

__all__ = ["cut_at_next_article", "next_titles"]


def next_titles(tree: _Element) -> frozenset[str]:
    """Headings of the articles after the first, when the page holds several ``<article>`` with an ``<h1>``."""
    titles: dict[_Element, str] = {}
    for heading in tree.iter("h1"):
        article = next(heading.iterancestors("article"), None)
        if article is not None and article not in titles:
            titles[article] = " ".join(heading.text_content().split())
    first, *rest = list(titles.values()) or [""]
    return frozenset(t for t in rest if t and t != first)


def cut_at_next_article(blocks: Sequence[Block], titles: frozenset[str]) -> list[Block]:
    """``blocks`` up to the heading of the next article on the page."""
    for index, block in enumerate(blocks):
        if index and block.text in titles:
            return list(blocks[:index])
    return list(blocks)
