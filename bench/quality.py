"""Extraction quality and speed on both development corpora: the stage next to its peers.

    python bench/quality.py [--corpus snippets|shingles|both] [--limit N] [--rounds N] [--verbose]

Columns: the stage (``extract_article``), ``trafilatura.extract(html)`` (defaults, comments
included), ``trafilatura.extract(html, include_comments=False)``, readability-lxml
(``Document(html).summary()`` as text, one block per line, :func:`workers.extract.readable.readability_text`),
and an *oracle* that takes per page the better of trafilatura-nc and readability (the headroom of
choosing between them).  Every extractor gets the page decoded the same way the stage decodes it
(BOM, HTTP/meta charset, UTF-8), except trafilatura, which is handed the raw bytes as a user would.

Each corpus is scored with its own metric (:mod:`bench.corpora`): trafilatura-eval by snippets
(F1, leak rate), dragnet-dev by 4-token shingles (F1).  Figures are given for the fixed *dev* and
*held-out* halves and for all pages; ``stage - peer`` differences of F1 carry a paired bootstrap
95% interval (1000 resamples of pages, seed 13).  Speed is pages per CPU-second
(``time.process_time``) of each extractor on all pages of the run; extractors run in alternating
rounds (``--rounds``) and each page counts its fastest round, so a busy moment of the machine does
not land on one side only.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import trafilatura

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpora import (
    SHINGLE_METRIC,
    SHINGLES,
    SNIPPET_METRIC,
    SNIPPETS,
    SPLITS,
    Metric,
    Page,
    bootstrap_diff,
    load_shingles,
    load_snippets,
    page_misses,
)
from workers.core.urls import InvalidURL, normalize_url
from workers.extract.article import extract_article
from workers.extract.metadata import decode_html
from workers.extract.readable import readability_text

Extractor = Callable[[Page], str]


def stage(page: Page) -> str:
    """The extract stage's text of a page."""
    # A few corpus entries carry labels ("hard::…") or spaces instead of URLs; a record needs a real one.
    try:
        url = normalize_url(page.url)
    except InvalidURL:
        url = f"https://corpus.invalid/{page.id}"
    text: str = extract_article(page.html, url)["text"]
    return text


def trafilatura_defaults(page: Page) -> str:
    """trafilatura with its defaults (comments included)."""
    return trafilatura.extract(page.html) or ""


def trafilatura_nc(page: Page) -> str:
    """trafilatura without comments."""
    return trafilatura.extract(page.html, include_comments=False) or ""


def readability(page: Page) -> str:
    """readability-lxml's summary as text."""
    return readability_text(decode_html(page.html))


EXTRACTORS: dict[str, Extractor] = {
    "stage": stage,
    "trafilatura": trafilatura_defaults,
    "trafilatura-nc": trafilatura_nc,
    "readability": readability,
}
PEERS = ("trafilatura", "trafilatura-nc", "readability", "oracle")


def run_rounds(
    extractors: dict[str, Extractor], pages: Sequence[Page], rounds: int
) -> dict[str, tuple[list[str], list[float]]]:
    """Texts of the first round and the CPU seconds of each page's fastest round, per extractor."""
    texts: dict[str, list[str]] = {}
    best: dict[str, list[float]] = {}
    for _ in range(max(1, rounds)):
        for name, extractor in extractors.items():
            round_texts, seconds = [], []
            for page in pages:
                start = time.process_time()
                round_texts.append(extractor(page))
                seconds.append(time.process_time() - start)
            texts.setdefault(name, round_texts)
            best[name] = [min(a, b) for a, b in zip(best[name], seconds, strict=True)] if name in best else seconds
    return {name: (texts[name], best[name]) for name in extractors}


def _cell(metric: Metric, score: dict[str, float]) -> str:
    if metric is SNIPPET_METRIC:
        return f"{score['f1']:.3f} / {score['leak']:5.1%}"
    return f"{score['f1']:.3f}"


