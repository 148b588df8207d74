"""Per-host extraction health: what each extraction tells about its host, and when a host drifts.

A site redesign rarely breaks a crawl loudly: pages still fetch with 200 and extraction still
returns *something*, only now it is empty, or the byline's date is gone, or the text is the
cookie banner.  Each extraction therefore leaves a :class:`PageHealth` behind; a
:class:`HealthStore` keeps per host, per UTC day, counters and a bounded uniform sample of word
counts; :func:`drift` compares a host's latest day with the days before it and says in words what
changed.  ``ingest status`` shows it all.
"""

from __future__ import annotations

import datetime as dt
import heapq
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis

from workers.core.logs import get_logger
from workers.extract.teasers import is_cue_heading, is_cue_line

__all__ = [
    "MIN_PAGES",
    "SAMPLE_SIZE",
    "TTL_S",
    "HealthStore",
    "MemoryHealthStore",
    "PageHealth",
    "RedisHealthStore",
    "drift",
    "ends_in_cue",
    "page_health",
    "percentile",
    "summarize",
    "utc_date",
]

#: Word counts kept per host and day for percentiles (a uniform sample of that day's pages).
SAMPLE_SIZE = 500
#: Health data lives this long after its last write (about a month of history).
TTL_S = 30 * 24 * 3600
#: Pages a day needs before :func:`drift` judges it, and the previous days need together.
MIN_PAGES = 20
#: A share (empty, missing date, leak suspicion) drifts when it rises by at least this much …
SHARE_RISE = 0.20
#: … and to at least this multiple of what it was.
SHARE_FACTOR = 1.5
#: The median length drifts when it falls below this fraction of what it was …
LENGTH_FALL = 0.5
#: … or grows beyond this multiple (boilerplate or teaser lists now counted as text).
LENGTH_RISE = 2.0
#: Lines at the end of a text searched for a cue ("More from …", "Read more: …") that leaked.
_CUE_TAIL_LINES = 5


@dataclass(frozen=True)
class PageHealth:
    """What one extraction tells about its host."""

    host: str
    empty: bool
    has_date: bool
    words: int
    teaser_blocks_removed: int
    day: str  #: YYYY-MM-DD (UTC) the page was fetched
    cue_ending: bool = False  #: the text ends in cue lines: a teaser list got past the filter

    @property
    def leak_suspect(self) -> bool:
        """The page carried teaser lists in its main text (removed or, worse, not)."""
        return self.teaser_blocks_removed > 0 or self.cue_ending


def ends_in_cue(text: str) -> bool:
    """Whether one of the text's last lines is a teaser cue ("More From Naenara", "Read more: …")."""
    lines = [line for line in text.splitlines() if line.strip()]
    return any(is_cue_heading(line) or is_cue_line(line) for line in lines[-_CUE_TAIL_LINES:])


def utc_date(timestamp: str | None) -> str | None:
    """The UTC date (YYYY-MM-DD) of an ISO 8601 timestamp (naive means UTC); None when unreadable."""
    if not timestamp:
        return None
    try:
        when = dt.datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).date().isoformat()


def _today(clock: Callable[[], float] = time.time) -> dt.date:
    return dt.datetime.fromtimestamp(clock(), dt.UTC).date()


def page_health(
    extracted: Mapping[str, Any],
    *,
    host: str | None = None,
    fetched_at: str | None = None,
    teaser_blocks_removed: int | None = None,
) -> PageHealth:
    """The health of one extraction, from an ``extract_article`` result.

    Give it the extraction, not the record: a record's ``published`` may come from the feed that
    led to the page, which says nothing about whether extraction still finds the page's date.

    ``host`` is the host the crawl asked for (the record's own, when not given: after a redirect
    the final URL's host may differ); the day is ``fetched_at``'s UTC date, today when absent.
    ``teaser_blocks_removed`` falls back to the result's own ``teaser_blocks_removed`` (0 when the
    extractor does not report it).
    """
    text = str(extracted.get("text") or "")
    removed = teaser_blocks_removed
    if removed is None:
        removed = int(extracted.get("teaser_blocks_removed") or 0)
    return PageHealth(
        host=host or str(extracted.get("host") or ""),
        empty=not text.strip(),
        has_date=bool(extracted.get("published")),
        words=int(extracted.get("word_count") or len(text.split())),
        teaser_blocks_removed=removed,
        day=utc_date(fetched_at or extracted.get("fetched_at")) or _today().isoformat(),
        cue_ending=ends_in_cue(text),
    )


