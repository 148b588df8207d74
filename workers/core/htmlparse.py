"""Parsing an HTML page into an lxml tree once, for every reader of links on it.

Discovery reads a home page for article links, pagination and feed announcements; parsing it
once and handing the tree around is the cheap way.  Bytes are decoded as the page says: BOM,
valid UTF-8, its ``<meta charset>``, else Windows-1252 (what browsers assume).
"""

from __future__ import annotations

import codecs
import re

from lxml import etree

__all__ = ["parse_html"]

_META_CHARSET_RE = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.IGNORECASE)
#: Bytes of a page searched for its ``<meta charset>``.
_META_SCAN_BYTES = 65536


def parse_html(html: str | bytes | etree._Element) -> etree._Element | None:
    """An lxml tree of ``html`` (a tree is returned as it is); None when there is no document."""
    if isinstance(html, etree._Element):
        return html
    if isinstance(html, str):
        data, encoding = html.encode("utf-8", "surrogatepass"), "utf-8"
    else:
        data, encoding = html, _sniff_encoding(html)
    if not data.strip():
        return None
    parser = etree.HTMLParser(encoding=encoding, remove_comments=True, remove_pis=True, no_network=True)
    try:
        return etree.fromstring(data, parser)
    except (etree.LxmlError, ValueError, LookupError):
        return None


def _sniff_encoding(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    declared = _declared_charset(data[:_META_SCAN_BYTES])
    if declared:
        name = declared.decode("ascii", "replace")
        try:
            return codecs.lookup(name).name
        except LookupError:
            pass
    return "cp1252"


def _declared_charset(head: bytes) -> bytes | None:
    """The charset of the first ``<meta … charset=…>`` in ``head``: ``_META_CHARSET_RE.search(head)``.

    A plain search tries every ``<meta`` and each try reads up to the next ``>``: a page of
    ``<meta`` without one took seconds.  Once a ``<meta`` fails, every ``<meta`` before the same
    ``>`` fails too (its text is a tail of the first one's), so the search resumes at that ``>``.
    """
    lowered = head.lower()  # ASCII only, as IGNORECASE is for bytes
    position = 0
    while (start := lowered.find(b"<meta", position)) >= 0:
        match = _META_CHARSET_RE.match(head, start)
        if match:
            return match.group(1)
        position = head.find(b">", start)
        if position < 0:
            return None
    return None
