"""The extract stage's pure core: raw page bytes and their URL in, an article record out.

trafilatura finds the main text; :mod:`workers.teasers` then removes what it keeps by mistake on
news pages (teaser lists of other articles after the body), and :mod:`workers.metadata` reads the
fields trafilatura does not give in the shape the record needs (every author, canonical URL,
language, a full publication timestamp).  The page is decoded and parsed once; trafilatura works on
that tree.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterator
from typing import Any

import trafilatura
from lxml.etree import _Element

from workers.metadata import decode_html, page_metadata, parse_html
from workers.teasers import Block, drop_teasers
from workers.urls import host_of, normalize_url, url_id

__all__ = ["EXTRACTOR", "extract_article"]

#: Bump when a change here can change the text of a record, so re-extracted pages can be told apart.
_OUR_VERSION = "1"

#: Options handed to trafilatura; chosen by measurement with ``bench/quality.py``.
_OPTIONS: dict[str, Any] = {
    "include_comments": False,
    "include_tables": True,
    "include_links": True,
    "favor_precision": False,
    "favor_recall": False,
}

EXTRACTOR: dict[str, Any] = {
    "name": "ingest-extract",
    "version": f"{_OUR_VERSION}+trafilatura-{trafilatura.__version__}",
    "options": {**_OPTIONS, "teaser_filter": True},
}

# Elements of trafilatura's output tree that hold other blocks rather than text of their own.
_CONTAINERS = frozenset({"body", "div", "list", "table", "row", "cell", "quote", "item", "article", "section"})
# Elements that start a new block inside a container.
_BLOCKS = _CONTAINERS | frozenset({"p", "head", "code", "graphic"})


def _inline_text(elem: _Element, *, with_tail: bool = False) -> tuple[str, int]:
    """Text of an element without block children, and how many characters of it are link text."""
    parts: list[str] = []
    link_chars = 0

    def walk(node: _Element, in_link: bool) -> None:
        nonlocal link_chars
        in_link = in_link or node.tag == "ref"
        if node.tag == "lb":
            parts.append("\n")
        if node.text and node.tag != "lb":
            parts.append(node.text)
            if in_link:
                link_chars += len(node.text.strip())
        for child in node:
            walk(child, in_link)
            if child.tail:
                parts.append(child.tail)

    walk(elem, False)
    if with_tail and elem.tail:
        parts.append(elem.tail)
    return _clean("".join(parts)), link_chars


def _clean(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _is_leaf(elem: _Element) -> bool:
    return not any(child.tag in _BLOCKS for child in elem)


def _row_block(row: _Element, group: int) -> Block | None:
    cells = [_inline_text(cell) for cell in row]
    texts = [text.replace("\n", " ") for text, _ in cells if text]
    if not texts:
        return None
    return Block(" | ".join(texts), "row", sum(links for _, links in cells), group)


def _blocks(body: _Element) -> Iterator[Block]:
    """Paragraph-like units of trafilatura's output tree, in document order."""
    group = 0

    def walk(elem: _Element) -> Iterator[Block]:
        nonlocal group
        if elem.tag == "row" and all(cell.tag == "cell" and _is_leaf(cell) for cell in elem):
            block = _row_block(elem, group)
            if block:
                yield block
            return
        if elem.tag != "body" and _is_leaf(elem):
            text, links = _inline_text(elem)
            if text:
                yield Block(text, elem.tag, links, group)
            return
        if elem.tag in ("list", "table"):
            group += 1
        pending: list[str] = [elem.text or ""]
        for child in elem:
            if child.tag in _BLOCKS:
                text = _clean("".join(pending))
                if text:
                    yield Block(text, elem.tag, 0, group)
                pending = []
                yield from walk(child)
                pending.append(child.tail or "")
            else:
                text, _ = _inline_text(child, with_tail=True)
                pending.append(" " + text + " ")
        text = _clean("".join(pending))
        if text:
            yield Block(text, elem.tag, 0, group)
        if elem.tag in ("list", "table"):
            group += 1

    yield from walk(body)


def _render(blocks: list[Block]) -> str:
    """Blocks as text: one blank line between paragraphs, one newline inside a list or table."""
    out: list[str] = []
    previous: Block | None = None
    for block in blocks:
        if previous is not None:
            same_group = block.group == previous.group and block.group % 2 == 1
            out.append("\n" if same_group else "\n\n")
        out.append(block.text)
        previous = block
    return unicodedata.normalize("NFC", "".join(out))


def _main_blocks(tree: _Element, url: str) -> list[Block]:
    try:
        document = trafilatura.bare_extraction(tree, url=url, output_format="xml", **_OPTIONS)
    except Exception:  # noqa: BLE001 - a parser bug on one hostile page must not kill the worker
        return []
    if document is None or isinstance(document, dict):
        return []
    return drop_teasers(list(_blocks(document.body)))


def _record(url: str, text: str, meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": url_id(url),
        "url": url,
        "canonical_url": meta.get("canonical_url"),
        "host": host_of(url),
        "title": meta.get("title"),
        "authors": list(meta.get("authors") or []),
        "published": meta.get("published"),
        "language": meta.get("language"),
        "sitename": meta.get("sitename"),
        "description": meta.get("description"),
        "text": text,
        "word_count": len(text.split()),
        "content_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "extractor": EXTRACTOR,
    }


def extract_article(html: str | bytes, url: str, *, encoding: str | None = None) -> dict[str, Any]:
    """The article record of one page (without fetch-time fields).

    ``encoding`` is the charset from the HTTP Content-Type header, when known; a byte-order mark
    or the page's own ``<meta charset>`` still decide when it is absent.  Never raises because of
    the page: unreadable or empty pages give a record with ``text == ""`` and ``word_count == 0``.
    Raises :class:`workers.urls.InvalidURL` when ``url`` itself is not a fetchable URL.
    """
    url = normalize_url(url)
    text = decode_html(html, encoding) if isinstance(html, bytes) else html
    tree = parse_html(text)
    if tree is None:
        return _record(url, "", {})
    meta = page_metadata(tree, url)
    return _record(url, _render(_main_blocks(tree, url)), meta)
