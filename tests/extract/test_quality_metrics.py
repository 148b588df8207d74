"""bench/corpora.py: the two corpus metrics exactly as the corpus READMEs define them, and the fixed split."""

from __future__ import annotations

import pytest

from bench.corpora import (
    SHINGLE_METRIC,
    SNIPPET_METRIC,
    Page,
    bootstrap_diff,
    shingle_score,
    shingle_stats,
    shingles,
    snippet_score,
    snippet_stats,
    split_of,
)


def _gold(text: str) -> Page:
    return Page("p", "https://x.invalid/", b"", gold=text)


def test_shingles_are_a_multiset_of_four_tokens_and_short_texts_one_shingle() -> None:
    assert shingles("") == {}
    assert shingles("one, two!") == {("one", "two"): 1}
    assert shingles("a b c d a b c d") == {
        ("a", "b", "c", "d"): 2,
        ("b", "c", "d", "a"): 1,
        ("c", "d", "a", "b"): 1,
        ("d", "a", "b", "c"): 1,
    }
    assert shingles("Ünïcode wörds stay, Case Kept") == {
        ("Ünïcode", "wörds", "stay", "Case"): 1,
        ("wörds", "stay", "Case", "Kept"): 1,
    }


def test_page_precision_and_recall_count_the_multiset_intersection() -> None:
    page = _gold("a b c d e f")  # shingles abcd bcde cdef
    assert list(shingle_stats(page, "a b c d e")) == [1, 1.0, pytest.approx(2 / 3)]
    # abcd twice, bcda, cdab, dabc: the gold's one abcd matches once, 1 of 5 predicted, 1 of 3 wanted.
    assert list(shingle_stats(page, "a b c d a b c d")) == [1, pytest.approx(1 / 5), pytest.approx(1 / 3)]
    assert shingle_stats(page, "") == (0, 0.0, 0.0)


def test_corpus_precision_skips_empty_predictions_and_recall_counts_them_as_zero() -> None:
    stats = [(1, 1.0, 0.5), (0, 0.0, 0.0)]
    score = shingle_score(stats)
    assert score["precision"] == 1.0 and score["recall"] == 0.25
    assert score["f1"] == pytest.approx(2 * 1.0 * 0.25 / 1.25)


def test_snippets_collapse_whitespace_and_leaks_count_per_page() -> None:
    page = Page("p", "u", b"", with_=("the  body\ntext", "missing"), without=("menu",))
    stats = snippet_stats(page, "the body   text and the menu")
    assert stats == (1, 1, 1, 0, True)
    score = snippet_score([stats, (2, 0, 0, 1, False)])
    assert score["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1)) and score["leak"] == 0.5


def test_the_split_is_fixed_by_the_page_id_and_roughly_halves() -> None:
    ids = [str(i) for i in range(1000)]
    held = [i for i in ids if split_of(i) == "held-out"]
    assert 400 < len(held) < 600
    assert split_of("100") == split_of("100") and {split_of(i) for i in ids} == {"dev", "held-out"}


def test_the_paired_bootstrap_brackets_the_difference() -> None:
    ours = [(1, 1.0, 1.0)] * 30 + [(1, 0.5, 0.5)] * 10
    theirs = [(1, 0.5, 0.5)] * 40
    low, high = bootstrap_diff(SHINGLE_METRIC, ours, theirs)
    assert 0 < low <= SHINGLE_METRIC.score(ours)["f1"] - SHINGLE_METRIC.score(theirs)["f1"] <= high
    assert bootstrap_diff(SNIPPET_METRIC, [(1, 0, 0, 1, 0)] * 5, [(1, 0, 0, 1, 0)] * 5) == (0.0, 0.0)
