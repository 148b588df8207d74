"""Reading a page: its bytes to text, text to tree, and the tree's metadata for the article record.

trafilatura's own decoding guesses with charset_normalizer and never looks at the HTTP header
or ``<meta charset>``; on short pages in legacy encodings that guess can be wrong, so the
declared charsets are honoured here first (WHATWG order: byte-order mark, HTTP header, meta).
Metadata comes from trafilatura's ``extract_metadata`` plus what the record needs beyond it: all
authors as a list, the canonical URL, the declared language, a full timestamp when the page has one.
"""

from __future__ import annotations

import codecs
import contextlib
import re
import threading
from datetime import datetime
from html import unescape
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.html
from htmldate import find_date
from lxml import etree
from lxml.etree import _Element
from trafilatura import json_metadata as _trafilatura_json_metadata
from trafilatura import metadata as _trafilatura_metadata
from trafilatura import utils as _trafilatura_utils
from trafilatura.metadata import (
    META_URL,
    examine_meta,
    extract_meta_json,
    extract_sitename,
    extract_title,
    extract_url,
)
from trafilatura.settings import set_date_params
from trafilatura.utils import decode_file, line_processing

from workers.core.urls import InvalidURL, normalize_url
from workers.extract.byline import byline

__all__ = ["EXTENSIVE_DATE_SEARCH", "decode_html", "microdata_names", "page_metadata", "parse_html"]

#: htmldate's text-wide date search; off (see :func:`page_metadata`).
EXTENSIVE_DATE_SEARCH = False