# --- arithmetic ----------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float, weights: Sequence[float] | None = None) -> float | None:
    """The ``q``-th percentile (0-100) by nearest rank, optionally weighted; None for no values."""
    if not values:
        return None
    w = list(weights) if weights is not None else [1.0] * len(values)
    pairs = sorted(zip(values, w, strict=True))
    total = sum(w)
    threshold = total * q / 100.0
    running = 0.0
    for value, weight in pairs:
        running += weight
        if running >= threshold - 1e-9:
            return value
    return pairs[-1][0]


_COUNTERS = ("pages", "empty", "undated", "teased", "cue_ending", "leak")


@dataclass
class _Day:
    """One host's figures for one day: counters, and the sample as a heap of (-random key, words)."""

    counts: dict[str, int] = field(default_factory=dict)
    sample: list[tuple[float, int]] = field(default_factory=list)


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _figures(counts: Mapping[str, int], words: list[int], weights: list[float] | None) -> dict[str, Any]:
    pages = counts.get("pages", 0)
    figures: dict[str, Any] = {name: counts.get(name, 0) for name in _COUNTERS}
    figures.update(
        empty_share=_share(counts.get("empty", 0), pages),
        missing_date_share=_share(counts.get("undated", 0), pages),
        leak_share=_share(counts.get("leak", 0), pages),
        words={f"p{q}": _int_or_none(percentile(words, q, weights)) for q in (10, 50, 90)},
    )
    return figures


def _int_or_none(value: float | None) -> int | None:
    return None if value is None else int(value)


def summarize(host: str, days: Iterable[tuple[str, Mapping[str, int], Sequence[int]]]) -> dict[str, Any]:
    """The summary of one host from ``(day, counters, word sample)`` triples, oldest day first.

    Shares are fractions of the day's pages; word percentiles are of non-empty pages.  ``overall``
    weighs each day's sample by the pages it stands for, so a busy day counts for what it was.
    """
    per_day: list[dict[str, Any]] = []
    total: dict[str, int] = dict.fromkeys(_COUNTERS, 0)
    all_words: list[int] = []
    weights: list[float] = []
    for day, counts, sample in sorted(days, key=lambda d: d[0]):
        if not counts.get("pages"):
            continue
        per_day.append({"day": day, **_figures(counts, list(sample), None)})
        for name in _COUNTERS:
            total[name] += counts.get(name, 0)
        if sample:
            filled = counts.get("pages", 0) - counts.get("empty", 0)
            all_words += sample
            weights += [max(filled, len(sample)) / len(sample)] * len(sample)
    return {"host": host, "per_day": per_day, "overall": _figures(total, all_words, weights)}


