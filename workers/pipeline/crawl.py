"""The embedded crawl: all four stage actors in this process, on an in-memory broker.

Same actors and code path as the Redis workers; only the broker, the shared state (a dict
instead of Redis) and the extraction pool differ.  Extraction is CPU-bound and the GIL would
cap it at one core, so here it runs on a process pool sized to the machine.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

from dramatiq import Worker

from workers.core.broker import make_broker
from workers.core.cpus import available_cpus
from workers.core.messages import fetch_task
from workers.core.middleware import InFlight
from workers.core.settings import Settings
from workers.core.urls import host_of, normalize_url, url_id
from workers.discover.scheduler import start_tasks_for
from workers.pipeline.actors import DEFAULT_MAX_DEPTH, declare_actors
from workers.pipeline.runtime import Runtime, build_runtime, page_pool
from workers.sources.sourcefile import DEFAULT_MAX_PAGES, Source, default_source

__all__ = ["CrawlSummary", "new_crawl_id", "run_embedded", "sources_for_urls", "start_tasks"]


def new_crawl_id() -> str:
    """A fresh crawl id: sortable by start time, unique across hosts."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


def sources_for_urls(
    urls: Iterable[str], *, max_depth: int = DEFAULT_MAX_DEPTH, max_pages: int = DEFAULT_MAX_PAGES
) -> list[Source]:
    """One-site sources for bare start URLs (``ingest crawl URL``): URLs of one site share a source,
    and its page budget (``max_pages`` pages fetched in the crawl).

    Raises InvalidURL on the first URL that cannot be crawled.
    """
    merged: dict[str, Source] = {}
    for url in urls:
        source = default_source(url)
        known = merged.get(source.name)
        if known is not None and source.start_urls[0] not in known.start_urls:
            source = replace(known, start_urls=known.start_urls + source.start_urls, kinds=known.kinds + source.kinds)
        merged[source.name] = replace(source, max_depth=max_depth, max_pages=max_pages, interval_s=0.0)
    return list(merged.values())


def start_tasks(
    urls: Iterable[str], *, crawl_id: str, kind: str = "article", max_depth: int = DEFAULT_MAX_DEPTH
) -> list[dict[str, Any]]:
    """Fetch tasks for start URLs outside any source (normalised; raises InvalidURL on a bad one)."""
    tasks = []
    for raw in urls:
        url = normalize_url(raw)
        tasks.append(
            fetch_task(
                crawl_id=crawl_id,
                url=url,
                url_id=url_id(url),
                kind=kind,
                depth=0,
                max_depth=max_depth,
                allowed_hosts=[host_of(url)],
                found={"via": "start"},
            )
        )
    return tasks


