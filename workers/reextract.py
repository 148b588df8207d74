"""Re-extraction: run today's extractor again over the raw pages the archive kept.

Fetch stores every page's bytes (the claim check), so when extraction improves (a better teaser
filter, a trafilatura upgrade) or a host's redesign was fixed, old records can be brought up to
date without fetching anything.  :func:`reextract_record` is the pure part: an old record and its
raw page in, the new record out (None when nothing that matters changed).  :func:`reextract_storage`
is the thin loop over a store.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from .extract import extract_article
from .health import utc_date
from .logs import get_logger
from .messages import InvalidMessage, validate
from .record import build_record
from .storage import Storage

__all__ = ["ReextractReport", "fetched_day", "judge", "record_keys", "reextract_record", "reextract_storage"]

ExtractFn = Callable[..., dict[str, Any]]

#: Fields of the record that only the fetch knew; build_record makes the record from them.
_FETCH_FIELDS = ("url", "final_url", "crawl_id", "fetched_at", "status", "raw_key")
#: Fields other stages decide after extraction (duplicate detection needs its shared index, which
#: a re-extraction over storage alone does not have): kept as they were.
_DECIDED_LATER = frozenset({"duplicate_of", "duplicate_kind"})


def _version(record: dict[str, Any]) -> Any:
    extractor = record.get("extractor")
    return extractor.get("version") if isinstance(extractor, dict) else None


def reextract_record(
    old_record: dict[str, Any], raw: bytes, *, extract: ExtractFn = extract_article
) -> dict[str, Any] | None:
    """The record ``old_record`` becomes when its raw page is extracted again; None when unchanged.

    Unchanged means the same text (and ``content_sha256``) from the same extractor version: then
    there is nothing to write, even if metadata would differ.  The record is rebuilt the way the
    extract stage builds it (:func:`workers.record.build_record`) from the fields the fetch and
    discovery knew (URL, final URL, crawl, time, status, raw key, ``discovered``), so those stay as
    they were and everything extraction makes is new; duplicate verdicts stay as they were; any
    field ``build_record`` does not make is copied through untouched.  The result may have empty text
    (the current extractor finds nothing): the caller decides whether that is worth writing.
    Raises ``KeyError`` when the old record lacks a fetch-time field.
    """
    page = {name: old_record[name] for name in _FETCH_FIELDS}
    if isinstance(old_record.get("discovered"), dict):
        # What discovery knew (a feed's date when the page has none) counts again, as it did then.
        page["found"] = old_record["discovered"]
    # The page's HTTP charset, when the record carries it; else the page's own declaration decides.
    encoding = old_record.get("encoding")
    extracted = extract(raw, page["final_url"], encoding=encoding if isinstance(encoding, str) else None)
    fresh = build_record(extracted, page)
    if (
        fresh["content_sha256"] == old_record.get("content_sha256")
        and fresh["text"] == old_record.get("text")
        and _version(fresh) == _version(old_record)
    ):
        return None
    merged = {k: old_record[k] if k in _DECIDED_LATER and k in old_record else v for k, v in fresh.items()}
    merged.update({k: v for k, v in old_record.items() if k not in merged})
    return merged


def fetched_day(record: dict[str, Any]) -> str | None:
    """The UTC date (YYYY-MM-DD) of the record's ``fetched_at``; None when it has none readable."""
    value = record.get("fetched_at")
    return utc_date(value) if isinstance(value, str) else None


def record_keys(storage: Storage, *, host: str | None = None, source_prefix: str | None = None) -> Iterator[str]:
    """Keys of the article records under ``[source_prefix]articles/[host/]``."""
    prefix = f"{source_prefix or ''}articles/" + (f"{host}/" if host else "")
    return (key for key in storage.keys(prefix) if key.endswith(".json"))


