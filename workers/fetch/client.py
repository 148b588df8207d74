"""The fetch stage's core: one GET of one page, ending in a classified :class:`FetchResult`.

:func:`fetch_page` never raises for anything the network or the server does; the fetch actor only
maps the outcome to "store and go on", "retry later" or "record and stop".  Every limit a hostile
or broken server could exhaust is enforced here or in :mod:`workers.fetch.netguard`: addresses (every
redirect hop), a whole-request deadline, the body size counted in *decoded* bytes (so a gzip bomb
stops at the limit instead of inflating), and the content type, checked before the body is read.
"""

from __future__ import annotations

import builtins
import email.utils
import math
import re
import time
import zlib
from dataclasses import dataclass, field, replace
from datetime import UTC

import httpx

from workers.core.urls import InvalidURL, validate_url
from workers.fetch import netguard

__all__ = [
    "HTML_TYPES",
    "OUTCOMES",
    "FetchResult",
    "archivable_headers",
    "cap_retry_after",
    "classify_error",
    "classify_status",
    "fetch_page",
    "looks_like_html",
    "parse_content_type",
    "parse_retry_after",
]

#: Every value :attr:`FetchResult.outcome` can take.
OUTCOMES = frozenset(
    {
        "ok",
        "not_modified",
        "not_html",
        "too_large",
        "http_error",
        "transient",
        "refused",
        "redirect_loop",
        "invalid_url",
    }
)
#: Media types the extract stage can use; anything else is "not_html".
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
#: How much of a body without Content-Type is looked at before deciding it is not HTML.
_SNIFF_BYTES = 512
#: 4xx statuses that mean "later", not "never".
_TRANSIENT_4XX = frozenset({408, 425, 429})


@dataclass(frozen=True)
class FetchResult:
    """What one fetch ended with; ``body`` is only filled for ``ok``."""

    outcome: str
    url: str
    final_url: str
    status: int | None = None
    content_type: str | None = None
    #: The charset the Content-Type header names (lower-case), right or wrong; None if absent.
    encoding: str | None = None
    body: builtins.bytes = field(default=b"", repr=False)
    etag: str | None = None
    last_modified: str | None = None
    #: Seconds the server asked us to wait (Retry-After), relative to when the answer came.
    retry_after: float | None = None
    reason: str = ""
    ms: int = 0
    #: Milliseconds until the first response's headers came (None: no answer): the host's speed,
    #: apart from the body's size and a body that stalls.
    answer_ms: int | None = None
    #: Decoded body bytes read (for too_large: how far we got before stopping).
    bytes: int = 0
    #: The final response's status line ("HTTP/1.1 200 OK") and headers as sent, in order, minus
    #: cookies and credentials (:func:`archivable_headers`); kept next to the raw page.
    status_line: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown fetch outcome {self.outcome!r}")

    @property
    def transient(self) -> bool:
        """True when trying again later may succeed."""
        return self.outcome == "transient"


#: Response headers never stored: cookies and anything that carries a credential or session.
_SECRET_HEADERS = frozenset({"set-cookie", "set-cookie2", "cookie", "authorization", "proxy-authorization",
                             "www-authenticate", "proxy-authenticate", "authentication-info",
                             "proxy-authentication-info"})
_SECRET_WORDS = re.compile(r"token|secret|passw|api-?key|credential|session|auth|csrf|xsrf")


def archivable_headers(raw: list[tuple[builtins.bytes, builtins.bytes]]) -> tuple[tuple[str, str], ...]:
    """Response headers worth archiving, names as sent: no Set-Cookie, nothing whose name says
    it carries a token, key, password or session (an archive is read by many; a cookie from it
    is someone's login)."""
    kept = []
    for name, value in raw:
        text = name.decode("latin-1")
        lower = text.lower()
        # CORS headers only name what a browser may send (Allow-Credentials: true): no secret.
        if lower in _SECRET_HEADERS or (_SECRET_WORDS.search(lower) and not lower.startswith("access-control-")):
            continue
        kept.append((text, value.decode("latin-1")))
    return tuple(kept)


def classify_status(status: int) -> str:
    """The outcome an HTTP status alone implies: "ok", "not_modified", "transient" or "http_error"."""
    if 200 <= status < 300:
        return "ok"
    if status == 304:
        return "not_modified"
    if status >= 500 or status in _TRANSIENT_4XX:
        return "transient"
    # 4xx, and 1xx/3xx that reach us unfollowed (a redirect without Location, 300, …).
    return "http_error"


_DELTA_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)


