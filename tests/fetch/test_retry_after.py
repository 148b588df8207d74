"""A server's Retry-After is honoured up to ``max_retry_after``: longer ones are capped, the host backed off.

Against a real server on 127.0.0.1 that answers 429 with ``Retry-After: 99999999`` before the page.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import structlog

from tests.support.hostile_server import PAGE
from workers.core.messages import fetch_task
from workers.core.settings import Settings, SettingsError
from workers.core.urls import host_of, normalize_url, url_id
from workers.fetch import client
from workers.fetch.client import parse_retry_after
from workers.fetch.stage import TransientFailure, fetch
from workers.pipeline.crawl import CrawlSummary, run_embedded
from workers.pipeline.runtime import Runtime, build_runtime

HUGE = "99999999"


class _Handler(BaseHTTPRequestHandler):
    """``/once/<x>``: 429 + ``Retry-After`` (``?ra=``, default 99999999) on the first request, then the page.
    ``/wait-ok``: the page, with a huge Retry-After.  Anything else (robots.txt): 404."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        hits = self.server.hit(path)
        html = {"Content-Type": "text/html; charset=utf-8"}
        if path.startswith("/once/"):
            if hits == 1:
                after = query.removeprefix("ra=") if query.startswith("ra=") else HUGE
                self._send(429, b"slow down", {"Content-Type": "text/plain", "Retry-After": after})
            else:
                self._send(200, PAGE, html)
        elif path == "/wait-ok":
            self._send(200, PAGE, {**html, "Retry-After": HUGE})
        else:
            self._send(404, b"no such page", {"Content-Type": "text/plain"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hits: Counter[str] = Counter()
        self.times: list[tuple[str, float]] = []
        self._lock = threading.Lock()

    def hit(self, path: str) -> int:
        with self._lock:
            self.hits[path] += 1
            self.times.append((path, time.monotonic()))
            return self.hits[path]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def _settings(**overrides: Any) -> Settings:
    # Generous timeouts: on a loaded machine a slow answer must not turn into a second retry.
    values: dict[str, Any] = dict(storage_url=f"memory://{uuid.uuid4().hex}", allow_private=True, host_rate=0.0,
                                  read_timeout=5.0, request_timeout=10.0, fetch_retries=3)
    values.update(overrides)
    return Settings.from_env({}, **values)


# -- the setting --------------------------------------------------------------------------------


def test_max_retry_after_defaults_to_five_minutes_and_reads_its_variable() -> None:
    assert Settings().max_retry_after == 300.0
    assert Settings.from_env({"INGEST_MAX_RETRY_AFTER": "1.5"}).max_retry_after == 1.5


@pytest.mark.parametrize("raw", ["-1", "inf", "nan"])
def test_max_retry_after_must_be_a_finite_non_negative_number(raw: str) -> None:
    with pytest.raises(SettingsError, match="INGEST_MAX_RETRY_AFTER"):
        Settings.from_env({"INGEST_MAX_RETRY_AFTER": raw})


# -- parsing and capping ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "limit", "expected"),
    [
        (None, 300.0, (None, False)),
        (0.0, 300.0, (0.0, False)),
        (7.0, 300.0, (7.0, False)),
        (300.0, 300.0, (300.0, False)),
        (300.5, 300.0, (300.0, True)),
        (99_999_999.0, 300.0, (300.0, True)),
        (math.inf, 300.0, (300.0, True)),
        (99_999_999.0, 0.0, (0.0, True)),
        (-1.0, 300.0, (None, False)),
        (math.nan, 300.0, (None, False)),
    ],
)  # fmt: skip
def test_cap_retry_after(seconds: float | None, limit: float, expected: tuple[float | None, bool]) -> None:
    assert client.cap_retry_after(seconds, limit) == expected


NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (HUGE, (300.0, True)),
        ("9" * 400, (300.0, True)),  # float() of this is inf
        ("Fri, 31 Dec 9999 23:59:59 GMT", (300.0, True)),  # an HTTP date far in the future
        (formatdate(NOW + 3600, usegmt=True), (300.0, True)),
        (formatdate(NOW + 60, usegmt=True), (60.0, False)),
        ("Sun, 06 Nov 1994 08:49:37 GMT", (0.0, False)),  # in the past: now
        ("120", (120.0, False)),
        ("-5", (None, False)),  # negative: not a Retry-After, the usual back-off applies
        ("-1.5", (None, False)),
        ("soon", (None, False)),
        ("", (None, False)),
        ("Mon, 99 Foo 2020 99:99:99 GMT", (None, False)),
    ],
)  # fmt: skip
def test_retry_after_headers_end_capped_or_unusable(header: str, expected: tuple[float | None, bool]) -> None:
    assert client.cap_retry_after(parse_retry_after(header, NOW), 300.0) == expected


