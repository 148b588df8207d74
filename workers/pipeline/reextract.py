"""Re-extraction: run today's extractor again over the raw pages the archive kept.

Fetch stores every page's bytes (the claim check), so when extraction improves (a better teaser
filter, a trafilatura upgrade) or a host's redesign was fixed, old records can be brought up to
date without fetching anything.  :func:`rebuild_record` is the pure core (an old record and a new
extraction in, the new record out, None when nothing that matters changed); :func:`reextract_record`
adds the extraction; :func:`reextract_storage` is the loop over a store.

The extract stage strips what a host repeats on page after page (:mod:`workers.extract.sitememory`), so a
re-extraction must too, or it would put that boilerplate back into every record.  The loop learns
each host's recurring blocks from the pages it re-extracts (a batch of a host's pages is observed
before any of them is judged, so the first pages are not judged by an empty memory), and may also
consult the pipeline's own memory in Redis, read-only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from workers.core.logs import get_logger
from workers.core.messages import InvalidMessage, validate
from workers.core.storage import Storage
from workers.extract.article import extract_article
from workers.extract.health import utc_date
from workers.extract.sitememory import MAX_BOILERPLATE_CHARS, MemorySiteMemory, SiteMemory, fingerprint, strip_recurring
from workers.sink.record import build_record, with_text

__all__ = [
    "LEARN_BATCH",
    "ReadOnlySiteMemory",
    "ReextractReport",
    "extract_stored",
    "fetched_day",
    "rebuild_record",
    "record_keys",
    "reextract_record",
    "reextract_storage",
]

ExtractFn = Callable[..., dict[str, Any]]

#: Fields of the record that only the fetch knew; build_record makes the record from them.
_FETCH_FIELDS = ("url", "final_url", "crawl_id", "fetched_at", "status", "raw_key")
#: Fields other stages decide after extraction (duplicate detection needs its shared index, which
#: a re-extraction over storage alone does not have): kept as they were.
_DECIDED_LATER = frozenset({"duplicate_of", "duplicate_kind"})
#: Pages of one host the loop observes before it judges any of them (held in memory meanwhile).
LEARN_BATCH = 200


def _version(record: dict[str, Any]) -> Any:
    extractor = record.get("extractor")
    return extractor.get("version") if isinstance(extractor, dict) else None


def _blocks(text: str) -> list[str]:
    return text.split("\n\n")


def extract_stored(old_record: dict[str, Any], raw: bytes, extract: ExtractFn = extract_article) -> dict[str, Any]:
    """The current extraction of a stored record's raw page (pure: runs on a process pool too)."""
    # The page's HTTP charset, when the record carries it; else the page's own declaration decides.
    encoding = old_record.get("encoding")
    return extract(raw, old_record["final_url"], encoding=encoding if isinstance(encoding, str) else None)


def rebuild_record(
    old_record: dict[str, Any], extracted: dict[str, Any], *, site_memory: SiteMemory | None = None
) -> dict[str, Any] | None:
    """The record ``old_record`` becomes with a new extraction of its page; None when unchanged.

    Done as the extract stage does it: blocks ``site_memory`` calls recurring on the host are
    stripped (:func:`workers.extract.sitememory.strip_recurring`), then :func:`workers.sink.record.build_record`
    joins the extraction with what the fetch and discovery knew (URL, final URL, crawl, time,
    status, raw key, ``discovered``), so those stay as they were and everything extraction makes
    is new.  Duplicate verdicts stay as they were; any field ``build_record`` does not make is
    copied through untouched.  Unchanged means the same text (and ``content_sha256``) from the
    same extractor version: then there is nothing to write, even if metadata would differ.  The
    result may have empty text: the caller decides whether that is worth writing.  Raises
    ``KeyError`` when the old record lacks a fetch-time field.
    """
    page = {name: old_record[name] for name in _FETCH_FIELDS}
    page["encoding"] = old_record.get("encoding")
    if isinstance(old_record.get("discovered"), dict):
        # What discovery knew (a feed's date when the page has none) counts again, as it did then.
        page["found"] = old_record["discovered"]
    if site_memory is not None and extracted.get("text"):
        kept, dropped = strip_recurring(_blocks(extracted["text"]), old_record["host"], old_record["id"], site_memory)
        if dropped:
            extracted = with_text(extracted, "\n\n".join(kept))
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


def reextract_record(
    old_record: dict[str, Any],
    raw: bytes,
    *,
    extract: ExtractFn = extract_article,
    site_memory: SiteMemory | None = None,
) -> dict[str, Any] | None:
    """:func:`rebuild_record` with the current extraction of ``raw``; None when unchanged."""
    return rebuild_record(old_record, extract_stored(old_record, raw, extract), site_memory=site_memory)


