"""The two development corpora, their metrics and the fixed dev / held-out split.

* ``trafilatura-eval`` (snippets): a ``with`` snippet found is a true positive, a ``without`` snippet
  found a false positive (a leak); whitespace runs collapse to one space before the substring test;
  F1 over the summed counts; leak rate = share of pages with a leak.
* ``dragnet-dev`` (whole gold text): the scrapinghub article-extraction-benchmark metric exactly as
  the corpus README gives it: ``\\w+`` tokens, multisets of 4-token shingles (1 to 3 tokens: one
  short shingle; no tokens: none), page precision TP/(TP+FP) and recall TP/(TP+FN), corpus
  precision = mean over pages with a non-empty prediction, corpus recall = mean over all pages
  (an empty prediction has recall 0), F1 = harmonic mean of the two means.

Split: a page is *held-out* when the first byte of ``blake2b(page id)`` is odd, else *dev*; the page
id is the corpus's own (``local_file`` for trafilatura-eval, ``id`` for dragnet-dev).  Fixed by the
ids alone, so it never moves when pages are added, filtered or reordered.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

SNIPPETS = Path("/work/shared/corpus/trafilatura-eval")
SHINGLES = Path("/work/shared/corpus/dragnet-dev")

SPLITS = ("dev", "held-out", "all")

_TOKEN = re.compile(r"\w+")
_SHINGLE = 4


@dataclass(frozen=True)
class Page:
    """One annotated page of either corpus (``gold`` for dragnet-dev, snippets for trafilatura-eval)."""

    id: str
    url: str
    html: bytes
    with_: tuple[str, ...] = ()
    without: tuple[str, ...] = ()
    gold: str = ""

    @property
    def split(self) -> str:
        """``dev`` or ``held-out`` (see the module notes)."""
        return split_of(self.id)


def split_of(page_id: str) -> str:
    """The fixed half a page belongs to: the parity of the first byte of its id's blake2b hash."""
    return "held-out" if hashlib.blake2b(page_id.encode("utf-8")).digest()[0] & 1 else "dev"


def load_snippets(corpus: Path = SNIPPETS, limit: int | None = None) -> list[Page]:
    """trafilatura-eval's pages in file order, at most ``limit``."""
    meta = json.loads((corpus / "annotations.json").read_text(encoding="utf-8"))
    pages = []
    for entry in meta["pages"][:limit]:
        raw = gzip.decompress((corpus / "html" / entry["local_file"]).read_bytes())
        pages.append(Page(entry["local_file"], entry["url"], raw, tuple(entry["with"]), tuple(entry["without"])))
    return pages


def load_shingles(corpus: Path = SHINGLES, limit: int | None = None) -> list[Page]:
    """dragnet-dev's pages in file order, at most ``limit``; they have no URL, so each gets a placeholder."""
    meta = json.loads((corpus / "pages.json").read_text(encoding="utf-8"))
    pages = []
    for entry in meta["pages"][:limit]:
        raw = gzip.decompress((corpus / entry["html"]).read_bytes())
        gold = (corpus / entry["gold"]).read_text(encoding="utf-8")
        pages.append(Page(entry["id"], f"https://dragnet.invalid/{entry['id']}.html", raw, gold=gold))
    return pages


# --- trafilatura-eval: snippets -------------------------------------------------------------------


def collapse(text: str) -> str:
    """Whitespace runs to one space, as the snippet scoring prescribes."""
    return " ".join(text.split())


def page_misses(page: Page, text: str) -> tuple[list[str], list[str]]:
    """(wanted snippets missing, boilerplate snippets present) for one page."""
    flat = collapse(text)
    missing = [s for s in page.with_ if collapse(s) not in flat]
    leaked = [s for s in page.without if collapse(s) in flat]
    return missing, leaked


def snippet_stats(page: Page, text: str) -> tuple[float, ...]:
    """Per-page counts (tp, fn, fp, tn, leaky) of the snippet metric."""
    missing, leaked = page_misses(page, text)
    return (len(page.with_) - len(missing), len(missing), len(leaked), len(page.without) - len(leaked), bool(leaked))


def snippet_score(stats: Sequence[tuple[float, ...]]) -> dict[str, float]:
    """F1, precision, recall and leak rate over per-page snippet counts."""
    tp, fn, fp, _tn, leaky = (sum(column) for column in zip(*stats, strict=True)) if stats else (0, 0, 0, 0, 0)
    return {
        "f1": 2 * tp / max(1, 2 * tp + fp + fn),
        "precision": tp / max(1, tp + fp),
        "recall": tp / max(1, tp + fn),
        "leak": leaky / max(1, len(stats)),
    }


# --- dragnet-dev: 4-token shingles ----------------------------------------------------------------


def shingles(text: str) -> Counter[tuple[str, ...]]:
    """The multiset of 4-token shingles of a text (one short shingle for 1 to 3 tokens, none for 0)."""
    tokens = _TOKEN.findall(text)
    if not tokens:
        return Counter()
    if len(tokens) < _SHINGLE:
        return Counter([tuple(tokens)])
    return Counter(tuple(tokens[i : i + _SHINGLE]) for i in range(len(tokens) - _SHINGLE + 1))


def shingle_stats(page: Page, text: str, gold: Counter[tuple[str, ...]] | None = None) -> tuple[float, ...]:
    """Per-page (has prediction, precision, recall) of the shingle metric (precision 0 when empty)."""
    gold = shingles(page.gold) if gold is None else gold
    pred = shingles(text)
    tp = sum((pred & gold).values())
    predicted, wanted = sum(pred.values()), sum(gold.values())
    if not predicted:
        return (0, 0.0, 0.0)
    return (1, tp / predicted, tp / wanted if wanted else 0.0)


def shingle_score(stats: Sequence[tuple[float, ...]]) -> dict[str, float]:
    """Corpus precision (mean over non-empty predictions), recall (mean over all) and their F1."""
    nonempty = [s for s in stats if s[0]]
    precision = sum(s[1] for s in nonempty) / max(1, len(nonempty))
    recall = sum(s[2] for s in stats) / max(1, len(stats))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"f1": f1, "precision": precision, "recall": recall, "empty": 1 - len(nonempty) / max(1, len(stats))}


# --- both -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """How one corpus is scored: per-page statistics and their aggregate."""

    name: str
    page: Callable[[Page, str], tuple[float, ...]]
    score: Callable[[Sequence[tuple[float, ...]]], dict[str, float]]

    def page_f1(self, stats: tuple[float, ...]) -> float:
        """One page's own F1, to pick the better candidate of a page (the oracle)."""
        return self.score([stats])["f1"]


SNIPPET_METRIC = Metric("snippets", snippet_stats, snippet_score)
SHINGLE_METRIC = Metric("shingles", shingle_stats, shingle_score)


def bootstrap_diff(
    metric: Metric,
    ours: Sequence[tuple[float, ...]],
    theirs: Sequence[tuple[float, ...]],
    rounds: int = 1000,
    seed: int = 13,
) -> tuple[float, float]:
    """Paired bootstrap 95% interval of F1(ours) - F1(theirs): the same resampled pages for both."""
    rng = random.Random(seed)
    n = len(ours)
    if not n:
        return (0.0, 0.0)
    diffs = []
    for _ in range(rounds):
        picks = [rng.randrange(n) for _ in range(n)]
        diffs.append(metric.score([ours[i] for i in picks])["f1"] - metric.score([theirs[i] for i in picks])["f1"])
    diffs.sort()
    return diffs[int(0.025 * rounds)], diffs[min(rounds - 1, int(0.975 * rounds))]
