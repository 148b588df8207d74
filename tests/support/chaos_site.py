"""The chaos suite's news site: thousands of distinct articles, a few hostile pages, and a server
that fails on purpose.

:func:`build_chaos_site` makes a fixture site of ``n`` articles from the corpus (page ``i`` is
corpus page ``i % 300`` with a unique "[copy 000i]" marker in its title and first paragraphs, so
no two are the same text), links some pages that do not exist (404: permanent failures), and,
when asked, serves three hostile pages linked from the front page:

- ``/odd-doctype/`` (a listing): ``<!DOCTYPE `` and ``[]`` forty times, no ``>``: the input that
  made the feed sniffer's prolog regex backtrack for ages.  Sniffed in well under a second it
  leads nowhere; anything else is a bug (a ``discover.timeout`` dead letter, a frozen worker).
- a 9.5 MB article that is nothing but links: under ``INGEST_MAX_BYTES`` so it is fetched, and far
  over the per-page time limit to extract (16 s on an idle core): it must end as an
  ``extract.timeout`` dead letter, its neighbours untouched.
- an article nested 20,000 elements deep: the parser truncates it; the worker survives and stores
  what it could read (a record is expected).

:class:`FaultyServer` serves a :class:`ChaosSite` and, with a :class:`FaultPlan`, answers a
seeded share of requests with a 500 or a 30 s stall (silence, or headers and a tenth of the body
then silence).  The decision is a pure function of (seed, path, how many times the path was asked
before), so a run is reproducible and a retry can succeed; at most ``max_faults_per_path``
answers of one path are faulty, so with the fetcher's retries none becomes a permanent failure.
"""

from __future__ import annotations

import hashlib
import math
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.support.site import Site, build_site, corpus_articles, render_listings
from workers.core.storage import record_key
from workers.core.urls import host_of, normalize_url, url_id

__all__ = [
    "HOSTILE_DOCTYPE",
    "ChaosSite",
    "FaultPlan",
    "FaultyServer",
    "build_chaos_site",
    "links_page",
    "nested_page",
    "serve_chaos_site",
]

UTF8_HTML = "text/html; charset=utf-8"
#: The prolog that once froze the feed sniffer (exponential backtracking while holding the GIL).
HOSTILE_DOCTYPE = b"<!DOCTYPE " + b"[]" * 40
DOCTYPE_PATH = "/odd-doctype/"
LINKS_PATH = "/world/2025/01/22/ten-megabytes-of-links-and-nothing-else.html"
NESTED_PATH = "/world/2025/01/22/deeply-nested-markup-from-a-broken-template.html"
#: Bytes of the page of links: under the fetcher's 10,000,000-byte default limit, so it is fetched.
LINKS_BYTES = 9_500_000
NESTING_DEPTH = 20_000


