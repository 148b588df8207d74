"""fetch_page against a real misbehaving server on 127.0.0.1, and its pure helpers.

Every case ends in exactly one classified :class:`FetchResult`; nothing here raises.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator
from email.utils import formatdate

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.hostile_server import (
    BIG_BYTES,
    CHARSET_PAGES,
    ETAG,
    LAST_MODIFIED,
    PAGE,
    HostileServer,
    charset_page,
    gzip_bomb,
)
from workers.core.settings import Settings
from workers.fetch.client import (
    FetchResult,
    classify_error,
    classify_status,
    fetch_page,
    looks_like_html,
    parse_content_type,
    parse_retry_after,
)
from workers.fetch.netguard import BlockedAddress, build_client

LIMIT = 1_000_000


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with HostileServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    settings = Settings(allow_private=True, connect_timeout=1.0, read_timeout=0.5, max_redirects=3)
    with build_client(settings) as c:
        yield c


def fetch(client: httpx.Client, url: str, *, max_bytes: int = LIMIT, deadline_s: float = 5.0) -> FetchResult:
    return fetch_page(client, url, max_bytes=max_bytes, deadline_s=deadline_s)


# -- pages that work ----------------------------------------------------------------------------


def test_an_html_page_comes_back_whole_with_its_validators(server: HostileServer, client: httpx.Client) -> None:
    url = server.url("/html")
    result = fetch(client, url)
    assert result.outcome == "ok" and not result.transient
    assert result.body == PAGE and result.bytes == len(PAGE)
    assert (result.status, result.content_type, result.encoding) == (200, "text/html", "utf-8")
    assert (result.etag, result.last_modified) == (ETAG, LAST_MODIFIED)
    assert result.url == result.final_url == url
    assert result.retry_after is None and result.ms >= 0


def test_a_known_etag_gives_not_modified_without_a_body(server: HostileServer, client: httpx.Client) -> None:
    result = fetch_page(
        client, server.url("/html"), max_bytes=LIMIT, deadline_s=5, etag=ETAG, last_modified=LAST_MODIFIED
    )
    assert (result.outcome, result.status, result.body) == ("not_modified", 304, b"")
    assert result.etag == ETAG
    sent = [h for path, h in server.requests if path == "/html"][-1]
    assert sent["If-None-Match"] == ETAG and sent["If-Modified-Since"] == LAST_MODIFIED


def test_an_unknown_etag_gets_the_page(server: HostileServer, client: httpx.Client) -> None:
    result = fetch_page(client, server.url("/html"), max_bytes=LIMIT, deadline_s=5, etag='"old"')
    assert (result.outcome, result.body) == ("ok", PAGE)


@pytest.mark.parametrize("path", ["/gzip", "/deflate", "/raw-deflate"])
def test_compressed_pages_are_inflated(server: HostileServer, client: httpx.Client, path: str) -> None:
    result = fetch(client, server.url(path))
    assert (result.outcome, result.body) == ("ok", PAGE)


def test_redirects_are_followed_to_the_final_url(server: HostileServer, client: httpx.Client) -> None:
    result = fetch(client, server.url("/chain/3"))
    assert (result.outcome, result.body) == ("ok", PAGE)
    assert result.final_url == server.url("/chain/0")
    assert result.url == server.url("/chain/3")


def test_a_slow_answer_within_the_read_timeout_is_fine(server: HostileServer, client: httpx.Client) -> None:
    assert fetch(client, server.url("/slow?s=0.1")).outcome == "ok"


@pytest.mark.parametrize(
    ("codec", "mode", "expected"),
    [(codec, "right", right.lower()) for codec, (right, _, _) in CHARSET_PAGES.items()]
    + [(codec, "wrong", wrong.lower()) for codec, (_, wrong, _) in CHARSET_PAGES.items()]
    + [(codec, "none", None) for codec in CHARSET_PAGES],
)
def test_bytes_are_kept_and_the_header_charset_reported(
    server: HostileServer, client: httpx.Client, codec: str, mode: str, expected: str | None
) -> None:
    result = fetch(client, server.url(f"/charset/{codec}/{mode}"))
    assert result.outcome == "ok"
    assert result.body == charset_page(codec)  # no decoding here: extract decides, header may lie
    assert result.encoding == expected
    assert CHARSET_PAGES[codec][2] in result.body.decode(codec)


def test_a_page_without_content_type_is_sniffed_as_html(server: HostileServer, client: httpx.Client) -> None:
    result = fetch(client, server.url("/no-type/html"))
    assert (result.outcome, result.content_type, result.body) == ("ok", None, b"\n  " + PAGE)


# -- pages we must not keep -----------------------------------------------------------------------


def test_a_pdf_named_html_is_refused_before_its_body_is_read(server: HostileServer, client: httpx.Client) -> None:
    result = fetch(client, server.url("/file.html"))
    assert (result.outcome, result.content_type, result.body, result.bytes) == (
        "not_html",
        "application/pdf",
        b"",
        0,
    )


def test_binary_without_content_type_is_not_html(server: HostileServer, client: httpx.Client) -> None:
    result = fetch(client, server.url("/no-type/bin"))
    assert (result.outcome, result.body) == ("not_html", b"")


def test_content_length_over_the_limit_is_too_large_without_reading(
    server: HostileServer, client: httpx.Client
) -> None:
    result = fetch(client, server.url("/big?length=1"))
    assert (result.outcome, result.bytes, result.body) == ("too_large", 0, b"")
    assert str(BIG_BYTES) in result.reason


def test_a_streamed_body_over_the_limit_stops_at_the_limit(server: HostileServer, client: httpx.Client) -> None:
    result = fetch(client, server.url("/big?length=0"))
    assert result.outcome == "too_large"
    assert LIMIT < result.bytes <= LIMIT + 1
    assert result.body == b""


def test_a_gzip_bomb_is_stopped_at_the_limit_without_inflating_it(server: HostileServer, client: httpx.Client) -> None:
    gzip_bomb()  # built once, before measuring, so only the client's memory is counted
    limit = 2_000_000  # above the bomb's 1 MB on the wire: the inflated size must trip it
    tracemalloc.start()
    try:
        result = fetch(client, server.url("/bomb"), max_bytes=limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.outcome == "too_large"
    assert limit < result.bytes <= limit + 1
    # The bomb inflates to 1 GiB, one 64 KiB read of it to about 64 MB: neither happened.
    assert peak < 16_000_000, peak


def test_an_unsupported_content_encoding_is_an_http_error(server: HostileServer, client: httpx.Client) -> None:
    result = fetch(client, server.url("/brotli"))
    assert result.outcome == "http_error" and "br" in result.reason


@pytest.mark.parametrize(("code", "outcome"), [(404, "http_error"), (410, "http_error"), (403, "http_error")])
def test_permanent_client_errors(server: HostileServer, client: httpx.Client, code: int, outcome: str) -> None:
    result = fetch(client, server.url(f"/status/{code}"))
    assert (result.outcome, result.status, result.body) == (outcome, code, b"")
    assert str(code) in result.reason


@pytest.mark.parametrize("code", [408, 425, 500, 502, 503, 504])
def test_server_errors_and_retryable_client_errors_are_transient(
    server: HostileServer, client: httpx.Client, code: int
) -> None:
    result = fetch(client, server.url(f"/status/{code}"))
    assert (result.outcome, result.status, result.transient) == ("transient", code, True)


def test_429_carries_retry_after_seconds(server: HostileServer, client: httpx.Client) -> None:
    result = fetch(client, server.url("/retry-seconds"))
    assert (result.outcome, result.status, result.retry_after) == ("transient", 429, 7.0)


def test_503_carries_retry_after_as_a_date(server: HostileServer, client: httpx.Client) -> None:
    result = fetch(client, server.url("/retry-date"))
    assert (result.outcome, result.status) == ("transient", 503)
    assert result.retry_after is not None and 100 < result.retry_after <= 121


def test_a_500_then_200_is_transient_then_ok(server: HostileServer, client: httpx.Client) -> None:
    url = server.url("/flaky/test_a_500_then_200")
    assert [fetch(client, url).outcome for _ in range(2)] == ["transient", "ok"]


# -- servers that misbehave on the wire ----------------------------------------------------------


def test_no_answer_within_the_read_timeout_is_transient(server: HostileServer, client: httpx.Client) -> None:
    result = fetch(client, server.url("/slow?s=3"))
    assert result.outcome == "transient" and "read timed out" in result.reason


def test_a_body_that_stalls_is_transient(server: HostileServer, client: httpx.Client) -> None:
    result = fetch(client, server.url("/stall"))
    assert (result.outcome, result.body) == ("transient", b"")


def test_a_trickling_body_ends_at_the_deadline(server: HostileServer, client: httpx.Client) -> None:
    # Each chunk arrives well within the read timeout; only the whole-request deadline ends it.
    started = time.monotonic()
    result = fetch(client, server.url("/trickle"), deadline_s=0.6)
    elapsed = time.monotonic() - started
    assert result.outcome == "transient" and "deadline" in result.reason
    assert elapsed < 5  # the server would trickle for 30 s


def test_a_connection_reset_is_transient(server: HostileServer, client: httpx.Client) -> None:
    result = fetch(client, server.url("/reset"))
    assert result.outcome == "transient"


def test_a_closed_port_is_transient(client: httpx.Client) -> None:
    with HostileServer() as gone:
        url = gone.url("/html")
    result = fetch(client, url)
    assert result.outcome == "transient" and "ConnectError" in result.reason


def test_a_redirect_loop_is_caught(server: HostileServer, client: httpx.Client) -> None:
    result = fetch(client, server.url("/loop-a"))
    assert result.outcome == "redirect_loop" and "loop" in result.reason


def test_too_many_redirects(server: HostileServer, client: httpx.Client) -> None:
    result = fetch(client, server.url("/chain/9"))
    assert result.outcome == "redirect_loop" and "more than 3" in result.reason


def test_a_redirect_to_another_scheme_is_an_invalid_url(server: HostileServer, client: httpx.Client) -> None:
    result = fetch(client, server.url("/redirect?to=file:///etc/passwd"))
    assert result.outcome == "invalid_url" and result.final_url.startswith("file://")
    assert "scheme 'file'" in result.reason


@pytest.mark.parametrize(
    "url", ["", "ftp://127.0.0.1/", "http://user:pw@127.0.0.1/html", "http:///nohost", "http://127.0.0.1:99999/"]
)
def test_invalid_urls_are_refused_without_contacting_anyone(
    server: HostileServer, client: httpx.Client, url: str
) -> None:
    before = server.connections
    result = fetch(client, url)
    assert (result.outcome, result.status) == ("invalid_url", None)
    assert result.reason
    assert server.connections == before


def test_a_url_httpx_cannot_parse_is_invalid_not_an_exception(client: httpx.Client) -> None:
    assert fetch(client, "http://0251.0376.0251.0376/").outcome == "invalid_url"


def test_a_refused_address_is_its_own_outcome(server: HostileServer) -> None:
    with build_client(Settings(connect_timeout=1.0, read_timeout=1.0)) as strict:
        result = fetch(strict, server.url("/html"))
    assert (result.outcome, result.transient) == ("refused", False)
    assert "loopback" in result.reason


# -- pure helpers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "ok"), (203, "ok"), (204, "ok"), (304, "not_modified"), (300, "http_error"),
        (302, "http_error"), (400, "http_error"), (401, "http_error"), (404, "http_error"),
        (451, "http_error"), (408, "transient"), (425, "transient"), (429, "transient"),
        (500, "transient"), (501, "transient"), (599, "transient"), (100, "http_error"),
    ],
)  # fmt: skip
def test_classify_status(status: int, outcome: str) -> None:
    assert classify_status(status) == outcome


NOW = 784_111_777.0  # Sun, 06 Nov 1994 08:49:37 GMT


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0), ("0", 0.0), (" 7 ", 7.0), ("1.5", 1.5),
        ("Sun, 06 Nov 1994 08:50:37 GMT", 60.0),  # IMF-fixdate
        ("Sunday, 06-Nov-94 08:50:37 GMT", 60.0),  # RFC 850
        ("Sun Nov  6 08:50:37 1994", 60.0),  # asctime
        ("Sun, 06 Nov 1994 08:00:00 GMT", 0.0),  # in the past
        ("-5", None), ("soon", None), ("", None), ("1e3", None), ("Mon, 99 Foo 2020 99:99:99 GMT", None),
    ],
)  # fmt: skip
def test_parse_retry_after(value: str, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_parse_retry_after_agrees_with_formatdate() -> None:
    now = time.time()
    assert parse_retry_after(formatdate(now + 3600, usegmt=True), now) == pytest.approx(3600, abs=1)


@given(st.text(max_size=60))
def test_parse_retry_after_never_raises(value: str) -> None:
    result = parse_retry_after(value, NOW)
    assert result is None or result >= 0


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (None, (None, None)),
        ("text/html", ("text/html", None)),
        ("Text/HTML; Charset=UTF-8", ("text/html", "utf-8")),
        ('text/html; charset="windows-1251"', ("text/html", "windows-1251")),
        ("text/html; foo=bar; charset=Shift_JIS", ("text/html", "shift_jis")),
        ("text/html; charset=", ("text/html", None)),
        ("", (None, None)),
    ],
)
def test_parse_content_type(value: str | None, parsed: tuple[str | None, str | None]) -> None:
    assert parse_content_type(value) == parsed


@pytest.mark.parametrize(
    ("head", "html"),
    [
        (b"<!DOCTYPE html><html>", True), (b"\xef\xbb\xbf  <html lang=en>", True), (b"\n<HEAD>", True),
        (b"<!-- generated -->", True), (b"<p>hi", True), (b"<body\n>", True), (b"%PDF-1.4", False),
        (b"\x89PNG\r\n", False), (b"<?xml version='1.0'?><rss>", False), (b"<pre>", False),
        (b"<a", False), (b"", False), (b"hello <html>", False),
    ],
)  # fmt: skip
def test_looks_like_html(head: bytes, html: bool) -> None:
    assert looks_like_html(head) is html


def test_classify_error_finds_a_blocked_address_behind_httpx() -> None:
    try:
        try:
            raise BlockedAddress("meta.test", "169.254.169.254 is a cloud metadata address")
        except BlockedAddress as inner:
            raise httpx.ConnectError("wrapped") from inner
    except httpx.ConnectError as exc:
        assert classify_error(exc) == ("refused", "169.254.169.254 is a cloud metadata address")
    assert classify_error(httpx.ReadTimeout("x"))[0] == "transient"
    assert classify_error(httpx.TooManyRedirects("x"))[0] == "redirect_loop"
    assert classify_error(httpx.RemoteProtocolError("x"))[0] == "transient"


def test_fetch_result_rejects_unknown_outcomes_and_hides_the_body_in_repr() -> None:
    with pytest.raises(ValueError):
        FetchResult("maybe", url="http://a.test/", final_url="http://a.test/")
    result = FetchResult("ok", url="http://a.test/", final_url="http://a.test/", body=b"SECRETBODY")
    assert "SECRETBODY" not in repr(result)
