"""``ingest crawls`` and ``ingest pause|resume|cancel CRAWL_ID``: the crawls the workers run.

A crawl is every URL sent with one crawl id (``ingest enqueue --crawl-id``, or a source's polls,
whose crawl id is the source's name).  The state lives in Redis (``workers.core.crawlstate``);
the workers read it before each message: a paused crawl's messages wait in their queues, a
cancelled crawl's are dropped, and a crawl with nothing left in flight is ``finished``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

from workers.core.argtypes import positive
from workers.core.settings import Settings

__all__ = ["CRAWLS_COMMANDS", "add_crawls_parsers", "by_source", "crawl_lines", "run_crawls"]

CRAWLS_COMMANDS = ("crawls", "pause", "resume", "cancel")

_ACTIONS = {
    "pause": "hold a crawl: its fetch, discover and extract messages wait in their queues until resumed",
    "resume": "let a paused crawl go on",
    "cancel": "drop a crawl's remaining messages as they come up (logged as <stage>.cancelled, no dead letters)",
}
_SAID = {"paused": "paused", "running": "running", "cancelled": "cancelled (its remaining messages are dropped)"}


def add_crawls_parsers(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``crawls``, ``pause``, ``resume`` and ``cancel`` to the ``ingest`` subparsers ``sub``."""
    crawls = sub.add_parser(
        "crawls",
        help="the crawls: id, start, source or start URLs, state and progress (needs Redis)",
        description="Every crawl the workers know, newest first: when it started, its source or start URLs, "
        "its state (running, paused, cancelled, finished) and its progress: URLs discovered, pages fetched, "
        "records stored, pages failed (dead letters and permanent fetch failures), and URLs remaining. "
        "A finished crawl is kept for 7 days (its counts also in storage, crawls/<id>.json).",
    )
    crawls.add_argument("--limit", type=positive, default=50, help="newest crawls shown (default: 50)")
    crawls.add_argument("--json", action="store_true", help="one JSON object per crawl and line")
    for action, text in _ACTIONS.items():
        parser = sub.add_parser(action, help=text + " (needs Redis)", description=text[0].upper() + text[1:] + ".")
        parser.add_argument("crawl_id", metavar="CRAWL_ID", help="see `ingest crawls`")


def run_crawls(args: argparse.Namespace, settings: Settings, *, out: TextIO | None = None) -> int:
    """Run ``crawls``, ``pause``, ``resume`` or ``cancel``; returns the exit code (2: bad id or state)."""
    import orjson

    from workers.core.crawlstate import CrawlError, RedisCrawls
    from workers.core.redisclient import redis_client

    out = out or sys.stdout
    if settings.embedded:
        print(f"ingest {args.command}: needs the workers' Redis: set INGEST_BROKER_URL=redis://host:6379/0",
              file=sys.stderr)
        return 2
    client = redis_client(settings.broker_url, socket_connect_timeout=5, socket_timeout=10)
    try:
        crawls = RedisCrawls(client, settings.namespace)
        if args.command == "crawls":
            listed = crawls.recent(args.limit)
            if args.json:
                out.writelines(orjson.dumps(c).decode() + "\n" for c in listed)
            elif listed:
                out.writelines(line + "\n" for line in crawl_lines(listed))
            else:
                print("no crawls (a crawl appears with its first URL: ingest enqueue, or a source's poll)", file=out)
            return 0
        try:
            state, changed = crawls.change(args.crawl_id, args.command)
        except CrawlError as exc:
            hint = " (see `ingest crawls`)" if str(exc).startswith("no crawl") else ""
            print(f"ingest {args.command}: {exc}{hint}", file=sys.stderr)
            return 2
        print(f"crawl {args.crawl_id}: {_SAID[state] if changed else state + ' already'}", file=out)
        return 0
    finally:
        client.close()


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) if t else "-"


def _origin(crawl: dict[str, Any]) -> str:
    if crawl.get("source"):
        return f"source {crawl['source']}"
    starts: list[str] = crawl.get("start_urls") or []
    if not starts:
        return "-"
    return starts[0] + (f" (+{len(starts) - 1} more)" if len(starts) > 1 else "")


def crawl_lines(crawls: list[dict[str, Any]]) -> list[str]:
    """The crawls as a table: a header, then one line each (``ingest crawls``, ``ingest status``)."""
    lines = [f"{'crawl':<28} {'state':<10} {'started':<20} {'discovered':>10} {'fetched':>8} {'stored':>8} "
             f"{'failed':>7} {'remaining':>9}  from"]
    for c in crawls:
        lines.append(f"{c['crawl_id']:<28} {c['state']:<10} {_when(c['started_at']):<20} {c['discovered']:>10} "
                     f"{c['fetched']:>8} {c['stored']:>8} {c['failed']:>7} {c['remaining']:>9}  {_origin(c)}")
    # Below the table, not a column: rare, and it needs a sentence to be acted on.
    for c in crawls:
        if c.get("over_budget"):
            lines.append(f"  {c['crawl_id']}: page budget reached, {c['over_budget']} links not followed (a source's "
                         "next poll takes them; raise the budget with max_pages in the sources file, or with "
                         "ingest enqueue --max-pages)")
    return lines


def by_source(crawls: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Progress summed per source over its crawls (a source's polls are one crawl named after it)."""
    out: dict[str, dict[str, Any]] = {}
    for c in crawls:
        if not c.get("source"):
            continue
        entry = out.setdefault(c["source"], {"discovered": 0, "fetched": 0, "stored": 0, "failed": 0,
                                             "remaining": 0, "crawls": []})
        for k in ("discovered", "fetched", "stored", "failed", "remaining"):
            entry[k] += int(c[k])
        entry["crawls"].append(c["crawl_id"])
    return out