class ReadOnlySiteMemory:
    """A site memory that answers from ``local`` and ``shared`` together but teaches only ``local``.

    ``shared`` is the pipeline's memory (Redis): it knows hosts from far more pages than one
    re-extraction sees, but a re-extraction, dry or not, must not change what the workers learnt.
    """

    def __init__(self, local: SiteMemory, shared: SiteMemory) -> None:
        self.local, self.shared = local, shared

    def observe(self, host: str, page_id: str, fingerprints: Sequence[str]) -> None:
        """Teach the local memory only."""
        self.local.observe(host, page_id, fingerprints)

    def recurring(self, host: str, fingerprints: Sequence[str]) -> list[bool]:
        """Recurring by either memory."""
        ours, theirs = self.local.recurring(host, fingerprints), self.shared.recurring(host, fingerprints)
        return [a or b for a, b in zip(ours, theirs, strict=True)]

    def observe_and_check(self, host: str, page_id: str, fingerprints: Sequence[str]) -> list[bool]:
        """Teach the local memory, then answer from both."""
        self.observe(host, page_id, fingerprints)
        return self.recurring(host, fingerprints)


def _learn(memory: SiteMemory, host: str, page_id: str, text: str) -> None:
    """Observe a page's blocks the way :func:`strip_recurring` will (same candidates)."""
    blocks = [b for b in _blocks(text) if b.strip() and len(b) <= MAX_BOILERPLATE_CHARS]
    memory.observe(host, page_id, [fingerprint(b) for b in blocks])


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


def _judge(old: dict[str, Any], extracted: dict[str, Any], memory: SiteMemory) -> Verdict:
    """(report field, reason, new record) for one record; never raises because of the page."""
    try:
        new = rebuild_record(old, extracted, site_memory=memory)
    except KeyError as exc:
        return "errors", f"record lacks {exc}", None
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
    shared_memory: SiteMemory | None = None,
    pool: Executor | None = None,
    window: int = 16,
    learn_batch: int = LEARN_BATCH,
) -> ReextractReport:
    """Re-extract every stored record of ``host`` (all hosts when None) fetched between ``since``
    and ``until`` (inclusive UTC dates), rewriting those whose text or extractor version changed.

    Recurring blocks are learnt per host from the re-extracted pages themselves, ``learn_batch``
    pages at a time, observed before any of them is judged; ``shared_memory`` (the workers' Redis
    memory) is consulted too, never taught.  A record is only rewritten when the new one validates
    against the article schema; one that would have empty text is kept (old text beats none) and
    counted as empty now.  Every outcome but "unchanged" is one log line ``reextract.<outcome>``
    with the record's key.  With a ``pool`` (processes: extraction is CPU-bound) extractions run
    there, ``window`` at a time, while reading, judging and writing stay in this thread;
    ``extract`` must then be picklable (a module-level function).
    """
    log = get_logger()
    report = ReextractReport(dry_run=dry_run)
    local = MemorySiteMemory()
    memory: SiteMemory = local if shared_memory is None else ReadOnlySiteMemory(local, shared_memory)

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

    def flush(batch: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> None:
        for _, old, extracted in batch:
            if extracted.get("text") and isinstance(old.get("host"), str) and isinstance(old.get("id"), str):
                _learn(memory, old["host"], old["id"], extracted["text"])
        for key, old, extracted in batch:
            finish(key, old, _judge(old, extracted, memory))
        batch.clear()

    batch: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for key, old, outcome in _extractions(storage, report, log, host=host, source_prefix=source_prefix,
                                          since=since, until=until, extract=extract, pool=pool, window=window):
        if isinstance(outcome, str):
            finish(key, old, ("errors", outcome, None))
            continue
        if batch and (len(batch) >= learn_batch or batch[0][1].get("host") != old.get("host")):
            flush(batch)
        batch.append((key, old, outcome))
    flush(batch)
    log.info("reextract.done", **report.as_dict())
    return report


def _extractions(
    storage: Storage,
    report: ReextractReport,
    log: Any,
    *,
    host: str | None,
    source_prefix: str | None,
    since: str | None,
    until: str | None,
    extract: ExtractFn,
    pool: Executor | None,
    window: int,
) -> Iterator[tuple[str, dict[str, Any], dict[str, Any] | str]]:
    """(key, old record, new extraction or the reason there is none) for each selected record, in
    listing order (a host's records are listed together); counts what it skips in ``report``."""
    pending: deque[tuple[str, dict[str, Any], Future[dict[str, Any]]]] = deque()

    def settle(
        item: tuple[str, dict[str, Any], Future[dict[str, Any]]],
    ) -> tuple[str, dict[str, Any], dict[str, Any] | str]:
        key, old, future = item
        try:
            return key, old, future.result()
        except Exception as exc:  # one hostile page must not end a run over a whole archive
            return key, old, f"extraction failed: {type(exc).__name__}: {exc}"

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
            raw = storage.get(raw_key) if isinstance(raw_key, str) and "final_url" in old else None
        except KeyError:
            raw = None
        if raw is None:
            yield key, old, (f"raw page {raw_key} is missing" if isinstance(raw_key, str) and "final_url" in old
                             else "record has no raw_key or final_url")
        elif pool is None:
            try:
                extracted = extract_stored(old, raw, extract)
            except Exception as exc:  # one hostile page must not end a run over a whole archive
                yield key, old, f"extraction failed: {type(exc).__name__}: {exc}"
            else:
                yield key, old, extracted
        else:
            pending.append((key, old, pool.submit(extract_stored, old, raw, extract)))
            while len(pending) >= max(1, window):
                yield settle(pending.popleft())
    while pending:
        yield settle(pending.popleft())
