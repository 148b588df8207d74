"""Record fields beyond trafilatura's metadata: last modification, main image, tags.

All three come from what publishers write for search engines and social networks: ``<meta>``
tags (Open Graph, ``article:*``, ``keywords``), ``itemprop`` attributes and JSON-LD.  JSON-LD
is parsed once per page; the article-like object in it (``NewsArticle``, ``BlogPosting``, …)
is preferred over the page's other objects (organisation logos, breadcrumbs).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from lxml import etree
from lxml.etree import _Element

from workers.extract.metadata import microdata_names

__all__ = ["MAX_TAGS", "page_fields"]

#: At most this many tags in a record; pages that stuff keywords list hundreds.
MAX_TAGS = 30

_MODIFIED_KEYS = frozenset(
    {
        "article:modified_time",
        "og:updated_time",
        "article:modified",
        "last-modified",
        "dcterms.modified",
        "datemodified",
    }
)
_MODIFIED_XPATH = etree.XPath("//*[@itemprop='dateModified'][@datetime]")
_IMAGE_KEYS = ("og:image:secure_url", "og:image:url", "og:image", "twitter:image", "twitter:image:src", "image")
_TAG_KEYS = frozenset({"keywords", "news_keywords", "article:tag", "og:article:tag", "citation_keywords"})
# Splits as r"\s*[,;|]\s*" does, in linear time: a whitespace run is tried from its start only, so a
# keywords value of 32,000 tabs no longer takes seven seconds (each of its positions tried the run).
_TAG_SEPARATORS = re.compile(r"(?:(?<!\s)\s+)?[,;|]\s*")
# Below this an entry is a fragment ("a"), above it a sentence stuffed into the keywords.
_TAG_MAX_CHARS = 80


def _json_ld(tree: _Element) -> list[dict[str, Any]]:
    """Every JSON-LD object of the page, article-like ones first."""
    found: list[dict[str, Any]] = []
    for script in tree.iterfind(".//script[@type='application/ld+json']"):
        try:
            data = json.loads(script.text or "")
        except ValueError:  # broken JSON-LD is common; the meta tags still count
            continue
        except RecursionError:  # nested deeper than the parser goes: a hostile page, not metadata
            continue
        # Depth first, in document order, with a list for a stack: the nesting a page chooses must
        # not decide how deep this function recurses.
        stack: list[Any] = [data]
        while stack:
            node = stack.pop()
            if isinstance(node, list):
                stack.extend(reversed(node))
            elif isinstance(node, dict):
                found.append(node)
                stack.append(node.get("@graph"))

    def article_like(obj: dict[str, Any]) -> bool:
        kind = obj.get("@type")
        kinds = kind if isinstance(kind, list) else [kind]
        return any(isinstance(k, str) and ("Article" in k or k in ("BlogPosting", "Report", "Review")) for k in kinds)

    return sorted(found, key=lambda obj: not article_like(obj))


def _meta(tree: _Element, microdata: frozenset[str]) -> Iterator[tuple[str, str]]:
    """(lower-case key, content) of the page's meta tags and ``itemprop`` values."""
    for elem in tree.iterfind(".//meta[@content]"):
        key = elem.get("property") or elem.get("name") or elem.get("itemprop") or elem.get("http-equiv") or ""
        content = (elem.get("content") or "").strip()
        if key and content:
            yield key.strip().lower(), content
    if "dateModified" in microdata:
        for elem in _MODIFIED_XPATH(tree):
            yield "datemodified", elem.get("datetime", "").strip()


_DATE_CHARS = len("2024-03-06")


def _iso(value: Any) -> str | None:
    """An ISO 8601 date or date-time, or None when ``value`` is not one."""
    if not isinstance(value, str) or len(value.strip()) < 10:
        return None
    text = value.strip()
    if len(text) == _DATE_CHARS:
        # A bare date stays a date: Python reads it as midnight, which the page never said.
        with contextlib.suppress(ValueError):
            return date.fromisoformat(text).isoformat()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()
    except ValueError:
        pass
    try:
        return datetime.strptime(text[:10], "%Y-%m-%d").date().isoformat()
    except ValueError:
        return None


def _image_url(value: Any, base: str) -> str | None:
    """An absolute http(s) URL from a JSON-LD image (string, ImageObject or list) or a meta value."""
    if isinstance(value, list):
        return next((url for url in (_image_url(v, base) for v in value) if url), None)
    if isinstance(value, dict):
        return _image_url(value.get("url") or value.get("contentUrl"), base)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        url = urljoin(base, value.strip())
    except ValueError:
        return None
    return url if urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc else None


def _tags(values: list[Any]) -> list[str]:
    """Tags from keyword strings and lists, split, trimmed, deduplicated ignoring case."""
    tags: list[str] = []
    seen: set[str] = set()
    for value in values:
        parts = value if isinstance(value, list) else _TAG_SEPARATORS.split(value) if isinstance(value, str) else []
        for part in parts:
            tag = " ".join(part.split()) if isinstance(part, str) else ""
            if 2 <= len(tag) <= _TAG_MAX_CHARS and tag.casefold() not in seen:
                seen.add(tag.casefold())
                tags.append(tag)
    return tags[:MAX_TAGS]


def page_fields(tree: _Element, url: str, microdata: frozenset[str] | None = None) -> dict[str, Any]:
    """``updated`` (ISO date or None), ``image`` (absolute URL or None) and ``tags`` (list) of a page.

    ``microdata`` is :func:`workers.extract.metadata.microdata_names` of the page when the caller has it.
    """
    meta = list(_meta(tree, microdata_names(tree) if microdata is None else microdata))
    objects = _json_ld(tree)
    updated = next((iso for key, value in meta if key in _MODIFIED_KEYS and (iso := _iso(value))), None)
    updated = updated or next((iso for obj in objects if (iso := _iso(obj.get("dateModified")))), None)
    by_key: dict[str, str] = {}
    for key, value in meta:
        by_key.setdefault(key, value)
    image = next((found for key in _IMAGE_KEYS if (found := _image_url(by_key.get(key), url))), None)
    image = image or next((found for obj in objects if (found := _image_url(obj.get("image"), url))), None)
    keywords: list[Any] = [value for key, value in meta if key in _TAG_KEYS]
    keywords += [obj["keywords"] for obj in objects[:1] if "keywords" in obj]
    return {"updated": updated, "image": image, "tags": _tags(keywords)}
