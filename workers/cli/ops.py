"""``ingest status`` and ``ingest reextract``: the operator's glance and the operator's repair.

``status`` reads what the workers leave in Redis: queue depths (Dramatiq's keys) with dead letters
and the oldest message's age, pages fetched and records stored per minute, each crawl's and
source's progress, the worker processes alive, Redis memory by kind of key, and per-host
extraction health, with drift warnings that say which host's extraction a redesign broke.
``reextract`` runs the current extractor over the raw pages in storage and rewrites the records
whose text changed.  :func:`add_ops_parsers` adds both to the ``ingest`` parser;
:func:`run_ops` runs them.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

from workers.core.argtypes import iso_date, positive
from workers.core.cpus import available_cpus
from workers.core.settings import Settings

# Only light imports up here: the parser is built for every `ingest` command, even `--help`;
# Redis, Dramatiq and the extractor are imported by the command that needs them.

__all__ = ["OPS_COMMANDS", "add_ops_parsers", "queue_depths", "render_status", "run_ops", "status_doc"]

OPS_COMMANDS = ("status", "reextract")

_NEEDS_REDIS = "needs the workers' Redis: set INGEST_BROKER_URL=redis://host:6379/0"


def _days(value: str) -> int:
    n = int(value)
    if not 1 <= n <= 30:
        raise argparse.ArgumentTypeError(f"must be between 1 and 30 (health is kept 30 days), got {n}")
    return n


def _interval(value: str) -> float:
    x = float(value)
    if not 0.1 <= x <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0.1 and 3600 seconds, got {value}")
    return x


def add_ops_parsers(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the ``status`` and ``reextract`` subcommands to the ``ingest`` subparsers ``sub``."""
    status = sub.add_parser(
        "status",
        help="queues, rates, crawls, workers, Redis memory and per-host extraction health (needs Redis)",
        description="One glance at the running system: messages ready, in flight, delayed and dead per "
        "queue, with the dead letters kept (`ingest dlq`) and the age of the oldest waiting message; pages "
        "fetched and records stored per minute over the last minutes; each crawl's and source's progress "
        "(discovered, fetched, stored, failed, remaining); the worker processes alive; Redis memory by kind "
        "of key; per host the pages extracted, the share of empty pages, of pages without a date, word "
        "count percentiles, the share of pages with teaser lists in their text, and DRIFT lines when a "
        "host's latest day differs sharply from the days before (a redesign broke extraction).",
    )
    status.add_argument("--host", help="only this host, day by day")
    status.add_argument("--days", type=_days, default=7, help="days of health to show (default: 7)")
    status.add_argument("--json", action="store_true", help="print everything as JSON (with --watch: one line each)")
    status.add_argument("--watch", action="store_true", help="redraw in place every --interval seconds; Ctrl-C stops")
    status.add_argument("--interval", type=_interval, default=2.0, metavar="S",
                        help="seconds between redraws with --watch (default: 2)")

    reextract = sub.add_parser(
        "reextract",
        help="run the current extractor over stored raw pages and rewrite records whose text changed",
        description="Walk the article records in storage (optionally of one host, one source's storage "
        "prefix, fetched within a date range), extract each one's raw page again with the current "
        "extractor (and the site memory: blocks a host repeats on its pages are stripped, as the extract "
        "stage does; learnt from the pages re-extracted, plus the workers' memory in Redis when "
        "INGEST_BROKER_URL is set) and rewrite the record when its text or the extractor version changed. "
        "Fetch-time fields stay. Records whose page now gives no text are kept as they are. Exit code 1 when any "
        "record could not be re-extracted (each is logged as reextract.error with its reason).",
    )
    reextract.add_argument("--host", help="only records of this host")
    reextract.add_argument("--source-prefix", metavar="P", help="records under a source's storage prefix P")
    reextract.add_argument("--since", type=iso_date, metavar="YYYY-MM-DD", help="fetched on or after this day (UTC)")
    reextract.add_argument("--until", type=iso_date, metavar="YYYY-MM-DD", help="fetched on or before this day (UTC)")
    reextract.add_argument("--storage", metavar="DIR|URL",
                           help="storage to work on (default: $INGEST_STORAGE_URL or ./ingest-data)")
    reextract.add_argument("--processes", type=positive, default=None,
                           help=f"extraction processes (default: all {available_cpus()} cores)")
    reextract.add_argument("--dry-run", action="store_true", help="count what would change, write nothing")
    reextract.add_argument("--json", action="store_true", help="print the counts as JSON")


