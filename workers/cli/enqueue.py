"""``ingest enqueue``: send URLs to the Redis workers, from arguments, a file, stdin or JSON lines.

Plain input is one URL a line (``#`` comments); ``--jsonl`` input is one JSON object a line,
``{"url": …}`` with optional ``kind``, ``source``, ``crawl_id``, ``max_depth``, ``max_pages`` for
scripts that carry per-URL metadata.  Bad input is reported as ``FILE:LINE: reason`` on stderr and skipped,
the rest is sent; ``--json`` prints the whole report on stdout for the calling script.  Exit
code 0 when everything was sent (or already queued), 1 when something was rejected, 2 on bad
arguments (Redis unreachable: ``main`` turns that into one line and 2 as well).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import orjson

from workers.core.settings import Settings
from workers.sources.sourcefile import DEFAULT_MAX_DEPTH, DEFAULT_MAX_PAGES

if TYPE_CHECKING:
    from workers.pipeline.enqueue import Entry

# workers.pipeline is imported inside the functions: the parser is built for every `ingest`
# command, `--help` included, and must not load Dramatiq, Redis and the stages for it.

__all__ = ["JSONL_KEYS", "add_enqueue_parser", "jsonl_entries", "run_enqueue"]

#: The keys a ``--jsonl`` line may have; anything else is a typo the script should hear about.
JSONL_KEYS = ("url", "kind", "source", "crawl_id", "max_depth", "max_pages")


def add_enqueue_parser(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``ingest enqueue`` to the ``ingest`` subparsers ``sub``."""
    enqueue = sub.add_parser(
        "enqueue",
        help="send URLs to the workers (arguments, -f FILE, - for stdin, or --jsonl FILE|-)",
        description="Validate and send URLs to the fetch queue. Invalid input is reported with the line "
        "it came from (FILE:LINE: reason) and not sent; the valid URLs are. Exit code 0 when all were "
        "sent or already queued, 1 when any was rejected, 2 on bad arguments or an unreachable Redis.",
        epilog="--jsonl lines look like {\"url\": \"https://news.example/\", \"kind\": \"listing\", "
        "\"source\": \"harbour\", \"crawl_id\": \"c1\", \"max_depth\": 2, \"max_pages\": 20000}; only url "
        "is required, the others default to the flags below. --json prints {\"crawl_id\", \"crawl_ids\", \"sent\", "
        "\"already_queued\", \"rejected\": [{\"line\", \"where\", \"url\", \"reason\"}]} on stdout.",
    )
    enqueue.add_argument("urls", nargs="*", metavar="URL", help="URLs, or - to read them from stdin")
    enqueue.add_argument("-f", "--file", type=Path, help="read URLs from FILE, one per line (# comments)")
    enqueue.add_argument("--jsonl", metavar="FILE|-",
                         help="read one JSON object a line (url, kind, source, crawl_id, max_depth, max_pages) from "
                         "FILE or stdin")
    enqueue.add_argument("--kind", choices=("listing", "article"), default="article",
                         help="listing pages are read for links; articles are extracted (default: article)")
    enqueue.add_argument("--crawl-id", help="crawl to add the URLs to (default: new)")
    enqueue.add_argument("--max-depth", type=int, default=DEFAULT_MAX_DEPTH,
                         help=f"listing hops to follow (default: {DEFAULT_MAX_DEPTH})")
    enqueue.add_argument("--max-pages", type=int, default=None,
                         help=f"page budget of a crawl started without a source: pages its discovery may send "
                         f"(default: {DEFAULT_MAX_PAGES}); a source's own max_pages wins")
    enqueue.add_argument("--json", action="store_true",
                         help="print the report (crawl ids, sent, already queued, rejected lines) as JSON on stdout")


