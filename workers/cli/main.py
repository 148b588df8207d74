"""The ``ingest`` command: crawl (embedded), worker, enqueue, extract, config.

Every answer an operator needs is one ``--help`` away; every bad argument ends with a one-line
reason and exit code 2, before any work starts.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import orjson

from workers.cli.crawls import CRAWLS_COMMANDS, add_crawls_parsers, run_crawls
from workers.cli.dlq import add_dlq_parser, run_dlq
from workers.cli.export import add_export_parser, run_export
from workers.cli.ops import OPS_COMMANDS, add_ops_parsers, run_ops
from workers.cli.trace import add_trace_parser, run_trace
from workers.core.argtypes import iso_date, non_negative_float, positive
from workers.core.cpus import available_cpus
from workers.core.settings import ENV_PREFIX, Settings, SettingsError
from workers.sources.sourcefile import DEFAULT_MAX_DEPTH, DEFAULT_MAX_PAGES

__all__ = ["build_parser", "main"]

STAGES = ("discover", "fetch", "extract", "sink")

_EPILOG = """\
configuration comes from INGEST_* environment variables (see `ingest config`); flags win.
examples:
  ingest crawl https://news.example/ --out ./out          # everything in one process
  INGEST_BROKER_URL=redis://localhost:6379/0 ingest worker --stages fetch --threads 32
  ingest enqueue -f urls.txt --kind article                # send work to the workers
  ingest extract page.html --url https://news.example/a.html
"""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (plus where to look), not a usage dump."""

    def error(self, message: str) -> NoReturn:
        """Print ``prog: message (see prog --help)`` and exit 2."""
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


#: Exit status of a crawl that could fetch no page at all (the cause is printed on stderr).
EXIT_NOTHING_FETCHED = 3


