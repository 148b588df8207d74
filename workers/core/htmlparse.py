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
    match = _META_CHARSET_RE.search(data, 0, 65536)
    if match:
        name = match.group(1).decode("ascii", "replace")
        try:
            return codecs.lookup(name).name
        except LookupError:
            pass
    return "cp1252"