def run_ops(args: argparse.Namespace, settings: Settings, *, out: TextIO | None = None) -> int:
    """Run ``status`` or ``reextract``; returns the exit code (2: bad arguments or settings)."""
    out = out or sys.stdout
    if args.command == "status":
        return _status(args, settings, out)
    if args.command == "reextract":
        return _reextract(args, settings, out)
    raise ValueError(f"not an ops command: {args.command!r}")


def _fail(command: str, message: str) -> int:
    print(f"ingest {command}: {message}", file=sys.stderr)
    return 2


# --- status --------------------------------------------------------------------------------------


def queue_depths(client: Any, namespace: str) -> dict[str, dict[str, int]]:
    """Messages per queue: ready (waiting in the list), in flight (taken, not yet acknowledged),
    delayed (waiting for their time, held or not) and dead (Dramatiq's dead letters, kept 7 days).

    Dramatiq's Redis layout: ``{ns}:<q>`` lists ready ids and ``{ns}:<q>.msgs`` holds every
    unacknowledged message, so their difference is in flight; delayed messages live in the
    ``<q>.DQ`` queue (counted from its ``.msgs``, since workers hold delayed messages until due);
    ``{ns}:<q>.XQ`` is a sorted set of dead ones.
    """
    from workers.core.broker import QUEUES
    from workers.core.encoder import POISON_QUEUE

    queues = (*QUEUES, POISON_QUEUE)
    pipe = client.pipeline(transaction=False)
    for q in queues:
        base = f"{namespace}:{q}"
        pipe.llen(base)
        pipe.hlen(f"{base}.msgs")
        pipe.hlen(f"{base}.DQ.msgs")
        pipe.zcard(f"{base}.XQ")
    replies = [int(r) for r in pipe.execute()]
    depths = {}
    for i, q in enumerate(queues):
        ready, pending, delayed, dead = replies[4 * i : 4 * i + 4]
        depths[q] = {"ready": ready, "in_flight": max(0, pending - ready), "delayed": delayed, "dead": dead}
    return depths


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def _row(label: str, figures: dict[str, Any]) -> str:
    words = figures["words"]
    lengths = "/".join("-" if words[p] is None else str(words[p]) for p in ("p10", "p50", "p90"))
    return (f"{label:<32} {figures['pages']:>7} {_pct(figures['empty_share']):>6} "
            f"{_pct(figures['missing_date_share']):>8} {lengths:>19} {_pct(figures['leak_share']):>6}")


#: Minutes of pages fetched and records stored shown (the workers keep an hour).
RATE_MINUTES = 10
#: Crawls listed in the text of ``ingest status`` (``--json`` and ``ingest crawls`` have them all).
STATUS_CRAWLS = 12
#: Seconds a ``--watch`` shows the same memory report before measuring again.
MEMORY_EVERY_S = 30.0
#: Clear the terminal and go home: each ``--watch`` frame replaces the last.
CLEAR = "\x1b[H\x1b[2J"


