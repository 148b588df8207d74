"""Crawl a generated layout from its front page and score discovery: recall and precision of the records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from tests.support.layouts import Layout, build_layout_site
from tests.support.site import serve_site
from workers.core.settings import Settings
from workers.core.storage import open_storage
from workers.pipeline.crawl import CrawlSummary, run_embedded

__all__ = ["LayoutScore", "crawl_layout"]


@dataclass(frozen=True)
class LayoutScore:
    """What a crawl of one layout found, against what the site holds."""

    layout: str
    existing: int
    found: int
    non_articles: int
    missing: tuple[str, ...]
    extra: tuple[str, ...]
    requests: int
    summary: CrawlSummary

    @property
    def recall(self) -> float:
        """Articles found / articles that exist."""
        return self.found / self.existing if self.existing else 1.0

    @property
    def precision(self) -> float:
        """Article records / all records."""
        total = self.found + self.non_articles
        return self.found / total if total else 1.0


def crawl_layout(layout: Layout, out: Path, *, articles: int = 24, per_page: int = 5, processes: int = 1,
                 threads: int = 8) -> LayoutScore:
    """Serve ``layout`` on 127.0.0.1, crawl it embedded from its front page only, score the records."""
    built = build_layout_site(layout, articles, per_page)
    settings = Settings.from_env({}, storage_url=str(out), allow_private=True, host_rate=0.0)
    with serve_site(built.site) as server:
        summary = run_embedded([server.base_url + built.start_path], settings, processes=processes, threads=threads)
        requests = len(server.requests)
        expected = built.article_urls(server.base_url)
    storage = open_storage(str(out))
    urls = {orjson.loads(storage.get(key))["url"] for key in storage.keys("articles/")}
    return LayoutScore(
        layout=layout.name, existing=len(expected), found=len(urls & expected), non_articles=len(urls - expected),
        missing=tuple(sorted(expected - urls)), extra=tuple(sorted(urls - expected)), requests=requests,
        summary=summary,
    )