def parse_retry_after(value: str, now: float) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date) at epoch time ``now``.

    A date in the past gives 0; a value that is neither form gives None.  The result is not
    bounded (a number too long for a float gives inf): :func:`cap_retry_after` bounds it.
    """
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def cap_retry_after(seconds: float | None, limit: float) -> tuple[float | None, bool]:
    """``(seconds to wait, capped)`` for a parsed Retry-After: at most ``limit``; no usable value gives None.

    ``capped`` is True when the server asked for longer than ``limit`` (a far-future date, an
    overflowing number): the caller waits ``limit`` and records the host as slow.
    """
    if seconds is None or math.isnan(seconds) or seconds < 0:
        return None, False
    if seconds > limit:
        return limit, True
    return seconds, False


def parse_content_type(value: str | None) -> tuple[str | None, str | None]:
    """``(media type, charset)`` of a Content-Type header value, both lower-case, None if absent."""
    if value is None:
        return None, None
    head, *params = value.split(";")
    media = head.strip().lower() or None
    charset = None
    for param in params:
        name, sep, arg = param.partition("=")
        if sep and name.strip().lower() == "charset":
            charset = arg.strip().strip("\"'").strip().lower() or None
    return media, charset


# The WHATWG MIME sniffing "HTML" patterns: a tag that only HTML starts with, then space or ">".
_HTML_STARTS = tuple(
    t.encode()
    for t in (
        "<!doctype html", "<html", "<head", "<script", "<iframe", "<h1", "<div", "<font",
        "<table", "<a", "<style", "<title", "<b", "<body", "<br", "<p", "<!--",
    )
)  # fmt: skip


def looks_like_html(head: bytes) -> bool:
    """True if a body's first bytes start like an HTML document (after a BOM and whitespace)."""
    for bom in (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"):
        if head.startswith(bom):
            head = head[len(bom) :]
            break
    head = head.lstrip(b" \t\r\n\f").lower()
    for start in _HTML_STARTS:
        if head.startswith(start):
            after = head[len(start) : len(start) + 1]
            if start == b"<!--" or after in (b" ", b">", b"\t", b"\n", b"\r", b"\f"):
                return True
    return False


class _UnsupportedCoding(ValueError):
    pass


class _Inflater:
    """Undo one Content-Encoding, never producing more than the caller has room for."""

    def __init__(self, coding: str | None) -> None:
        coding = (coding or "identity").strip().lower()
        self._decoder: zlib._Decompress | None
        if coding in ("identity", ""):
            self._decoder = None
        elif coding in ("gzip", "x-gzip"):
            self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif coding == "deflate":
            self._decoder = zlib.decompressobj(zlib.MAX_WBITS)
        else:
            raise _UnsupportedCoding(coding)
        self._coding = coding
        self._started = False

    def feed(self, data: bytes, room: int) -> bytes:
        """Decoded ``data``: at most ``room + 1`` bytes, so more than ``room`` means "too large"."""
        if self._decoder is None:
            return data[: room + 1]
        first, self._started = not self._started, True
        try:
            # max_length bounds the inflated output of this call: a bomb cannot expand past it.
            return self._decoder.decompress(data, room + 1)
        except zlib.error:
            if not (first and self._coding == "deflate"):
                raise
            # Some servers send raw deflate without the zlib header the RFC asks for.
            self._decoder = zlib.decompressobj(-zlib.MAX_WBITS)
            return self._decoder.decompress(data, room + 1)

    def flush(self, room: int) -> bytes:
        """Whatever the decoder still holds, cut at ``room + 1`` bytes."""
        if self._decoder is None:
            return b""
        return self._decoder.flush()[: room + 1]


def classify_error(exc: BaseException) -> tuple[str, str]:
    """``(outcome, reason)`` for an exception raised while talking to a server."""
    cause = exc.__cause__
    for e in (exc, cause):
        if isinstance(e, netguard.BlockedAddress):
            return "refused", e.reason
    if isinstance(exc, httpx.TooManyRedirects):
        return "redirect_loop", str(exc)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL | InvalidURL):
        return "invalid_url", str(exc)
    if isinstance(exc, zlib.error):
        return "transient", f"corrupt compressed body ({exc})"
    if isinstance(exc, httpx.TimeoutException):
        if isinstance(cause, netguard.DeadlineExceeded):
            return "transient", str(cause)
        phase = type(exc).__name__.removesuffix("Timeout").lower() or "request"
        return "transient", f"{phase} timed out"
    return "transient", f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


@dataclass
class _Hop:
    """Where the fetch got to, so an error result can still name the URL that failed."""

    url: str
    status: int | None = None
    #: monotonic time the first response's headers arrived (None: no answer at all)
    answered_at: float | None = None


def fetch_page(
    client: httpx.Client,
    url: str,
    *,
    max_bytes: int,
    deadline_s: float,
    etag: str | None = None,
    last_modified: str | None = None,
    accept: frozenset[str] | None = HTML_TYPES,
) -> FetchResult:
    """GET ``url`` with ``client`` (build it with :func:`workers.fetch.netguard.build_client`).

    Follows up to ``client.max_redirects`` redirects itself (each hop validated, loops caught
    early, no redirect body read), stops the body at ``max_bytes`` decoded bytes and everything
    at ``deadline_s`` seconds.  ``etag``/``last_modified`` make the request conditional, and a
    304 answer ends as "not_modified".  ``accept`` lists the media types worth reading (HTML by
    default; ``None`` reads any type: feeds, sitemaps, robots.txt).  Never raises for network or
    HTTP trouble.
    """
    started = time.monotonic()
    try:
        url = validate_url(url)
    except InvalidURL as exc:
        return FetchResult("invalid_url", url=url, final_url=url, reason=str(exc))
    hop = _Hop(url)
    try:
        with netguard.deadline(deadline_s) as end:
            result = _follow(client, url, hop, _conditional(etag, last_modified), max_bytes, end, accept)
    # httpx.InvalidURL is not an httpx.HTTPError: httpx's URL parser is stricter than ours.
    except (httpx.HTTPError, httpx.InvalidURL, InvalidURL, zlib.error) as exc:
        outcome, reason = classify_error(exc)
        result = FetchResult(outcome, url=url, final_url=hop.url, status=hop.status, reason=reason)
    answer_ms = None if hop.answered_at is None else int((hop.answered_at - started) * 1000)
    return replace(result, ms=int((time.monotonic() - started) * 1000), answer_ms=answer_ms)


