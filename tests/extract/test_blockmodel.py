"""The learned block model (bench.blockmodel) and the script that trains it (bench/train_blocks.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.blockmodel import FEATURES, MODEL_PATH, BlockModel, Member, features, load_model, select, union
from bench.corpora import load_shingles
from bench.train_blocks import export, labels
from bench.train_blocks import main as train_main
from bench.tune_combine import candidates
from workers.extract.teasers import Block


def test_the_shipped_model_loads_and_is_small() -> None:
    """Small enough to ship and to evaluate in pure Python on every unsure page."""
    spec = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    assert MODEL_PATH.stat().st_size < 1_000_000
    assert len(spec["trees"]) <= 200
    assert spec["features"] == list(FEATURES)
    assert load_model().trees


def _held_out_blocks() -> list[tuple[list[float], int]]:
    pages = [p for p in load_shingles(limit=80) if p.split == "held-out"][:15]
    out = []
    for page in pages:
        ours, theirs = candidates(page)
        members = union(ours, theirs)
        out += [(row, y) for row, y in zip(features(members), labels(page, members), strict=True) if y is not None]
    return out


def test_the_model_tells_article_blocks_on_pages_it_never_saw() -> None:
    """On held-out dragnet pages it labels blocks better than the majority class (a constant) does.

    Measured: 94% right where always saying "article" is right 85% of the time.
    """
    blocks = _held_out_blocks()
    model = load_model()
    right = sum((model.score(row) >= 0.5) == bool(y) for row, y in blocks) / len(blocks)
    majority = max(sum(y for _, y in blocks), sum(1 - y for _, y in blocks)) / len(blocks)
    assert right >= majority + 0.05


def test_scores_are_deterministic_and_probabilities() -> None:
    blocks = _held_out_blocks()[:50]
    model = load_model()
    first = [model.score(row) for row, _ in blocks]
    assert first == [BlockModel(json.loads(MODEL_PATH.read_text(encoding="utf-8"))).score(r) for r, _ in blocks]
    assert all(0.0 < p < 1.0 for p in first)


def test_union_keeps_each_block_once_in_document_order() -> None:
    ours = [Block("Alpha beta gamma delta epsilon."), Block("Zeta eta theta iota kappa.")]
    theirs = [Block("Before the body one two three."), Block("Alpha beta gamma delta epsilon."),
              Block("In between four five six seven."), Block("Zeta eta theta iota kappa.")]  # fmt: skip
    members = union(ours, theirs)
    assert [m.block.text for m in members] == [b.text for b in theirs]
    assert [(m.in_ours, m.in_theirs) for m in members] == [(False, True), (True, True), (False, True), (True, True)]
    assert select(ours, []) == ours


def test_pure_python_trees_agree_with_scikit_learn() -> None:
    """The exported JSON evaluates to the classifier's own probabilities: the export is faithful."""
    ensemble = pytest.importorskip("sklearn.ensemble")
    rows = [[float((i * 7 + j) % 11) for j in range(len(FEATURES))] for i in range(300)]
    ys = [int(r[0] + r[3] > 10) for r in rows]
    clf = ensemble.HistGradientBoostingClassifier(max_iter=20, max_depth=3, random_state=13).fit(rows, ys)
    model = BlockModel(export(clf, 0.5, 0.5))
    ours = [model.score(r) for r in rows]
    theirs = clf.predict_proba(rows)[:, 1]
    assert max(abs(a - b) for a, b in zip(ours, theirs, strict=True)) < 1e-5


def test_training_runs_on_a_tiny_subset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The script end to end on a few pages of each corpus, writing a model the stage can load."""
    pytest.importorskip("sklearn")
    out = tmp_path / "model.json"
    assert train_main(["--limit", "8", "--cache", str(tmp_path / "c.pickle"), "--out", str(out), "--trees", "5"]) == 0
    model = BlockModel(json.loads(out.read_text(encoding="utf-8")))
    assert len(model.trees) == 5
    assert "dragnet-dev" in capsys.readouterr().out
    assert Member(Block("x"), True, False).in_ours
