"""Extraction quality and speed on the trafilatura-eval corpus: our extractor next to trafilatura.

    python bench/quality.py [--limit N] [--rounds N] [--verbose]

Scoring follows the corpus README: whitespace runs collapse to one space in the text and in every
snippet, a snippet counts when it is a substring; ``with`` snippets found are true positives,
``without`` snippets found are false positives (leaks).  Speed is pages per CPU-second
(``time.process_time``).  Both extractors run in alternating rounds (``--rounds``, 3 by default)
and each page counts with its fastest round, so a busy moment of the machine (cache misses,
another process on the core) does not land on one side only.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import trafilatura

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workers.core.urls import InvalidURL, normalize_url
from workers.extract.article import extract_article

CORPUS = Path("/work/shared/corpus/trafilatura-eval")


@dataclass(frozen=True)
class Page:
    """One annotated corpus page."""

    name: str
    url: str
    html: bytes
    with_: tuple[str, ...]
    without: tuple[str, ...]


@dataclass(frozen=True)
class Score:
    """Snippet counts over a set of pages and the measures derived from them."""

    tp: int
    fn: int
    fp: int
    tn: int
    leaky_pages: int
    pages: int

    @property
    def precision(self) -> float:
        """Share of found snippets that were wanted."""
        return self.tp / max(1, self.tp + self.fp)

    @property
    def recall(self) -> float:
        """Share of wanted snippets that were found."""
        return self.tp / max(1, self.tp + self.fn)

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        return 2 * self.tp / max(1, 2 * self.tp + self.fp + self.fn)

    @property
    def leak_rate(self) -> float:
        """Share of pages with at least one boilerplate snippet in the text."""
        return self.leaky_pages / max(1, self.pages)


def collapse(text: str) -> str:
    """Whitespace runs to one space, as the corpus scoring prescribes."""
    return " ".join(text.split())


def load_pages(corpus: Path, limit: int | None) -> list[Page]:
    """The annotated pages in file order, at most ``limit`` of them."""
    meta = json.loads((corpus / "annotations.json").read_text(encoding="utf-8"))
    pages = []
    for entry in meta["pages"][:limit]:
        raw = gzip.decompress((corpus / "html" / entry["local_file"]).read_bytes())
        pages.append(Page(entry["local_file"], entry["url"], raw, tuple(entry["with"]), tuple(entry["without"])))
    return pages


def page_misses(page: Page, text: str) -> tuple[list[str], list[str]]:
    """(wanted snippets missing, boilerplate snippets present) for one page."""
    flat = collapse(text)
    missing = [s for s in page.with_ if collapse(s) not in flat]
    leaked = [s for s in page.without if collapse(s) in flat]
    return missing, leaked


def score(pages: Sequence[Page], texts: Sequence[str]) -> Score:
    """Aggregate snippet counts over pages and their extracted texts."""
    tp = fn = fp = tn = leaky = 0
    for page, text in zip(pages, texts, strict=True):
        missing, leaked = page_misses(page, text)
        fn += len(missing)
        tp += len(page.with_) - len(missing)
        fp += len(leaked)
        tn += len(page.without) - len(leaked)
        leaky += bool(leaked)
    return Score(tp, fn, fp, tn, leaky, len(pages))


def run(extractor: Callable[[Page], str], pages: Sequence[Page]) -> tuple[list[str], list[float]]:
    """Texts of all pages and the CPU seconds each one took."""
    texts, seconds = [], []
    for page in pages:
        start = time.process_time()
        texts.append(extractor(page))
        seconds.append(time.process_time() - start)
    return texts, seconds


def run_rounds(
    extractors: dict[str, Callable[[Page], str]], pages: Sequence[Page], rounds: int
) -> dict[str, tuple[list[str], float]]:
    """Texts of the first round and the CPU seconds of the fastest round of each page, per extractor."""
    texts: dict[str, list[str]] = {}
    best: dict[str, list[float]] = {}
    for _ in range(max(1, rounds)):
        for name, extractor in extractors.items():
            round_texts, seconds = run(extractor, pages)
            texts.setdefault(name, round_texts)
            best[name] = [min(a, b) for a, b in zip(best[name], seconds, strict=True)] if name in best else seconds
    return {name: (texts[name], sum(best[name])) for name in extractors}


def _trafilatura_defaults(page: Page) -> str:
    return trafilatura.extract(page.html) or ""


def _ours(page: Page) -> str:
    # A few corpus entries carry labels ("hard::…") or spaces instead of URLs; a record needs a real one.
    try:
        url = normalize_url(page.url)
    except InvalidURL:
        url = f"https://corpus.invalid/{page.name}"
    text: str = extract_article(page.html, url)["text"]
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Score both extractors and print them side by side."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="only the first N pages")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="corpus folder")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timing rounds; a page counts its fastest")
    parser.add_argument("--verbose", action="store_true", help="list our misses and leaks per page")
    args = parser.parse_args(argv)

    pages = load_pages(args.corpus, args.limit)
    columns: dict[str, Callable[[Page], str]] = {"trafilatura defaults": _trafilatura_defaults, "ours": _ours}
    timed = run_rounds(columns, pages, args.rounds)
    results = {name: (score(pages, texts), cpu, texts) for name, (texts, cpu) in timed.items()}

    rows: list[tuple[str, Callable[[Score, float], str]]] = [
        ("F1", lambda s, _: f"{s.f1:.3f}"),
        ("precision", lambda s, _: f"{s.precision:.3f}"),
        ("recall", lambda s, _: f"{s.recall:.3f}"),
        ("leak rate", lambda s, _: f"{s.leak_rate:.1%}"),
        ("TP/FN/FP/TN", lambda s, _: f"{s.tp}/{s.fn}/{s.fp}/{s.tn}"),
        ("pages/CPU-s", lambda s, cpu: f"{s.pages / max(cpu, 1e-9):.1f}"),
    ]
    print(f"{len(pages)} pages from {args.corpus}, fastest of {max(1, args.rounds)} rounds per page")
    print(f"{'':14}" + "".join(f"{name:>22}" for name in columns))
    for label, cell in rows:
        print(f"{label:14}" + "".join(f"{cell(s, cpu):>22}" for s, cpu, _ in results.values()))

    if args.verbose:
        base_texts, our_texts = results["trafilatura defaults"][2], results["ours"][2]
        for page, base, ours in zip(pages, base_texts, our_texts, strict=True):
            missing, leaked = page_misses(page, ours)
            base_missing, base_leaked = page_misses(page, base)
            if missing or leaked or base_missing or base_leaked:
                print(f"\n{page.name} {page.url}")
                for snippet in missing:
                    print(f"  MISSING{'' if snippet in base_missing else ' (trafilatura has it)'}: {snippet!r}")
                for snippet in leaked:
                    print(f"  LEAK{'' if snippet in base_leaked else ' (not in trafilatura)'}: {snippet!r}")
                for snippet in set(base_leaked) - set(leaked):
                    print(f"  fixed leak: {snippet!r}")
                for snippet in set(base_missing) - set(missing):
                    print(f"  gained: {snippet!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