def _conditional(etag: str | None, last_modified: str | None) -> dict[str, str]:
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def _follow(
    client: httpx.Client,
    url: str,
    hop: _Hop,
    headers: dict[str, str],
    max_bytes: int,
    end: float,
    accept: frozenset[str] | None,
) -> FetchResult:
    """Send the request and its redirect hops; read the final answer."""
    request = client.build_request("GET", url, headers=headers)
    seen = {str(request.url)}
    redirects = 0
    while True:
        hop.url, hop.status = str(request.url), None
        response = client.send(request, stream=True, follow_redirects=False)
        if hop.answered_at is None:
            hop.answered_at = time.monotonic()
        try:
            hop.status = response.status_code
            following = response.next_request
            if following is None:
                return _read(response, url, max_bytes, end, accept)
        finally:
            response.close()
        target = str(following.url)
        redirects += 1
        if redirects > client.max_redirects:
            reason = f"more than {client.max_redirects} redirects"
            return FetchResult("redirect_loop", url=url, final_url=target, status=hop.status, reason=reason)
        if target in seen:
            reason = f"redirect loop back to {target}"
            return FetchResult("redirect_loop", url=url, final_url=target, status=hop.status, reason=reason)
        try:
            validate_url(target)
        except InvalidURL as exc:
            reason = f"redirect to an unusable URL: {exc}"
            return FetchResult("invalid_url", url=url, final_url=target, status=hop.status, reason=reason)
        seen.add(target)
        request = following


def _read(
    response: httpx.Response, url: str, max_bytes: int, end: float, accept: frozenset[str] | None
) -> FetchResult:
    """Classify a final (non-redirect) response, reading its body only when it may be used."""
    headers = response.headers
    media, charset = parse_content_type(headers.get("content-type"))
    retry_raw = headers.get("retry-after")
    status_line = f"{response.http_version} {response.status_code} {response.reason_phrase}".rstrip()
    kept = archivable_headers(headers.raw)

    def result(outcome: str, reason: str, body: bytes = b"", size: int = 0) -> FetchResult:
        return FetchResult(
            outcome,
            url=url,
            final_url=str(response.url),
            status=response.status_code,
            content_type=media,
            encoding=charset,
            body=body,
            etag=headers.get("etag"),
            last_modified=headers.get("last-modified"),
            retry_after=None if retry_raw is None else parse_retry_after(retry_raw, time.time()),
            reason=reason,
            bytes=size,
            status_line=status_line,
            headers=kept,
        )

    status_outcome = classify_status(response.status_code)
    if status_outcome != "ok":
        return result(status_outcome, f"HTTP {response.status_code} {response.reason_phrase}".rstrip())
    if accept is not None and media is not None and media not in accept:
        return result("not_html", f"content type {media}")
    length = _content_length(headers.get("content-length"))
    if length is not None and length > max_bytes:
        return result("too_large", f"Content-Length {length} is over the {max_bytes}-byte limit")
    try:
        inflater = _Inflater(headers.get("content-encoding"))
    except _UnsupportedCoding as exc:
        return result("http_error", f"unsupported Content-Encoding {exc}")

    body = bytearray()
    raw = 0
    # Only an HTML fetch sniffs a missing type: feeds and sitemaps are judged by their parser.
    sniffed = media is not None or accept is None
    too_large = f"body is over the {max_bytes}-byte limit"
    for chunk in response.iter_raw():
        raw += len(chunk)
        body += inflater.feed(chunk, max_bytes - len(body))
        # Raw bytes count too: a stream of empty deflate blocks inflates to nothing, forever.
        if len(body) > max_bytes or raw > max_bytes:
            return result("too_large", too_large, size=len(body))
        if not sniffed and len(body) >= _SNIFF_BYTES:
            sniffed = True
            if not looks_like_html(bytes(body)):
                return result("not_html", "no content type, and the body does not look like HTML")
        if time.monotonic() >= end:
            return result("transient", "request deadline exceeded while reading the body")
    body += inflater.flush(max_bytes - len(body))
    if len(body) > max_bytes:
        return result("too_large", too_large, size=len(body))
    if not sniffed and not looks_like_html(bytes(body)):
        return result("not_html", "no content type, and the body does not look like HTML")
    return result("ok", "ok", bytes(body), len(body))


def _content_length(value: str | None) -> int | None:
    if value is None or not value.strip().isascii() or not value.strip().isdigit():
        return None
    return int(value)
