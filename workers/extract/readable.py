"""readability-lxml's candidate for the main text, as plain blocks.

readability scores paragraphs by their text, commas and class names and keeps the best-scoring
container with its related siblings; it finds bodies that trafilatura misses (a body split into
many small containers, a page whose article element is not where trafilatura looks) and misses
others.  :func:`readability_blocks` runs it on a copy of an already parsed tree (the page is not
parsed twice) and turns its HTML summary into paragraph texts: one block per paragraph-like
element, line breaks and list items on their own lines.  :func:`html_blocks` is the same
conversion for any HTML fragment; the benchmark scores readability's column with it too, so the
stage and the benchmark see the same text.
"""

from __future__ import annotations

import copy
import logging

import lxml.html
from lxml.etree import _Element

# Imported here, at the module's import, not at the first unsure page: the page pool's forkserver
# imports the stage's modules once for all its children, and threads racing through a first
# import can see a half-initialised module.
from readability import Document
from readability.readability import REGEXES
from trafilatura.xpaths import REMOVE_COMMENTS_AND_LISTS_XPATH

__all__ = ["drop_comment_areas", "html_blocks", "readability_blocks", "readability_text"]

# Elements that begin and end a paragraph of their own in the summary's text.
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "figcaption", "figure", "footer",
        "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre",
        "section", "table", "tbody", "td", "th", "thead", "tr", "ul", "body", "html",
    }
)  # fmt: skip
_DISPLAY_NONE = REGEXES["displayNoneRe"]
# Elements whose content is never text.
_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "iframe", "object", "button", "select"})

# readability logs every page it cannot parse at ERROR with a traceback; the stage reports empties itself.
logging.getLogger("readability.readability").setLevel(logging.CRITICAL)


def html_blocks(fragment: _Element) -> list[str]:
    """The paragraph texts of an HTML element, whitespace collapsed, in document order.

    Why not ``text_content()``: it glues paragraphs together ("end.Next"), which changes words
    and so every token-based score; here each block element starts a new block, ``<br>`` too.
    """
    blocks: list[str] = []
    line: list[str] = []

    def flush() -> None:
        text = " ".join("".join(line).split())
        if text:
            blocks.append(text)
        line.clear()

    def walk(elem: _Element) -> None:
        tag = elem.tag if isinstance(elem.tag, str) else ""
        if tag in _SKIP_TAGS or not tag:
            return
        block = tag in _BLOCK_TAGS
        if block:
            flush()
        if tag == "br":
            flush()
        if elem.text:
            line.append(elem.text)
        for child in elem:
            walk(child)
            if child.tail:
                line.append(child.tail)
        if block:
            flush()

    walk(fragment)
    flush()
    return blocks


def drop_comment_areas(tree: _Element) -> None:
    """Remove the page's reader comments from ``tree``: an article record never holds them.

    readability has no notion of comments and keeps a long comment thread as if it were the body;
    so its candidate is taken from a tree without them, found as trafilatura finds them with
    ``include_comments=False`` (the same definition the rest of the stage uses), and by schema.org
    markup (``itemprop="comment"``, an ``itemtype`` of ``Comment``).
    """
    doomed = [elem for xpath in REMOVE_COMMENTS_AND_LISTS_XPATH for elem in xpath(tree)]
    doomed += tree.xpath(".//*[@itemprop='comment' or @itemprop='comments' or contains(@itemtype, '/Comment')]")
    for elem in doomed:
        if elem.getparent() is not None:  # not the root itself
            elem.drop_tree()  # keeps the text after the element, which belongs to its parent


class _CleanTreeDocument(Document):  # type: ignore[misc]  # readability has no type hints
    """readability on a tree the stage has already cleaned, without its per-pass cleaning.

    readability's ``_parse`` (run once per pass) copies the tree through lxml's HTML cleaner and
    resolves every link against the base URL: half of its time, and nothing the text depends on,
    since the stage has already dropped scripts, styles, comments and processing instructions.
    This ``_parse`` copies the tree and drops hidden elements as readability's does, and only that.
    Bound to readability-lxml 0.9 (pinned), whose ``_parse`` it replaces.
    """

    def _parse(self, input: _Element) -> _Element:
        doc = copy.deepcopy(input)  # each pass starts from the same tree, as with readability's cleaner
        for elem in doc.xpath("//*[@hidden]"):
            elem.drop_tree()
        for elem in doc.xpath("//*[@style]"):
            if _DISPLAY_NONE.search(elem.get("style")):
                elem.drop_tree()
        self.encoding = "utf-8"
        return doc


def _summary_blocks(source: str | _Element) -> list[str]:
    try:
        document = Document(source) if isinstance(source, str) else _CleanTreeDocument(source)
        summary = document.summary(html_partial=True)
        if not summary or not summary.strip():
            return []
        return html_blocks(lxml.html.fragment_fromstring(summary, create_parent="div"))
    except Exception:  # readability raises Unparseable (and lxml errors) on hostile pages
        return []


def readability_blocks(tree: _Element) -> list[str]:
    """readability-lxml's main text of a parsed page, as blocks; ``[]`` when it finds none.

    Runs on a deep copy, so the caller's tree (shared with trafilatura and the metadata readers)
    is left as it was, and the page is neither parsed nor cleaned a second time (the stage has
    taken scripts, styles and comments out; :class:`_CleanTreeDocument`).  Reader comments are taken out
    first (:func:`drop_comment_areas`).  Never raises because of the page: readability's own
    errors give ``[]``.
    """
    page = copy.deepcopy(tree)
    drop_comment_areas(page)
    return _summary_blocks(page)  # each of readability's passes copies ``page`` again


def readability_text(html: str) -> str:
    """``readability.Document(html).summary()`` as text, one block per line: the benchmark's peer column.

    readability parses the page itself here, as anyone calling it would, so its speed is its own.
    """
    return "\n".join(_summary_blocks(html))
