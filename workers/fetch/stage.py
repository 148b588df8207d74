"""The fetch stage: robots.txt, per-host politeness, conditional GET, and one outcome per page.

The order matters.  robots.txt first (a disallowed URL costs the host no request at all), then a
send permit from the host's shared policy (rate, Crawl-delay, concurrency, back-off after 429/503,
slow-down on rising latency), then the request itself, then the permit's release with what the
response taught about the host.  A message that may not be sent yet goes back to the queue with
exactly the wait; no thread sleeps on a slot (except for waits too short to be worth a trip).
"""

from __future__ import annotations

import hashlib
import math
import time
from datetime import UTC, datetime
from typing import Any

import dramatiq
import orjson

from workers.core.messages import DISCOVERY_KINDS, page_task
from workers.core.middleware import PoisonMessage
from workers.core.storage import raw_headers_key, raw_key
from workers.fetch.client import HTML_TYPES, FetchResult, cap_retry_after, fetch_page
from workers.fetch.context import FetchContext
from workers.fetch.politeness import Permit
from workers.fetch.robots import RobotsVerdict, check, origin_of, store, verdict
from workers.sources.sourcefile import Source

__all__ = ["SPACING_MARGIN", "GiveUp", "TransientFailure", "fetch"]

#: Waits shorter than this are slept off in the thread instead of a trip through the queue.
_SLEEP_S = 0.05
#: Requests to one host are spaced 2% wider than the rate asks, so the few milliseconds of jitter
#: between the send decision and the server never fit a third request into one second at 2/s.
SPACING_MARGIN = 1.02
#: A robots.txt larger than this is cut; a page larger than INGEST_MAX_BYTES is refused.
_ROBOTS_MAX_BYTES = 512 * 1024


class TransientFailure(dramatiq.Retry):
    """A failure worth retrying (timeouts, 5xx, 429); a Retry, so Dramatiq does not log a traceback."""


class GiveUp(PoisonMessage):
    """A transient failure that ran out of attempts: dead-letter it with the reason, no more retries."""

    reason_code = "retries_exhausted"


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fetch(rt: FetchContext, task: dict[str, Any], source: Source | None, trace: dict[str, Any], attempt: int) -> None:
    """Fetch a validated task's URL (see the module docstring); raises TransientFailure or GiveUp."""
    settings = rt.settings
    robots = _cached_robots(rt, task)
    if robots is not None and not robots.allowed:
        if robots.transient:
            _retry(rt, attempt, settings.fetch_retries, robots.reason, None, trace)
        rt.outcome("fetch.disallowed", reason=robots.reason, **trace)
        rt.give_up("fetch", "disallowed", robots.reason, task, **trace)
        return
    rate = source.host_rate if source is not None and source.host_rate is not None else settings.host_rate
    # A Crawl-delay of a day would hold every URL of the host for a day each: capped, the host is
    # still crawled, slowly.
    crawl_delay = min(robots.crawl_delay, settings.max_crawl_delay) if robots and robots.crawl_delay else None
    # Build the HTTP client (once per process) before taking a permit: its start-up (TLS context)
    # must not sit between the permit and the request, or sends drift closer than the interval.
    _ = rt.client
    permit = _permit(rt, task, max(1.0 / rate * SPACING_MARGIN if rate > 0 else 0.0, crawl_delay or 0.0), trace)
    if permit is None:
        return
    started = time.monotonic()
    status: int | None = None
    retry_after: float | None = None
    latency: float | None = None
    try:
        if robots is None:
            status = _load_robots(rt, task)
            latency = time.monotonic() - started if status is not None else None
            return
        result = _robots_page(rt, task) if task["kind"] == "robots" else _get(rt, task, source)
        # The host is backed off by the capped wait: a Retry-After of three years must not block
        # it (for every worker) any longer than the message itself waits.
        status, (retry_after, _) = result.status, cap_retry_after(result.retry_after, settings.max_retry_after)
        # Only an answer measures the host's speed, by when its headers came: a timeout is a fault
        # (retried with back-off), and neither it nor a stalled or huge body may mark a fast host
        # slow (see tests/fetch/test_latency.py).
        latency = None if result.answer_ms is None else result.answer_ms / 1000
    finally:
        rt.policy.release(trace["host"], permit.lease, latency_s=latency, status=status, retry_after_s=retry_after)
    _settle(rt, task, source, result, trace, attempt)