def links_page(size: int, targets: list[str]) -> bytes:
    """About ``size`` bytes of HTML that is a list of links to ``targets`` (cycled), nothing else."""
    head = b"<!DOCTYPE html><html><head><meta charset=utf-8><title>Links</title></head><body><ul>\n"
    tail = b"</ul></body></html>\n"
    items = [f'<li><a href="{t}">Story {i}</a></li>\n'.encode() for i, t in enumerate(targets)]
    block = b"".join(items)
    repeats = max(1, (size - len(head) - len(tail)) // len(block))
    body = head + block * repeats
    return body + tail


def nested_page(depth: int) -> bytes:
    """An article whose second paragraph sits ``depth`` elements deep (a template gone wrong)."""
    para = (b"<p>The harbour council met on Tuesday evening to discuss the new ferry timetable, the "
            b"dredging of the eastern basin and the fees for visiting yachts next summer.</p>")
    return (b"<!DOCTYPE html><html><head><meta charset=utf-8><title>Harbour council meets</title></head><body>"
            b"<article><h1>Harbour council meets</h1>" + para + b"<div><span>" * depth + para
            + b"</span></div>" * depth + para + b"</article></body></html>")


@dataclass
class ChaosSite:
    """A fixture site and what a crawl of it must end with."""

    site: Site
    #: Paths that must end as one record each (every article, plus hostile pages that survive).
    record_paths: list[str]
    #: path -> (stage, reason) of every permanent failure: exactly the dead letters expected.
    failure_paths: dict[str, tuple[str, str]]
    #: Paths served without faults (robots.txt, the 404s, the hostile pages): their fate is fixed.
    no_fault_paths: set[str] = field(default_factory=set)

    def expected_records(self, base_url: str) -> dict[str, str]:
        """Normalised URL -> storage key of each record a finished crawl must hold."""
        urls = [normalize_url(base_url + p) for p in self.record_paths]
        return {u: record_key(host_of(u), url_id(u)) for u in urls}

    def expected_dead_letters(self, base_url: str) -> set[tuple[str, str, str]]:
        """(stage, URL, reason) of each dead letter a finished crawl must hold, and no other."""
        return {(stage, normalize_url(base_url + p), reason) for p, (stage, reason) in self.failure_paths.items()}


def build_chaos_site(articles: int, *, seed: int = 0, missing: int = 4, hostile: bool = False,
                     per_page: int | None = None) -> ChaosSite:
    """A site of ``articles`` distinct corpus articles (see the module docstring).

    ``missing`` article links (and one section link) lead to 404s; ``hostile`` adds the three
    hostile pages.  ``per_page`` teasers per listing page default to what keeps pagination short
    (numbered pagination reaches page N in about N/4 hops; the crawl follows 50).
    """
    specs = corpus_articles(articles, unique_marker=True, seed=seed)
    per_page = per_page or max(10, math.ceil(articles / 3 / 40))
    site = build_site(specs, per_page=per_page)
    failures: dict[str, tuple[str, str]] = {}
    links = []
    for k in range(missing):
        path = f"/world/2025/01/{22 + k % 5:02d}/a-story-that-was-taken-down-{k}.html"
        failures[path] = ("fetch", "http_error")
        links.append((path, f"A story that was taken down ({k})"))
    if missing:
        failures["/closed-section/"] = ("fetch", "http_error")
        links.append(("/closed-section/", "Closed section"))
    # Every page announces a feed (<link rel=alternate href=/feed/>) the site does not serve; a crawl
    # started at the root reads it as a home page (as `ingest crawl` does) and asks for the feed.
    failures["/feed/"] = ("fetch", "http_error")
    record_paths = [a.path for a in site.articles]
    if hostile:
        site.pages[DOCTYPE_PATH] = (HOSTILE_DOCTYPE, UTF8_HTML)
        targets = [a.path for a in site.articles[:50]]
        site.pages[LINKS_PATH] = (links_page(LINKS_BYTES, targets), UTF8_HTML)
        site.pages[NESTED_PATH] = (nested_page(NESTING_DEPTH), UTF8_HTML)
        failures[LINKS_PATH] = ("extract", "timeout")
        record_paths.append(NESTED_PATH)
        links += [(DOCTYPE_PATH, "Odd"), (LINKS_PATH, "Ten megabytes of links"),
                  (NESTED_PATH, "Deeply nested markup from a broken template")]
    if links:
        items = "".join(f'<li><a href="{p}">{t}</a></li>' for p, t in links)
        site.front_extra = f'<aside class="more-links"><ul>{items}</ul></aside>'
        render_listings(site)
    no_fault = {"/robots.txt", *failures, DOCTYPE_PATH, LINKS_PATH, NESTED_PATH}
    return ChaosSite(site=site, record_paths=record_paths, failure_paths=failures, no_fault_paths=no_fault)


# --------------------------------------------------------------------------------------------
# Serving, with faults


@dataclass(frozen=True)
class FaultPlan:
    """Which answers are faulty: ``rate`` of them, decided by ``seed``, path and attempt number."""

    rate: float = 0.10
    seed: int = 0
    stall_s: float = 30.0
    #: Answers of one path that may be faulty, counted from its first request.
    max_faults_per_path: int = 2
    #: The faults to choose from, evenly.
    kinds: tuple[str, ...] = ("500", "stall", "stall-partial")

    def fault(self, path: str, attempt: int) -> str | None:
        """``"500"``, ``"stall"``, ``"stall-partial"`` or None for the ``attempt``-th request (0-based) of ``path``."""
        if attempt >= self.max_faults_per_path or self.rate <= 0:
            return None
        digest = hashlib.sha256(f"{self.seed}:{path}:{attempt}".encode()).digest()
        rng = random.Random(digest)
        if rng.random() >= self.rate:
            return None
        return rng.choice(self.kinds)


class FaultyServer:
    """Serves a :class:`ChaosSite` on 127.0.0.1 (a free port), injecting the faults of ``plan``."""

    def __init__(self, chaos: ChaosSite, plan: FaultPlan | None = None) -> None:
        self.chaos = chaos
        self.plan = plan
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._attempts: Counter[str] = Counter()
        #: (path, time.time(), fault or None) of every request, in arrival order.
        self.requests: list[tuple[str, float, str | None]] = []
        self._httpd = _HTTPServer(self)
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="chaos-site", daemon=True)
        self._thread.start()

    def decide(self, path: str) -> str | None:
        """Count one request of ``path`` and return its fault (None: answer normally)."""
        with self._lock:
            attempt = self._attempts[path]
            self._attempts[path] += 1
            fault = None
            if self.plan is not None and path not in self.chaos.no_fault_paths:
                fault = self.plan.fault(path, attempt)
            self.requests.append((path, time.time(), fault))
            return fault

    def faults(self) -> Counter[str]:
        """Faults injected so far, by kind."""
        with self._lock:
            return Counter(f for _, _, f in self.requests if f is not None)

    def stop(self) -> None:
        """Stop serving (stalled answers end at once)."""
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, owner: FaultyServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A fetcher that timed out hangs up on a stalled answer: that is the point, not an error.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ChaosNews/1.0"
    timeout = 60
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        owner = self.server.owner
        path = unquote(urlsplit(self.path).path)
        fault = owner.decide(path)
        found = owner.chaos.site.pages.get(path)
        body, content_type = found if found else (_NOT_FOUND, UTF8_HTML)
        status = 200 if found else 404
        if fault == "500":
            body, status = b"<html><body><h1>Internal Server Error</h1></body></html>", 500
        if fault == "stall":
            # Not a byte for 30 s: the fetcher's read timeout must end it.
            owner.stopping.wait(owner.plan.stall_s if owner.plan else 0)
            self.close_connection = True
            return
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if fault == "stall-partial":
            # Headers and a tenth of the body, then silence.
            with suppress(OSError):
                self.wfile.write(body[: len(body) // 10])
                self.wfile.flush()
            owner.stopping.wait(owner.plan.stall_s if owner.plan else 0)
            self.close_connection = True
            return
        self.wfile.write(body)


_NOT_FOUND = b"<!DOCTYPE html><html><head><title>Not found</title></head><body><h1>Not found</h1></body></html>"


@contextmanager
def serve_chaos_site(chaos: ChaosSite, plan: FaultPlan | None = None) -> Iterator[FaultyServer]:
    """Serve ``chaos`` (with the faults of ``plan``) for the duration of the ``with`` block."""
    server = FaultyServer(chaos, plan)
    try:
        yield server
    finally:
        server.stop()
