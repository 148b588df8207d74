"""The four stage actors: thin shells that validate, call the pure core, do the I/O, hand on.

Declared on an explicit broker by :func:`declare_actors` (never at import), so the embedded
run, the Redis workers and every test build the same actors on the broker they chose.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from workers.core.broker import DEFAULT_MAX_RETRIES
from workers.core.crawlstate import claim_scope
from workers.core.messages import InvalidMessage, fetch_task, sink_task, validate
from workers.core.middleware import PoisonMessage
from workers.core.urls import InvalidURL, host_of, url_id, validate_url
from workers.discover.classify import classify_page
from workers.discover.pages import Found, admissible, found_on_page, routed_by_memory
from workers.discover.shapes import url_shape
from workers.discover.traps import article_id_query, query_variant_key
from workers.extract.health import page_health
from workers.extract.sitememory import strip_recurring
from workers.fetch.stage import fetch
from workers.pipeline.crawls import crawl_tracking
from workers.pipeline.guards import guarded, retry_policy
from workers.pipeline.runtime import Runtime
from workers.sink.record import build_record, with_text
from workers.sink.write import write_record
from workers.sources.sourcefile import DEFAULT_MAX_DEPTH as SOURCE_MAX_DEPTH
from workers.sources.sourcefile import DEFAULT_MAX_PAGES as SOURCE_MAX_PAGES
from workers.sources.sourcefile import Source

__all__ = ["DEFAULT_MAX_DEPTH", "declare_actors"]

#: Listing hops followed from a start page when the task does not say (front -> section -> page 2
#: -> page 3 …): pagination depth.  The page budget per poll is what stops a runaway crawl.
DEFAULT_MAX_DEPTH = SOURCE_MAX_DEPTH
#: Pages one poll of a crawl without a sources file may discover.
DEFAULT_MAX_PAGES = SOURCE_MAX_PAGES


def _received(kind: str, message: Any) -> dict[str, Any]:
    try:
        task = validate(kind, message)
    except InvalidMessage as exc:
        raise PoisonMessage(str(exc)) from None
    # The schema checks a URL's shape; its parts (a broken IPv6 host, whitespace) only parse: a URL
    # that never will is poison now, not an error retried for minutes.
    for field in ("url", "final_url"):
        value = task.get(field)
        if isinstance(value, str):
            try:
                validate_url(value)
            except InvalidURL as exc:
                raise PoisonMessage(f"{kind} message invalid at {field}: URL {value[:200]!r}: {exc}") from None
    return task


def _retries() -> int:
    current = CurrentMessage.get_current_message()
    return int(current.options.get("retries", 0)) if current is not None else 0


def _message_id() -> str:
    current = CurrentMessage.get_current_message()
    # Called outside a worker (tests, scripts) there is no redelivery to recognise: a fresh owner.
    return current.message_id if current is not None else uuid.uuid4().hex


def _trace(task: dict[str, Any]) -> dict[str, Any]:
    return {"url": task["url"], "url_id": task["url_id"], "crawl_id": task["crawl_id"], "host": host_of(task["url"])}


def fetch_stage(rt: Runtime, message: Any) -> None:
    """Fetch one URL politely, store the raw page, send its claim check on to discover or extract."""
    task = _received("fetch", message)
    source = rt.sources.get(task["source"]) if "source" in task else None
    fetch(rt, task, source, _trace(task), _retries())


#: Distinct query strings one path may have within a crawl (calendar and session-id traps).
MAX_QUERY_VARIANTS = 50


def discover_stage(rt: Runtime, message: Any) -> None:
    """Read a stored discovery page (listing, home, feed, sitemap, robots.txt) and send each URL
    it leads to on to fetch, once per crawl, within the source's limits."""
    page = _received("page", message)
    trace = _trace(page)
    started = time.perf_counter()
    body = rt.storage.get(page["raw_key"])
    if page.get("probe") and _is_article(rt, page, body, trace):
        return
    source = rt.sources.get(page["source"]) if "source" in page else None
    if source is not None:
        allowed = frozenset(source.allowed_hosts or [trace["host"]])
    else:
        # An ad-hoc crawl stays on the start host, and on the host a redirect led it to.
        allowed = frozenset(page.get("allowed_hosts") or [trace["host"]]) | {host_of(page["final_url"])}
    max_depth = page.get("max_depth", source.max_depth if source else DEFAULT_MAX_DEPTH)
    # In the page pool: a hostile page ends as discover.timeout instead of freezing the worker.
    found = rt.bounded(found_on_page, page["kind"], body, page["final_url"], page.get("content_type"),
                       allowed_hosts=allowed, since=source.since if source else None, probes=rt.settings.probes)
    found = _with_site_memory(rt, admissible(found, allowed_hosts=allowed, source=source))
    # A probe may turn out a listing: it is one more listing hop, within the same depth.
    found = [f for f in found if f.kind not in ("listing", "probe") or page["depth"] < max_depth]
    found = _within_query_budget(rt, page["crawl_id"], found)
    refresh = bool(source and source.refresh)
    by_scope: dict[str, list[Found]] = {}
    for f in found:
        by_scope.setdefault(claim_scope(page, f.kind, refresh), []).append(f)
    owner = _message_id()
    new: list[tuple[str, Found]] = []
    for scope, items in by_scope.items():
        claimed = rt.seen.claim(scope, [url_id(f.url) for f in items], owner=owner)
        new += [(scope, f) for f, mine in zip(items, claimed, strict=True) if mine]
    budget_key = f"{page['crawl_id']}/{page.get('poll_id', '-')}"
    limit = source.max_pages if source else page.get("max_pages", DEFAULT_MAX_PAGES)
    granted = rt.limits.take(budget_key, len(new), limit) if new else 0
    sent: dict[str, list[str]] = {}
    cut: dict[str, list[str]] = {}
    for scope, f in new[granted:]:
        cut.setdefault(scope, []).append(url_id(f.url))
    for scope, f in new[:granted]:
        sent.setdefault(scope, []).append(url_id(f.url))
        depth = page["depth"] + (1 if f.kind in ("listing", "probe") else 0)
        provenance = {"via": f.via, "published": f.published, "title": f.title, "referrer": page["url"]}
        rt.send("fetch", fetch_task(
            crawl_id=page["crawl_id"], url=f.url, url_id=url_id(f.url), kind="listing" if f.kind == "probe" else f.kind,
            depth=depth, max_depth=max_depth, max_pages=None if source else page.get("max_pages"),
            allowed_hosts=None if source else sorted(allowed),
            source=page.get("source"), poll_id=page.get("poll_id"), found=provenance, probe=f.kind == "probe",
        ))
    for scope, ids in sent.items():
        rt.seen.commit(scope, ids)
    # Only what was sent stays claimed: the budget's cut goes back, for the next poll to claim.
    # Given back after the sends, so a crash before this point leaves it with this message,
    # whose redelivery claims it again (a redelivery's budget may then defer it a poll, never drop it).
    for scope, ids in cut.items():
        rt.seen.release(scope, ids, owner)
    ms = int((time.perf_counter() - started) * 1000)
    articles = sum(1 for f in found if f.kind == "article")
    probes = sum(1 for f in found if f.kind == "probe")
    if granted < len(new):
        rt.outcome("discover.limit", reason=f"page budget of {limit} per poll reached; the rest waits for the next",
                   deferred=len(new) - granted, limit=limit, **trace)
    rt.outcome("discover.done", kind=page["kind"], links=len(found), articles=articles, probes=probes, new=granted,
               ms=ms, **trace)


