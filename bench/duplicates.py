"""How often near-duplicate detection finds a wire copy, by the kind of edit the partner made.

    python bench/duplicates.py [--min-words 200]

Every corpus article of at least ``--min-words`` words (extracted with the extract stage) is edited
the ways syndicating sites edit agency copy: a dateline and a closing line added, the end cut by a
fifth or by two fifths, two paragraphs of another story appended, one word changed per paragraph.
For each edit the script prints the share of copies found (SimHash of the whole text or of the
lead within :data:`workers.extract.duplicates.MAX_DISTANCE`), first by the whole text's hash alone, then
as the index matches; and, as the cost, how many pairs of *different* corpus articles would match.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpora import load_snippets
from bench.quality import stage
from workers.extract.duplicates import MAX_DISTANCE, DuplicateRules, hamming, near_fingerprints


def edits(text: str, other: str) -> Iterator[tuple[str, str]]:
    """(name, edited copy) for the edits a syndicating site makes."""
    paragraphs = text.split("\n\n")
    n = len(paragraphs)
    yield "dateline and closing line", "Berlin (dpa) - " + text + "\n\nMore on this in tomorrow's edition."
    yield "end cut by a fifth", "\n\n".join(paragraphs[: max(1, n * 4 // 5)])
    yield "end cut by two fifths", "\n\n".join(paragraphs[: max(1, n * 3 // 5)])
    yield "two paragraphs appended", "\n\n".join(paragraphs + other.split("\n\n")[:2])
    edited = (p.replace(" der ", " die ", 1).replace(" the ", " a ", 1) for p in paragraphs)
    yield "a word per paragraph", "\n\n".join(edited)


def _share(flags: list[bool]) -> str:
    return f"{sum(flags) / max(1, len(flags)):.0%}"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the share of copies found per edit, and the false matches among different articles."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--min-words", type=int, default=200, help="articles at least this long")
    args = parser.parse_args(argv)
    rules = DuplicateRules()
    texts = [t for t in (stage(page) for page in load_snippets()) if len(t.split()) >= args.min_words]
    hashes = [near_fingerprints(t, rules) for t in texts]
    rng = random.Random(1)
    found: dict[str, list[tuple[bool, bool]]] = {}
    for text, pair in zip(texts, hashes, strict=True):
        assert pair is not None
        for name, copy in edits(text, rng.choice(texts)):
            other = near_fingerprints(copy, rules)
            if other is None:
                continue
            whole = hamming(pair[0], other[0]) <= MAX_DISTANCE
            found.setdefault(name, []).append((whole, whole or hamming(pair[1], other[1]) <= MAX_DISTANCE))
    print(f"{len(texts)} corpus articles of {args.min_words}+ words")
    print(f"{'edit':28}{'whole text':>12}{'whole or lead':>15}")
    for name, flags in found.items():
        print(f"{name:28}{_share([w for w, _ in flags]):>12}{_share([b for _, b in flags]):>15}")
    known = [h for h in hashes if h]
    false = sum(
        hamming(a[0], b[0]) <= MAX_DISTANCE or hamming(a[1], b[1]) <= MAX_DISTANCE
        for i, a in enumerate(known)
        for b in known[i + 1 :]
    )
    pairs = len(texts) * (len(texts) - 1) // 2
    print(f"different articles matched: {false} of {pairs} pairs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