class UsageError(Exception):
    """A bad argument or setting: printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand (also used by tests and the compose check)."""
    parser = _Parser(
        prog="ingest",
        description="Turn news sites into clean, structured article records.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ingest {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    crawl = sub.add_parser(
        "crawl",
        help="crawl sites from listing pages, all stages in this process (no services needed)",
        description="Start at listing pages (front or section pages), follow pagination and article "
        "links on the same host, fetch, extract and store every article once. Runs the four stages in "
        "this process on an in-memory broker; extraction uses every core.",
    )
    crawl.add_argument("urls", nargs="*", metavar="URL",
                       help="start page(s): a site root also finds the site's feeds and sitemaps")
    crawl.add_argument("--sources", type=Path, metavar="FILE",
                       help="crawl every source of a sources file (TOML) once; see `ingest sources --help`")
    crawl.add_argument("--out", metavar="DIR|URL", help="storage: folder, file://, s3://bucket/prefix, memory:// "
                       "(default: $INGEST_STORAGE_URL or ./ingest-data)")
    crawl.add_argument("--kind", choices=("listing", "article"), default="listing",
                       help="what the start URLs are (default: listing)")
    crawl.add_argument("--processes", type=positive, default=None,
                       help=f"extraction processes (default: all {available_cpus()} cores)")
    crawl.add_argument("--threads", type=positive, default=16, help="fetch/stage threads (default: 16)")
    crawl.add_argument("--max-depth", type=int, default=DEFAULT_MAX_DEPTH,
                       help=f"listing hops (pagination depth) from a start page (default: {DEFAULT_MAX_DEPTH})")
    crawl.add_argument("--max-pages", type=positive, default=None,
                       help="page budget: pages each site may fetch in the crawl (listings, feeds and articles); "
                       f"links past it are counted in the summary, not followed (default: {DEFAULT_MAX_PAGES}, "
                       "or a sources file's max_pages)")
    crawl.add_argument("--since", type=iso_date, metavar="YYYY-MM-DD",
                       help="ignore feed and sitemap entries older than this date")
    crawl.add_argument("--host-rate", type=non_negative_float, default=None,
                       help="requests per second per host, 0 = unlimited (default: $INGEST_HOST_RATE or 1)")
    crawl.add_argument("--crawl-id", help="id to tag records and log lines with (default: new)")
    crawl.add_argument("--allow-private", action="store_true", default=None,
                       help="allow loopback and private addresses (link-local/metadata stay refused)")
    crawl.add_argument("--json", action="store_true", help="print the summary as JSON")

    worker = sub.add_parser(
        "worker",
        help="run stage workers against the broker in INGEST_BROKER_URL (redis://…)",
        description="Run worker processes for some or all stages. Start as many as you like, on as many "
        "hosts as you like, all pointed at the same broker and storage.",
    )
    worker.add_argument("--stages", default=",".join(STAGES),
                        help=f"comma-separated stages to work on (default: {','.join(STAGES)})")
    worker.add_argument("--processes", type=positive, default=available_cpus(),
                        help="worker processes (default: one per core)")
    worker.add_argument("--threads", type=positive, default=8, help="threads per process (default: 8)")
    worker.add_argument("--page-processes", type=positive, default=None, metavar="N",
                        help="page-parsing (discover, extract) child processes per worker process (default: "
                        "$INGEST_PAGE_PROCESSES, else one and a half per core); for an extract-only host, one "
                        "worker process with N = cores and --threads 2N keeps every core parsing")
    worker.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                        help="serve Prometheus /metrics, /healthz and /readyz on PORT, one server for all the "
                        "processes of this host (default: $INGEST_METRICS_PORT, off when unset)")
    worker.add_argument("--allow-private", action="store_true", default=None,
                        help="allow loopback and private addresses")

    from workers.cli.enqueue import add_enqueue_parser

    add_enqueue_parser(sub)

    extract = sub.add_parser(
        "extract",
        help="extract the article from an HTML file and print the record as JSON",
        description="Run the extract stage on a saved page, as the pipeline would (without fetch fields).",
    )
    extract.add_argument("file", type=Path, help="HTML file (- for stdin)")
    extract.add_argument("--url", required=True, help="the page's URL (for links, canonical and id)")
    extract.add_argument("--encoding", help="charset, when the file's own declaration is wrong or missing")

    sources = sub.add_parser(
        "sources",
        help="check, load and list the sources file (sites, start pages, patterns, intervals, rates)",
        description="A sources file (TOML) declares each site; see examples/sources.toml. `load` registers "
        "the sources with the running workers (Redis) and schedules their polls.",
    )
    sources_sub = sources.add_subparsers(dest="sources_command", required=True, metavar="ACTION")
    validate = sources_sub.add_parser("validate", help="check a sources file; report every error with its line")
    validate.add_argument("file", type=Path)
    load = sources_sub.add_parser("load", help="register the file's sources with the workers and schedule them")
    load.add_argument("file", type=Path)
    load.add_argument("--replace", action="store_true", help="also remove loaded sources that the file lacks")
    sources_sub.add_parser("list", help="the loaded sources with their next poll")

    add_ops_parsers(sub)
    add_crawls_parsers(sub)
    add_dlq_parser(sub)
    add_trace_parser(sub)
    add_export_parser(sub)
    sub.add_parser("config", help="print the effective settings (secrets masked) and their variables")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ingest`` command; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.command == "crawl":
            return _crawl(args, settings)
        if args.command == "worker":
            return _worker(args, settings)
        if args.command == "enqueue":
            from workers.cli.enqueue import run_enqueue

            return run_enqueue(args, settings)
        if args.command == "extract":
            return _extract(args)
        if args.command in OPS_COMMANDS:
            return run_ops(args, settings)
        if args.command in CRAWLS_COMMANDS:
            return run_crawls(args, settings)
        if args.command == "sources":
            from workers.cli.sources import run_sources

            return run_sources(args, settings)
        if args.command == "dlq":
            return run_dlq(args, settings)
        if args.command == "trace":
            return run_trace(args, settings)
        if args.command == "export":
            return run_export(args, settings)
        return _config(settings)
    except (UsageError, SettingsError) as exc:
        print(f"ingest {args.command}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        # Redis or object storage unreachable: one line that says which and where, never a traceback.
        service = _unreachable(exc)
        if service is None:
            raise
        print(f"ingest {args.command}: {service}", file=sys.stderr)
        return 2


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ingest")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _unreachable(exc: BaseException) -> str | None:
    """A one-line description when ``exc`` means Redis or object storage cannot be reached."""
    import redis
    from obstore.exceptions import BaseError as StoreError

    from workers.core.settings import redact_url

    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        url = redact_url(os.environ.get(ENV_PREFIX + "BROKER_URL", "redis://localhost:6379/0"))
        parts = str(exc).strip().rstrip(".").split(". ")
        cause = parts[-1].lower() if len(parts) > 1 else parts[0]
        return f"cannot reach Redis at {url} ({cause}); is it running, and is INGEST_BROKER_URL right?"
    if isinstance(exc, redis.exceptions.AuthenticationError | redis.exceptions.ResponseError):
        return f"Redis refused the command ({str(exc)[:200]}); check the password in INGEST_BROKER_URL"
    if isinstance(exc, StoreError):
        url = redact_url(os.environ.get(ENV_PREFIX + "STORAGE_URL", "./ingest-data"))
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        return f"cannot use storage {url}: {first}"
    return None


def _check_storage(settings: Settings) -> None:
    """Fail at once, in one line, when the storage cannot be reached (not after a crawl's retries)."""
    from obstore.exceptions import BaseError as StoreError

    from workers.core.settings import redact_url
    from workers.core.storage import open_storage

    try:
        open_storage(settings.storage_url, s3_endpoint=settings.s3_endpoint).exists(".ingest-probe")
    except StoreError as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"cannot use storage {redact_url(settings.storage_url)}: {first}") from None


