"""Raw pages keep their response: status line, final URL, fetch time and headers (without cookies
and credentials) in a ``.headers.json`` sidecar, written before the page is handed on, once."""

from __future__ import annotations

import gzip
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest

from workers.core.messages import fetch_task
from workers.core.settings import Settings
from workers.core.storage import is_raw_page, raw_headers_key
from workers.core.urls import normalize_url, url_id
from workers.fetch.client import archivable_headers, fetch_page
from workers.pipeline.actors import fetch_stage
from workers.pipeline.runtime import Runtime, build_runtime
from workers.sources.sourcefile import Source

PAGE = b"<!DOCTYPE html><html><head><title>Harbour</title></head><body><p>The harbour opened.</p></body></html>"
#: Headers the server sends with the page: the first three must reach the sidecar, the rest never.
KEPT = [("Content-Type", "text/html; charset=utf-8"), ("X-Served-By", "edge-7"), ("Link", "</a.css>; rel=preload"),
        ("Link", "</b.js>; rel=preload"), ("Access-Control-Allow-Credentials", "true")]
SECRET = [("Set-Cookie", "sid=s3cr3t; HttpOnly"), ("Set-Cookie", "pref=1"), ("X-Amz-Security-Token", "tok"),
          ("X-Api-Key", "k"), ("X-Session-Id", "sess"), ("WWW-Authenticate", 'Basic realm="x"'),
          ("X-CSRF-Token", "c")]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/moved":
            self.send_response(301)
            self.send_header("Location", "/page")
            self.send_header("Set-Cookie", "hop=1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        gzipped = self.path == "/gzipped"
        body = gzip.compress(PAGE) if gzipped else PAGE
        self.send_response(200, "Fine Thanks")
        for name, value in [*KEPT, *SECRET]:
            self.send_header(name, value)
        if gzipped:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def server() -> Iterator[str]:
    """A site on 127.0.0.1 that sets cookies and credential-like headers; yields its base URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@dataclass
class Harness:
    """A runtime on in-memory services whose sends are recorded, each with the keys stored by then."""

    rt: Runtime
    sent: list[tuple[str, dict[str, Any], set[str]]] = field(default_factory=list)

    def last_page(self) -> dict[str, Any]:
        """The page message of the latest send."""
        return self.sent[-1][1]


@pytest.fixture
def h() -> Harness:
    """A fresh harness (robots.txt off: these pages are all the server has)."""
    settings = Settings.from_env({}, storage_url=f"memory://{uuid.uuid4().hex}", allow_private=True, host_rate=0.0,
                                 respect_robots=False)
    harness = Harness(build_runtime(settings))
    harness.rt.send = lambda stage, task: harness.sent.append((stage, task, set(harness.rt.storage.keys(""))))
    return harness


def _sent_by_us(headers: Any) -> list[tuple[str, str]]:
    """The headers the handler set itself (http.server adds Server and Date; Content-Length varies)."""
    return [(str(n), str(v)) for n, v in headers if n not in {"Server", "Date", "Content-Length"}]


def _task(base: str, path: str, source: str | None = None) -> dict[str, Any]:
    url = normalize_url(base + path)
    return fetch_task(crawl_id="c1", url=url, url_id=url_id(url), kind="article", source=source,
                      allowed_hosts=None if source else ["127.0.0.1"])


def test_cookies_and_credentials_are_not_kept_and_the_rest_is_kept_as_sent() -> None:
    raw = [(n.encode(), v.encode()) for n, v in [*KEPT[:2], *SECRET, *KEPT[2:]]]
    raw.append((b"Proxy-Authorization", b"Basic eA=="))
    assert archivable_headers(raw) == tuple(KEPT), "names as sent, order and repeats kept"


def test_the_fetch_result_carries_the_status_line_and_headers(server: str) -> None:
    with httpx.Client(timeout=10) as client:
        result = fetch_page(client, server + "/page", max_bytes=100_000, deadline_s=10)
    assert result.outcome == "ok" and result.body == PAGE
    assert result.status_line == "HTTP/1.1 200 Fine Thanks"
    assert _sent_by_us(result.headers) == KEPT
    assert not any(name.lower() in {"set-cookie", "x-api-key"} for name, _ in result.headers)


def test_the_sidecar_is_stored_beside_the_page_before_the_page_is_sent(h: Harness, server: str) -> None:
    task = _task(server, "/moved")
    fetch_stage(h.rt, task)
    [(stage, page, stored_then)] = h.sent
    assert stage == "extract"
    sidecar_key = raw_headers_key(page["raw_key"])
    assert {page["raw_key"], sidecar_key} <= stored_then, "both written before the message went out"
    doc = orjson.loads(h.rt.storage.get(sidecar_key))
    assert doc["url"] == task["url"] and doc["final_url"] == server + "/page"
    assert doc["status"] == 200 and doc["status_line"] == "HTTP/1.1 200 Fine Thanks"
    assert doc["fetched_at"] == page["fetched_at"] and doc["crawl_id"] == "c1" and doc["kind"] == "article"
    assert _sent_by_us(doc["headers"]) == KEPT
    text = h.rt.storage.get(sidecar_key).decode()
    assert "s3cr3t" not in text and "hop=1" not in text, "no cookie of the page or of the redirect hop"
    assert h.rt.storage.get(page["raw_key"]) == PAGE


def test_a_refetch_of_the_same_bytes_writes_neither_again(h: Harness, server: str) -> None:
    task = _task(server, "/page")
    fetch_stage(h.rt, task)
    first = h.last_page()
    before = h.rt.storage.get(raw_headers_key(first["raw_key"]))
    fetch_stage(h.rt, task)
    second = h.last_page()
    assert second["raw_key"] == first["raw_key"] and second["fetched_at"] >= first["fetched_at"]
    assert h.rt.storage.get(raw_headers_key(first["raw_key"])) == before, "the first answer's sidecar stays"
    raw = sorted(h.rt.storage.keys("raw/"))
    assert raw == sorted([first["raw_key"], raw_headers_key(first["raw_key"])])
    assert [k for k in raw if is_raw_page(k)] == [first["raw_key"]], "the sidecar is not taken for a page"


def test_a_gzipped_page_is_stored_decoded_and_its_headers_as_received(h: Harness, server: str) -> None:
    fetch_stage(h.rt, _task(server, "/gzipped"))
    page = h.last_page()
    assert h.rt.storage.get(page["raw_key"]) == PAGE
    headers = dict(tuple(pair) for pair in orjson.loads(h.rt.storage.get(raw_headers_key(page["raw_key"])))["headers"])
    assert headers["Content-Encoding"] == "gzip" and int(headers["Content-Length"]) != len(PAGE)


def test_a_source_prefix_puts_the_sidecar_under_it_too(h: Harness, server: str) -> None:
    h.rt.sources.put(Source(name="s", start_urls=(server + "/",), kinds=("listing",), allowed_hosts=("127.0.0.1",),
                          storage_prefix="guardian/"))
    fetch_stage(h.rt, _task(server, "/page", source="s"))
    page = h.last_page()
    assert page["raw_key"].startswith("guardian/raw/")
    assert h.rt.storage.exists(raw_headers_key(page["raw_key"]))
    assert list(h.rt.storage.keys("raw/")) == [], "nothing outside the prefix"
