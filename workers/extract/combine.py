"""Choosing between, or merging, two candidates for a page's main text.

trafilatura's candidate (after the stage's own cleaning) is the default; it is precise, and on
most pages complete.  Where it is short or hardly prose (:func:`unsure`), readability-lxml's
candidate is asked for too, and the two are compared by what they share: 4-token shingles (the
same unit the benchmark scores with), counted over each candidate's blocks.  The signals are
general ones, none tied to a site:

* **agreement**: the share of trafilatura's shingles that readability also has (``covered``; the
  converse, ``kept``, is reported for tuning and no rule uses it yet);
* **length**: tokens in each candidate, and in readability's blocks that trafilatura lacks;
* **prose**: the share of each candidate's tokens in sentences (:func:`prose_share`); readability's
  extra blocks must read as paragraphs (long enough, not a link's text).

When readability holds nearly all of trafilatura's text and more, trafilatura stopped too early (a
body split into several containers): readability's extra paragraphs are added in their place.
When the two share almost nothing and only readability's reads as prose, trafilatura found a date
list, a menu or a caption and readability the body.  Otherwise trafilatura's text stands.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from workers.extract.teasers import Block

__all__ = ["RULES", "Agreement", "CombineRules", "agreement", "combine", "prose_share", "reads_as_prose", "unsure"]

_TOKEN = re.compile(r"\w+")
_SHINGLE = 4
# A sentence's end: its mark, perhaps inside closing quotes or brackets, at the end of the block.
_SENTENCE_END = re.compile(r"[.!?…。！？][\"'”’»)\]]{0,2}\s*$")
_SENTENCE_TOKENS = 10


@dataclass(frozen=True)
class CombineRules:
    """The thresholds of :func:`unsure` and :func:`combine`, tuned on the dev halves only
    (``python bench/tune_combine.py``)."""

    #: trafilatura's text below this many tokens, or with under ``unsure_prose`` of them in
    #: sentences, is worth a second opinion.
    unsure_tokens: int = 150
    unsure_prose: float = 0.3
    #: Stopped early: readability holds this share of trafilatura's shingles and adds ``extra_tokens``
    #: or more (a paragraph's worth: a line or two more is a dateline or a notice trafilatura rightly
    #: left out), in paragraphs of ``prose_tokens`` or more: those paragraphs join.
    covered: float = 0.8
    extra_tokens: int = 30
    prose_tokens: int = 8
    #: Their paragraphs before the first or after the last one both share join only when readability's
    #: text is this many times trafilatura's (trafilatura kept a fragment), see :func:`_extra`.
    fragment_ratio: float = 2.0
    #: Found the wrong thing: they share less than ``disagree`` of trafilatura's shingles, readability's
    #: text has ``body_tokens`` or more, at least ``prose`` of them in sentences, and trafilatura's
    #: under ``not_prose``: readability's text stands.
    disagree: float = 0.3
    body_tokens: int = 30
    prose: float = 0.7
    not_prose: float = 0.5


RULES = CombineRules()


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _shingles(tokens: Sequence[str]) -> set[tuple[str, ...]]:
    if len(tokens) < _SHINGLE:
        return {tuple(tokens)} if tokens else set()
    return {tuple(tokens[i : i + _SHINGLE]) for i in range(len(tokens) - _SHINGLE + 1)}


def unsure(blocks: Sequence[Block], rules: CombineRules = RULES) -> bool:
    """Whether trafilatura's candidate is short, or reads too little as prose, to go unchecked.

    Why these two: on both development corpora the pages where trafilatura misses the body, or
    keeps a caption, a date list or a menu instead of it, are nearly all short or written in
    something other than sentences; long prose it gets right, and readability on every page would
    cost more CPU than the stage may spend.
    """
    tokens = sum(len(_tokens(b.text)) for b in blocks)
    return tokens < rules.unsure_tokens or prose_share(blocks) < rules.unsure_prose


@dataclass(frozen=True)
class Agreement:
    """What two candidates share, in tokens and shingles (see the module notes)."""

    ours_tokens: int
    theirs_tokens: int
    covered: float  # share of our shingles that theirs has
    kept: float  # share of their shingles that ours has
    ours_prose: float = 0.0  # share of our tokens in sentences (see :func:`prose_share`)
    theirs_prose: float = 0.0


def prose_share(blocks: Sequence[Block]) -> float:
    """The share of a candidate's tokens in blocks that read as prose: long, closed by a sentence mark.

    Why: an article body is written in sentences; a wrong candidate (a caption, a list of
    headlines, a menu, a table of figures) mostly is not, in any language that ends its
    sentences with a mark.
    """
    total = prose = 0
    for block in blocks:
        count = len(_tokens(block.text))
        total += count
        if reads_as_prose(block, count):
            prose += count
    return prose / total if total else 0.0


def reads_as_prose(block: Block, count: int) -> bool:
    """Whether a block of ``count`` tokens is a sentence or more of running text, not a link's."""
    return count >= _SENTENCE_TOKENS and not block.linked and bool(_SENTENCE_END.search(block.text))