# --- drift ---------------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def drift(summary: Mapping[str, Any]) -> list[str]:
    """Reasons the host's latest day drifts from its previous days; empty when it does not.

    The latest day is the most recent with at least :data:`MIN_PAGES` pages; the days before it
    together need as many.  A share (empty pages, pages without a date, leak suspicion) drifts
    when it rose by at least :data:`SHARE_RISE` (20 points) *and* to at least
    :data:`SHARE_FACTOR` (1.5x) its earlier value, so a noisy host at 30% does not alarm at 45%.
    The median length of non-empty pages drifts when it fell below :data:`LENGTH_FALL` (half) or
    rose beyond :data:`LENGTH_RISE` (twice) the pages-weighted median of earlier daily medians.
    """
    days = [d for d in summary.get("per_day", []) if d.get("pages", 0) >= 1]
    latest_at = max((i for i, d in enumerate(days) if d["pages"] >= MIN_PAGES), default=None)
    if latest_at is None:
        return []
    latest, before = days[latest_at], days[:latest_at]
    base_pages = sum(d["pages"] for d in before)
    if base_pages < MIN_PAGES:
        return []
    reasons = []
    for label, counter in (("empty share", "empty"), ("missing-date share", "undated"),
                           ("leak suspicion", "leak")):
        now = latest[counter] / latest["pages"]
        was = sum(d[counter] for d in before) / base_pages
        if now - was >= SHARE_RISE and now >= SHARE_FACTOR * was:
            reasons.append(f"{label} {_pct(now)} on {latest['day']} vs {_pct(was)} before")
    medians = [(d["words"]["p50"], d["pages"] - d["empty"]) for d in before if d["words"]["p50"] is not None]
    now_median = latest["words"]["p50"]
    enough = sum(w for _, w in medians) >= MIN_PAGES and latest["pages"] - latest["empty"] >= MIN_PAGES
    if enough and now_median is not None:
        was_median = percentile([m for m, _ in medians], 50, [w for _, w in medians])
        assert was_median is not None
        if now_median < LENGTH_FALL * was_median:
            reasons.append(f"median length fell from {was_median:.0f} to {now_median} words on {latest['day']}")
        elif now_median > LENGTH_RISE * was_median:
            reasons.append(f"median length rose from {was_median:.0f} to {now_median} words on {latest['day']}")
    return reasons


# --- stores --------------------------------------------------------------------------------------


class HealthStore(Protocol):
    """Where extractions leave their :class:`PageHealth`."""

    def record(self, item: PageHealth) -> None:
        """Count one extraction (best effort: never fails the extraction it describes)."""
        ...

    def summary(self, host: str, days: int = 7) -> dict[str, Any]:
        """Per day (oldest first) and overall figures of ``host`` over the last ``days`` UTC days."""
        ...

    def hosts(self) -> list[str]:
        """Hosts with health data, sorted."""
        ...


def _counts_of(item: PageHealth) -> dict[str, int]:
    flags = {"pages": True, "empty": item.empty, "undated": not item.has_date,
             "teased": item.teaser_blocks_removed > 0, "cue_ending": item.cue_ending, "leak": item.leak_suspect}
    return {name: 1 for name, on in flags.items() if on}


