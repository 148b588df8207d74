"""``ingest trace URL``: one URL's journey across the four stages.

From the logs (files or stdin, JSON lines as every worker writes them): each line about the URL, in
time order.  From what Redis and storage know now: which seen-sets claimed it, whether a message for
it waits in a queue, its dead letters, its record and raw pages.  One command instead of a grep per
stage and a Redis session.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

import orjson

from workers.core.settings import Settings

__all__ = ["add_trace_parser", "log_lines_for", "run_trace"]

#: Messages read per queue when looking for the URL's pending message (a debugging aid, bounded).
_MAX_SCAN = 200_000
_SHOWN = ("status", "ms", "bytes", "attempt", "reason", "error", "kind", "words", "duplicate_of", "new", "version")


def add_trace_parser(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``ingest trace`` to the ``ingest`` subparsers ``sub``."""
    trace = sub.add_parser(
        "trace",
        help="one URL's journey: its log lines in every stage, and what Redis and storage hold for it",
        description="Follow one URL: every log line about it (from --logs FILE..., or - for stdin) in time "
        "order, then what the system holds now: seen-set claims, queued messages and dead letters "
        "(Redis, when INGEST_BROKER_URL is set) and its record and raw pages in storage.",
    )
    trace.add_argument("url")
    trace.add_argument("--logs", nargs="*", default=[], metavar="FILE",
                       help="JSON log files of the workers (- for stdin)")
    trace.add_argument("--storage", metavar="DIR|URL", help="storage to look in (default: $INGEST_STORAGE_URL)")
    trace.add_argument("--json", action="store_true", help="print the journey as one JSON object")


def log_lines_for(lines: Iterable[bytes], url: str, url_id: str) -> list[dict[str, Any]]:
    """The JSON log lines about one URL (by id, or by URL for lines without one), oldest first."""
    found = []
    for line in lines:
        line = line.strip()
        if not line.startswith(b"{") or (url_id.encode() not in line and url.encode() not in line):
            continue
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(event, dict) and (event.get("url_id") == url_id or event.get("url") == url):
            found.append(event)
    return sorted(found, key=lambda e: str(e.get("timestamp", "")))


def _read(paths: list[str], stdin: TextIO) -> Iterator[bytes]:
    for path in paths:
        if path == "-":
            yield from (line.encode() for line in stdin)
        else:
            with Path(path).open("rb") as f:
                yield from f


def _redis_state(settings: Settings, url_id: str) -> dict[str, Any]:
    from workers.core.broker import QUEUES
    from workers.core.deadletters import RedisDeadLetters
    from workers.core.redisclient import redis_client

    client = redis_client(settings.broker_url, socket_connect_timeout=5, socket_timeout=30)
    ns = settings.namespace
    seen = []
    for key in client.scan_iter(match=f"{ns}:seen:*", count=1000):
        if client.type(key) in (b"hash", "hash"):
            owner = client.hget(key, url_id)
            if owner is not None:
                seen.append({"set": key.decode(), "claimed_by": owner.decode()})
    queued = []
    for q in QUEUES:
        for name in (f"{ns}:{q}.msgs", f"{ns}:{q}.DQ.msgs"):
            for scanned, (mid, body) in enumerate(client.hscan_iter(name, count=1000), start=1):
                if url_id.encode() in body:
                    message = orjson.loads(body)
                    queued.append({"queue": name.removeprefix(f"{ns}:").removesuffix(".msgs"),
                                   "redis_id": mid.decode(), "retries": message["options"].get("retries", 0),
                                   "eta": message["options"].get("eta")})
                if scanned >= _MAX_SCAN:
                    break
    letters = [x for x in RedisDeadLetters(client, ns).list() if x.get("url_id") == url_id]
    return {"seen": seen, "queued": queued, "dead_letters": letters}


def _storage_state(storage_url: str, settings: Settings, host: str, url_id: str) -> dict[str, Any]:
    from workers.core.storage import is_raw_page, open_storage, record_key

    storage = open_storage(storage_url, s3_endpoint=settings.s3_endpoint)
    key = record_key(host, url_id)
    record = orjson.loads(storage.get(key)) if storage.exists(key) else None
    raw = sorted(k for k in storage.keys(f"raw/{host}/{url_id[:2]}/{url_id}/") if is_raw_page(k))
    return {"record_key": key if record else None, "record": None if record is None else {
        k: record.get(k) for k in ("title", "fetched_at", "word_count", "version", "first_seen", "duplicate_of")},
        "raw_pages": raw}


def run_trace(args: argparse.Namespace, settings: Settings, *, out: TextIO | None = None,
              stdin: TextIO | None = None) -> int:
    """Print the journey; exit 1 when nothing at all is known about the URL."""
    from workers.core.urls import InvalidURL, host_of, normalize_url, url_id

    out = out or sys.stdout
    try:
        url = normalize_url(args.url)
    except InvalidURL as exc:
        print(f"ingest trace: {args.url!r}: {exc}", file=sys.stderr)
        return 2
    uid, host = url_id(url), host_of(url)
    journey: dict[str, Any] = {"url": url, "url_id": uid, "host": host}
    journey["log"] = log_lines_for(_read(args.logs, stdin or sys.stdin), url, uid) if args.logs else []
    if not settings.embedded:
        journey.update(_redis_state(settings, uid))
    journey.update(_storage_state(args.storage or settings.storage_url, settings, host, uid))
    if args.json:
        out.write(orjson.dumps(journey, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        _render(journey, out)
    known = journey["log"] or journey.get("seen") or journey.get("queued") or journey.get("dead_letters") \
        or journey["record_key"] or journey["raw_pages"]
    return 0 if known else 1


def _render(j: dict[str, Any], out: TextIO) -> None:
    print(f"{j['url']}  (url_id {j['url_id']})", file=out)
    for e in j["log"]:
        extra = " ".join(f"{k}={e[k]}" for k in _SHOWN if e.get(k) not in (None, ""))
        print(f"  {e.get('timestamp', '?'):<27} {e.get('event', '?'):<18} {extra}", file=out)
    for s in j.get("seen", []):
        print(f"  seen in {s['set']} (claimed by {s['claimed_by']})", file=out)
    for q in j.get("queued", []):
        print(f"  waiting in {q['queue']} (retries {q['retries']})", file=out)
    for d in j.get("dead_letters", []):
        print(f"  dead letter {d['id']}: {d['stage']} {d['reason']}: {d['last_error']['error'][:150]}", file=out)
    if j["record_key"]:
        r = j["record"]
        print(f"  record {j['record_key']}: {r['title']!r}, {r['word_count']} words, fetched {r['fetched_at']}",
              file=out)
    for key in j["raw_pages"]:
        print(f"  raw page {key}", file=out)
    if not (j["log"] or j.get("seen") or j.get("queued") or j.get("dead_letters") or j["record_key"]
            or j["raw_pages"]):
        print("  nothing known about this URL (not in the logs given, Redis or storage)", file=out)
