"""Tune the thresholds of :mod:`workers.extract.combine` on the dev halves; report the held-out halves.

    python bench/tune_combine.py [--limit N] [--cache FILE]

Both candidates (trafilatura's cleaned blocks and readability's) are computed once for every page of
both corpora (cached in ``--cache``), then every rule set of a small grid is scored on the *dev*
halves only, each corpus with its own metric.  A rule set must not make either corpus's dev half
worse than the stage without readability; among those, the best sum of the two dev F1s wins (ties:
fewer pages sent to readability, the cheaper rule).  The held-out halves are printed for the winner
and never used to choose.  Deterministic: same pages, same grid, same answer.
"""

from __future__ import annotations

import argparse
import itertools
import pickle
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpora import SHINGLE_METRIC, SNIPPET_METRIC, Metric, Page, load_shingles, load_snippets
from workers.extract.article import _candidates, _render
from workers.extract.combine import CombineRules, combine, unsure
from workers.extract.metadata import decode_html, parse_html
from workers.extract.teasers import Block

Candidates = tuple[list[Block], list[Block]]


def candidates(page: Page) -> Candidates:
    """Both candidates of one page, readability's asked for whatever trafilatura's looks like."""
    tree = parse_html(decode_html(page.html))
    if tree is None:
        return [], []
    ours, theirs = _candidates(tree, page.url, always=True)
    return ours, theirs or []


def text_of(pair: Candidates, rules: CombineRules | None) -> str:
    """The stage's text of a page under ``rules`` (None: trafilatura's candidate alone)."""
    ours, theirs = pair
    if rules is None or not unsure(ours, rules):
        return _render(ours)
    return _render(combine(ours, theirs, rules))


def scores(
    pages: Sequence[Page], pairs: Sequence[Candidates], metric: Metric, rules: CombineRules | None, split: str
) -> float:
    """The F1 of one corpus half under ``rules``."""
    keep = [i for i, p in enumerate(pages) if p.split == split]
    return metric.score([_page_score(metric, pages[i], text_of(pairs[i], rules)) for i in keep])["f1"]


_SEEN: dict[tuple[str, str, str], tuple[float, ...]] = {}


def _page_score(metric: Metric, page: Page, text: str) -> tuple[float, ...]:
    """``metric.page``, remembered: most rule sets leave most pages as they were."""
    key = (metric.name, page.id, text)
    if key not in _SEEN:
        _SEEN[key] = metric.page(page, text)
    return _SEEN[key]


def grid() -> list[CombineRules]:
    """The rule sets tried, in a fixed order."""
    return [
        CombineRules(unsure, unsure_prose, covered, extra, 8, tail, disagree, body, prose, 0.5)
        for unsure, unsure_prose, covered, extra, tail, disagree, body, prose in itertools.product(
            (150, 200), (0.0, 0.3, 0.5), (0.8, 0.9), (30, 50), (1.5, 2.0, 3.0), (0.3, 0.5), (30, 50), (0.7, 0.8)
        )
    ]


def cached_candidates(corpora: Sequence[tuple[str, Metric, list[Page]]], cache: Path) -> dict[str, list[Candidates]]:
    """Both candidates of every page, per corpus, read from ``cache`` where a run already made them."""
    cached: dict[str, Candidates] = pickle.loads(cache.read_bytes()) if cache.exists() else {}
    pairs = {}
    for name, _, pages in corpora:
        pairs[name] = [cached.get(f"{name}/{p.id}") or candidates(p) for p in pages]
        cached.update({f"{name}/{p.id}": pair for p, pair in zip(pages, pairs[name], strict=True)})
    cache.write_bytes(pickle.dumps(cached))
    return pairs


def main(argv: Sequence[str] | None = None) -> int:
    """Cache both candidates, search the grid on the dev halves, print the winner on every half."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="only the first N pages of each corpus")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/ingest-combine-candidates.pickle"))
    args = parser.parse_args(argv)
    corpora = [("trafilatura-eval", SNIPPET_METRIC, load_snippets(limit=args.limit)),
               ("dragnet-dev", SHINGLE_METRIC, load_shingles(limit=args.limit))]  # fmt: skip
    pairs = cached_candidates(corpora, args.cache)

    base = {name: scores(pages, pairs[name], metric, None, "dev") for name, metric, pages in corpora}
    best: tuple[float, int, CombineRules] | None = None
    for rules in grid():
        dev = {name: scores(pages, pairs[name], metric, rules, "dev") for name, metric, pages in corpora}
        if any(dev[name] < base[name] for name in dev):
            continue
        asked = sum(unsure(pair[0], rules) for name, _, _ in corpora for pair in pairs[name])
        key = (sum(dev.values()), -asked)
        if best is None or key > best[:2]:
            best = (key[0], key[1], rules)
    if best is None:
        print("no rule set keeps both dev halves")
        return 1
    rules = best[2]
    print(f"winner: {asdict(rules)}; pages sent to readability: {-best[1]}")
    for name, metric, pages in corpora:
        for split in ("dev", "held-out"):
            before = scores(pages, pairs[name], metric, None, split)
            after = scores(pages, pairs[name], metric, rules, split)
            print(f"{name:17} {split:9} trafilatura candidate {before:.4f} -> combined {after:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