def status_doc(client: Any, namespace: str, days: int = 7, host: str | None = None,
               memory: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything ``ingest status`` shows, read from Redis (raises redis.RedisError); ``memory``: a
    memory report to show instead of measuring again."""
    from workers.cli.crawls import by_source
    from workers.core.broker import QUEUES
    from workers.core.crawlstate import RedisCrawls
    from workers.core.encoder import POISON_QUEUE
    from workers.core.queuestats import dead_letter_counts, queue_stats
    from workers.core.redismemory import memory_by_kind
    from workers.extract.health import RedisHealthStore, drift
    from workers.pipeline.presence import alive_workers

    depths = queue_depths(client, namespace)
    letters = dead_letter_counts(client, namespace)
    for stats in queue_stats(client, namespace, (*QUEUES, POISON_QUEUE)):
        depths[stats["queue"]].update(dead_letters=letters.get(stats["queue"], 0), oldest_age_s=stats["oldest_age_s"])
    crawls = RedisCrawls(client, namespace)
    minutes = crawls.rates(RATE_MINUTES)
    listed = crawls.recent()
    store = RedisHealthStore(client, namespace)
    reports = []
    for name in [host] if host else store.hosts():
        summary = store.summary(name, days)
        if summary["overall"]["pages"] or host:
            reports.append({**summary, "drift": drift(summary)})
    # The hosts that need a look first, then the busiest.
    reports.sort(key=lambda r: (not r["drift"], -r["overall"]["pages"], r["host"]))
    return {
        "days": days,
        "queues": depths,
        "rates": {"minutes": minutes,
                  "fetched_per_minute": round(sum(m["fetched"] for m in minutes) / RATE_MINUTES, 1),
                  "stored_per_minute": round(sum(m["stored"] for m in minutes) / RATE_MINUTES, 1)},
        "crawls": listed,
        "sources": by_source(listed),
        "workers": alive_workers(client, namespace),
        "memory": memory if memory is not None else memory_by_kind(client, namespace),
        "hosts": reports,
    }


def _status(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    import orjson
    import redis

    from workers.core.logs import redact_text
    from workers.core.redisclient import redis_client

    if settings.embedded:
        return _fail("status", _NEEDS_REDIS)
    client = redis_client(settings.broker_url, socket_connect_timeout=5, socket_timeout=10)

    def cannot(exc: Exception) -> str:
        # A connection error may quote the URL it was given, password and all.
        return f"cannot read {settings.redacted()['broker_url']}: {redact_text(str(exc))}"

    memory: tuple[float, dict[str, Any]] | None = None
    try:
        while True:
            try:
                # Measuring memory costs a command per key sampled: a watch does it twice a minute.
                reuse = memory[1] if memory is not None and time.monotonic() - memory[0] < MEMORY_EVERY_S else None
                doc = status_doc(client, settings.namespace, args.days, args.host, memory=reuse)
                if reuse is None:
                    memory = (time.monotonic(), doc["memory"])
            except redis.RedisError as exc:
                if not args.watch:
                    return _fail("status", cannot(exc))
                # Watching through a Redis restart: say so on screen and try again next round.
                doc, frame = {"error": cannot(exc)}, cannot(exc) + "\n"
            else:
                frame = render_status(doc, args.host)
            if args.json:
                option = 0 if args.watch else orjson.OPT_INDENT_2
                out.write(orjson.dumps(doc, option=option).decode() + "\n")
            else:
                out.write((CLEAR if args.watch else "") + frame)
            out.flush()
            if not args.watch:
                return 0
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 130
    finally:
        client.close()


def _age(seconds: float) -> str:
    if seconds <= 0:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.0f}m" if seconds < 7200 else f"{seconds / 3600:.0f}h"


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def render_status(doc: dict[str, Any], host: str | None = None) -> str:
    """The status document as the text ``ingest status`` prints."""
    from workers.cli.crawls import crawl_lines

    lines = [f"{'queue':<10} {'ready':>8} {'in flight':>10} {'delayed':>8} {'dead':>6} {'letters':>8} {'oldest':>7}"]
    for q, d in doc["queues"].items():
        lines.append(f"{q:<10} {d['ready']:>8} {d['in_flight']:>10} {d['delayed']:>8} {d['dead']:>6} "
                     f"{d['dead_letters']:>8} {_age(d['oldest_age_s']):>7}")
    rates = doc["rates"]
    fetched, stored = (sum(m[k] for m in rates["minutes"]) for k in ("fetched", "stored"))
    lines += ["", f"last {len(rates['minutes'])} min: {fetched} pages fetched ({rates['fetched_per_minute']}/min), "
              f"{stored} records stored ({rates['stored_per_minute']}/min)",
              "  per minute, fetched/stored: " + " ".join(f"{m['fetched']}/{m['stored']}" for m in rates["minutes"])]
    lines.append("")
    # The crawls at work first; finished ones only while the screen has room.
    crawls = sorted(doc["crawls"], key=lambda c: c["state"] in {"finished", "cancelled"})[:STATUS_CRAWLS]
    lines += crawl_lines(crawls) if crawls else ["no crawls"]
    if len(doc["crawls"]) > len(crawls):
        lines.append(f"… and {len(doc['crawls']) - len(crawls)} more: ingest crawls")
    if doc["sources"]:
        lines += ["", f"{'source':<28} {'discovered':>10} {'fetched':>8} {'stored':>8} {'failed':>7} {'remaining':>9}"]
        lines += [f"{name:<28} {s['discovered']:>10} {s['fetched']:>8} {s['stored']:>8} {s['failed']:>7} "
                  f"{s['remaining']:>9}" for name, s in doc["sources"].items()]
    lines.append("")
    alive = doc["workers"]
    lines.append(f"workers: {len(alive)} alive" if alive else "workers: none alive")
    lines += [f"  {w['host']}:{w['pid']}  {','.join(w['queues'])}  {w['alive']}/{w['threads']} threads  "
              f"beat {w['age_s']:.0f}s ago" for w in alive]
    memory = doc["memory"]
    measured = "every key measured" if memory["complete"] else f"{memory['sampled_keys']} keys measured, scaled up"
    lines += ["", f"redis memory: {_size(memory['used_bytes'])} used; by kind of key ({measured}):"]
    lines += [f"  {kind:<12} {k['keys']:>9} keys {_size(k['bytes']):>10}" for kind, k in memory["kinds"].items()]
    lines.append("")
    reports = doc["hosts"]
    if not reports:
        lines.append(f"no extractions recorded in the last {doc['days']} day(s)")
        return "\n".join(lines) + "\n"
    lines.append(f"{'host (last ' + str(doc['days']) + ' days)':<32} {'pages':>7} {'empty':>6} {'no date':>8} "
                 f"{'words p10/p50/p90':>19} {'leak':>6}")
    for report in reports:
        lines.append(_row(report["host"], report["overall"]))
        if host:
            lines += [_row("  " + day["day"], day) for day in report["per_day"]]
        lines += [f"  DRIFT {reason}" for reason in report["drift"]]
    drifting = sum(1 for r in reports if r["drift"])
    if drifting:
        lines.append(f"\n{drifting} host(s) drifting: look at their latest pages (`ingest extract`), then "
                     "`ingest reextract --host H` once extraction is fixed")
    return "\n".join(lines) + "\n"


# --- reextract -----------------------------------------------------------------------------------


def _reextract(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import orjson
    import redis

    from workers.core.logs import configure_logging
    from workers.core.storage import StorageError, open_storage
    from workers.extract.sitememory import RedisSiteMemory, SiteMemory
    from workers.pipeline.reextract import reextract_storage

    if args.since and args.until and args.since > args.until:
        return _fail("reextract", f"--since {args.since} is after --until {args.until}")
    prefix = args.source_prefix
    if prefix is not None:
        prefix = prefix.strip("/") + "/" if prefix.strip("/") else None
    try:
        storage = open_storage(args.storage or settings.storage_url, s3_endpoint=settings.s3_endpoint)
    except StorageError as exc:
        return _fail("reextract", str(exc))
    shared: SiteMemory | None = None
    client = None
    if not settings.embedded:
        # The workers' site memory knows each host from all its recent pages: consulted, never taught.
        from workers.core.redisclient import redis_client
        client = redis_client(settings.broker_url, socket_connect_timeout=5, socket_timeout=30)
        try:
            client.ping()
        except redis.RedisError as exc:
            client.close()
            return _fail("reextract", f"cannot read the site memory at {settings.redacted()['broker_url']}: {exc} "
                         "(unset INGEST_BROKER_URL to re-extract with what this run learns alone)")
        shared = RedisSiteMemory(client, settings.namespace)
    configure_logging(settings, quiet=sys.stderr.isatty())
    processes = args.processes or available_cpus()
    pool = None
    if processes > 1:
        # forkserver, as in the embedded crawl: never fork a process that may already run threads.
        pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("forkserver"))
    try:
        report = reextract_storage(storage, host=args.host, source_prefix=prefix, since=args.since,
                                   until=args.until, dry_run=args.dry_run, shared_memory=shared, pool=pool,
                                   window=4 * processes)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        if client is not None:
            client.close()
    if args.json:
        out.write(orjson.dumps(report.as_dict()).decode() + "\n")
    else:
        print(("dry run: " if args.dry_run else "") + report.render(), file=out)
    return 1 if report.errors else 0
