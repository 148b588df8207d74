"""Links that are not anchors: ``<select>`` menus, "load more" buttons and the JSON behind them.

Sites put their section menus in a ``<select>`` (``<option value="/c/12">World</option>``) and
their pagination behind a button whose script asks a JSON endpoint for the next teasers
(``<button data-href="/api/more?page=2">Load more</button>``).  A browser follows both; so does
discovery: options become probes or listings by :func:`workers.discover.links.link_kind`, a
button's endpoint a listing, and a JSON answer is read for the URLs and the HTML it carries.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

from lxml import etree

from workers.core.htmlparse import parse_html
from workers.core.urls import InvalidURL, host_allowed, host_of, normalize_url
from workers.discover.links import LISTING, Link, discover_links, link_kind

__all__ = ["json_links", "looks_like_json", "widget_links"]

#: Attributes of buttons and containers that name the endpoint a script loads more items from.
_ENDPOINT_ATTRS: Final = ("data-href", "data-next", "data-next-url", "data-endpoint", "data-load-more", "hx-get")
#: What marks an element as a "load more" control (its text, class or id): share buttons carry
#: ``data-href`` too, with the page's own URL.
_MORE_RE: Final = re.compile(r"more|load|next|weiter|mehr|plus|suivant|siguiente", re.IGNORECASE)
#: JSON keys whose value is the next page of the same list.
_NEXT_KEYS: Final = frozenset({"next", "next_url", "nexturl", "next_page", "nextpage", "more", "more_url"})
_URL_KEYS: Final = frozenset({"url", "href", "link", "permalink", "canonical_url", "path"})
_TITLE_KEYS: Final = ("title", "headline", "name", "label")
_MAX_JSON_BYTES: Final = 5_000_000
_MAX_ITEMS: Final = 5_000


def widget_links(root: etree._Element, base_url: str, *, allowed_hosts: frozenset[str]) -> list[Link]:
    """Links in ``<select>`` menus and "load more" endpoints of a parsed page, each URL once."""
    out: dict[str, Link] = {}
    for option in root.iter("option"):
        value = (option.get("value") or "").strip()
        if not value.startswith(("/", "http://", "https://", "?")):
            continue
        text = " ".join("".join(option.itertext()).split())
        url = _resolve(value, base_url, allowed_hosts)
        kind = link_kind(url, text, in_nav=True) if url else None
        if url and kind and url not in out:
            out[url] = Link(url, kind, text)
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        for attr in _ENDPOINT_ATTRS:
            value = (el.get(attr) or "").strip()
            if value and not _is_more(el):
                continue
            url = _resolve(value, base_url, allowed_hosts) if value else None
            if url and url not in out:
                # A "more" endpoint is the listing's next page, whatever its URL looks like.
                out[url] = Link(url, LISTING, " ".join("".join(el.itertext()).split())[:200])
    return list(out.values())


def _is_more(el: etree._Element) -> bool:
    label = " ".join(v for v in (el.get("class"), el.get("id"), el.get("aria-label"), el.text) if v)
    return bool(_MORE_RE.search(label[:300]))


def looks_like_json(body: bytes, content_type: str | None) -> bool:
    """A JSON answer (by its media type or its first character), not an HTML page."""
    if content_type and "json" in content_type.lower():
        return True
    head = body[:64].lstrip()
    return head[:1] in (b"{", b"[")


def json_links(body: bytes, base_url: str, *, allowed_hosts: frozenset[str]) -> list[Link]:
    """The links a JSON answer of a "load more" endpoint carries: items' URLs, the next page, and
    the anchors of any HTML fragment in it. Malformed or huge JSON gives ``[]``."""
    if len(body) > _MAX_JSON_BYTES:
        return []
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return []
    out: dict[str, Link] = {}
    budget = [_MAX_ITEMS]
    _walk(data, base_url, allowed_hosts, out, budget, 0)
    return list(out.values())


def _walk(data: Any, base: str, hosts: frozenset[str], out: dict[str, Link], budget: list[int], depth: int) -> None:
    budget[0] -= 1
    if budget[0] < 0 or depth > 20:
        return
    if isinstance(data, list):
        for item in data:
            _walk(item, base, hosts, out, budget, depth + 1)
        return
    if not isinstance(data, dict):
        return
    title = next((str(data[k]) for k in _TITLE_KEYS if isinstance(data.get(k), str)), "")
    for key, value in data.items():
        lowered = str(key).lower()
        if isinstance(value, str):
            if "<a" in value and len(value) > 10:
                tree = parse_html(value)
                for link in discover_links(tree, base, allowed_hosts=hosts, probes=True) if tree is not None else []:
                    out.setdefault(link.url, link)
                continue
            if lowered not in _NEXT_KEYS and lowered not in _URL_KEYS:
                continue
            url = _resolve(value, base, hosts)
            if url is None:
                continue
            kind = LISTING if lowered in _NEXT_KEYS else link_kind(url, title)
            if kind is not None:
                out.setdefault(url, Link(url, kind, title))
        elif isinstance(value, dict | list):
            _walk(value, base, hosts, out, budget, depth + 1)


def _resolve(href: str, base: str, hosts: frozenset[str]) -> str | None:
    try:
        absolute = urljoin(base, href.strip())
        if urlsplit(absolute).scheme not in ("http", "https"):
            return None
        url = normalize_url(absolute)
    except (InvalidURL, ValueError):
        return None
    if url == _normal(base):
        return None
    return url if host_allowed(host_of(url), frozenset(h.lower() for h in hosts)) else None


def _normal(url: str) -> str:
    try:
        return normalize_url(url)
    except (InvalidURL, ValueError):
        return url