def _is_article(rt: Runtime, page: dict[str, Any], body: bytes, trace: dict[str, Any]) -> bool:
    """Judge a probe's page by its content; an article goes on to extract (True), anything else
    is read for links by the caller.  The verdict is remembered for the URL's shape on its host."""
    verdict = rt.bounded(classify_page, body, page["final_url"])
    shape = url_shape(page["url"])
    rt.shapes.record(trace["host"], shape, verdict.kind)
    rt.outcome("discover.classified", verdict=verdict.kind, reasons=list(verdict.reasons), shape=shape, **trace)
    if verdict.kind != "article":
        return False
    rt.send("extract", {**page, "kind": "article"})
    return True


def _with_site_memory(rt: Runtime, found: list[Found]) -> list[Found]:
    """Route links of shapes the host's probes have settled without probing them again."""
    candidates = [f for f in found if f.via == "listing" and f.kind in ("probe", "article")]
    if not candidates:
        return found
    learned: dict[str, dict[str, int]] = {}
    by_host: dict[str, list[str]] = {}
    for f in candidates:
        by_host.setdefault(host_of(f.url), []).append(url_shape(f.url))
    for host, shapes in by_host.items():
        learned.update(rt.shapes.counts(host, shapes))
    return routed_by_memory(found, learned) if learned else found


def _within_query_budget(rt: Runtime, crawl_id: str, found: list[Found]) -> list[Found]:
    """Drop URLs whose path already has too many query variants (a trap answering every query).

    Exempt: what a sitemap or feed lists (the site's own word), and article ids (``?id=9``).
    """
    with_query = [f for f in found if "?" in f.url and f.via not in ("sitemap", "feed")
                  and not (f.kind == "article" and article_id_query(f.url))]
    if not with_query:
        return found
    dropped: set[str] = set()
    groups: dict[str, list[Found]] = {}
    for f in with_query:
        groups.setdefault(query_variant_key(f.url), []).append(f)
    for key, items in groups.items():
        admitted = rt.limits.admit_variants(f"{crawl_id}:{key}", [f.url for f in items], MAX_QUERY_VARIANTS)
        dropped.update(f.url for f, ok in zip(items, admitted, strict=True) if not ok)
    return [f for f in found if f.url not in dropped]