def _worker_logging(settings: Settings) -> None:
    """One log format for the parent and every worker process, decided here, where the terminal is."""
    import logging

    from workers.core.logs import configure_logging

    fmt = settings.log_format
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    os.environ[ENV_PREFIX + "LOG_FORMAT"] = fmt  # the worker processes read it at start
    configure_logging(settings.with_overrides(log_format=fmt))
    # Dramatiq's parent says when it boots, restarts a dead worker process and shuts down: an
    # operator wants those lines, in the same format as the rest.
    logging.getLogger("dramatiq").setLevel(logging.INFO)


def _check_storage_elsewhere(settings: Settings) -> None:
    """:func:`_check_storage` in a child process: obstore starts a runtime with threads on first
    use, and the worker processes Dramatiq is about to fork from this one would inherit it broken
    (their first write would hang)."""
    import subprocess

    probe = subprocess.run(
        [sys.executable, "-c", "import sys; from workers.cli.main import _probe_storage; sys.exit(_probe_storage())"],
        capture_output=True, text=True, timeout=120,
    )
    if probe.returncode != 0:
        raise UsageError(probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else "storage check failed")


def _probe_storage() -> int:
    """Entry point of the storage check's child process: 0, or 2 with the reason on stderr."""
    try:
        _check_storage(Settings.from_env())
    except (UsageError, SettingsError) as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


def _check_redis(settings: Settings) -> None:
    """Fail at once when Redis does not answer, instead of every worker process logging it forever."""

    from workers.core.redisclient import redis_client
    redis_client(settings.broker_url, socket_connect_timeout=5, socket_timeout=5).ping()