def _window(days: int, until: str | None, clock: Callable[[], float]) -> list[str]:
    """The ``days`` UTC dates ending with ``until`` (today by ``clock`` when None), oldest first."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    last = dt.date.fromisoformat(until) if until else _today(clock)
    return [(last - dt.timedelta(days=k)).isoformat() for k in range(days - 1, -1, -1)]


class MemoryHealthStore:
    """Health of the embedded run, in this process (same sampling as Redis: bottom-k by random key)."""

    def __init__(self, *, sample_size: int = SAMPLE_SIZE, clock: Callable[[], float] = time.time) -> None:
        self._days: dict[tuple[str, str], _Day] = {}
        self._sample_size = sample_size
        self._clock = clock
        self._lock = threading.Lock()

    def record(self, item: PageHealth) -> None:
        """See :meth:`HealthStore.record`."""
        key = (item.host, item.day)
        with self._lock:
            day = self._days.setdefault(key, _Day())
            for name, n in _counts_of(item).items():
                day.counts[name] = day.counts.get(name, 0) + n
            if not item.empty:
                # A max-heap of the smallest random keys (negated) is a uniform sample of the day.
                heap = day.sample
                entry = (-random.random(), item.words)
                if len(heap) < self._sample_size:
                    heapq.heappush(heap, entry)
                elif entry > heap[0]:
                    heapq.heapreplace(heap, entry)

    def summary(self, host: str, days: int = 7, *, until: str | None = None) -> dict[str, Any]:
        """See :meth:`HealthStore.summary`; ``until`` is the last day shown (default today, UTC)."""
        with self._lock:
            rows = [
                (d, dict(self._days[(host, d)].counts), [w for _, w in self._days[(host, d)].sample])
                for d in _window(days, until, self._clock)
                if (host, d) in self._days
            ]
        return summarize(host, rows)

    def hosts(self) -> list[str]:
        """See :meth:`HealthStore.hosts`."""
        with self._lock:
            return sorted({host for host, _ in self._days})


class RedisHealthStore:
    """Health shared by every worker, in Redis.

    Per host and day: a hash ``{ns}:health:{day}:{host}`` of counters, and a sorted set
    ``{ns}:health:words:{day}:{host}`` holding a uniform sample of word counts (each page gets a
    random score; only the :data:`SAMPLE_SIZE` lowest stay: bottom-k sampling, which needs no
    coordination between workers).  Both expire :data:`TTL_S` after their last write.  Hosts are
    a sorted set ``{ns}:health:hosts`` scored by last write, trimmed to the same month.
    """

    def __init__(self, client: Any, namespace: str = "ingest", *, sample_size: int = SAMPLE_SIZE,
                 clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._ns = namespace
        self._sample_size = sample_size
        self._clock = clock
        self._log = get_logger()

    def _keys(self, host: str, day: str) -> tuple[str, str]:
        return f"{self._ns}:health:{day}:{host}", f"{self._ns}:health:words:{day}:{host}"

    @property
    def _hosts_key(self) -> str:
        return f"{self._ns}:health:hosts"

    def record(self, item: PageHealth) -> None:
        """See :meth:`HealthStore.record`; a Redis error is logged as ``health.unrecorded``, not raised."""
        counts_key, words_key = self._keys(item.host, item.day)
        now = self._clock()
        pipe = self._client.pipeline(transaction=True)
        for name, n in _counts_of(item).items():
            pipe.hincrby(counts_key, name, n)
        pipe.expire(counts_key, TTL_S)
        if not item.empty:
            # A unique member per page: equal word counts must not collapse into one sample.
            pipe.zadd(words_key, {f"{item.words}:{uuid.uuid4().hex[:12]}": random.random()})
            pipe.zremrangebyrank(words_key, self._sample_size, -1)
            pipe.expire(words_key, TTL_S)
        pipe.zadd(self._hosts_key, {item.host: now})
        pipe.zremrangebyscore(self._hosts_key, "-inf", now - TTL_S)
        try:
            pipe.execute()
        except redis.RedisError as exc:
            self._log.warning("health.unrecorded", host=item.host, reason=str(exc))

    def summary(self, host: str, days: int = 7, *, until: str | None = None) -> dict[str, Any]:
        """See :meth:`HealthStore.summary`; ``until`` is the last day shown (default today, UTC)."""
        window = _window(days, until, self._clock)
        pipe = self._client.pipeline(transaction=False)
        for day in window:
            counts_key, words_key = self._keys(host, day)
            pipe.hgetall(counts_key)
            pipe.zrange(words_key, 0, -1)
        replies = pipe.execute()
        rows = []
        for i, day in enumerate(window):
            raw_counts, members = replies[2 * i], replies[2 * i + 1]
            counts = {_text(k): int(v) for k, v in raw_counts.items()}
            words = [int(_text(m).partition(":")[0]) for m in members]
            rows.append((day, counts, words))
        return summarize(host, rows)

    def hosts(self) -> list[str]:
        """See :meth:`HealthStore.hosts`."""
        since = self._clock() - TTL_S
        return sorted(_text(h) for h in self._client.zrangebyscore(self._hosts_key, since, "+inf"))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