@dataclass
class ReextractReport:
    """What one re-extraction run did (with ``dry_run``: would have done)."""

    seen: int = 0  #: records within the filters
    rewritten: int = 0
    unchanged: int = 0
    empty_now: int = 0  #: the current extractor finds no text; the old record is kept
    errors: int = 0  #: unreadable record, missing raw page, invalid result, extractor failure
    outside: int = 0  #: records read but outside the date range
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The counts as a JSON-ready dict."""
        return asdict(self)

    def render(self) -> str:
        """The counts as one line for a terminal."""
        verb = "would rewrite" if self.dry_run else "rewritten"
        return (f"seen {self.seen}, {verb} {self.rewritten}, unchanged {self.unchanged}, "
                f"empty now {self.empty_now}, errors {self.errors}"
                + (f" ({self.outside} outside the dates)" if self.outside else ""))


Verdict = tuple[str, str, dict[str, Any] | None]


def judge(old: dict[str, Any], raw: bytes, extract: ExtractFn = extract_article) -> Verdict:
    """(report field, reason, new record) for one record and its raw page: pure, so it can run
    on a process pool.  Never raises because of the page or the record."""
    try:
        new = reextract_record(old, raw, extract=extract)
    except KeyError as exc:
        return "errors", f"record lacks {exc}", None
    except Exception as exc:  # one hostile page must not end a run over a whole archive
        return "errors", f"extraction failed: {type(exc).__name__}: {exc}", None
    if new is None:
        return "unchanged", "", None
    if not new["text"]:
        return "empty_now", "", new
    try:
        validate("article", new)
    except InvalidMessage as exc:
        return "errors", f"new record does not validate: {exc}", None
    return "rewritten", "", new


def reextract_storage(
    storage: Storage,
    *,
    host: str | None = None,
    source_prefix: str | None = None,
    since: str | None = None,
    until: str | None = None,
    dry_run: bool = False,
    extract: ExtractFn = extract_article,
    pool: Executor | None = None,
    window: int = 16,
) -> ReextractReport:
    """Re-extract every stored record of ``host`` (all hosts when None) fetched between ``since``
    and ``until`` (inclusive UTC dates), rewriting those whose text or extractor version changed.

    Every outcome but "unchanged" is one log line ``reextract.<outcome>`` with the record's key.
    A record is only rewritten when the new one validates against the article schema; one that
    would have empty text is kept as it is (old text beats none) and counted as empty now.
    With a ``pool`` (processes: extraction is CPU-bound) the extractions run there, a few per
    worker at a time (``window`` in flight: about 4 per worker keeps them all busy without holding
    the archive in memory), while reading and writing stay in this thread; ``extract`` must then
    be picklable (a module-level function).
    """
    log = get_logger()
    report = ReextractReport(dry_run=dry_run)
    pending: deque[tuple[str, dict[str, Any], Future[Verdict]]] = deque()

    def finish(key: str, old: dict[str, Any], verdict: Verdict) -> None:
        outcome, reason, new = verdict
        if outcome == "rewritten" and new is not None and not dry_run:
            storage.put(key, orjson.dumps(new))
        setattr(report, outcome, getattr(report, outcome) + 1)
        fields = {"key": key, "url": old.get("url"), "host": old.get("host"), "dry_run": dry_run}
        if outcome == "errors":
            log.warning("reextract.error", reason=reason, **fields)
        elif outcome != "unchanged":
            log.info(f"reextract.{outcome}", **fields,
                     words=new["word_count"] if new else None, was=old.get("word_count"))

    for key in record_keys(storage, host=host, source_prefix=source_prefix):
        try:
            old = orjson.loads(storage.get(key))
        except (KeyError, orjson.JSONDecodeError) as exc:
            report.errors += 1
            log.warning("reextract.error", key=key, reason=f"unreadable record: {exc}")
            continue
        day = fetched_day(old)
        if (since or until) and (day is None or (since and day < since) or (until and day > until)):
            report.outside += 1
            continue
        report.seen += 1
        raw_key = old.get("raw_key")
        try:
            raw = storage.get(raw_key) if isinstance(raw_key, str) else None
        except KeyError:
            raw = None
        if raw is None:
            reason = f"raw page {raw_key} is missing" if isinstance(raw_key, str) else "record has no raw_key"
            finish(key, old, ("errors", reason, None))
        elif pool is None:
            finish(key, old, judge(old, raw, extract))
        else:
            pending.append((key, old, pool.submit(judge, old, raw, extract)))
            while len(pending) >= max(1, window):
                done_key, done_old, future = pending.popleft()
                finish(done_key, done_old, future.result())
    while pending:
        done_key, done_old, future = pending.popleft()
        finish(done_key, done_old, future.result())
    log.info("reextract.done", **report.as_dict())
    return report