def agreement(ours: Sequence[Block], theirs: Sequence[Block]) -> Agreement:
    """How much two candidates agree, and how much each reads as prose, to decide which to trust."""
    a = [t for b in ours for t in _tokens(b.text)]
    b = [t for blk in theirs for t in _tokens(blk.text)]
    sa, sb = _shingles(a), _shingles(b)
    shared = len(sa & sb)
    return Agreement(
        len(a), len(b), shared / max(1, len(sa)), shared / max(1, len(sb)), prose_share(ours), prose_share(theirs)
    )


def _extra(ours: Sequence[Block], theirs: Sequence[Block], prose_tokens: int, outside: bool) -> list[Block]:
    """Ours with their blocks that ours lacks, each before the block of ours it precedes in theirs.

    Their blocks before the first or after the last paragraph ours shares join only with ``outside``:
    what precedes an article's start or follows its end (a teaser list, a paywall notice, an
    appeal) is where a longer candidate goes wrong; a gap inside the article is not.
    """
    our_shingles = [_shingles(_tokens(b.text)) for b in ours]
    have = set().union(*our_shingles)
    shared = [_shingles(_tokens(block.text)) <= have for block in theirs]
    # The article's extent is where they share paragraphs; a shared headline alone does not open it.
    inside = [i for i, found in enumerate(shared) if found and len(_tokens(theirs[i].text)) >= prose_tokens]
    if not inside:
        return list(ours)
    before: dict[int, list[Block]] = {}  # our block index -> their blocks to put before it
    pending: list[Block] = []
    at = 0  # our blocks are matched in order
    for i, block in enumerate(theirs):
        if shared[i]:
            mine = _shingles(_tokens(block.text))
            j = next((k for k in range(at, len(ours)) if mine & our_shingles[k]), at)
            before.setdefault(j, []).extend(pending)
            pending = []
            at = min(j, len(ours) - 1)
        elif (outside or inside[0] < i < inside[-1]) and len(_tokens(block.text)) >= prose_tokens and not block.linked:
            pending.append(block)
    merged = [b for j, block in enumerate(ours) for b in (*before.get(j, ()), block)]
    return merged + pending


def combine(ours: list[Block], theirs: list[Block], rules: CombineRules = RULES) -> list[Block]:
    """trafilatura's blocks, readability's, or trafilatura's with readability's extra paragraphs.

    Why: neither extractor is best everywhere; where trafilatura's candidate is unsure, their
    agreement tells a candidate that stopped early (readability holds it and more) from one that
    found the wrong thing (they share little, and only readability's reads as prose).
    """
    if not theirs:
        return ours
    if not ours:
        return theirs
    agree = agreement(ours, theirs)
    if agree.covered >= rules.covered and agree.theirs_tokens >= agree.ours_tokens + rules.extra_tokens:
        fragment = agree.theirs_tokens >= rules.fragment_ratio * agree.ours_tokens
        return _extra(ours, theirs, rules.prose_tokens, fragment)
    body = agree.theirs_tokens >= rules.body_tokens
    reads_better = agree.theirs_prose >= rules.prose and agree.ours_prose < rules.not_prose
    if body and agree.covered < rules.disagree and reads_better:
        return theirs
    return ours