def extract_stage(rt: Runtime, message: Any) -> None:
    """Extract the article from a stored page, strip what the site repeats on every page, note
    duplicates and the host's extraction health, and send the record to the sink."""
    page = _received("page", message)
    trace = _trace(page)
    started = time.perf_counter()
    html = rt.storage.get(page["raw_key"])
    extracted = rt.extract(html, page["final_url"], page.get("encoding"))
    # Health is judged on the extraction itself: before site memory strips the host's repeated
    # blocks, and without the feed's date standing in for one the page no longer shows.
    rt.health.record(page_health(extracted, host=trace["host"], fetched_at=page["fetched_at"]))
    if not extracted.get("text"):
        rt.outcome("extract.empty", ms=int((time.perf_counter() - started) * 1000), bytes=len(html), **trace)
        return
    kept, dropped = strip_recurring(extracted["text"].split("\n\n"), trace["host"], page["url_id"], rt.site_memory)
    if dropped:
        extracted = with_text(extracted, "\n\n".join(kept))
    record = build_record(extracted, page)
    record["duplicate_of"], record["duplicate_kind"] = rt.duplicates.check_and_add(
        page["url_id"], record["content_sha256"], record["text"]
    )
    sink = sink_task(crawl_id=page["crawl_id"], url_id=page["url_id"], record=record)
    if "source" in page:
        sink["source"] = page["source"]
    rt.send("sink", sink)
    ms = int((time.perf_counter() - started) * 1000)
    rt.outcome("extract.done", ms=ms, bytes=len(html), words=record["word_count"], site_blocks_dropped=dropped,
               duplicate_of=record["duplicate_of"], **trace)


def sink_stage(rt: Runtime, message: Any) -> None:
    """Write the record once; for a source with ``refresh``, a new version when its text changed.
    A repeated delivery, or unchanged text, finds it there and is a no-op (``sink.exists``)."""
    task = _received("sink", message)
    record = task["record"]
    trace = {"url": record["url"], "url_id": task["url_id"], "crawl_id": task["crawl_id"], "host": record["host"]}
    started = time.perf_counter()
    source = rt.sources.get(task["source"]) if "source" in task else None
    written = write_record(rt.storage, record, task["url_id"], prefix=_prefixed(source, ""),
                           versioned=bool(source and source.refresh))
    ms = int((time.perf_counter() - started) * 1000)
    again = {"again": True} if written.again else {}
    rt.outcome(f"sink.{written.outcome}", ms=ms, bytes=written.bytes, version=written.version, **again, **trace)


def _prefixed(source: Source | None, key: str) -> str:
    """A storage key under the source's own prefix, when it has one (``""``: the prefix itself)."""
    return f"{source.storage_prefix}{key}" if source is not None and source.storage_prefix else key


_STAGES = {"discover": discover_stage, "fetch": fetch_stage, "extract": extract_stage, "sink": sink_stage}


def declare_actors(broker: dramatiq.Broker, rt: Runtime) -> dict[str, dramatiq.Actor[Any, Any]]:
    """Declare the stage actors on ``broker`` bound to ``rt``, and wire ``rt.send`` to them."""
    actors: dict[str, dramatiq.Actor[Any, Any]] = {}
    common: dict[str, Any] = {"throws": (PoisonMessage,), "broker": broker}
    # On Redis: pause/cancel checks before each stage, progress counted, crawls that know they are done.
    tracking = crawl_tracking(broker, rt)
    for stage, fn in _STAGES.items():
        options = dict(common)
        options["retry_when"] = retry_policy(DEFAULT_MAX_RETRIES)
        if stage == "fetch":
            # The fetch actor decides itself when to give up (it knows the failure's nature),
            # so Retries only needs a ceiling above that and the backoff between attempts.
            options.update(retry_when=retry_policy(rt.settings.fetch_retries + 1), min_backoff=1_000,
                           max_backoff=120_000)
        run = tracking.controlled(stage, fn) if tracking is not None else fn
        actors[stage] = dramatiq.actor(actor_name=stage, queue_name=stage, **options)(guarded(stage, run, rt))

    def send(stage: str, task: dict[str, Any]) -> None:
        actors[stage].send(task)

    def send_later(stage: str, task: dict[str, Any], delay_ms: int) -> None:
        actors[stage].send_with_options(args=(task,), delay=delay_ms)

    rt.send = send
    rt.send_later = send_later
    if tracking is not None:
        tracking.install(broker)
    return actors