@dataclass
class CrawlSummary:
    """What a finished crawl did, counted from its outcome lines."""

    crawl_id: str
    seconds: float
    outcomes: dict[str, int]
    bytes_fetched: int = 0
    interrupted: bool = False
    storage: str = ""
    #: The first dead letters (stage, reason, host, error): what an operator reads first when
    #: nothing could be fetched.
    failures: list[dict[str, Any]] = field(default_factory=list)
    #: Pages a source may fetch in the crawl (the largest, with several sources); None for articles
    #: given directly, which discover nothing.
    page_budget: int | None = None
    #: Links left unfollowed because a page budget was spent (a link found on several listings
    #: counts each time), and the budget that cut them.
    over_budget: int = 0
    budget_cut: int = 0

    def budget_note(self) -> str | None:
        """One line when a page budget cut the crawl short, saying by how much and how to raise it."""
        if not self.over_budget:
            return None
        return (f"page budget of {self.budget_cut} pages reached: {self.over_budget} links not "
                "followed (raise it with --max-pages)")

    def nothing_fetched(self) -> str | None:
        """Why no page could be fetched at all, in one line; None when some were."""
        if self.pages_fetched or self.interrupted:
            return None
        fetch = [f for f in self.failures if f.get("stage") == "fetch"]
        if not fetch:
            return "no page was fetched (no start URL led anywhere)" if not self.failures else (
                f"no page was fetched: {self.failures[0].get('error')}")
        first = fetch[0]
        hint = "; is the network up?" if first.get("reason") in {"retries_exhausted", "refused"} else ""
        return f"could not reach {first.get('host') or first.get('url')}: {first.get('error')}{hint}"

    @property
    def stored(self) -> int:
        """Articles written to storage by this crawl."""
        return self.outcomes.get("sink.stored", 0)

    @property
    def pages_fetched(self) -> int:
        """Pages fetched successfully (listings and articles)."""
        return self.outcomes.get("fetch.done", 0)

    @property
    def pages_per_second(self) -> float:
        """Fetched pages per wall-clock second."""
        return self.pages_fetched / self.seconds if self.seconds > 0 else 0.0

    def by_reason(self, kind: str) -> dict[str, int]:
        """Counts of skipped (``kind="skipped"``) or failed (``"failed"``) pages by outcome."""
        skipped = {"fetch.not_html", "fetch.too_large", "fetch.http_error", "fetch.refused", "fetch.invalid_url",
                   "fetch.not_modified", "fetch.disallowed",
                   "fetch.redirect_loop", "extract.empty", "sink.exists", "sink.stale"}
        return {
            name: n
            for name, n in sorted(self.outcomes.items())
            if (name in skipped) == (kind == "skipped")
            and name.split(".", 1)[1] not in {"done", "stored", "retry", "absent", "limit", "delayed", "robots_wait",
                                                    "updated", "classified"}
        }

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data (``--json``)."""
        return {
            "crawl_id": self.crawl_id,
            "articles_stored": self.stored,
            "pages_fetched": self.pages_fetched,
            "skipped": self.by_reason("skipped"),
            "failed": self.by_reason("failed"),
            "seconds": round(self.seconds, 3),
            "pages_per_second": round(self.pages_per_second, 2),
            "bytes_fetched": self.bytes_fetched,
            "interrupted": self.interrupted,
            "storage": self.storage,
            "outcomes": dict(sorted(self.outcomes.items())),
            "failures": self.failures,
            "nothing_fetched": self.nothing_fetched(),
            "page_budget": self.page_budget,
            "over_budget": self.over_budget,
        }

    def render(self) -> str:
        """The human summary printed at the end of ``ingest crawl``."""

        def fmt(counts: dict[str, int]) -> str:
            return ", ".join(f"{name.split('.', 1)[1]} {n}" for name, n in counts.items()) or "none"

        state = "interrupted" if self.interrupted else "finished"
        note = self.budget_note()
        return (
            f"crawl {self.crawl_id} {state} in {self.seconds:.1f}s\n"
            f"  articles stored: {self.stored}  (in {self.storage})\n"
            f"  pages fetched:   {self.pages_fetched}  ({self.pages_per_second:.1f} pages/s, "
            f"{self.bytes_fetched / 1e6:.1f} MB)\n"
            f"  skipped:         {fmt(self.by_reason('skipped'))}\n"
            f"  failed:          {fmt(self.by_reason('failed'))}"
            + (f"\n  {note}" if note else "")
        )


ProgressFn = Callable[[Runtime, InFlight, float], None]


def progress_printer(stream: TextIO) -> ProgressFn:
    """A live one-line progress display for a terminal."""

    def show(rt: Runtime, in_flight: InFlight, elapsed: float) -> None:
        o = rt.outcomes
        fetched = o["fetch.done"]
        failed = sum(n for k, n in o.items() if k.endswith(".dead") or (k.startswith("fetch.") and k not in
                     {"fetch.done", "fetch.retry"}))
        line = (
            f"\r{elapsed:6.1f}s  fetched {fetched}  extracted {o['extract.done']}  stored {o['sink.stored']}"
            f"  skipped/failed {failed + o['extract.empty']}  queued {in_flight.count}"
            f"  {fetched / elapsed if elapsed else 0:.1f} pages/s "
        )
        stream.write(line)
        stream.flush()

    return show


def progress_logger(every_s: float = 10.0) -> ProgressFn:
    """Progress as a ``crawl.progress`` log line every ``every_s`` seconds (off a terminal)."""
    last = [0.0]

    def log(rt: Runtime, in_flight: InFlight, elapsed: float) -> None:
        if elapsed - last[0] < every_s:
            return
        last[0] = elapsed
        o = rt.outcomes
        rt.log.info("crawl.progress", fetched=o["fetch.done"], stored=o["sink.stored"], queued=in_flight.count,
                    seconds=round(elapsed, 1))

    return log


def _ignore_sigint() -> Callable[[], None]:
    """Ignore SIGINT until the returned function is called (main thread only; a no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)

    def restore() -> None:
        signal.signal(signal.SIGINT, previous)

    return restore


