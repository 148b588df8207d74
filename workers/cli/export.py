"""``ingest export``: the archive out of storage, as JSON Lines (records) or WARC 1.1 (raw pages).

The selection (crawl, fetch dates, host, source prefix) and the writing are in
:mod:`workers.sink.export`; this module opens the storage and the output.  A file is written
under a ``.part`` name and renamed when complete, so a failed export never looks like a whole one.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from workers.core.argtypes import iso_date
from workers.core.settings import Settings

__all__ = ["add_export_parser", "run_export"]


def add_export_parser(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``ingest export`` to the ``ingest`` subparsers ``sub``."""
    export = sub.add_parser(
        "export",
        help="write the article records as JSON Lines, or the raw pages as WARC 1.1",
        description="Export what storage holds. jsonl: one article record a line, as stored. warc: a WARC 1.1 "
        "file (warcinfo first) with a response record per raw page (status line and headers as received, minus "
        "cookies and credentials; the body exactly as stored, already decoded, so the wire's Content-Encoding, "
        "Transfer-Encoding and Content-Length are kept as X-Archive-Orig-*; WARC-Date the fetch time) and a "
        "metadata record naming the article record made from it. Filters combine. A summary goes to stderr; exit "
        "code 1 when something could not be read.",
    )
    export.add_argument("--format", choices=("jsonl", "warc"), default="jsonl", help="what to write (default: jsonl)")
    export.add_argument("--crawl-id", metavar="ID", help="only what this crawl fetched")
    export.add_argument("--since", type=iso_date, metavar="YYYY-MM-DD", help="fetched on or after this day (UTC)")
    export.add_argument("--until", type=iso_date, metavar="YYYY-MM-DD", help="fetched on or before this day (UTC)")
    export.add_argument("--host", help="only this host")
    export.add_argument("--source-prefix", metavar="P", help="what is under a source's storage prefix P")
    export.add_argument("--storage", metavar="DIR|URL",
                        help="storage to read (default: $INGEST_STORAGE_URL or ./ingest-data)")
    export.add_argument("-o", "--output", default="-", metavar="FILE",
                        help="where to write (default: - for stdout); a name ending .gz is gzipped")
    export.add_argument("--gzip", action="store_true",
                        help="gzip the output whatever its name (a WARC record by record, as .warc.gz files are)")


def run_export(args: argparse.Namespace, settings: Settings, *, stdout: IO[bytes] | None = None) -> int:
    """Run ``ingest export``; returns the exit code (2: bad arguments or storage URL)."""
    from workers.core.storage import StorageError, open_storage
    from workers.sink.export import Selection, Writable, export_jsonl, export_warc

    if args.since and args.until and args.since > args.until:
        print(f"ingest export: --since {args.since} is after --until {args.until}", file=sys.stderr)
        return 2
    prefix = (args.source_prefix or "").strip("/")
    selection = Selection(crawl_id=args.crawl_id, since=args.since, until=args.until, host=args.host,
                          prefix=prefix + "/" if prefix else "")
    try:
        storage = open_storage(args.storage or settings.storage_url, s3_endpoint=settings.s3_endpoint)
    except StorageError as exc:
        print(f"ingest export: {exc}", file=sys.stderr)
        return 2
    to_file = args.output != "-"
    zipped = args.gzip or (to_file and args.output.endswith(".gz"))
    target = Path(args.output) if to_file else None
    partial = target.with_name(target.name + ".part") if target is not None else None
    with ExitStack() as stack:
        out: IO[bytes] = (stack.enter_context(partial.open("wb")) if partial is not None
                          else stdout or sys.stdout.buffer)
        try:
            if args.format == "warc":
                name = target.name if target is not None else "ingest-export.warc" + (".gz" if zipped else "")
                report = export_warc(storage, selection, out, gzip=zipped, filename=name,
                                     software=f"ingest/{_version()}")
            else:
                body: Writable = stack.enter_context(gzip.GzipFile(fileobj=out, mode="wb")) if zipped else out
                report = export_jsonl(storage, selection, body)
            stack.close()  # flush the gzip trailer and the file before the rename
        except BaseException:
            stack.close()
            if partial is not None:
                partial.unlink(missing_ok=True)
            raise
    if target is not None and partial is not None:
        os.replace(partial, target)
    else:
        out.flush()
    print(f"ingest export: {report.render()}", file=sys.stderr)
    return 1 if report.unreadable else 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ingest")
    except PackageNotFoundError:
        return "unknown"
