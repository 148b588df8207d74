"""ingest: news sites in, clean article records out, through four stages on a message queue.

The stable Python API is here, at the top::

    from workers import enqueue, crawl, extract_article

    record = extract_article(open("page.html", "rb").read(), "https://news.example/a.html")
    summary = crawl(["https://news.example/"], out="./out")        # embedded: no services needed
    result = enqueue(["https://news.example/"], broker_url="redis://localhost:6379/0")  # to workers

Importing ``workers`` (or ``workers.core.settings``) stays cheap: the names above are loaded on
first use, so a script reading settings does not pay for trafilatura, lxml or redis.

Packages, with imports running one way (``cli`` -> ``pipeline`` -> the stages -> ``sources``, ``core``):

- ``core``: settings, messages and their schemas, broker, logs, storage, URLs; shared by all.
- ``sources``: the sources file (sites, their start pages, limits) and the registry of loaded ones.
- ``discover``: listing pages, feeds, sitemaps -> article and listing URLs, each once.
- ``fetch``: URLs -> raw pages in storage, politely (robots.txt, host rates, private-address guard).
- ``extract``: raw pages -> article records (trafilatura plus the stage's own cleaning).
- ``sink``: records -> object storage.
- ``pipeline``: the stages as Dramatiq actors, the embedded crawl, enqueueing, re-extraction.
- ``cli``: the ``ingest`` command.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workers.core.settings import Settings
    from workers.extract.article import extract_article
    from workers.pipeline.crawl import CrawlSummary
    from workers.pipeline.enqueue import EnqueueResult, Rejected, enqueue

__all__ = ["CrawlSummary", "EnqueueResult", "Rejected", "Settings", "crawl", "enqueue", "extract_article"]

#: Name -> the module that defines it, imported on first access (PEP 562).
_LAZY = {
    "enqueue": "workers.pipeline.enqueue",
    "EnqueueResult": "workers.pipeline.enqueue",
    "Rejected": "workers.pipeline.enqueue",
    "CrawlSummary": "workers.pipeline.crawl",
    "extract_article": "workers.extract.article",
    "Settings": "workers.core.settings",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def crawl(
    urls: Iterable[str],
    *,
    out: str | None = None,
    kind: str = "listing",
    max_depth: int | None = None,
    max_pages: int | None = None,
    crawl_id: str | None = None,
    settings: Settings | None = None,
    processes: int | None = None,
    threads: int = 16,
    **overrides: Any,
) -> CrawlSummary:
    """Crawl to completion in this process (``ingest crawl``) and return its CrawlSummary.

    ``urls`` are start pages: listings (a site root also leads to its feeds and sitemaps) or, with
    ``kind="article"``, articles to fetch and extract.  Records go to ``out`` (a folder,
    ``file://``, ``s3://bucket/prefix``, ``memory://``; default ``INGEST_STORAGE_URL``).  Settings
    come from the environment unless ``settings`` is given; keyword overrides (``host_rate=0``,
    ``allow_private=True``, …) win over both.  The broker is always the in-memory one, whatever
    ``INGEST_BROKER_URL`` says.  Extraction runs on ``processes`` processes (default: every core).
    Each site may fetch ``max_pages`` pages (default 10,000); links past that budget are counted in
    ``summary.over_budget``, not followed.  Logging is left as the caller configured it.  Raises
    InvalidURL on a start URL that cannot be crawled, ValueError on a bad ``kind`` or ``max_pages``::

        from workers import crawl
        summary = crawl(["https://news.example/world/"], out="./out", max_depth=2)
        print(summary.stored, "articles in", summary.storage, summary.by_reason("failed"))
    """
    from workers.pipeline.crawl import run_embedded
    from workers.pipeline.enqueue import entry_problem, resolve_settings
    from workers.sources.sourcefile import DEFAULT_MAX_DEPTH, DEFAULT_MAX_PAGES

    if isinstance(urls, str | bytes):
        raise TypeError("urls: give an iterable of URL strings, not one string")
    # The checks `enqueue` makes of the same values, with the same words.
    problem = entry_problem(kind=kind, max_pages=max_pages)
    if problem is not None:
        raise ValueError(problem)
    resolved = resolve_settings(settings, {**overrides, "storage_url": out, "broker_url": "memory://"})
    return run_embedded(
        list(urls),
        resolved,
        processes=processes,
        threads=threads,
        max_depth=DEFAULT_MAX_DEPTH if max_depth is None else max_depth,
        max_pages=DEFAULT_MAX_PAGES if max_pages is None else max_pages,
        kind=kind,
        crawl_id=crawl_id,
    )