# -- the fetch stage ------------------------------------------------------------------------------


def _runtime(**overrides: Any) -> Runtime:
    rt = build_runtime(_settings(respect_robots=False, **overrides))
    rt.send = lambda stage, task: None
    rt.send_later = lambda stage, task, delay_ms: None
    return rt


def _task(url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    task = fetch_task(crawl_id="c", url=url, url_id=url_id(url), kind="article")
    trace = {"url": task["url"], "url_id": task["url_id"], "crawl_id": "c", "host": host_of(task["url"])}
    return task, trace


def test_a_huge_retry_after_is_capped_logged_and_backs_the_host_off_by_the_cap(server: _Server) -> None:
    rt = _runtime(max_retry_after=1.0)
    task, trace = _task(server.url("/once/a"))
    try:
        with structlog.testing.capture_logs() as logs, pytest.raises(TransientFailure) as retry:
            fetch(rt, task, None, trace, 0)
        at = time.time()
        assert retry.value.delay == 1000, "the message waits the cap, not 99999999 s"
        [event] = [e for e in logs if e["event"] == "fetch.retry"]
        assert event["retry_after_capped"] is True and event["retry_after_s"] == 99_999_999.0
        assert event["status"] == 429
        state = rt.policy.state(trace["host"])
        assert 0 < state["blocked_until"] - at <= 1.0, "the host is blocked for the capped time only"
        assert state["next_send"] - at <= 1.0
        assert state["penalty_s"] >= 1.0, "the host is backed off like any 429"
    finally:
        rt.close()


def test_a_retry_after_within_the_cap_is_used_as_given_and_not_flagged(server: _Server) -> None:
    rt = _runtime(max_retry_after=300.0)
    task, trace = _task(server.url("/once/b?ra=2"))
    try:
        with structlog.testing.capture_logs() as logs, pytest.raises(TransientFailure) as retry:
            fetch(rt, task, None, trace, 0)
        at = time.time()
        assert retry.value.delay == 2000
        [event] = [e for e in logs if e["event"] == "fetch.retry"]
        assert "retry_after_capped" not in event
        assert 0 < rt.policy.state(trace["host"])["blocked_until"] - at <= 2.0
    finally:
        rt.close()


def test_a_huge_retry_after_on_a_page_that_came_blocks_the_host_only_for_the_cap(server: _Server) -> None:
    rt = _runtime(max_retry_after=1.0)
    task, trace = _task(server.url("/wait-ok"))
    try:
        with structlog.testing.capture_logs() as logs:
            fetch(rt, task, None, trace, 0)
        at = time.time()
        assert [e["event"] for e in logs if e["event"].startswith("fetch.")] == ["fetch.done"]
        assert rt.policy.state(trace["host"])["blocked_until"] - at <= 1.0
    finally:
        rt.close()


# -- an embedded crawl --------------------------------------------------------------------------


def _crawl_within(timeout: float, urls: list[str], settings: Settings) -> tuple[CrawlSummary, list[Any]]:
    """run_embedded in a daemon thread, so an uncapped wait fails the test instead of hanging it."""
    done: list[tuple[CrawlSummary, list[Any]]] = []

    def crawl() -> None:
        with structlog.testing.capture_logs() as logs:
            summary = run_embedded(urls, settings, kind="article", processes=1, threads=4)
        done.append((summary, logs))

    thread = threading.Thread(target=crawl, daemon=True)
    thread.start()
    thread.join(timeout)
    assert done, f"the crawl did not finish within {timeout}s"
    return done[0]


def test_an_embedded_crawl_waits_the_capped_retry_after_and_stores_the_page(server: _Server) -> None:
    url = server.url("/once/page")
    started = time.monotonic()
    summary, logs = _crawl_within(60.0, [url], _settings(max_retry_after=1.0))
    elapsed = time.monotonic() - started
    assert summary.stored == 1, summary.outcomes
    assert elapsed < 30.0, "a 1 s wait, not 99999999 s (nor the policy's 600 s cap)"
    [retry, *_] = [e for e in logs if e["event"] == "fetch.retry"]
    assert retry["url"] == normalize_url(url) and retry["status"] == 429
    assert retry["retry_after_capped"] is True and retry["retry_after_s"] == 99_999_999.0
    first, second, *_ = [t for path, t in server.times if path == "/once/page"]
    assert second - first >= 0.9, "the capped wait was still honoured"
