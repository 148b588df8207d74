"""The extract stage's pure core: raw page bytes and their URL in, an article record out.

trafilatura finds the main text on a tree from which :mod:`workers.extract.boilerplate` has taken named
widgets (newsletter forms, share bars, author boxes, related posts, short captions); it runs in its
fast mode.  When that gives little text, readability-lxml's candidate is taken from the same tree
(:mod:`workers.extract.readable`) and :mod:`workers.extract.combine` keeps one of the two or merges
their paragraphs, by their agreement and by which reads as prose.  :mod:`workers.extract.teasers` then
removes teaser lists of other articles that trafilatura keeps, :mod:`workers.extract.boilerplate` the
tell-tale lines (credits, rights notices, calls to subscribe or donate, contact and author notes
after the article, an agency signature), and :mod:`workers.extract.lead` puts back the article's lead,
which trafilatura drops.  :mod:`workers.extract.metadata` reads the fields trafilatura does not give in
the shape the record needs (every author, canonical URL, language, a full publication timestamp)
and :mod:`workers.extract.fields` the last modification, main image and tags.  The page is decoded
and parsed once; metadata is read before the widgets go.  Every candidate runs inside the caller's
per-page time limit (the extract stage calls :func:`extract_article` in the killable page pool,
:mod:`workers.core.bounded`), and none of them keeps reader comments.
"""

from __future__ import annotations

import hashlib
import unicodedata
from importlib.metadata import version
from typing import Any

import trafilatura
from lxml import etree
from lxml.etree import _Element

from workers.core.urls import host_of, normalize_url, url_id
from workers.extract.boilerplate import boilerplate_indices, prune_widgets
from workers.extract.combine import RULES, combine, unsure
from workers.extract.fields import page_fields
from workers.extract.lead import find_lead
from workers.extract.metadata import EXTENSIVE_DATE_SEARCH, decode_html, microdata_names, page_metadata, parse_html
from workers.extract.readable import readability_blocks
from workers.extract.scroll import cut_at_next_article, next_titles
from workers.extract.teasers import Block, drop_teasers

__all__ = ["EXTRACTOR", "extract_article"]

_READABILITY_VERSION = version("readability-lxml")

#: Bump when a change here can change the text of a record, so re-extracted pages can be told apart.
_OUR_VERSION = "4"

#: Options handed to trafilatura; chosen by measurement with ``bench/quality.py``.
_OPTIONS: dict[str, Any] = {
    "include_comments": False,
    "include_tables": True,
    "include_links": False,
    "favor_precision": False,
    "favor_recall": False,
}

#: Our filters around trafilatura, each measured with ``bench/quality.py`` (see the module doc).
#: The lead is found during the widget walk, so it needs ``widgets``.
_FILTERS = {"widgets": True, "lines": True, "lead": True}

EXTRACTOR: dict[str, Any] = {
    "name": "ingest-extract",
    "version": f"{_OUR_VERSION}+readability-lxml-{_READABILITY_VERSION}+trafilatura-{trafilatura.__version__}",
    "options": {
        **_OPTIONS,
        "teaser_filter": True,
        **{f"{k}_filter": v for k, v in _FILTERS.items()},
        "extensive_date_search": EXTENSIVE_DATE_SEARCH,
        # readability-lxml's candidate is asked for below this many tokens or this share of prose.
        "second_candidate_below_tokens": RULES.unsure_tokens,
        "second_candidate_below_prose": RULES.unsure_prose,
    },
}

# Elements of trafilatura's output tree that hold other blocks rather than text of their own.
_CONTAINERS = frozenset({"body", "div", "list", "table", "row", "cell", "quote", "item", "article", "section"})
# Elements that start a new block inside a container.
_BLOCKS = _CONTAINERS | frozenset({"p", "head", "code", "graphic"})


def _inline_text(elem: _Element, *, with_tail: bool = False) -> str:
    """Text of an element without block children; line breaks stay."""
    parts: list[str] = []

    def walk(node: _Element) -> None:
        if node.tag == "lb":
            parts.append("\n")
        elif node.text:
            parts.append(node.text)
        for child in node:
            walk(child)
            if child.tail:
                parts.append(child.tail)

    walk(elem)
    if with_tail and elem.tail:
        parts.append(elem.tail)
    return _clean("".join(parts))


