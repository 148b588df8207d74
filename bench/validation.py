"""Cost of validating one message of each kind: the compiled validator against jsonschema (issue #14).

    python bench/validation.py [--calls 2000]

Builds a real fetch task, the page task that follows it and the sink task carrying the record
the extract stage makes of a corpus page, then times ``workers.core.messages.validate`` (what the
actors call: the compiled jsonschema-rs validator for a valid message) and jsonschema's own
validator (what every message cost before) on each, in one process.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpora import load_snippets
from workers.core.messages import _validator, fetch_task, page_task, sink_task, validate
from workers.core.urls import url_id
from workers.extract import extract_article
from workers.sink.record import build_record


def _errors(kind: str, message: dict[str, Any]) -> list[Any]:
    return list(_validator(kind).iter_errors(message))


def _per_call_us(fn: Callable[[], Any], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    """Time both validators on one message of each kind and print microseconds per call."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    url = "https://news.example/world/2025/01/21/a-story.html"
    fetch = fetch_task(crawl_id="bench", url=url, url_id=url_id(url), kind="article", depth=1, max_depth=5)
    page = page_task(fetch, final_url=url, status=200, fetched_at="2025-01-21T10:00:00Z",
                     raw_key="raw/news.example/ab/abc.html", content_type="text/html", encoding="utf-8",
                     size=100_000)  # fmt: skip
    record = build_record(extract_article(load_snippets(limit=3)[2].html, url), page)
    messages = {"fetch": fetch, "page": page, "sink": sink_task(crawl_id="bench", url_id=url_id(url), record=record)}
    print(f"{'kind':<6} {'validate (compiled)':>20} {'jsonschema':>12}  ({args.calls} calls each)")
    for kind, message in messages.items():
        validate(kind, message)  # compiles and caches both validators
        fast = _per_call_us(partial(validate, kind, message), args.calls)
        slow = _per_call_us(partial(_errors, kind, message), args.calls)
        print(f"{kind:<6} {fast:>17.1f} us {slow:>9.1f} us")


if __name__ == "__main__":
    main()