def _permit(rt: FetchContext, task: dict[str, Any], interval: float, trace: dict[str, Any]) -> Permit | None:
    """A send permit for the task's host, or None when the task went back to wait for its slot."""
    slot_at = task.get("slot_at")
    while True:
        permit = rt.policy.acquire(trace["host"], interval_s=interval, max_concurrency=rt.settings.host_concurrency,
                                   slot_at=slot_at)
        if permit.wait_s <= 0:
            return permit
        if permit.wait_s > _SLEEP_S:
            rt.send_later("fetch", {**task, "slot_at": permit.slot_at}, math.ceil(permit.wait_s * 1000))
            rt.outcome("fetch.delayed", wait_ms=math.ceil(permit.wait_s * 1000), **trace)
            return None
        time.sleep(permit.wait_s)
        slot_at = permit.slot_at


def _load_robots(rt: FetchContext, task: dict[str, Any]) -> int | None:
    """Spend this permit on the host's robots.txt and send the page round again for a permit of its
    own, taken with the Crawl-delay the file may set.  One worker fetches the file; the others come
    back a second later.  Returns the robots.txt status (None when another worker has it)."""
    answered: list[int | None] = []

    def fetch_robots(url: str) -> tuple[int | None, bytes]:
        status, body = _fetch_robots(rt, url)
        answered.append(status)
        return status, body

    fetched = check(rt.robots, task["url"], rt.settings.user_agent, fetch_robots)
    again = {k: v for k, v in task.items() if k != "slot_at"}
    if fetched is None:
        rt.outcome("fetch.robots_wait", url=task["url"], url_id=task["url_id"], crawl_id=task["crawl_id"],
                   wait_ms=1000)
        rt.send_later("fetch", again, 1000)
    else:
        rt.send("fetch", again)
    return answered[0] if answered else None


def _needs_robots(rt: FetchContext, task: dict[str, Any]) -> bool:
    return rt.settings.respect_robots and task["kind"] != "robots"


def _cached_robots(rt: FetchContext, task: dict[str, Any]) -> RobotsVerdict | None:
    """The verdict from the host's cached robots.txt; None when it is not cached yet (or is off)."""
    if not _needs_robots(rt, task):
        return RobotsVerdict(allowed=True, crawl_delay=None, reason="allowed")
    cached = rt.robots.get(origin_of(task["url"]))
    if cached is None:
        return None
    return verdict(cached[1], cached[0], task["url"], rt.settings.user_agent)


def _get(rt: FetchContext, task: dict[str, Any], source: Source | None) -> FetchResult:
    """The request, conditional when the URL is one we revisit (discovery pages, refreshed articles)."""
    settings = rt.settings
    # Discovery pages come as XML, JSON or text too: their parsers judge them, not the media type.
    accept = None if task["kind"] in DISCOVERY_KINDS else HTML_TYPES
    revisit = task["kind"] in DISCOVERY_KINDS or bool(source and source.refresh)
    etag, modified = rt.validators.get(task["url_id"]) if revisit else (None, None)
    result = fetch_page(rt.client, task["url"], max_bytes=settings.max_bytes, deadline_s=settings.request_timeout,
                        accept=accept, etag=etag, last_modified=modified)
    if revisit and result.outcome == "ok":
        rt.validators.put(task["url_id"], result.etag, result.last_modified)
    return result


