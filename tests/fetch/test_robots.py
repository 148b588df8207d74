"""robots.txt: RFC 9309 verdicts, origin normalisation, the per-origin cache (memory and real Redis),
its fetch-once lock, the parse LRU, and :func:`check` against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from protego import Protego

import workers.fetch.robots as robots
from tests.conftest import RedisServer, free_port
from workers.core.settings import Settings
from workers.core.urls import InvalidURL
from workers.fetch.client import fetch_page
from workers.fetch.netguard import build_client
from workers.fetch.robots import (
    ROBOTS_MAX_BYTES,
    ROBOTS_TTL_S,
    UNREACHABLE_TTL_S,
    MemoryRobotsCache,
    RedisRobotsCache,
    RobotsCache,
    RobotsVerdict,
    check,
    origin_of,
    product_token,
    robots_url,
    ttl_for,
    verdict,
)

UA = "ingest/0.1 (+https://github.com/ingest-news/ingest)"
SITE = "https://news.example"


def allowed(body: str | bytes, path: str, user_agent: str = UA, status: int | None = 200) -> bool:
    data = body.encode() if isinstance(body, str) else body
    return verdict(data, status, SITE + path, user_agent).allowed


# -- verdicts: rules -------------------------------------------------------------------------------

BASIC = """
User-agent: *
Disallow: /private
Allow: /private/press
"""


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", True),
        ("/news/today", True),
        ("/private", False),
        ("/private/", False),
        ("/privateer", False),  # a plain rule is a prefix, not a path segment
        ("/private/press/release-1", True),  # the longer (more specific) Allow wins
        ("/PRIVATE", True),  # paths are case-sensitive
        ("/robots.txt", True),  # robots.txt itself is always allowed
    ],
)
def test_allow_and_disallow_by_longest_match(path: str, expected: bool) -> None:
    assert allowed(BASIC, path) is expected


def test_equal_length_allow_beats_disallow() -> None:
    body = "User-agent: *\nDisallow: /page\nAllow: /page\n"
    assert allowed(body, "/page")
    # RFC 9309's own example: the longer rule decides even when it is a wildcard Disallow.
    body = "User-agent: *\nAllow: /page\nDisallow: /*.html\n"
    assert not allowed(body, "/page.html")
    assert allowed(body, "/page")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/files/report.pdf", False),
        ("/files/report.pdf?download=1", True),  # $ anchors at the end of path+query
        ("/files/report.pdfx", True),
        ("/search?q=x&sessionid=1", False),
        ("/a/b/tmp/c", False),
        ("/exact", False),
        ("/exact/more", True),
        ("/~joe/home", False),  # %7E in the rule and ~ in the URL are the same character
    ],
)
def test_wildcards_and_end_anchor(path: str, expected: bool) -> None:
    body = (
        "User-agent: *\nDisallow: /*.pdf$\nDisallow: /*sessionid=\nDisallow: /*/tmp/\n"
        "Disallow: /exact$\nDisallow: /%7Ejoe\n"
    )
    assert allowed(body, path) is expected


GROUPS = """
User-agent: *
Disallow: /

User-agent: Ingest
Disallow: /members
Crawl-delay: 5

User-agent: ing
User-agent: github
Disallow: /news
"""


def test_our_group_is_chosen_over_star_case_insensitively() -> None:
    assert allowed(GROUPS, "/news/today")
    assert not allowed(GROUPS, "/members/x")
    assert verdict(GROUPS.encode(), 200, SITE + "/x", UA).crawl_delay == 5.0


def test_other_agents_get_the_star_group() -> None:
    assert not allowed(GROUPS, "/news/today", "otherbot/2.0")
    assert not allowed(GROUPS, "/news/today", "")


def test_matching_is_by_exact_product_token() -> None:
    """A group named by a prefix of our token ("ing"), or by a word elsewhere in our User-Agent
    header ("github" in the contact URL), is someone else's group."""
    body = "User-agent: *\nAllow: /\n\nUser-agent: ing\nUser-agent: github\nDisallow: /\n"
    assert allowed(body, "/news")
    # ... while a group that names our token with a version ("ingest/1.0") is ours.
    assert not allowed("User-agent: ingest/1.0\nDisallow: /\n", "/news")
    assert not allowed("User-agent: INGEST*\nDisallow: /\n", "/news")


