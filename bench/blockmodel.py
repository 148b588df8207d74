"""A small learned block model: which blocks of the union of both candidates are the article.

Choosing one whole candidate per page is capped by the per-page oracle; merging at block level is
not.  The union of trafilatura's cleaned blocks and readability's (:func:`union`) is scored block by
block with gradient-boosted trees over features that generalise (:func:`features`): length, link
text, prose shape, punctuation, heading-ness, relative position, membership in each candidate and
where the block sits relative to trafilatura's span, and the same for both neighbours.  No class
name, phrase or site is a feature, so nothing ties the model to the pages it was trained on.

The trees are trained by ``bench/train_blocks.py`` (scikit-learn, dev halves only, fixed seed) and
kept as ``blockmodel.json`` beside this module; they are evaluated here in pure Python, so a stage
using them would need no scikit-learn at run time, and the same blocks always get the same answer.
It lives in ``bench/``, not in the extract stage, because it trails the hand rules on the held-out
halves (README, Extraction): a measured experiment, moved into ``workers/extract/`` once it wins.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from workers.extract.combine import _shingles, _tokens, reads_as_prose
from workers.extract.teasers import Block

__all__ = ["FEATURES", "MODEL_PATH", "BlockModel", "Member", "features", "load_model", "select", "union"]

MODEL_PATH = Path(__file__).with_name("blockmodel.json")

_PUNCT = re.compile(r"[.,;:!?…。，、！？]")
_DIGIT = re.compile(r"\d")

#: Per-block features, in the order the trees index them (the neighbours' follow, see :func:`features`).
_OWN = (
    "log_tokens", "linked", "prose", "punct_rate", "comma_rate", "digit_rate", "upper_start", "head", "item",
    "grouped", "in_ours", "in_theirs", "position", "before_ours", "after_ours", "ours_share",
)  # fmt: skip
_PAGE = ("log_ours_tokens", "log_theirs_tokens", "covered", "ours_prose", "theirs_prose")
_NEIGHBOUR = ("log_tokens", "linked", "prose", "head", "in_ours", "in_theirs")
FEATURES: tuple[str, ...] = (
    *_OWN,
    *_PAGE,
    *(f"prev_{n}" for n in _NEIGHBOUR),
    *(f"next_{n}" for n in _NEIGHBOUR),
)


@dataclass(frozen=True)
class Member:
    """A block of the union and which candidates hold it."""

    block: Block
    in_ours: bool
    in_theirs: bool


def union(ours: Sequence[Block], theirs: Sequence[Block]) -> list[Member]:
    """Both candidates' blocks once each, in document order as far as the two agree on it.

    Their blocks are matched to ours by shingles (a block of theirs whose shingles ours all has is
    one of ours); a block of theirs that ours lacks goes before the block of ours that follows it in
    theirs, as :func:`workers.extract.combine._extra` places them.
    """
    our_sets = [_shingles(_tokens(b.text)) for b in ours]
    have: set[tuple[str, ...]] = set().union(*our_sets) if our_sets else set()
    theirs_cover: set[tuple[str, ...]] = set()
    before: dict[int, list[Block]] = {}
    pending: list[Block] = []
    at = 0
    for block in theirs:
        mine = _shingles(_tokens(block.text))
        theirs_cover |= mine
        if mine and mine <= have:
            j = next((k for k in range(at, len(ours)) if mine & our_sets[k]), at)
            before.setdefault(j, []).extend(pending)
            pending = []
            at = min(j, max(0, len(ours) - 1))
        elif mine:
            pending.append(block)
    out: list[Member] = []
    for j, block in enumerate(ours):
        out.extend(Member(b, False, True) for b in before.get(j, ()))
        in_theirs = bool(our_sets[j]) and our_sets[j] <= theirs_cover
        out.append(Member(block, True, in_theirs))
    out.extend(Member(b, False, True) for b in pending)
    return out


def _own(block: Block) -> tuple[float, ...]:
    text = block.text
    count = len(_tokens(text))
    chars = max(1, len(text))
    prose = reads_as_prose(block, count)
    return (
        math.log1p(count),
        float(block.linked),
        float(prose),
        len(_PUNCT.findall(text)) / max(1, count),
        text.count(",") / max(1, count),
        len(_DIGIT.findall(text)) / chars,
        float(text[:1].isupper()),
        float(block.tag == "head"),
        float(block.tag in ("item", "row", "cell")),
        float(block.group != 0),
    )


def features(members: Sequence[Member]) -> list[list[float]]:
    """One feature row per member of the union (names in :data:`FEATURES`)."""
    n = len(members)
    owns = [_own(m.block) for m in members]
    counts = [len(_tokens(m.block.text)) for m in members]
    ours_at = [i for i, m in enumerate(members) if m.in_ours]
    first, last = (ours_at[0], ours_at[-1]) if ours_at else (n, -1)
    ours_tokens = sum(c for c, m in zip(counts, members, strict=True) if m.in_ours)
    theirs_tokens = sum(c for c, m in zip(counts, members, strict=True) if m.in_theirs)
    shared = sum(c for c, m in zip(counts, members, strict=True) if m.in_ours and m.in_theirs)

    def prose_of(pick: str) -> float:
        total = sum(c for c, m in zip(counts, members, strict=True) if getattr(m, pick))
        prose = sum(c for c, m, o in zip(counts, members, owns, strict=True) if getattr(m, pick) and o[2])
        return prose / total if total else 0.0

    page = (
        math.log1p(ours_tokens),
        math.log1p(theirs_tokens),
        shared / ours_tokens if ours_tokens else 0.0,
        prose_of("in_ours"),
        prose_of("in_theirs"),
    )
    rows: list[list[float]] = []
    for i, m in enumerate(members):
        own = owns[i]
        row = [
            *own,
            float(m.in_ours),
            float(m.in_theirs),
            i / max(1, n - 1),
            float(i < first),
            float(i > last),
            counts[i] / max(1, ours_tokens),
            *page,
        ]
        for k in (i - 1, i + 1):
            if 0 <= k < n:
                o = owns[k]
                row += [o[0], o[1], o[2], o[7], float(members[k].in_ours), float(members[k].in_theirs)]
            else:
                row += [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        rows.append(row)
    return rows


class BlockModel:
    """Boosted regression trees on the logit scale, evaluated in pure Python.

    Each tree is a flat list of nodes ``[feature, threshold, left, right, value]``; a leaf has
    ``feature == -1``.  A missing value never occurs (every feature is computed), so there is no
    missing-value branch.
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        if tuple(spec["features"]) != FEATURES:
            raise ValueError("the block model was trained on other features; retrain it (bench/train_blocks.py)")
        self.baseline: float = float(spec["baseline"])
        #: trafilatura's blocks stay unless the model is this sure they are not article text; the
        #: other candidate's join only when it is this sure they are: the precise candidate is the default.
        self.drop_below: float = float(spec["drop_below"])
        self.add_above: float = float(spec["add_above"])
        self.trees: list[list[tuple[int, float, int, int, float]]] = [
            [(int(f), float(t), int(lo), int(hi), float(v)) for f, t, lo, hi, v in tree] for tree in spec["trees"]
        ]

    def score(self, row: Sequence[float]) -> float:
        """The probability that a block with these features is article text."""
        total = self.baseline
        for tree in self.trees:
            node = tree[0]
            while node[0] >= 0:
                node = tree[node[2] if row[node[0]] <= node[1] else node[3]]
            total += node[4]
        return 1.0 / (1.0 + math.exp(-total))


    def keep(self, members: Sequence[Member]) -> list[Block]:
        """The members this model keeps, in order (see ``drop_below`` and ``add_above``)."""
        kept = []
        for member, row in zip(members, features(members), strict=True):
            p = self.score(row)
            if (member.in_ours and p >= self.drop_below) or (not member.in_ours and p >= self.add_above):
                kept.append(member.block)
        return kept


@lru_cache(maxsize=1)
def load_model(path: Path = MODEL_PATH) -> BlockModel:
    """The shipped model, read once per process."""
    return BlockModel(json.loads(path.read_text(encoding="utf-8")))


def select(ours: list[Block], theirs: list[Block], model: BlockModel | None = None) -> list[Block]:
    """The union's blocks the model calls article text, in order; trafilatura's when it keeps none."""
    if not theirs:
        return ours
    members = union(ours, theirs)
    model = model or load_model()
    return model.keep(members) or ours