def run_embedded(
    urls: list[str],
    settings: Settings,
    *,
    processes: int | None = None,
    threads: int = 16,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_pages: int = DEFAULT_MAX_PAGES,
    kind: str = "listing",
    crawl_id: str | None = None,
    sources: list[Source] | None = None,
    progress: ProgressFn | None = None,
    resolver: Any = None,
    stream: TextIO = sys.stderr,
) -> CrawlSummary:
    """Crawl to completion in this process and return the summary.

    Start from ``sources`` (a sources file), or from ``urls``: read as one-site sources (listing
    pages, plus the feeds and sitemaps a site root leads to, ``max_pages`` pages at most for each
    site) or, with ``kind="article"``, fetched and extracted as articles.
    """
    crawl_id = crawl_id or new_crawl_id()
    if sources is None and kind != "article":
        sources = sources_for_urls(urls, max_depth=max_depth, max_pages=max_pages)
    if sources is not None:
        tasks = [t for source in sources for t in start_tasks_for(source, crawl_id=crawl_id)]
    else:
        tasks = start_tasks(urls, crawl_id=crawl_id, kind=kind, max_depth=max_depth)
    processes = processes if processes is not None else available_cpus()
    # Pages are parsed in killable children even with one process: the per-page time limit must
    # hold here as on the workers, and only a child can be stopped in the middle of C code.
    rt = build_runtime(settings, pool=page_pool(settings, processes), resolver=resolver)
    for source in sources or []:
        rt.sources.put(source)
    in_flight = InFlight()
    broker = make_broker(settings, in_flight=in_flight, dead_letters=rt.dead_letter, dead_letter_store=rt.dead_letters)
    declare_actors(broker, rt)
    worker = Worker(broker, worker_threads=threads, worker_timeout=100)
    started = time.monotonic()
    interrupted = False
    worker.start()
    try:
        claimed = rt.seen.claim(crawl_id, [t["url_id"] for t in tasks], owner="start")
        for task, mine in zip(tasks, claimed, strict=True):
            if mine:
                rt.send("fetch", task)
        while not in_flight.wait_idle(timeout=0.25):
            if progress is not None:
                progress(rt, in_flight, time.monotonic() - started)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        # A second Ctrl-C while we stop must not cut the summary short with a traceback.
        restore = _ignore_sigint()
        try:
            elapsed = time.monotonic() - started
            if progress is not None:
                progress(rt, in_flight, elapsed)
                if stream.isatty():
                    stream.write("\n")
            if interrupted:
                # Pages being parsed end now (their children are killed); threads stuck in a
                # request are daemons and are not waited for beyond a moment each.
                rt.close()
            worker.stop(timeout=100 if interrupted else 5_000)
            broker.close()
            rt.close()
        finally:
            restore()
    return CrawlSummary(
        crawl_id=crawl_id,
        seconds=elapsed,
        outcomes=dict(rt.outcomes),
        bytes_fetched=rt.bytes_fetched,
        interrupted=interrupted,
        storage=rt.storage.url,
        page_budget=max((s.max_pages for s in sources), default=None) if sources else None,
        over_budget=rt.over_budget,
        budget_cut=rt.budget_cut,
        failures=[{"stage": x["stage"], "reason": x["reason"], "host": x.get("host"), "url": x.get("url"),
                   "error": _short_error(str(x["last_error"]["error"]))} for x in rt.dead_letters.list()[:5]],
    )


def _short_error(error: str) -> str:
    """``gave up after 5 attempts: connect failed: [Errno -2] Name or service not known`` -> the cause."""
    return error.split(": ", 1)[1] if error.startswith(("GiveUp: ", "PoisonMessage: ")) else error
