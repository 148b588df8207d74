"""``ingest status`` and ``ingest reextract``: the operator's glance and the operator's repair.

``status`` reads what the workers leave in Redis: queue depths (Dramatiq's keys) and per-host
extraction health, with drift warnings that say which host's extraction a redesign broke.
``reextract`` runs the current extractor over the raw pages in storage and rewrites the records
whose text changed.  :func:`add_ops_parsers` adds both to the ``ingest`` parser;
:func:`run_ops` runs them.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, TextIO

from workers.core.argtypes import iso_date, positive
from workers.core.settings import Settings

# Only light imports up here: the parser is built for every `ingest` command, even `--help`;
# Redis, Dramatiq and the extractor are imported by the command that needs them.

__all__ = ["OPS_COMMANDS", "add_ops_parsers", "queue_depths", "run_ops"]

OPS_COMMANDS = ("status", "reextract")

_NEEDS_REDIS = "needs the workers' Redis: set INGEST_BROKER_URL=redis://host:6379/0"


def _days(value: str) -> int:
    n = int(value)
    if not 1 <= n <= 30:
        raise argparse.ArgumentTypeError(f"must be between 1 and 30 (health is kept 30 days), got {n}")
    return n


def add_ops_parsers(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the ``status`` and ``reextract`` subcommands to the ``ingest`` subparsers ``sub``."""
    status = sub.add_parser(
        "status",
        help="queue depths and per-host extraction health, with drift warnings (needs Redis)",
        description="One glance at the running system: messages ready, in flight, delayed and dead per "
        "queue; per host the pages extracted, the share of empty pages, of pages without a date, word "
        "count percentiles, the share of pages with teaser lists in their text, and DRIFT lines when a "
        "host's latest day differs sharply from the days before (a redesign broke extraction).",
    )
    status.add_argument("--host", help="only this host, day by day")
    status.add_argument("--days", type=_days, default=7, help="days of health to show (default: 7)")
    status.add_argument("--json", action="store_true", help="print everything as JSON")

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
                           help=f"extraction processes (default: all {os.cpu_count()} cores)")
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


def _status(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    import orjson
    import redis

    from workers.extract.health import RedisHealthStore, drift

    if settings.embedded:
        return _fail("status", _NEEDS_REDIS)
    from workers.core.redisclient import redis_client
    client = redis_client(settings.broker_url, socket_connect_timeout=5, socket_timeout=10)
    try:
        depths = queue_depths(client, settings.namespace)
        store = RedisHealthStore(client, settings.namespace)
        hosts = [args.host] if args.host else store.hosts()
        reports = []
        for host in hosts:
            summary = store.summary(host, args.days)
            if summary["overall"]["pages"] or args.host:
                reports.append({**summary, "drift": drift(summary)})
    except redis.RedisError as exc:
        from workers.core.logs import redact_text

        # A connection error may quote the URL it was given, password and all.
        return _fail("status", f"cannot read {settings.redacted()['broker_url']}: {redact_text(str(exc))}")
    finally:
        client.close()
    # The hosts that need a look first, then the busiest.
    reports.sort(key=lambda r: (not r["drift"], -r["overall"]["pages"], r["host"]))
    if args.json:
        doc = {"days": args.days, "queues": depths, "hosts": reports}
        out.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    print(f"{'queue':<10} {'ready':>8} {'in flight':>10} {'delayed':>8} {'dead':>6}", file=out)
    for q, d in depths.items():
        print(f"{q:<10} {d['ready']:>8} {d['in_flight']:>10} {d['delayed']:>8} {d['dead']:>6}", file=out)
    print(file=out)
    if not reports:
        print(f"no extractions recorded in the last {args.days} day(s)", file=out)
        return 0
    print(f"{'host (last ' + str(args.days) + ' days)':<32} {'pages':>7} {'empty':>6} {'no date':>8} "
          f"{'words p10/p50/p90':>19} {'leak':>6}", file=out)
    for report in reports:
        print(_row(report["host"], report["overall"]), file=out)
        if args.host:
            for day in report["per_day"]:
                print(_row("  " + day["day"], day), file=out)
        for reason in report["drift"]:
            print(f"  DRIFT {reason}", file=out)
    drifting = sum(1 for r in reports if r["drift"])
    if drifting:
        print(f"\n{drifting} host(s) drifting: look at their latest pages (`ingest extract`), then "
              "`ingest reextract --host H` once extraction is fixed", file=out)
    return 0


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
    processes = args.processes or os.cpu_count() or 1
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