def _clean(text: str) -> str:
    """Collapse whitespace within lines, drop empty lines and invisible characters (soft hyphens, …)."""
    lines = (" ".join(line.split()) for line in text.split("\n"))
    text = "\n".join(line for line in lines if line)
    if text.replace("\n", " ").isprintable():
        return text
    return "".join(ch for ch in text if ch.isprintable() or ch == "\n")


def _is_block(elem: _Element) -> bool:
    """Whether ``elem`` starts a block of its own; ``code`` of one line is inline (``pip install``)."""
    return elem.tag in _BLOCKS and (elem.tag != "code" or "\n" in elem.xpath("string()"))


def _is_leaf(elem: _Element) -> bool:
    return not any(_is_block(child) for child in elem)


def _link_texts(tree: _Element) -> frozenset[str]:
    """Texts of the page's links of three words or more: a block equal to one is a link."""
    texts = set()
    for anchor in tree.iter("a"):
        text = " ".join(anchor.text_content().split())
        if text.count(" ") >= 2:
            texts.add(text)
    return frozenset(texts)


def _blocks(body: _Element, link_texts: frozenset[str] = frozenset()) -> list[Block]:
    """Paragraph-like units of trafilatura's output tree, in document order.

    Blocks of one list or table share a non-zero ``group`` so that rendering keeps them together.
    """
    out: list[Block] = []
    groups = 0

    def add(text: str, tag: str, group: int) -> None:
        nonlocal groups
        lines = text.split("\n") if text else []
        if len(lines) > 1 and not group:
            # Lines of one paragraph (<br>) are judged one by one but stay together when rendered.
            groups += 1
            group = groups
        for line in lines:
            out.append(Block(line, tag, group, line in link_texts))

    def walk(elem: _Element, group: int) -> None:
        nonlocal groups
        if elem.tag == "row" and all(cell.tag == "cell" and _is_leaf(cell) for cell in elem):
            cells = (_inline_text(cell).replace("\n", " ") for cell in elem)
            add(" | ".join(cell for cell in cells if cell), "row", group)
            return
        if elem.tag != "body" and _is_leaf(elem):
            add(_inline_text(elem), elem.tag, group)
            return
        if elem.tag in ("list", "table"):
            groups += 1
            group = groups
        elif elem.tag == "cell":
            # A cell holding paragraphs is page layout, not data: its paragraphs stand on their own.
            group = 0
        pending: list[str] = [elem.text or ""]
        for child in elem:
            if _is_block(child):
                add(_clean("".join(pending)), elem.tag, group)
                pending = [child.tail or ""]
                walk(child, group)
            else:
                pending.append(f" {_inline_text(child, with_tail=True)} ")
        add(_clean("".join(pending)), elem.tag, group)

    walk(body, 0)
    return out


def _render(blocks: list[Block]) -> str:
    """Blocks as text: one blank line between paragraphs, one newline inside a list or table."""
    out: list[str] = []
    previous: Block | None = None
    for block in blocks:
        if previous is not None:
            out.append("\n" if block.group and block.group == previous.group else "\n\n")
        out.append(block.text)
        previous = block
    return unicodedata.normalize("NFC", "".join(out))


# Elements that are never text: their content is code, styling, drawing or a later template.
_INVISIBLE = ("script", "style", "svg", "template", etree.Comment, etree.ProcessingInstruction)


def _main_blocks(tree: _Element, url: str) -> list[Block]:
    """The article's blocks, without widgets, teaser lists and boilerplate lines; changes ``tree``.

    trafilatura's candidate comes first; readability's is asked for only when trafilatura's is
    short (:func:`workers.extract.combine.unsure`), and :func:`workers.extract.combine.combine` then
    keeps one of them or trafilatura's with readability's paragraphs around it.
    """
    ours, readable = _candidates(tree, url)
    return combine(ours, readable) if readable is not None else ours