def test_groups_for_our_token_are_merged_and_member_lines_share_rules() -> None:
    body = """
User-agent: ingest
Disallow: /a

User-agent: otherbot
User-agent: ingest   # listed twice: both groups apply (RFC 9309 2.2.1)
Disallow: /b
"""
    assert not allowed(body, "/a/1")
    assert not allowed(body, "/b/1")
    assert allowed(body, "/c/1")
    assert not allowed(body, "/b/1", "otherbot")
    assert allowed(body, "/a/1", "otherbot")


def test_an_empty_group_of_our_own_allows_everything_the_star_group_forbids() -> None:
    body = "User-agent: *\nDisallow: /\n\nUser-agent: ingest\nDisallow:\n"
    assert allowed(body, "/anything")


def test_no_groups_or_rules_outside_groups_allow_all() -> None:
    assert allowed("Disallow: /\nSitemap: https://news.example/sitemap.xml\n", "/x")
    assert allowed("", "/x")
    assert allowed("   \n# only a comment\n", "/x")


def test_crawl_delay_and_request_rate() -> None:
    def delay(body: str, user_agent: str = UA) -> float | None:
        return verdict(body.encode(), 200, SITE + "/", user_agent).crawl_delay

    assert delay("User-agent: *\nCrawl-delay: 2.5\n") == 2.5
    assert delay("User-agent: *\nRequest-rate: 1/10s\n") == 10.0
    assert delay("User-agent: *\nRequest-rate: 6/1m\n") == 10.0
    # Both given: the slower one is the polite one.
    assert delay("User-agent: *\nCrawl-delay: 3\nRequest-rate: 1/20s\n") == 20.0
    assert delay("User-agent: *\nCrawl-delay: soon\n") is None
    assert delay("User-agent: *\nDisallow: /x\n") is None
    # Another agent's delay is not ours; ours is not theirs.
    assert delay("User-agent: otherbot\nCrawl-delay: 9\n") is None
    assert delay("User-agent: ingest\nCrawl-delay: 9\n", "otherbot/1") is None
    # A refusal still carries the delay: it paces the host's other URLs.
    refused = verdict(b"User-agent: *\nDisallow: /x\nCrawl-delay: 4\n", 200, SITE + "/x/1", UA)
    assert refused == RobotsVerdict(False, 4.0, "disallowed by robots.txt (Disallow: /x)")


def test_reasons_name_the_deciding_rule() -> None:
    refused = verdict(BASIC.encode(), 200, SITE + "/private/1", UA)
    assert refused.reason == "disallowed by robots.txt (Disallow: /private)"
    assert verdict(BASIC.encode(), 200, SITE + "/ok", UA).reason == "allowed"
    wild = verdict(b"User-agent: *\nDisallow: /*.pdf$\n", 200, SITE + "/a.pdf", UA)
    assert wild.reason == "disallowed by robots.txt (Disallow: /*.pdf$)"


# -- verdicts: what the fetch of robots.txt returned ---------------------------------------------

DENY_ALL = b"User-agent: *\nDisallow: /\n"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 451])
def test_4xx_means_no_rules(status: int) -> None:
    v = verdict(DENY_ALL, status, SITE + "/x", UA)
    assert v.allowed and not v.transient
    assert str(status) in v.reason


def test_final_redirect_means_no_rules() -> None:
    assert verdict(b"", 301, SITE + "/x", UA).allowed


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429, None])
def test_5xx_429_and_no_answer_disallow_all_for_now(status: int | None) -> None:
    v = verdict(b"User-agent: *\nAllow: /\n", status, SITE + "/x", UA)
    assert not v.allowed
    assert v.transient, "an unreachable robots.txt must not become a permanent refusal"
    assert "unreachable" in v.reason