def _crawl(args: argparse.Namespace, settings: Settings) -> int:
    from workers.core.logs import configure_logging
    from workers.core.urls import InvalidURL, normalize_url
    from workers.pipeline.crawl import progress_logger, progress_printer, run_embedded

    if not args.urls and args.sources is None:
        raise UsageError("give start URLs, or --sources FILE")
    for url in args.urls:
        try:
            normalize_url(url)
        except InvalidURL as exc:
            raise UsageError(f"{url!r}: {exc}") from None
    sources = None
    if args.sources is not None:
        from workers.sources.sourcefile import SourcesError, load_sources

        try:
            sources = load_sources(args.sources)
        except SourcesError as exc:
            raise UsageError(f"{args.sources} has errors:\n{exc}") from None
    if args.urls and args.kind != "article" and (sources is not None or args.since):
        from workers.pipeline.crawl import sources_for_urls

        sources = (sources or []) + sources_for_urls(args.urls, max_depth=args.max_depth)
    if sources is not None and (args.since or args.max_pages):
        from dataclasses import replace

        sources = [replace(s, since=args.since or s.since, max_pages=args.max_pages or s.max_pages) for s in sources]
    settings = settings.with_overrides(
        broker_url="memory://",
        storage_url=args.out,
        host_rate=args.host_rate,
        allow_private=args.allow_private,
    )
    tty = sys.stderr.isatty()
    configure_logging(settings, quiet=tty)
    _check_storage(settings)
    summary = run_embedded(
        args.urls,
        settings,
        processes=args.processes,
        threads=args.threads,
        max_depth=args.max_depth,
        max_pages=args.max_pages or DEFAULT_MAX_PAGES,
        kind=args.kind,
        crawl_id=args.crawl_id,
        sources=sources,
        progress=progress_printer(sys.stderr) if tty else progress_logger(),
    )
    if args.json:
        sys.stdout.write(orjson.dumps(summary.as_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(summary.render())
    if summary.interrupted:
        return 130
    why = summary.nothing_fetched()
    if why is not None:
        print(f"ingest crawl: {why}", file=sys.stderr)
        return EXIT_NOTHING_FETCHED
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown or not stages:
        raise UsageError(f"--stages: unknown stage(s) {', '.join(unknown) or '(none given)'}; "
                         f"choose from {','.join(STAGES)}")
    if settings.embedded:
        raise UsageError(
            "needs a shared broker: set INGEST_BROKER_URL=redis://host:6379/0 "
            "(for a run without services, use `ingest crawl`)"
        )
    if args.allow_private:
        os.environ[ENV_PREFIX + "ALLOW_PRIVATE"] = "1"
    if args.page_processes is not None:
        settings.with_overrides(page_processes=args.page_processes)  # validates the count, as the env would be
        os.environ[ENV_PREFIX + "PAGE_PROCESSES"] = str(args.page_processes)
    _check_redis(settings)
    _check_storage_elsewhere(settings)
    _worker_logging(settings)
    forks: list[str] = []
    port = args.metrics_port if args.metrics_port is not None else settings.metrics_port
    if port:
        settings.with_overrides(metrics_port=port)  # validates the port
        forks = _metrics_environment(port)
    from dramatiq.cli import main as dramatiq_main
    from dramatiq.cli import make_argument_parser

    dramatiq_args = make_argument_parser().parse_args(
        ["workers.pipeline.entry", "--processes", str(args.processes), "--threads", str(args.threads),
         "--skip-logging", *forks, "--queues", *stages]
    )
    return int(dramatiq_main(dramatiq_args) or 0)


def _metrics_environment(port: int) -> list[str]:
    """Prepare multi-process metrics for the worker processes about to start; the fork-function
    arguments that start the one exposition server of this host."""
    import tempfile

    # A fresh directory per run: prometheus_client's multi-process files must not outlive the
    # processes that wrote them, or a restart would count everything twice.
    directory = tempfile.mkdtemp(prefix="ingest-metrics-")
    os.environ.update({"PROMETHEUS_MULTIPROC_DIR": directory, "prometheus_multiproc_dir": directory,
                       "dramatiq_prom_db": directory, ENV_PREFIX + "METRICS_PORT": str(port)})
    return ["--fork-function", "workers.core.metrics:serve"]


def _extract(args: argparse.Namespace) -> int:
    from workers.core.urls import InvalidURL, validate_url
    from workers.extract.article import extract_article

    try:
        validate_url(args.url)
    except InvalidURL as exc:
        raise UsageError(f"--url {args.url!r}: {exc}") from None
    try:
        html = sys.stdin.buffer.read() if str(args.file) == "-" else args.file.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    record = extract_article(html, args.url, encoding=args.encoding)
    sys.stdout.write(orjson.dumps(record, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def _config(settings: Settings) -> int:
    from dataclasses import fields

    for f in fields(Settings):
        value = settings.redacted()[f.name]
        shown = ",".join(value) if isinstance(value, tuple) else value
        print(f"{ENV_PREFIX}{f.name.upper():<22} = {shown!s:<40} # {f.metadata.get('doc', '')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