def _settle(
    rt: FetchContext, task: dict[str, Any], source: Source | None, result: FetchResult, trace: dict[str, Any],
    attempt: int,
) -> None:
    """Turn a fetch result into its one outcome: retry, a recorded skip, or a stored page handed on."""
    fields = {**trace, "status": result.status, "ms": result.ms, "bytes": result.bytes}
    if result.transient:
        _retry(rt, attempt, rt.settings.fetch_retries, result.reason, result.retry_after, fields)
    if result.outcome != "ok":
        # A site without robots.txt is normal, not a skipped page.
        absent = task["kind"] == "robots" and result.status in {404, 410}
        rt.outcome("fetch.absent" if absent else f"fetch.{result.outcome}", reason=result.reason, **fields)
        if not absent and result.outcome != "not_modified":
            # A permanent failure: no retry, but a dead letter an operator can list and retry.
            rt.give_up("fetch", result.outcome, result.reason or result.outcome, task, **fields)
        return
    digest = hashlib.sha256(result.body).hexdigest()
    key = raw_key(trace["host"], task["url_id"], digest)
    if source is not None and source.storage_prefix:
        key = source.storage_prefix + key
    rt.storage.put_new(key, result.body)
    fetched_at = _now_iso()
    # The response beside the page, before the page is handed on, so an archive (WARC export) has
    # what the server said; create-if-absent like the page, so a redelivery writes nothing.
    rt.storage.put_new(raw_headers_key(key), _response_doc(task, result, fetched_at, digest))
    page = page_task(task, final_url=result.final_url, status=result.status or 200, fetched_at=fetched_at,
                     raw_key=key, content_type=result.content_type, encoding=result.encoding, size=result.bytes)
    rt.send("extract" if task["kind"] == "article" else "discover", page)
    rt.outcome("fetch.done", kind=task["kind"], **fields)


def _response_doc(task: dict[str, Any], result: FetchResult, fetched_at: str, digest: str) -> bytes:
    """The raw page's sidecar: the response it came with (headers already without cookies and
    credentials, see :func:`workers.fetch.client.archivable_headers`)."""
    status = result.status or 200
    return orjson.dumps({
        "url": task["url"], "url_id": task["url_id"], "final_url": result.final_url, "crawl_id": task["crawl_id"],
        "kind": task["kind"], "fetched_at": fetched_at, "status": status,
        "status_line": result.status_line or f"HTTP/1.1 {status}", "headers": [list(h) for h in result.headers],
        "content_type": result.content_type, "encoding": result.encoding, "body_sha256": digest,
        "bytes": len(result.body),
    })


def _retry(rt: FetchContext, attempt: int, limit: int, reason: str, retry_after: float | None,
           fields: dict[str, Any]) -> None:
    if attempt >= limit:
        raise GiveUp(f"gave up after {attempt + 1} attempts: {reason}")
    wait, capped = cap_retry_after(retry_after, rt.settings.max_retry_after)
    # A server asking for more than the cap is slow to recover: say so, with what it asked for.
    asked = {"retry_after_capped": True, "retry_after_s": retry_after} if capped else {}
    rt.outcome("fetch.retry", reason=reason, attempt=attempt + 1, **asked, **fields)
    delay = math.ceil(wait * 1000) if wait is not None else None
    raise TransientFailure(reason, delay=delay)


def _fetch_robots(rt: FetchContext, url: str) -> tuple[int | None, bytes]:
    """(status, body) for the robots cache; None status means "no answer" (a transient refusal)."""
    result = fetch_page(rt.client, url, max_bytes=_ROBOTS_MAX_BYTES, deadline_s=rt.settings.request_timeout,
                        accept=None)
    if result.outcome == "ok":
        return result.status, result.body
    if result.outcome == "transient":
        return result.status if (result.status and result.status >= 500) or result.status == 429 else None, b""
    # Too large, refused, a redirect loop: no usable robots.txt; RFC 9309 says crawl as if none.
    return result.status if result.status and 400 <= result.status < 500 else 404, b""


def _robots_page(rt: FetchContext, task: dict[str, Any]) -> FetchResult:
    """robots.txt as a page for discovery (its Sitemap: lines), served from the robots cache so the
    host is asked for it once, not once for rules and again for sitemaps."""
    origin = origin_of(task["url"])
    cached = rt.robots.get(origin) if rt.settings.respect_robots else None
    if cached is None:
        status, body = _fetch_robots(rt, task["url"])
        if rt.settings.respect_robots:
            status, body = store(rt.robots, origin, status, body)
    else:
        status, body = cached
    if status is not None and 200 <= status < 300:
        return FetchResult("ok", url=task["url"], final_url=task["url"], status=status, content_type="text/plain",
                           body=body, reason="ok", bytes=len(body))
    outcome = "transient" if status is None or status >= 500 or status == 429 else "http_error"
    return FetchResult(outcome, url=task["url"], final_url=task["url"], status=status,
                       reason=f"robots.txt answered {status or 'nothing'}")