def test_2xx_with_empty_or_missing_body_allows_all() -> None:
    assert verdict(b"", 200, SITE + "/x", UA).allowed
    assert verdict(None, 200, SITE + "/x", UA).allowed


def test_garbage_allows_all() -> None:
    noise = random.Random(7).randbytes(64 * 1024)
    assert allowed(noise, "/x")
    html = b"<!doctype html><html><body><h1>Page not found</h1><p>Try: the home page</p></body></html>"
    assert allowed(html, "/x")
    assert allowed(b"\x00\xff\xfe" * 1000, "/x")


def test_bom_crlf_and_latin1_are_read() -> None:
    assert not allowed(b"\xef\xbb\xbfUser-agent: *\r\nDisallow: /x\r\n", "/x")
    assert not allowed(b"User-agent: *\rDisallow: /x\r", "/x")
    # Invalid UTF-8 in one line does not spoil the others.
    assert not allowed(b"User-agent: *\nDisallow: /caf\xe9\nDisallow: /x\n", "/x")


def test_only_the_first_500_kib_are_parsed() -> None:
    filler = b"# " + b"x" * 1000 + b"\n"
    head = b"User-agent: *\nDisallow: /early\n"
    body = head + filler * (ROBOTS_MAX_BYTES // len(filler) + 10) + b"Disallow: /late\n"
    assert len(body) > ROBOTS_MAX_BYTES
    assert not allowed(body, "/early")
    assert allowed(body, "/late")


def test_a_rule_cut_by_the_limit_is_dropped_not_shortened() -> None:
    head = b"User-agent: *\n"
    rule = b"Disallow: /admin\n"
    pad = b"#" * (ROBOTS_MAX_BYTES - len(head) - 12) + b"\n"
    body = head + pad + rule
    assert len(head + pad) < ROBOTS_MAX_BYTES < len(body), "the rule must straddle the limit"
    # "Disallow: /a" (what the limit leaves of the rule) would forbid /about.
    assert allowed(body, "/about")


def test_verdicts_agree_across_threads() -> None:
    body = BASIC.encode() + f"# {uuid.uuid4()}\n".encode()
    paths = ["/private/x", "/ok", "/private/press/y"] * 50
    results: list[bool] = []

    def run() -> None:
        results.extend(verdict(body, 200, SITE + p, UA).allowed for p in paths)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 8 * 100 and results.count(False) == 8 * 50


# -- parse cache -----------------------------------------------------------------------------------


class _CountingProtego(Protego):
    parses = 0

    @classmethod
    def parse(cls, content: str) -> Any:
        _CountingProtego.parses += 1
        return super().parse(content)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> type[_CountingProtego]:
    _CountingProtego.parses = 0
    monkeypatch.setattr(robots, "Protego", _CountingProtego)
    return _CountingProtego


def test_a_hot_robots_txt_is_parsed_once(counted: type[_CountingProtego]) -> None:
    body = BASIC.encode() + f"# {uuid.uuid4()}\n".encode()
    for i in range(200):
        verdict(body, 200, f"{SITE}/private/{i}", UA)
        verdict(bytes(body), 200, f"{SITE}/news/{i}", "otherbot")  # an equal copy (as from Redis)
    assert counted.parses == 1
    verdict(body + b"# changed\n", 200, SITE + "/", UA)
    assert counted.parses == 2


def test_the_parse_cache_is_bounded_and_least_recently_used(counted: type[_CountingProtego]) -> None:
    bodies = [f"User-agent: *\nDisallow: /{uuid.uuid4()}\n".encode() for _ in range(robots._PARSED_MAX + 1)]
    for body in bodies:
        verdict(body, 200, SITE + "/", UA)
    assert counted.parses == len(bodies)
    verdict(bodies[-1], 200, SITE + "/", UA)  # recent: still cached
    assert counted.parses == len(bodies)
    verdict(bodies[0], 200, SITE + "/", UA)  # the oldest was evicted
    assert counted.parses == len(bodies) + 1


def test_unreachable_and_4xx_need_no_parse(counted: type[_CountingProtego]) -> None:
    verdict(DENY_ALL, 503, SITE + "/", UA)
    verdict(DENY_ALL, 404, SITE + "/", UA)
    assert counted.parses == 0


# -- robots_url / origin_of ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://news.example/a/b?c=d#e", "http://news.example/robots.txt"),
        ("HTTP://News.Example:80/a", "http://news.example/robots.txt"),
        ("https://news.example:443/a", "https://news.example/robots.txt"),
        ("https://news.example:80/a", "https://news.example:80/robots.txt"),
        ("http://news.example:8080", "http://news.example:8080/robots.txt"),
        ("http://127.0.0.1:5000/x", "http://127.0.0.1:5000/robots.txt"),
        ("http://[::1]:8080/x", "http://[::1]:8080/robots.txt"),
        ("https://Bücher.example/katalog", "https://xn--bcher-kva.example/robots.txt"),
        ("https://xn--bcher-kva.example/katalog", "https://xn--bcher-kva.example/robots.txt"),
        ("https://правда.рф/", "https://xn--80aafi6cg.xn--p1ai/robots.txt"),
        ("http://my_host.example/", "http://my_host.example/robots.txt"),
    ],
)
def test_robots_url(url: str, expected: str) -> None:
    assert robots_url(url) == expected
    assert origin_of(url) + "/robots.txt" == expected


