"""URL normalisation and identity: the one place that decides when two URLs are the same page.

Every stage keys its effects by :func:`url_id` of the normalised URL, so the rules here decide
what "fetched once" and "stored once" mean.  courlan (trafilatura's own URL library) does the
well-trodden parts: scheme and host case, default ports, tracking parameters, sorted query.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

from courlan import normalize_url as _courlan_normalize

__all__ = ["InvalidURL", "host_allowed", "host_of", "normalize_url", "url_id", "validate_url"]

#: URLs longer than this are refused: real article URLs are far shorter, traps are not.
MAX_URL_LENGTH = 2048
# One regex search instead of a Python loop per character: this runs for every link discovered.
_WHITESPACE = re.compile(r"\s")


class InvalidURL(ValueError):
    """A URL that no stage can fetch; the message says why in words an operator understands."""


def validate_url(url: str) -> str:
    """Return ``url`` stripped if it is an absolute http(s) URL a fetcher may request, else raise."""
    url = url.strip()
    if not url:
        raise InvalidURL("empty URL")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidURL(f"URL longer than {MAX_URL_LENGTH} characters")
    if _WHITESPACE.search(url):
        raise InvalidURL("URL contains whitespace")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"malformed URL ({exc})") from None
    if parts.scheme.lower() not in {"http", "https"}:
        raise InvalidURL(f"scheme {parts.scheme or '(none)'!r} is not http or https")
    if not parts.hostname:
        raise InvalidURL("URL has no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidURL("URL carries user-info (user:password@), which is refused")
    if port is not None and not 0 < port < 65536:
        raise InvalidURL(f"port {port} out of range")
    return url


def normalize_url(url: str) -> str:
    """The canonical spelling of ``url``: lower-case scheme and host, no default port, no fragment,
    no tracking parameters (utm_*, fbclid, …), sorted query.  Idempotent.

    Raises :class:`InvalidURL` for URLs :func:`validate_url` refuses.
    """
    url = validate_url(url)
    try:
        normalized = _courlan_normalize(url)
    except ValueError as exc:
        raise InvalidURL(f"malformed URL ({exc})") from None
    parts = urlsplit(normalized)
    path = parts.path or "/"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def url_id(normalized_url: str) -> str:
    """A stable 32-hex-digit id of an already normalised URL: the key of every per-URL effect."""
    return hashlib.sha256(normalized_url.encode("utf-8")).hexdigest()[:32]


def host_of(url: str) -> str:
    """The lower-case host name of ``url`` (no port), used for politeness and key layout; "" when it
    has none or cannot be parsed."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:  # "http://[x": messages carry URLs no schema can prove well-formed
        return ""


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """Whether ``host`` is one of ``allowed``, where ``*.example.org`` stands for example.org and its subdomains."""
    for entry in allowed:
        if entry == host or (entry.startswith("*.") and (host == entry[2:] or host.endswith(entry[1:]))):
            return True
    return False
