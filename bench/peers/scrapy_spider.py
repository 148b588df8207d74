"""A Scrapy spider that fetches a URL list and extracts each page with ``trafilatura.extract``.

Run by bench/speed.py with the interpreter of .venv-peers (bench/peers/requirements.txt)::

    .venv-peers/bin/python bench/peers/scrapy_spider.py URLS_FILE OUT_DIR

Scrapy defaults except: no robots.txt, 16 concurrent requests (per domain too), no throttling,
no retries, logging at WARNING. Each extracted text is written to OUT_DIR/<n>.txt, as the CLI does.
Prints one JSON line: {"stored": pages extracted, "seconds": crawl wall time}.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def main() -> None:
    """Crawl the URL list once."""
    import scrapy
    import trafilatura
    from scrapy.crawler import CrawlerProcess

    urls = [u.strip() for u in Path(sys.argv[1]).read_text().splitlines() if u.strip()]
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    count = [0]

    class ArticleSpider(scrapy.Spider):  # type: ignore[misc]
        name = "articles"
        start_urls = urls

        def parse(self, response: Any) -> Iterator[dict[str, int]]:
            text = trafilatura.extract(response.text, url=response.url)
            if text:
                count[0] += 1
                (out / f"{count[0]}.txt").write_text(text)
            yield {"n": count[0]}

    process = CrawlerProcess(settings={
        "ROBOTSTXT_OBEY": False, "CONCURRENT_REQUESTS": 16, "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
        "DOWNLOAD_DELAY": 0, "AUTOTHROTTLE_ENABLED": False, "RETRY_ENABLED": False, "LOG_LEVEL": "WARNING",
        "TELNETCONSOLE_ENABLED": False, "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
    })
    process.crawl(ArticleSpider)
    started = time.perf_counter()
    process.start()
    print(json.dumps({"stored": count[0], "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