@pytest.mark.parametrize("url", ["ftp://news.example/", "news.example/x", "http://user:pw@news.example/", ""])
def test_robots_url_refuses_unfetchable_urls(url: str) -> None:
    with pytest.raises(InvalidURL):
        robots_url(url)


def test_product_token() -> None:
    assert product_token(UA) == "ingest"
    assert product_token("Mozilla/5.0 (compatible; Googlebot/2.1)") == "mozilla"
    assert product_token("My_Crawler-X/3") == "my_crawler-x"
    assert product_token("42bot") == ""


def test_ttl_for() -> None:
    assert ttl_for(200) == ttl_for(404) == ttl_for(403) == ttl_for(301) == ROBOTS_TTL_S == 86_400
    assert ttl_for(500) == ttl_for(503) == ttl_for(429) == ttl_for(None) == UNREACHABLE_TTL_S == 600


# -- caches ----------------------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _round_trip(cache: RobotsCache) -> None:
    origin = "https://news.example"
    assert cache.get(origin) is None
    cache.put(origin, 200, b"User-agent: *\nDisallow: /x\n\xff\x00", 60)
    assert cache.get(origin) == (200, b"User-agent: *\nDisallow: /x\n\xff\x00")
    cache.put("http://down.example", None, b"", 60)
    assert cache.get("http://down.example") == (None, b"")
    cache.put(origin, 404, b"", 60)  # a refresh replaces the answer
    assert cache.get(origin) == (404, b"")
    assert cache.get("https://news.example:8443") is None


def test_memory_cache_round_trip_and_expiry() -> None:
    clock = _Clock()
    cache = MemoryRobotsCache(clock)
    _round_trip(cache)
    cache.put("https://a.example", 200, b"x", 10)
    clock.now += 9.9
    assert cache.get("https://a.example") == (200, b"x")
    clock.now += 0.2
    assert cache.get("https://a.example") is None


def test_memory_lock_is_released_by_put_or_expiry() -> None:
    clock = _Clock()
    cache = MemoryRobotsCache(clock)
    assert cache.lock("https://a.example", ttl_s=30)
    assert not cache.lock("https://a.example")
    assert cache.lock("https://b.example"), "locks are per origin"
    cache.put("https://a.example", 200, b"", 60)
    assert cache.lock("https://a.example")
    assert not cache.lock("https://a.example")
    clock.now += 30.1
    assert cache.lock("https://a.example")


