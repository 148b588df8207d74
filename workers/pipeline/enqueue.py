"""Sending work from scripts: validate URLs, claim them for the crawl, put them on the fetch queue.

``enqueue`` is the Python API (``from workers import enqueue``): URL strings in, a frozen
:class:`EnqueueResult` out.  ``enqueue_entries`` is what it and ``ingest enqueue`` share: entries
that may carry their own kind, source, crawl id and depth (``--jsonl``), and where they came from.
``enqueue_urls`` is the older ``(where, url)`` form, kept for its callers.  Bad input is reported
with its reason and skipped; the good URLs are always sent.

Each URL is claimed, sent, then committed in the seen-set.  The claim's owner is the same for
every enqueue into one crawl, so when a run dies (or Redis goes away) after a claim and before
its send, running the same enqueue again finds the uncommitted claim its own and sends the URL;
committed URLs are duplicates.  Two enqueues of one URL into one crawl at the same moment may
both send it: a duplicate fetch, which the sink absorbs, never a lost URL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

from dramatiq.message import Message

from workers.core.broker import make_broker
from workers.core.messages import fetch_task
from workers.core.settings import Settings, SettingsError
from workers.core.urls import InvalidURL, host_of, normalize_url, url_id
from workers.discover.frontier import make_seen
from workers.pipeline.actors import DEFAULT_MAX_DEPTH
from workers.pipeline.crawl import new_crawl_id
from workers.sources.sourcefile import default_source

__all__ = [
    "KINDS",
    "EnqueueReport",
    "EnqueueResult",
    "Entry",
    "Rejected",
    "enqueue",
    "enqueue_entries",
    "enqueue_urls",
    "entry_problem",
    "resolve_settings",
    "send_task",
]

#: What an enqueued URL may be: a listing page (read for links) or an article (extracted).
KINDS = ("listing", "article")
#: The fetch schema's rules for a source name and a crawl id, checked here so that a bad value is
#: a rejected line with a reason, not a poison message at the worker.
_SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_MAX_CRAWL_ID = 64


@dataclass(frozen=True)
class Rejected:
    """One input that was not sent, and why.

    ``index`` is its position in the input (from 0); ``where`` and ``line`` say where it came from
    when the command read it from a file or stdin (``"urls.txt:3"``, 3), empty for Python input.
    """

    index: int
    url: str
    reason: str
    where: str = ""
    line: int | None = None


@dataclass(frozen=True)
class EnqueueResult:
    """What an enqueue did: URLs sent, URLs already sent into their crawl, and the rejected inputs.

    ``crawl_id`` is the crawl of every URL that names none; ``crawl_ids`` every crawl that a URL
    was sent to or found already in, in the order first seen.
    """

    crawl_id: str
    sent: int = 0
    already_queued: int = 0
    rejected: tuple[Rejected, ...] = ()
    crawl_ids: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing was rejected (``ingest enqueue`` exits 0)."""
        return not self.rejected

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (``ingest enqueue --json``)."""
        return {
            "crawl_id": self.crawl_id,
            "crawl_ids": list(self.crawl_ids),
            "sent": self.sent,
            "already_queued": self.already_queued,
            "rejected": [{"line": r.line, "where": r.where or None, "url": r.url or None, "reason": r.reason}
                         for r in self.rejected],
        }


@dataclass(frozen=True)
class Entry:
    """One URL to send, with what it may say for itself (``None``: the enqueue's default).

    ``problem`` marks input the reader already found bad (a line that is not JSON): it is
    reported as rejected in its place in the input, never sent.
    """

    url: Any
    kind: Any = None
    source: Any = None
    crawl_id: Any = None
    max_depth: Any = None
    max_pages: Any = None
    where: str = ""
    line: int | None = None
    problem: str | None = None


@dataclass
class EnqueueReport:
    """What ``enqueue_urls`` did (the older, mutable form of :class:`EnqueueResult`)."""

    crawl_id: str
    enqueued: int = 0
    duplicates: int = 0
    rejected: list[tuple[str, str, str]] = field(default_factory=list)


def send_task(broker: Any, stage: str, task: dict[str, Any]) -> None:
    """Put one task on a stage's queue without declaring actors (the workers own them)."""
    broker.enqueue(Message(queue_name=stage, actor_name=stage, args=(task,), kwargs={}, options={}))


def entry_problem(
    *, kind: Any = None, source: Any = None, crawl_id: Any = None, max_depth: Any = None, max_pages: Any = None
) -> str | None:
    """Why these per-URL values cannot be sent, or None when they can (``None`` values are not checked)."""
    if kind is not None and kind not in KINDS:
        return f"kind {kind!r}: expected {' or '.join(KINDS)}"
    if source is not None and not (isinstance(source, str) and _SOURCE_NAME.fullmatch(source)):
        return f"source {source!r}: expected a source name (lower-case letters, digits, '-' and '_')"
    if crawl_id is not None and not (isinstance(crawl_id, str) and 0 < len(crawl_id) <= _MAX_CRAWL_ID):
        return f"crawl_id {crawl_id!r}: expected a string of 1 to {_MAX_CRAWL_ID} characters"
    # bool is an int to Python, but ``"max_depth": true`` is a mistake, not a depth of 1.
    if max_depth is not None and (isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 0):
        return f"max_depth {max_depth!r}: expected a whole number of at least 0"
    if max_pages is not None and (isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 1):
        return f"max_pages {max_pages!r}: expected a whole number of at least 1"
    return None


def resolve_settings(settings: Settings | None, overrides: dict[str, Any]) -> Settings:
    """``settings`` (or the environment's, when None) with keyword overrides such as ``broker_url=``.

    Raises TypeError naming an override that is no setting, SettingsError on a bad value.
    """
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown setting {unknown[0]!r}; the settings are the fields of `ingest config`")
    return Settings.from_env(**overrides) if settings is None else settings.with_overrides(**overrides)


def enqueue(
    urls: Iterable[str],
    *,
    kind: str = "listing",
    crawl_id: str | None = None,
    source: str | None = None,
    max_depth: int | None = None,
    max_pages: int | None = None,
    settings: Settings | None = None,
    redis_client: Any = None,
    **overrides: Any,
) -> EnqueueResult:
    """Send URLs to the Redis workers' fetch queue, each once per crawl; report what happened.

    ``urls`` is any iterable of URL strings (a list, a file's lines, a generator), read once and
    lazily.  Settings come from the environment (``INGEST_*``) unless ``settings`` is given;
    keyword overrides such as ``broker_url="redis://…"`` win over both.  ``source`` names a
    loaded source (``ingest sources load``) whose patterns and limits then apply; without one,
    ``max_pages`` is the crawl's page budget (default 10,000 pages).  Raises ValueError on a bad
    ``kind``/``source``/``crawl_id``/``max_depth``/``max_pages`` and SettingsError when the broker is
    not shared (``memory://``), both before anything is sent::

        from workers import enqueue
        result = enqueue(["https://news.example/world/"], broker_url="redis://localhost:6379/0")
        print(result.crawl_id, result.sent, result.already_queued)
        for r in result.rejected:
            print(r.index, r.url, r.reason)
    """
    if isinstance(urls, str | bytes):
        raise TypeError("urls: give an iterable of URL strings, not one string")
    return enqueue_entries(
        (Entry(url=url) for url in urls),
        resolve_settings(settings, overrides),
        kind=kind,
        crawl_id=crawl_id,
        source=source,
        max_depth=max_depth,
        max_pages=max_pages,
        redis_client=redis_client,
    )


def enqueue_entries(
    entries: Iterable[Entry],
    settings: Settings,
    *,
    kind: str = "listing",
    crawl_id: str | None = None,
    source: str | None = None,
    max_depth: int | None = None,
    max_pages: int | None = None,
    redis_client: Any = None,
) -> EnqueueResult:
    """Send each good entry to the fetch queue once for its crawl; the others come back as rejected.

    The keyword values are the defaults of entries that name none (ValueError when bad).
    """
    problem = entry_problem(kind=kind, source=source, crawl_id=crawl_id, max_depth=max_depth, max_pages=max_pages)
    if problem is not None:
        raise ValueError(problem)
    if settings.embedded:
        raise SettingsError("enqueue needs a shared broker: set INGEST_BROKER_URL=redis://host:6379/0 "
                            "(or pass broker_url=); an in-memory broker has no workers to read it")
    default_crawl = crawl_id or new_crawl_id()
    default_depth = DEFAULT_MAX_DEPTH if max_depth is None else max_depth

    from workers.core.redisclient import redis_client as open_redis

    client = redis_client or open_redis(settings.broker_url)
    broker = make_broker(settings, redis_client=client)
    seen = make_seen(client, settings.namespace, settings.seen_backend, capacity=settings.bloom_capacity,
                     error_rate=settings.bloom_error)
    sent = queued = 0
    rejected: list[Rejected] = []
    crawls: dict[str, None] = {}  # an ordered set
    try:
        for index, entry in enumerate(entries):
            url, reason = _checked(entry)
            if url is None:
                rejected.append(Rejected(index, _shown(entry.url), reason, entry.where, entry.line))
                continue
            crawl = entry.crawl_id or default_crawl
            crawls[crawl] = None
            uid = url_id(url)
            # A URL repeated in the input, or sent by an earlier run into the same crawl, was
            # committed after its send and is a duplicate; one claimed but never sent is ours again.
            if not seen.claim(crawl, [uid], owner=f"enqueue:{crawl}")[0]:
                queued += 1
                continue
            task_kind, hosts = _start_kind(url, entry.kind or kind, named_source=bool(entry.source or source))
            task = fetch_task(
                crawl_id=crawl,
                url=url,
                url_id=uid,
                kind=task_kind,
                max_depth=default_depth if entry.max_depth is None else entry.max_depth,
                max_pages=max_pages if entry.max_pages is None else entry.max_pages,
                allowed_hosts=hosts,
                source=entry.source or source,
            )
            send_task(broker, "fetch", task)
            seen.commit(crawl, [uid])
            sent += 1
    finally:
        broker.close()
    return EnqueueResult(crawl_id=default_crawl, sent=sent, already_queued=queued, rejected=tuple(rejected),
                         crawl_ids=tuple(crawls))


def _start_kind(url: str, kind: str, *, named_source: bool) -> tuple[str, list[str]]:
    """The fetch kind and allowed hosts of an enqueued URL, as ``ingest crawl URL`` reads it.

    The embedded run turns a bare start URL into a one-site source (:func:`default_source`):
    a site root is a *home* page (listing + feeds + robots.txt sitemaps), a feed or sitemap path
    is read as one, and the host's ``www.`` twin is allowed.  A ``listing`` sent to the workers
    gets the same reading, so one start URL means one crawl in every mode.  A URL of a named
    source keeps what it said: the source's own rules apply at the workers.
    """
    if kind != "listing" or named_source:
        return kind, [host_of(url)]
    start = default_source(url)
    return start.kinds[0], list(start.allowed_hosts)


def _shown(value: Any) -> str:
    """An input as a rejection shows it: the string as given (stripped), anything else as its repr."""
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else repr(value)


def _checked(entry: Entry) -> tuple[str | None, str]:
    """``(normalised URL, "")`` for an entry that can be sent, else ``(None, why not)``."""
    if entry.problem is not None:
        return None, entry.problem
    if not isinstance(entry.url, str):
        return None, f"expected a URL string, got {type(entry.url).__name__}"
    problem = entry_problem(kind=entry.kind, source=entry.source, crawl_id=entry.crawl_id, max_depth=entry.max_depth,
                            max_pages=entry.max_pages)
    if problem is not None:
        return None, problem
    try:
        return normalize_url(entry.url.strip()), ""
    except InvalidURL as exc:
        return None, str(exc)


def _entries_of_lines(lines: Iterable[tuple[str, str]]) -> Iterator[Entry]:
    """Entries of ``(where, url)`` pairs, blank lines and ``#`` comments left out."""
    for where, raw in lines:
        stripped = raw.strip()
        if stripped and not stripped.startswith("#"):
            yield Entry(url=stripped, where=where)


def enqueue_urls(
    lines: Iterable[tuple[str, str]],
    settings: Settings,
    *,
    kind: str = "article",
    crawl_id: str | None = None,
    max_depth: int = DEFAULT_MAX_DEPTH,
    redis_client: Any = None,
) -> EnqueueReport:
    """Send each valid URL of ``(where, url)`` pairs to the fetch queue once for the crawl.

    The older form of :func:`enqueue`, kept for its callers; blank lines and ``#`` comments are
    skipped, and ``rejected`` holds ``(where, url, reason)``::

        report = enqueue_urls([("script", "https://news.example/")], Settings.from_env(), kind="listing")
    """
    result = enqueue_entries(_entries_of_lines(lines), settings, kind=kind, crawl_id=crawl_id, max_depth=max_depth,
                             redis_client=redis_client)
    return EnqueueReport(crawl_id=result.crawl_id, enqueued=result.sent, duplicates=result.already_queued,
                         rejected=[(r.where, r.url, r.reason) for r in result.rejected])