def report(
    label: str, metric: Metric, pages: Sequence[Page], texts: dict[str, list[str]], cpu: dict[str, float]
) -> dict[str, dict[str, dict[str, float]]]:
    """Print one corpus's table (both halves and all) and return the scores per split and column."""
    stats = {name: [metric.page(p, t) for p, t in zip(pages, column, strict=True)] for name, column in texts.items()}
    # The oracle: per page, the better of trafilatura-nc and readability by that page's own score.
    stats["oracle"] = [
        a if metric.page_f1(a) >= metric.page_f1(b) else b
        for a, b in zip(stats["trafilatura-nc"], stats["readability"], strict=True)
    ]
    columns = [*texts, "oracle"]
    unit = "F1 / leak rate" if metric is SNIPPET_METRIC else "shingle F1"
    print(f"\n{label}: {len(pages)} pages, {unit}")
    print(f"{'':10}{'pages':>6}" + "".join(f"{name:>17}" for name in columns))
    scores: dict[str, dict[str, dict[str, float]]] = {}
    for split in SPLITS:
        keep = [i for i, p in enumerate(pages) if split == "all" or p.split == split]
        scores[split] = {name: metric.score([stats[name][i] for i in keep]) for name in columns}
        print(f"{split:10}{len(keep):>6}" + "".join(f"{_cell(metric, scores[split][n]):>17}" for n in columns))
    for split in SPLITS:
        keep = [i for i, p in enumerate(pages) if split == "all" or p.split == split]
        ours = [stats["stage"][i] for i in keep]
        cells = []
        for peer in PEERS:
            low, high = bootstrap_diff(metric, ours, [stats[peer][i] for i in keep])
            diff = scores[split]["stage"]["f1"] - scores[split][peer]["f1"]
            cells.append(f"{peer} {diff:+.3f} [{low:+.3f}, {high:+.3f}]")
        print(f"  stage - peer, {split}: " + "; ".join(cells))
    print("  pages/CPU-s: " + ", ".join(f"{name} {len(pages) / max(cpu[name], 1e-9):.1f}" for name in texts))
    return scores


def _verbose(pages: Sequence[Page], metric: Metric, texts: dict[str, list[str]]) -> None:
    """Per page where the stage scores below the better peer: the page and both scores."""
    for i, page in enumerate(pages):
        ours = metric.page_f1(metric.page(page, texts["stage"][i]))
        peers = {n: metric.page_f1(metric.page(page, texts[n][i])) for n in ("trafilatura-nc", "readability")}
        if ours + 1e-9 < max(peers.values()):
            print(
                f"  {page.split:8} {page.id}: stage {ours:.3f}, " + ", ".join(f"{n} {v:.3f}" for n, v in peers.items())
            )
            if metric is SNIPPET_METRIC:
                missing, leaked = page_misses(page, texts["stage"][i])
                for snippet in missing:
                    print(f"      MISSING {snippet!r}")
                for snippet in leaked:
                    print(f"      LEAK {snippet!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """Score every extractor on the chosen corpora and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=("snippets", "shingles", "both"), default="both",
                        help="trafilatura-eval (snippets), dragnet-dev (shingles) or both")  # fmt: skip
    parser.add_argument("--limit", type=int, default=None, help="only the first N pages of each corpus")
    parser.add_argument("--rounds", type=int, default=1, help="alternating timing rounds; a page counts its fastest")
    parser.add_argument("--verbose", action="store_true", help="list the pages where the stage trails a peer")
    args = parser.parse_args(argv)

    corpora: list[tuple[str, Metric, list[Page]]] = []
    if args.corpus in ("snippets", "both"):
        corpora.append((f"trafilatura-eval ({SNIPPETS})", SNIPPET_METRIC, load_snippets(limit=args.limit)))
    if args.corpus in ("shingles", "both"):
        corpora.append((f"dragnet-dev ({SHINGLES})", SHINGLE_METRIC, load_shingles(limit=args.limit)))
    every = [page for _, _, pages in corpora for page in pages]
    timed = run_rounds(EXTRACTORS, every, args.rounds)
    print(f"trafilatura {trafilatura.__version__}; fastest of {max(1, args.rounds)} round(s) per page")
    print("pages/CPU-s, all pages of the run: " + ", ".join(
        f"{name} {len(every) / max(sum(cpu), 1e-9):.1f}" for name, (_, cpu) in timed.items()))  # fmt: skip
    start = 0
    for label, metric, pages in corpora:
        texts = {name: column[start : start + len(pages)] for name, (column, _) in timed.items()}
        cpu = {name: sum(seconds[start : start + len(pages)]) for name, (_, seconds) in timed.items()}
        report(label, metric, pages, texts, cpu)
        if args.verbose:
            _verbose(pages, metric, texts)
        start += len(pages)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
