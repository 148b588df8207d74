"""Train the block model of :mod:`bench.blockmodel` on the dev halves; report every half.

    python bench/train_blocks.py [--limit N] [--cache FILE] [--out FILE] [--trees N] [--depth N]

Both candidates of every page of both corpora are computed once (readability asked for on every
page, cached in ``--cache``), their union's blocks get features and labels from the gold:

* dragnet-dev: a block is article text when at least half of its 4-token shingles are in the gold;
* trafilatura-eval: positive when it holds a ``with`` snippet, negative when it holds a ``without``
  snippet, otherwise unlabelled (left out of training).

scikit-learn's HistGradientBoostingClassifier (a dev-only dependency) learns from the *dev* halves
only, with a fixed seed; the keep threshold is chosen on the dev halves too.  The trees are written
as JSON (``--out``, by default the package's ``blockmodel.json``).  Printed: each half of each corpus
for the stage's current rules, for the model on every page, and for the model only where
trafilatura's candidate is unsure (the pages where the stage runs readability).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.blockmodel import FEATURES, MODEL_PATH, BlockModel, Member, features, union
from bench.corpora import SHINGLE_METRIC, SNIPPET_METRIC, Metric, Page, collapse, load_shingles, load_snippets, shingles
from bench.tune_combine import Candidates, cached_candidates
from workers.extract.article import _render
from workers.extract.combine import combine, unsure

SEED = 13


def labels(page: Page, members: Sequence[Member]) -> list[int | None]:
    """1 article, 0 not, None unknown, per member (see the module notes)."""
    out: list[int | None] = []
    if page.gold:
        gold = shingles(page.gold)
        for m in members:
            own = shingles(m.block.text)
            total = sum(own.values())
            out.append(None if not total else int(sum((own & gold).values()) >= 0.5 * total))
        return out
    wanted = [collapse(s) for s in page.with_]
    unwanted = [collapse(s) for s in page.without]
    for m in members:
        flat = collapse(m.block.text)
        if any(s in flat for s in wanted):
            out.append(1)
        elif any(s in flat for s in unwanted):
            out.append(0)
        else:
            out.append(None)
    return out


def export(clf: Any, drop_below: float, add_above: float) -> dict[str, Any]:
    """The fitted classifier's trees as the JSON spec :class:`BlockModel` reads."""
    trees = []
    for (predictor,) in clf._predictors:
        nodes = predictor.nodes
        tree = []
        for node in nodes:
            if node["is_leaf"]:
                tree.append([-1, 0.0, 0, 0, round(float(node["value"]), 6)])
            else:
                tree.append([int(node["feature_idx"]), float(node["num_threshold"]), int(node["left"]),
                             int(node["right"]), 0.0])  # fmt: skip
        trees.append(tree)
    baseline = float(clf._baseline_prediction.ravel()[0])
    return {"features": list(FEATURES), "baseline": baseline, "drop_below": drop_below, "add_above": add_above,
            "trees": trees}  # fmt: skip


def _rules_base(pair: Candidates) -> Candidates:
    ours, theirs = pair
    return (combine(ours, theirs) if unsure(ours) and theirs else ours), theirs


def _text(pair: Candidates, mode: str, model: BlockModel | None, page: Page | None = None) -> str:
    ours, theirs = pair
    if mode == "oracle" and page is not None:
        # The headroom of block merging: the union's blocks the gold calls article (unknown: ours).
        members = union(ours, theirs)
        picks = labels(page, members)
        return _render([m.block for m, y in zip(members, picks, strict=True) if y == 1 or (y is None and m.in_ours)])
    if mode == "rules":
        return _render(combine(ours, theirs) if unsure(ours) else ours)
    if model is None or (mode == "unsure" and not unsure(ours)) or not theirs:
        return _render(ours)
    members = union(ours, theirs)
    return _render(model.keep(members) or ours)


def half(metric: Metric, pages: Sequence[Page], texts: Sequence[str], split: str) -> dict[str, float]:
    keep = [i for i, p in enumerate(pages) if p.split == split]
    return metric.score([metric.page(pages[i], texts[i]) for i in keep])


def main(argv: Sequence[str] | None = None) -> int:
    """Cache candidates, train on the dev halves, write the model, print every half."""
    from sklearn.ensemble import HistGradientBoostingClassifier  # dev-only dependency

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="only the first N pages of each corpus")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/ingest-combine-candidates.pickle"))
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    parser.add_argument("--trees", type=int, default=50)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--leaf", type=int, default=50, help="fewest blocks in a leaf")
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--base", choices=("trafilatura", "rules"), default="trafilatura",
                        help="the candidate the model edits: trafilatura's, or the hand rules' choice")  # fmt: skip
    args = parser.parse_args(argv)
    corpora = [("trafilatura-eval", SNIPPET_METRIC, load_snippets(limit=args.limit)),
               ("dragnet-dev", SHINGLE_METRIC, load_shingles(limit=args.limit))]  # fmt: skip
    pairs = cached_candidates(corpora, args.cache)
    if args.base == "rules":
        # The model edits the hand rules' choice where trafilatura's candidate is unsure.
        pairs = {name: [_rules_base(pair) for pair in column] for name, column in pairs.items()}

    rows: list[list[float]] = []
    ys: list[int] = []
    weights: list[float] = []
    for name, _, pages in corpora:
        for page, (ours, theirs) in zip(pages, pairs[name], strict=True):
            if page.split != "dev":
                continue
            members = union(ours, theirs)
            # Both metrics average over pages: each page weighs the same, and within it each block by
            # its share of the page's tokens (a one-word line hardly moves a page's score).
            sizes = [1 + len(m.block.text.split()) for m in members]
            total = sum(sizes)
            for row, label, size in zip(features(members), labels(page, members), sizes, strict=True):
                if label is not None:
                    rows.append(row)
                    ys.append(label)
                    weights.append(100 * size / total)
    clf = HistGradientBoostingClassifier(max_iter=args.trees, max_depth=args.depth, learning_rate=args.rate,
                                         min_samples_leaf=args.leaf, l2_regularization=1.0, early_stopping=False,
                                         random_state=SEED)  # fmt: skip
    clf.fit(rows, ys, sample_weight=weights)
    print(f"trained on {len(rows)} dev blocks ({sum(ys)} article)")

    best: tuple[float, float, float] | None = None
    for drop, add in itertools.product((0.0, 0.05, 0.1, 0.2, 0.3), (0.5, 0.6, 0.7, 0.8, 0.9, 1.01)):
        model = BlockModel(export(clf, drop, add))
        dev = sum(
            half(metric, pages, [_text(p, "unsure", model) for p in pairs[name]], "dev")["f1"]
            for name, metric, pages in corpora
        )
        if best is None or dev > best[0]:
            best = (dev, drop, add)
    assert best is not None
    spec = export(clf, best[1], best[2])
    args.out.write_text(json.dumps(spec, separators=(",", ":")), encoding="utf-8")
    model = BlockModel(spec)
    modes = ("rules", "every", "unsure", "oracle")
    print(f"drop below {best[1]}, add above {best[2]} (dev); wrote {args.out} ({args.out.stat().st_size} bytes)")
    for name, metric, pages in corpora:
        for mode in modes:
            texts = [_text(p, mode, model, page) for p, page in zip(pairs[name], pages, strict=True)]
            cells = []
            for split in ("dev", "held-out"):
                score = half(metric, pages, texts, split)
                leak = f" / {score['leak']:.1%}" if "leak" in score else ""
                cells.append(f"{split} {score['f1']:.4f}{leak}")
            print(f"{name:17} {mode:7} " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