def test_memory_lock_is_exclusive_across_threads() -> None:
    cache = MemoryRobotsCache()
    wins = _race(lambda i: cache.lock("https://a.example"), 16)
    assert wins.count(True) == 1


def test_redis_cache_round_trip_and_ttls(redis_server: RedisServer) -> None:
    client = redis_server.client()
    cache = RedisRobotsCache(client, namespace="t")
    _round_trip(cache)
    cache.put("https://news.example", 200, b"ok", ttl_for(200))
    assert 86_399_000 < client.pttl("t:robots:https://news.example") <= 86_400_000
    cache.put("https://down.example", 503, b"", ttl_for(503))
    assert 599_000 < client.pttl("t:robots:https://down.example") <= 600_000
    assert client.hgetall("t:robots:https://down.example") == {b"status": b"503", b"body": b""}
    cache.put("https://brief.example", 200, b"x", 0.15)
    time.sleep(0.3)
    assert cache.get("https://brief.example") is None


def test_redis_lock_ttl_and_release(redis_server: RedisServer) -> None:
    client = redis_server.client()
    cache = RedisRobotsCache(client)
    assert cache.lock("https://a.example")
    assert 29_000 < client.pttl("ingest:robots-lock:https://a.example") <= 30_000
    assert not cache.lock("https://a.example")
    cache.put("https://a.example", 200, b"", 60)
    assert client.exists("ingest:robots-lock:https://a.example") == 0
    assert cache.lock("https://a.example", ttl_s=0.1)
    time.sleep(0.25)
    assert cache.lock("https://a.example"), "an abandoned lock expires"


def test_redis_lock_is_exclusive_across_threads_and_clients(redis_server: RedisServer) -> None:
    caches = [RedisRobotsCache(redis_server.client()), RedisRobotsCache(redis_server.client())]
    for round_ in range(5):
        origin = f"https://host{round_}.example"
        wins = _race(lambda i, origin=origin: caches[i % 2].lock(origin), 16)
        assert wins.count(True) == 1