def _candidates(tree: _Element, url: str, *, always: bool = False) -> tuple[list[Block], list[Block] | None]:
    """trafilatura's cleaned blocks and, when they are unsure (or ``always``), readability's."""
    # trafilatura copies the tree three times before it drops these; dropping them first is cheaper.
    etree.strip_elements(tree, *_INVISIBLE, with_tail=False)
    titles = next_titles(tree)
    # A caption the page repeats outside its <figure> (a hero image's description) is still one.
    captions = {" ".join(caption.text_content().split()) for caption in tree.iter("figcaption")}
    leads: list[_Element] = []
    if _FILTERS["widgets"]:
        prune_widgets(tree, leads)
    links = _link_texts(tree)
    try:
        document = trafilatura.bare_extraction(tree, url=url, output_format="xml", fast=True, **_OPTIONS)
    except Exception:  # a parser bug on one hostile page must not kill the worker
        document = None
    blocks: list[Block] = []
    if document is not None and not isinstance(document, dict):
        blocks = _cleaned(_blocks(document.body, links), titles, captions)
    readable = None
    if always or unsure(blocks):
        # On the tree without widgets: readability then never sees a share bar or a related list.
        found = [Block(text, "p", 0, text in links) for text in readability_blocks(tree)]
        readable = _with_lead(_cleaned(found, titles, captions), leads) if _FILTERS["lead"] else found
    return (_with_lead(blocks, leads) if _FILTERS["lead"] else blocks), readable


def _cleaned(blocks: list[Block], titles: frozenset[str], captions: set[str]) -> list[Block]:
    """A candidate's blocks without the next story, teaser lists, boilerplate lines and captions."""
    blocks = drop_teasers(cut_at_next_article(blocks, titles))
    if _FILTERS["lines"]:
        drop = boilerplate_indices(blocks)
        blocks = [b for i, b in enumerate(blocks) if i not in drop and not _is_caption(b.text, captions)]
    return blocks


def _is_caption(text: str, captions: set[str]) -> bool:
    """Whether ``text`` is one of the page's picture captions, perhaps without its credit."""
    return len(text) >= _CAPTION_CHARS and any(caption.startswith(text) for caption in captions)


# Shorter lines ("Foto", a name) start captions by chance.
_CAPTION_CHARS = 20
# The first block this long is the article's first paragraph (shorter ones: captions, datelines).
_PARAGRAPH_WORDS = 10


def _with_lead(blocks: list[Block], leads: list[_Element]) -> list[Block]:
    """``blocks`` with the page's lead first (after a heading), when trafilatura left it out."""
    first = next((b.text for b in blocks if b.tag != "head" and b.text.count(" ") >= _PARAGRAPH_WORDS), "")
    # Cleaned like every block (soft hyphens, invisible characters), so the comparison is fair.
    lead = _clean(find_lead(leads, first[:30]) or "")
    if lead and not any(lead[:60] in b.text for b in blocks):
        at = 1 if blocks and blocks[0].tag == "head" else 0
        blocks.insert(at, Block(lead, "p"))
    return blocks


def _record(url: str, text: str, meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": url_id(url),
        "url": url,
        "canonical_url": meta.get("canonical_url"),
        "host": host_of(url),
        "title": meta.get("title"),
        "authors": list(meta.get("authors") or []),
        "published": meta.get("published"),
        "updated": meta.get("updated"),
        "language": meta.get("language"),
        "sitename": meta.get("sitename"),
        "description": meta.get("description"),
        "image": meta.get("image"),
        "tags": list(meta.get("tags") or []),
        "text": text,
        "word_count": len(text.split()),
        "content_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        # A copy: records are handed to other code, which must not be able to change the constant.
        "extractor": {**EXTRACTOR, "options": dict(EXTRACTOR["options"])},
    }


def extract_article(html: str | bytes, url: str, *, encoding: str | None = None) -> dict[str, Any]:
    """The article record of one page (without fetch-time fields).

    ``encoding`` is the charset from the HTTP Content-Type header, when known; a byte-order mark
    or the page's own ``<meta charset>`` still decide when it is absent.  Never raises because of
    the page: unreadable or empty pages give a record with ``text == ""`` and ``word_count == 0``.
    Raises :class:`workers.core.urls.InvalidURL` when ``url`` itself is not a fetchable URL.
    """
    url = normalize_url(url)
    tree = parse_html(decode_html(html, encoding) if isinstance(html, bytes) else html)
    if tree is None:
        return _record(url, "", {})
    microdata = microdata_names(tree)
    meta = {**page_metadata(tree, url, microdata), **page_fields(tree, url, microdata)}
    return _record(url, _render(_main_blocks(tree, url)), meta)