def _stdin() -> Iterable[str]:
    """Standard input's lines as UTF-8 text in which an undecodable byte is replaced, as in a
    -f FILE, instead of ending the run half-way with a traceback.  Decoded line by line rather
    than through a new TextIOWrapper, which would close sys.stdin when collected."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:
        return sys.stdin
    return (line.decode("utf-8", "replace") for line in buffer)


def _fail(message: str) -> int:
    print(f"ingest enqueue: {message}", file=sys.stderr)
    return 2


class _Unreadable(Exception):
    """An input file that cannot be opened or read: a bad argument (exit 2), not a rejected line."""


def _plain_lines(args: argparse.Namespace, stdin: Iterable[str]) -> Iterator[tuple[str, int | None, str]]:
    """``(where, line, url)`` from arguments, -f FILE and stdin, ``where`` naming the line."""
    for i, url in enumerate(args.urls, 1):
        if url == "-":
            for n, line in enumerate(stdin, 1):
                yield "<stdin>", n, line
        else:
            yield f"argument {i}", None, url
    if args.file is not None:
        try:
            with args.file.open(encoding="utf-8", errors="replace") as fh:
                for n, line in enumerate(fh, 1):
                    yield str(args.file), n, line
        except OSError as exc:
            raise _Unreadable(f"cannot read {args.file}: {exc.strerror}") from None


def jsonl_entries(lines: Iterable[str], name: str) -> Iterator[Entry]:
    """Entries of JSON lines read from ``name``; a bad line is an entry carrying its problem."""
    from workers.pipeline.enqueue import Entry

    for n, text in enumerate(lines, 1):
        where = f"{name}:{n}"
        if not text.strip():
            continue
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            yield Entry(url=None, where=where, line=n, problem=f"not JSON ({exc})")
            continue
        if not isinstance(obj, dict):
            yield Entry(url=None, where=where, line=n, problem="not a JSON object")
            continue
        unknown = sorted(set(obj) - set(JSONL_KEYS))
        url = obj.get("url")
        if unknown:
            problem: str | None = (f"unknown key{'s' if len(unknown) > 1 else ''} "
                                   f"{', '.join(repr(k) for k in unknown)}; expected {', '.join(JSONL_KEYS)}")
        else:
            problem = "no url" if url is None or url == "" else None
        yield Entry(url=url, kind=obj.get("kind"), source=obj.get("source"), crawl_id=obj.get("crawl_id"),
                    max_depth=obj.get("max_depth"), max_pages=obj.get("max_pages"), where=where, line=n,
                    problem=problem)


def _entries(args: argparse.Namespace, stdin: Iterable[str]) -> Iterator[Entry]:
    """The entries of every input the arguments name, in order."""
    from workers.pipeline.enqueue import Entry

    if args.jsonl is not None:
        if args.jsonl == "-":
            yield from jsonl_entries(stdin, "<stdin>")
            return
        try:
            with Path(args.jsonl).open(encoding="utf-8", errors="replace") as fh:
                yield from jsonl_entries(fh, args.jsonl)
        except OSError as exc:
            raise _Unreadable(f"cannot read {args.jsonl}: {exc.strerror}") from None
        return
    for name, n, raw in _plain_lines(args, stdin):
        stripped = raw.strip()
        if stripped and not stripped.startswith("#"):
            yield Entry(url=stripped, where=f"{name}:{n}" if n is not None else name, line=n)


def run_enqueue(args: argparse.Namespace, settings: Settings, *, stdin: Iterable[str] | None = None,
                out: TextIO | None = None) -> int:
    """Run ``ingest enqueue``; returns the exit code (0 all sent, 1 some rejected, 2 bad arguments)."""
    stdin = _stdin() if stdin is None else stdin
    out = sys.stdout if out is None else out
    if args.jsonl is not None and (args.urls or args.file is not None):
        return _fail("give --jsonl FILE|-, or URLs and -f FILE, not both")
    if not args.urls and args.file is None and args.jsonl is None:
        return _fail("give URLs as arguments, -f FILE, - to read stdin, or --jsonl FILE|-")
    if settings.embedded:
        return _fail("needs a shared broker: set INGEST_BROKER_URL=redis://host:6379/0")
    # Checked before anything is sent, so a typo in a name does not leave half the input sent.
    for name in (args.jsonl if args.jsonl != "-" else None, args.file):
        if name is not None and not Path(name).is_file():
            return _fail(f"cannot read {name}: {'not a file' if Path(name).exists() else 'no such file'}")
    from workers.pipeline.enqueue import enqueue_entries, entry_problem

    # The flags are the defaults of every line, checked as a line's own values are.
    problem = entry_problem(crawl_id=args.crawl_id, max_depth=args.max_depth, max_pages=args.max_pages)
    if problem is not None:
        return _fail(f"--{problem.replace('_', '-', 1)}")
    try:
        result = enqueue_entries(_entries(args, stdin), settings, kind=args.kind, crawl_id=args.crawl_id,
                                 max_depth=args.max_depth, max_pages=args.max_pages)
    except _Unreadable as exc:
        return _fail(str(exc))
    for r in result.rejected:
        print(f"{r.where}: {r.url!r}: {r.reason}" if r.url else f"{r.where}: {r.reason}", file=sys.stderr)
    crawls = result.crawl_ids or (result.crawl_id,)
    print(f"crawl{'s' if len(crawls) > 1 else ''} {', '.join(crawls)}: enqueued {result.sent}, "
          f"already queued {result.already_queued}, rejected {len(result.rejected)}", file=sys.stderr)
    if args.json:
        out.write(orjson.dumps(result.as_dict()).decode() + "\n")
    return 1 if result.rejected else 0