def _race(attempt: Any, n: int) -> list[Any]:
    """Run ``attempt(i)`` in ``n`` threads released together; their results by ``i``."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        results[i] = attempt(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


# -- check(): cache + lock + fetch against a real server -------------------------------------------


class _RobotsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RobotsHandler)
        self.status = 200
        self.body = b"User-agent: *\nDisallow: /private\nCrawl-delay: 2\n"
        self.delay = 0.0
        self.hits = 0
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _RobotsHandler(BaseHTTPRequestHandler):
    server: _RobotsServer

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.hits += 1
        time.sleep(self.server.delay)
        body = self.server.body if self.path == "/robots.txt" else b"not here"
        self.send_response(self.server.status if self.path == "/robots.txt" else 404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def robots_server() -> Iterator[_RobotsServer]:
    server = _RobotsServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fetch() -> Iterator[Any]:
    with build_client(Settings(allow_private=True, connect_timeout=1.0, read_timeout=2.0)) as client:

        def get(url: str) -> tuple[int | None, bytes]:
            result = fetch_page(client, url, max_bytes=ROBOTS_MAX_BYTES, deadline_s=5, accept=None)
            return result.status, result.body

        yield get


def test_check_fetches_once_per_origin_across_workers(
    redis_server: RedisServer, robots_server: _RobotsServer, fetch: Any
) -> None:
    robots_server.delay = 0.3  # long enough for every worker to arrive while the fetch is under way
    caches = [RedisRobotsCache(redis_server.client()), RedisRobotsCache(redis_server.client())]
    page = robots_server.url("/private/1")
    answers = _race(lambda i: check(caches[i % 2], page, UA, fetch), 12)
    assert robots_server.hits == 1
    # Each worker either has the verdict or was told to come back (None) while another fetched.
    decided = [a for a in answers if a is not None]
    assert decided and set(decided) == {RobotsVerdict(False, 2.0, "disallowed by robots.txt (Disallow: /private)")}
    # The ones told to wait find the answer in the cache afterwards, without another request.
    assert check(caches[1], robots_server.url("/news"), UA, fetch) == RobotsVerdict(True, 2.0, "allowed")
    assert robots_server.hits == 1
    key = f"ingest:robots:{origin_of(page)}"
    assert 86_399_000 < redis_server.client().pttl(key) <= 86_400_000


def test_check_caches_a_server_error_briefly(
    redis_server: RedisServer, robots_server: _RobotsServer, fetch: Any
) -> None:
    robots_server.status = 503
    client = redis_server.client()
    v = check(RedisRobotsCache(client), robots_server.url("/news"), UA, fetch)
    assert v is not None and not v.allowed and v.transient
    assert 599_000 < client.pttl(f"ingest:robots:{origin_of(robots_server.url('/'))}") <= 600_000


def test_the_last_good_robots_txt_stands_in_while_the_server_fails(
    redis_server: RedisServer, robots_server: _RobotsServer, fetch: Any
) -> None:
    client = redis_server.client()
    cache = RedisRobotsCache(client)
    origin = origin_of(robots_server.url("/"))
    assert check(cache, robots_server.url("/private/1"), UA, fetch) == RobotsVerdict(
        False, 2.0, "disallowed by robots.txt (Disallow: /private)"
    )
    assert 30 * 86_400 - 5 < client.ttl(f"ingest:robots-good:{origin}") <= 30 * 86_400
    # A day later the cached answer has expired and the server answers 503: the last good copy
    # decides (a public page is allowed, not refused), for ten minutes, then the file is asked again.
    client.delete(f"ingest:robots:{origin}")
    robots_server.status = 503
    assert check(cache, robots_server.url("/news"), UA, fetch) == RobotsVerdict(True, 2.0, "allowed")
    assert robots_server.hits == 2
    assert 599_000 < client.pttl(f"ingest:robots:{origin}") <= 600_000


def test_a_failure_never_becomes_the_last_good_copy(robots_server: _RobotsServer, fetch: Any) -> None:
    clock = [0.0]
    cache = MemoryRobotsCache(clock=lambda: clock[0])
    origin = origin_of(robots_server.url("/"))
    robots_server.status = 503
    v = check(cache, robots_server.url("/news"), UA, fetch)
    assert v is not None and not v.allowed and v.transient
    assert cache.last_good(origin) is None
    robots_server.status = 200
    clock[0] += 601  # the failure expired
    assert check(cache, robots_server.url("/news"), UA, fetch) == RobotsVerdict(True, 2.0, "allowed")
    assert cache.last_good(origin) == (200, robots_server.body)
    # Kept for 30 days, then gone: a server down for a month is no longer trusted on an old copy.
    clock[0] += 30 * 86_400
    assert cache.last_good(origin) is None


def test_check_with_nobody_listening_disallows_for_now(fetch: Any) -> None:
    cache = MemoryRobotsCache()
    url = f"http://127.0.0.1:{free_port()}/news"
    v = check(cache, url, UA, fetch)
    assert v is not None and not v.allowed and v.transient
    assert cache.get(origin_of(url)) == (None, b"")


def test_check_without_robots_txt_allows(robots_server: _RobotsServer, fetch: Any) -> None:
    robots_server.status = 404
    cache = MemoryRobotsCache()
    v = check(cache, robots_server.url("/private/1"), UA, fetch)
    assert v is not None and v.allowed
    assert cache.get(origin_of(robots_server.url("/"))) == (404, b"")



def test_check_answers_none_while_another_worker_fetches() -> None:
    cache = MemoryRobotsCache()
    assert cache.lock("https://news.example")  # another worker is fetching

    def must_not_fetch(url: str) -> tuple[int | None, bytes]:
        raise AssertionError(f"fetched {url} although another worker holds the lock")

    assert check(cache, "https://news.example/a", UA, must_not_fetch) is None
    cache.put("https://news.example", 200, DENY_ALL, 60)
    v = check(cache, "https://news.example/a", UA, must_not_fetch)
    assert v is not None and not v.allowed and not v.transient