_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_META_CHARSET = re.compile(
    rb"""<(?:meta\b[^>]*?charset|\?xml\b[^>]*?encoding)\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE
)
# Where a try of _META_CHARSET may start; see _declared_charset.
_META_STARTS = (re.compile(rb"<meta\b", re.IGNORECASE), re.compile(rb"<\?xml\b", re.IGNORECASE))
# Labels whose WHATWG meaning differs from Python's codec of the same name (browsers decode
# "iso-8859-1" as windows-1252, "gb2312" as gb18030, …), so pages read as they do in a browser.
_LABELS = {
    **dict.fromkeys(("iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "ascii", "us-ascii", "cp819"), "cp1252"),
    **dict.fromkeys(("gb2312", "gbk", "x-gbk", "gb_2312-80", "chinese", "csgb2312"), "gb18030"),
    **dict.fromkeys(("shift_jis", "shift-jis", "sjis", "x-sjis", "ms_kanji", "windows-31j"), "cp932"),
    **dict.fromkeys(("euc-kr", "ks_c_5601-1987", "korean"), "cp949"),
    **dict.fromkeys(("iso-8859-9", "latin5"), "cp1254"),
    **dict.fromkeys(("tis-620", "iso-8859-11"), "cp874"),
    "big5": "big5hkscs",
}
_NOT_CHARSETS = frozenset(
    {"undefined", "idna", "punycode", "unicode-escape", "raw-unicode-escape", "utf-7", "mbcs", "oem"}
)
_CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# Looking for each character with ``in`` is a fast memory scan; the regex walks the page char by char.
_CONTROL_CHAR_SET = tuple(chr(c) for c in (*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF))
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_DOCTYPE = re.compile(r"<!\s*doctype[^>]*>", re.IGNORECASE)
_FAULTY_HTML = re.compile(r"(<html[^<>]*?)\s*/>", re.IGNORECASE)
# One parser per thread.  Since lxml 6 the string dictionary that interns tag and attribute names
# travels with the parser, and a thread whose first parse uses a parser another thread used adopts
# that thread's dictionary: two threads then insert into one libxml2 dictionary at once (one parsing,
# the other building readability's fragment or trafilatura's copies), which corrupts the heap
# (SIGSEGV, "munmap_chunk(): invalid pointer") when extraction runs in several threads of a process.
_THREAD = threading.local()
# Every element an HtmlElement, chosen in C: lxml.html's own lookup calls a Python function for
# each element proxy it makes (a million calls per 300 pages) only to give <form>, <input>, <label>,
# <select> and <textarea> classes with form methods, which nothing here uses.
_LOOKUP = etree.ElementDefaultClassLookup(
    element=lxml.html.HtmlElement, comment=lxml.html.HtmlComment, pi=lxml.html.HtmlProcessingInstruction,
    entity=lxml.html.HtmlEntity,
)
_LANG_TAG = re.compile(r"^\s*([A-Za-z]{2,3})(?:[-_]|\s*$)")
_TITLE_SEPARATORS = re.compile(r"\s+[|–—·:-]{1,2}\s+")
# Where pages state their publication time: one scan of the page instead of one per place.
_PUBLISHED_XPATH = etree.XPath(
    "//*[@itemprop='datePublished' or (self::meta and @property='article:published_time')"
    " or (self::script and @type='application/ld+json')]"
)
_ITEMPROPS = etree.XPath("//@itemprop", smart_strings=False)
_COMMENT_IN_ATTRIBUTE = etree.XPath("//@*[contains(., '<!--')]")
# Unclosed "<!--" an attribute value may hold before _defuse_comment_openers breaks them up.
_UNCLOSED_COMMENTS_KEPT = 8
_JSON_LD_PUBLISHED = re.compile(r'"datePublished"\s*:\s*"([^"]{10,40})"')


class _TagStripper:
    """trafilatura's ``HTML_STRIP_TAGS`` (``(<!--.*?-->|<[^>]*>)``) with a ``sub`` in linear time.

    trafilatura strips tags from every ``<meta content>`` and JSON-LD string with that regex, and
    each ``<`` with no ``>`` after it scans to the end of the value: a page with 80 KB of ``<`` in a
    meta tag took four seconds, a megabyte would take minutes, all of it holding the GIL.  Only a
    literal replacement is done here (trafilatura's calls replace with ""); anything else goes
    to the regex itself.
    """

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pattern, name)

    def sub(self, repl: Any, string: str, count: int = 0) -> str:
        """``pattern.sub(repl, string, count)``, for a literal ``repl`` without the backtracking."""
        if not isinstance(repl, str) or "\\" in repl or count or not isinstance(string, str):
            return self.pattern.sub(repl, string, count)
        if "<" not in string:
            return string
        if "<!--" not in string:
            # Past the last ">" nothing matches; before it every "<" finds its ">": the regex is linear.
            end = string.rfind(">") + 1
            return self.pattern.sub(repl, string[:end]) + string[end:]
        return _strip_tags(string, repl)


def _strip_tags(text: str, repl: str) -> str:
    """What ``re.sub(r"(<!--.*?-->|<[^>]*>)", repl, text)`` gives, reading each character a bounded
    number of times: a comment runs to the first ``-->`` unless a line ends first (no DOTALL), a tag
    to the first ``>``, and with no ``>`` left nothing after it can be a match."""
    out: list[str] = []
    position = 0
    close = newline = gt = -2  # first "-->", "\n", ">" at or after where each was last looked for
    while (start := text.find("<", position)) >= 0:
        end = -1
        if text.startswith("<!--", start):
            if -1 < close < start + 4 or close == -2:
                close = text.find("-->", start + 4)
            if -1 < newline < start + 4 or newline == -2:
                newline = text.find("\n", start + 4)
            if close >= 0 and not 0 <= newline < close:
                end = close + 3
        if end < 0:
            if -1 < gt < start + 1 or gt == -2:
                gt = text.find(">", start + 1)
            if gt < 0:
                break
            end = gt + 1
        out += (text[position:start], repl)
        position = end
    out.append(text[position:])
    return "".join(out)


# Every module of trafilatura that imported the regex gets the linear stripper in its place.
for _module in (_trafilatura_utils, _trafilatura_metadata, _trafilatura_json_metadata):
    if isinstance(getattr(_module, "HTML_STRIP_TAGS", None), re.Pattern):
        setattr(_module, "HTML_STRIP_TAGS", _TagStripper(_module.HTML_STRIP_TAGS))  # noqa: B010


def _codec(label: str | bytes | None) -> str | None:
    """Python codec name for a charset label, or None when the label names nothing usable."""
    if not label:
        return None
    name = (label.decode("ascii", "ignore") if isinstance(label, bytes) else label).strip().strip("\"'").lower()
    name = _LABELS.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    # Only charsets: not base64/rot13/zlib, nor codecs a browser refuses (utf-7) or that need
    # special input (idna, unicode-escape).
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
        return None
    return info.name


def decode_html(raw: bytes, encoding: str | None = None) -> str:
    """Page bytes as text: BOM, then the HTTP charset ``encoding``, then ``<meta charset>``, then a guess.

    Valid UTF-8 with non-ASCII bytes is taken as UTF-8 whatever is declared: a legacy page is
    practically never valid UTF-8, while UTF-8 pages declared as latin-1 are common.
    """
    for bom, codec in _BOMS:
        if raw.startswith(bom):
            return raw[len(bom) :].decode(codec, "replace")
    declared = [c for c in (_codec(encoding), _codec(_declared_charset(raw[:8192]))) if c]
    # A page declared as UTF-16 without a BOM is the one case where valid UTF-8 proves nothing.
    wide = [c for c in declared if c.startswith(("utf-16", "utf-32"))]
    for codec in (*wide, "utf-8", *declared):
        try:
            return raw.decode(codec)
        except UnicodeError:
            continue
    if declared:
        return raw.decode(declared[0], "replace")
    try:
        return decode_file(raw)
    except Exception:  # a guessing library failing must still give text
        return raw.decode("utf-8", "replace")


def _declared_charset(head: bytes) -> bytes | None:
    """The label of the first ``<meta … charset=…>`` or ``<?xml … encoding=…>``: ``_META_CHARSET.search``.

    A plain search tries every ``<meta`` and ``<?xml``, and each try reads up to the next ``>``:
    8 KB of ``<?xml`` without one took a tenth of a second.  Once a ``<meta`` fails, every ``<meta``
    before the same ``>`` fails too (its text is a tail of the first one's), and so for ``<?xml``;
    so each kind's search resumes at that ``>``, and the earlier of the two next tries goes first.
    """
    upcoming = [start.search(head) for start in _META_STARTS]
    while True:
        tries = [(found.start(), kind) for kind, found in enumerate(upcoming) if found is not None]
        if not tries:
            return None
        start, kind = min(tries)
        match = _META_CHARSET.match(head, start)
        if match:
            return match.group(1)
        end = head.find(b">", start)
        upcoming[kind] = None if end < 0 else _META_STARTS[kind].search(head, end)


def _parser() -> lxml.html.HTMLParser:
    """This thread's parser, with trafilatura's settings so the tree is what its extraction expects."""
    parser: lxml.html.HTMLParser | None = getattr(_THREAD, "parser", None)
    if parser is None:
        parser = _THREAD.parser = lxml.html.HTMLParser(
            collect_ids=False, default_doctype=False, encoding="utf-8", remove_comments=True, remove_pis=True
        )
        parser.set_element_class_lookup(_LOOKUP)
    return parser


def parse_html(text: str) -> _Element | None:
    """The page's lxml tree, or None when the text is not HTML at all.

    The tree is the one trafilatura builds (lxml.html with its parser settings), but parsed from
    UTF-8 bytes: lxml reads them directly, while a ``str`` costs it a conversion, and
    ``trafilatura.load_html`` adds a regex pass over the whole page; a third of the time in all.
    """
    head = _XML_DECLARATION.sub("", text[:1024])
    # libxml2 stumbles over some doctypes (lxml bug 1955915), and a page may close <html/> at once.
    head = _FAULTY_HTML.sub(r"\1>", _DOCTYPE.sub("", head, count=1), count=1)
    text = head + text[1024:]
    if any(ch in text for ch in _CONTROL_CHAR_SET):
        text = _CONTROL_CHARS.sub("", text)
    if not text.strip():
        return None
    try:
        tree: _Element | None = lxml.html.fromstring(text.encode("utf-8", "surrogatepass"), parser=_parser())
    except Exception:  # lxml raises several types on hostile input
        return None
    # Text without any sign of HTML that parses into a lone element is something else (JSON, text).
    if tree is not None and "html" not in text[:50].lower() and len(tree) < 2:
        return None
    if tree is not None and "<!--" in text:
        _defuse_comment_openers(tree)
    return tree


def _defuse_comment_openers(tree: _Element) -> None:
    """Break up runs of unclosed ``<!--`` in attribute values, which libxml2 serialises in quadratic time.

    libxml2's HTML serialiser (htmldate serialises every page) looks for the ``-->`` of each ``<!--``
    in an attribute value to the value's end: 80 KB of ``<!--a`` in one attribute took four seconds,
    a megabyte would take minutes.  Past a handful such openers a value is no text anyone wrote, and
    "< !--" costs nothing; values with fewer, the only ones real pages have, are left exactly as they are.
    """
    for value in _COMMENT_IN_ATTRIBUTE(tree):
        tail = value.rsplit("-->", 1)[-1]
        if tail.count("<!--") > _UNCLOSED_COMMENTS_KEPT:
            owner = value.getparent()
            owner.set(value.attrname, value[: len(value) - len(tail)] + tail.replace("<!--", "< !--"))


def _nonempty(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = " ".join(value.split())
    return value or None


def _canonical(tree: _Element, url: str) -> str | None:
    hrefs = [
        link.get("href")
        for link in tree.iterfind(".//link[@rel][@href]")
        if "canonical" in (link.get("rel") or "").lower().split()
    ]
    hrefs += [meta.get("content") for meta in tree.iterfind(".//meta[@property='og:url'][@content]")]
    for href in hrefs:
        if not href or not href.strip():
            continue
        try:
            return normalize_url(urljoin(url, href.strip()))
        except (InvalidURL, ValueError):
            continue
    return None


def _language(tree: _Element) -> str | None:
    root = tree.getroottree().getroot()
    candidates = [root.get("lang"), root.get("{http://www.w3.org/XML/1998/namespace}lang")]
    for meta in tree.iterfind(".//meta[@content]"):
        key = (meta.get("http-equiv") or meta.get("name") or meta.get("property") or "").lower()
        if key in ("content-language", "language", "dc.language", "og:locale"):
            candidates.append(meta.get("content"))
    for candidate in candidates:
        found = _LANG_TAG.match(candidate or "")
        if found and found[1].lower() not in ("und", "mul", "zxx"):
            return found[1].lower()
    return None


def microdata_names(tree: _Element) -> frozenset[str]:
    """The page's ``itemprop`` names.

    Microdata can sit on any element, which takes a slow XPath over the whole page; this one scan
    of the attribute's values tells the metadata readers whether they need theirs at all.
    """
    return frozenset(_ITEMPROPS(tree))


def _stated_times(tree: _Element, microdata: frozenset[str]) -> list[_Element]:
    """The elements that state a publication time, in page order."""
    if "datePublished" in microdata:
        found: list[_Element] = _PUBLISHED_XPATH(tree)
        return found
    return [
        elem
        for elem in tree.iter("meta", "script")
        if elem.get("property" if elem.tag == "meta" else "type")
        == ("article:published_time" if elem.tag == "meta" else "application/ld+json")
    ]


def _published(tree: _Element, day: str | None, microdata: frozenset[str] | None) -> str | None:
    """A full ISO timestamp when the page states one for the same day trafilatura found, else that day."""
    if day is None:
        return None
    candidates: list[str] = []
    for elem in _stated_times(tree, microdata_names(tree) if microdata is None else microdata):
        if elem.tag == "script":
            text = elem.text or ""
            candidates += _JSON_LD_PUBLISHED.findall(text) if "datePublished" in text else [text]
            continue
        # The attributes in page order, as an XPath union of them would give.
        stated = elem.get("itemprop") == "datePublished"
        for name, value in elem.items():
            if (name == "datetime" and stated) or name == "content":
                candidates.append(value)
    for candidate in candidates:
        if not candidate or "T" not in candidate:
            continue
        try:
            stamp = datetime.fromisoformat(candidate.strip())
        except ValueError:
            continue
        if day is not None and stamp.date().isoformat() == day:
            return stamp.isoformat()
    return day


def _title(title: str | None, sitename: str | None, host: str, heading: str | None = None) -> str | None:
    """The title without a site name glued to it ("Headline - Site", "Site | Headline").

    ``heading`` is the page's ``<h1>``: when one part of a composite title is exactly the page's
    heading, that part is the headline, whatever the others are (site, section, date, forum).
    """
    if title and heading and len(heading.split()) >= 3 and _names_only_the_site(title, sitename, host):
        return heading
    separators = list(_TITLE_SEPARATORS.finditer(title or ""))
    if not title or not separators:
        return title
    if heading and len(heading.split()) >= 2:
        key = _squash(heading)
        for part in _TITLE_SEPARATORS.split(title):
            if _squash(part) == key:
                return part.strip()
    if _is_site(title[separators[-1].end() :], sitename, host):
        return title[: separators[-1].start()].strip() or title
    if _is_site(title[: separators[0].start()], sitename, host):
        return title[separators[0].end() :].strip() or title
    return title


def _is_site(part: str, sitename: str | None, host: str) -> bool:
    """Whether a part of a title is the site's name (as the page or its host spells it)."""
    key = _squash(part)
    return bool(key) and (key == _squash(sitename or "") or (len(key) >= 4 and key in _squash(host)))


# Labels that open a byline, in the languages of the pages we see most.
_AUTHOR_LABEL = re.compile(
    r"^(?:(?:artikel|beitrag|text|ein beitrag|posted|written|geschrieben|veröffentlicht) (?:by|von)|by|von|par|por"
    r"|di|door|przez|autor|autorin|author|text|texto|interview|posted by|责任编辑|编辑)(?:\s*[:：]\s*|\s+)",
    re.IGNORECASE,
)
# What comment forms, date lines and share bars leave where a name should be.
_NOT_NAMES = frozenset(
    {"name", "posted", "follow", "datum", "date", "no author", "admin", "administrator", "wordpressadmin"}
    | {"author", "autor", "share", "comments", "kommentare"}
)
# A name has a few words; more is a sentence or a headline caught by the byline search.
_NAME_WORDS = 5


def _names_only_the_site(title: str, sitename: str | None, host: str) -> bool:
    """Whether a title is the site's (or a section's one-word) name rather than a headline."""
    return len(title.split()) == 1 or _is_site(title, sitename, host)


def _heading(tree: _Element) -> str | None:
    """The text of the page's first ``<h1>``."""
    first = next(tree.iter("h1"), None)
    return _nonempty(first.text_content()) if first is not None else None


def _squash(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _authors(joined: str | None, title: str | None = None) -> list[str]:
    """The names in trafilatura's ``;``-joined author string, without bylines' labels and non-names.

    Bylines carry labels ("Artikel von …", "Par …", "Interview …"), comment forms leave "Name" or
    "Posted", and a byline search can land on a comment ("Jane says") or on the headline.
    """
    names: list[str] = []
    for name in (joined or "").split(";"):
        name = _AUTHOR_LABEL.sub("", " ".join(name.split())).strip()
        if (
            not name
            or name.lower() in _NOT_NAMES
            or name.lower().endswith(" says")
            or len(name.split()) > _NAME_WORDS
            or (title and name.lower() == title.lower())
        ):
            continue
        if name not in names:
            names.append(name)
    return names


def _trafilatura_fields(tree: _Element, url: str) -> dict[str, Any]:
    """Title, author, date, sitename and description as trafilatura finds them.

    The same steps as ``trafilatura.extract_metadata`` less what the record does not use
    (categories and tags from links, licence, URL), which cost a fifth of the metadata time.
    """
    doc = examine_meta(tree)
    if doc.author and " " not in doc.author:
        doc.author = None  # a single word is more often a handle or a site than a name
    with contextlib.suppress(Exception):  # trafilatura's JSON-LD reader has bugs on odd markup
        doc = extract_meta_json(tree, doc)
    title = doc.title or extract_title(tree)
    author = doc.author or byline(tree)
    # Parameters are built per call because they carry today's date as the latest acceptable one.
    # Not extensive: the text-wide date search (dateparser) doubles the cost and on the corpus
    # finds the annotated date less often (0.78 vs 0.82).
    page_url = doc.url or extract_url(tree, url)
    date = find_date(tree, **{**set_date_params(extensive=EXTENSIVE_DATE_SEARCH), "url": page_url})
    # Some pages name a social media profile as the site ("https://www.facebook.com/…"): not a name.
    sitename = _not_url(doc.sitename) or _not_url(extract_sitename(tree))
    if sitename:
        sitename = sitename.lstrip("@")
        if sitename and "." not in sitename and not sitename[0].isupper():
            sitename = sitename.title()
    elif page_url and (host := META_URL.match(page_url)):
        sitename = host[1]
    return {
        "title": _tidy(title),
        "author": _tidy(author),
        "date": date,
        "sitename": _tidy(sitename),
        "description": _tidy(doc.description),
    }


def _not_url(value: str | None) -> str | None:
    """``value`` unless it is or holds a URL."""
    return None if not value or "://" in value else value


def _tidy(value: str | None) -> str | None:
    """trafilatura's own final touch on metadata strings: entities, control characters, length."""
    if not value:
        return None
    tidy: str | None = line_processing(unescape(value[:10000]))
    return tidy


def page_metadata(tree: _Element, url: str, microdata: frozenset[str] | None = None) -> dict[str, Any]:
    """Title, authors, published, language, sitename, description and canonical URL of a page.

    ``microdata`` is :func:`microdata_names` of the page when the caller has it already.
    """
    try:
        found = _trafilatura_fields(tree, url)
    except Exception:  # metadata is best effort, the text matters more
        found = {}
    return {
        "title": _title(
            _nonempty(found.get("title")), _nonempty(found.get("sitename")), urlsplit(url).netloc, _heading(tree)
        ),
        "authors": _authors(found.get("author"), found.get("title")),
        "published": _published(tree, _nonempty(found.get("date")), microdata),
        "language": _language(tree),
        "sitename": _nonempty(found.get("sitename")),
        "description": _nonempty(found.get("description")),
        "canonical_url": _canonical(tree, url),
    }
