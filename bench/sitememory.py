"""What site memory removes: boilerplate snippets gone versus article snippets lost, per host.

    python bench/sitememory.py [--seed-pages 10] [--extractor ours|trafilatura] [--blocks lines|paragraphs]
                               [--verbose]

Pages are grouped by host and extracted in order (``workers.extract.article.extract_article``, or plain
trafilatura with ``--extractor trafilatura`` to see what the memory does without our teaser
filter); each page's text lines go through :func:`workers.extract.sitememory.strip_recurring` with one
:class:`~workers.extract.sitememory.MemorySiteMemory` and default rules.  Per group the script prints the
blocks dropped, the ``without`` snippets (boilerplate) present before and after, and the ``with``
snippets (article text) present before and after.  Scoring as in the corpus README: whitespace
collapsed, substring match.  A block is a line of the text (``--blocks lines``) or a paragraph
(``--blocks paragraphs``, how the extract stage cuts; trafilatura's own text output separates
paragraphs by a single newline, so there it makes one block per page).

Groups: the seed-shaped pages (``tests/seedpages.py``), one host per markup style, first with each
page's own teasers, then with one teaser box shared by the host's pages (see :func:`seed_groups`);
and the corpus pages grouped by the host of their annotated ``url``.  Almost every corpus host
has a single page, which cannot teach the memory anything (``min_pages`` is 3): they are summed
in one row.
"""

from __future__ import annotations

import argparse
import gzip
import html
import json
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import trafilatura  # noqa: E402

from tests.support.seedpages import SeedPage, seed_pages  # noqa: E402
from tests.support.site import corpus_dir  # noqa: E402
from workers.core.urls import InvalidURL, host_of, normalize_url, url_id  # noqa: E402
from workers.extract.article import extract_article  # noqa: E402
from workers.extract.sitememory import MemorySiteMemory, strip_recurring  # noqa: E402

SEED_HOST = "news.example.org"


@dataclass(frozen=True)
class Page:
    """One page to extract and what its text must (``with_``) and must not (``without``) contain."""

    url: str
    html: bytes | str
    with_: tuple[str, ...]
    without: tuple[str, ...]


@dataclass
class Tally:
    """Counts of one group."""

    pages: int = 0
    blocks: int = 0
    dropped: int = 0
    without_total: int = 0
    without_before: int = 0
    without_after: int = 0
    with_total: int = 0
    with_before: int = 0
    with_after: int = 0

    def add(self, other: Tally) -> None:
        """Add another group's counts to these."""
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def collapse(text: str) -> str:
    """Whitespace runs to one space, as the corpus scoring prescribes."""
    return " ".join(text.split())


def present(snippets: Sequence[str], text: str) -> int:
    """How many snippets the text contains."""
    flat = collapse(text)
    return sum(collapse(s) in flat for s in snippets)


def seed_groups(count_per_style: int, shared_box: bool) -> dict[str, list[Page]]:
    """The seed-shaped pages by style, each style one host (one site, one template).

    With ``shared_box`` every page of a host shows the teaser openings of the host's page with the
    longest list (as far as its own list reaches), the way a site's "More From …" box lists the
    same latest articles on every page of a day; without, each page has its own teasers.
    """
    by_style: dict[str, list[SeedPage]] = defaultdict(list)
    for page in seed_pages(count_per_style=count_per_style):
        by_style[page.style].append(page)
    groups = {}
    for style, pages in by_style.items():
        host = f"{style.replace('_', '-')}.{SEED_HOST}"
        box = max((p.teasers for p in pages), key=len)
        out = []
        for page in pages:
            document, teasers = page.html, page.teasers
            if shared_box:
                teasers = box[: len(page.teasers)]
                for own, common in zip(page.teasers, teasers, strict=True):
                    document = document.replace(html.escape(own, quote=True), html.escape(common, quote=True))
            out.append(Page(f"https://{host}{page.path}", document, page.paragraphs, teasers))
        groups[host] = out
    return groups


def corpus_groups(corpus: Path) -> tuple[dict[str, list[Page]], int]:
    """Corpus pages by host (in corpus order) and the number of pages without a usable URL."""
    meta = json.loads((corpus / "annotations.json").read_text(encoding="utf-8"))
    groups: dict[str, list[Page]] = defaultdict(list)
    no_url = 0
    for entry in meta["pages"]:
        try:
            url = normalize_url(entry["url"])
        except (InvalidURL, TypeError):
            no_url += 1
            continue
        raw = gzip.decompress((corpus / "html" / entry["local_file"]).read_bytes())
        groups[host_of(url)].append(Page(url, raw, tuple(entry["with"]), tuple(entry["without"])))
    return groups, no_url


def _ours(page: Page) -> str:
    text: str = extract_article(page.html, page.url)["text"]
    return text


def _trafilatura(page: Page) -> str:
    return trafilatura.extract(page.html, url=page.url, include_comments=False) or ""


def run_group(
    host: str, pages: Sequence[Page], extract: Callable[[Page], str], separator: str = "\n"
) -> tuple[Tally, dict[str, int]]:
    """Extract and strip every page of one host in order: the counts and each dropped block's page count.

    ``separator`` cuts the text into blocks: "\n" for lines, "\n\n" for paragraphs (a list or a
    table is then one block).
    """
    memory = MemorySiteMemory()
    tally = Tally()
    dropped_texts: dict[str, int] = defaultdict(int)
    for page in pages:
        text = extract(page)
        blocks = [block for block in text.split(separator) if block.strip()]
        kept, dropped = strip_recurring(blocks, host, url_id(page.url), memory)
        after = separator.join(kept)
        for block in set(blocks) - set(kept):
            dropped_texts[block] += 1
        tally.pages += 1
        tally.blocks += len(blocks)
        tally.dropped += dropped
        tally.without_total += len(page.without)
        tally.without_before += present(page.without, text)
        tally.without_after += present(page.without, after)
        tally.with_total += len(page.with_)
        tally.with_before += present(page.with_, text)
        tally.with_after += present(page.with_, after)
    return tally, dropped_texts


def _report(name: str, result: tuple[Tally, dict[str, int]], verbose: bool) -> None:
    tally, dropped = result
    print(_row(name, tally))
    if verbose:
        for block, times in sorted(dropped.items(), key=lambda kv: -kv[1]):
            print(f"    dropped on {times:3} pages: {block[:100]!r}")


def _row(name: str, t: Tally) -> str:
    return (
        f"{name[:34]:34} {t.pages:5} {t.blocks:6} {t.dropped:7}   "
        f"{t.without_before:4}->{t.without_after:<4}/{t.without_total:<5} "
        f"{t.with_before:4}->{t.with_after:<4}/{t.with_total:<5}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run every group and print a table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed-pages", type=int, default=10, help="seed pages per style (6 styles)")
    parser.add_argument("--extractor", choices=("ours", "trafilatura"), default="ours")
    parser.add_argument("--blocks", choices=("lines", "paragraphs"), default="lines", help="what one block is")
    parser.add_argument("--verbose", action="store_true", help="list the dropped blocks of each group")
    args = parser.parse_args(argv)
    extract = _ours if args.extractor == "ours" else _trafilatura
    sep = "\n" if args.blocks == "lines" else "\n\n"

    print(f"extractor: {args.extractor}, blocks: {args.blocks}; boilerplate: `without` snippets, article: `with`")
    print(f"{'group':34} {'pages':>5} {'blocks':>6} {'dropped':>7}   {'boilerplate left':16} {'article kept':14}")
    for shared_box in (False, True):
        for host, pages in seed_groups(args.seed_pages, shared_box).items():
            label = f"seed {host.split('.')[0]}{', shared box' if shared_box else ''}"
            _report(label, run_group(host, pages, extract, sep), args.verbose)

    groups, no_url = corpus_groups(corpus_dir())
    multi = {h: p for h, p in groups.items() if len(p) > 1}
    single = Tally()
    for host, pages in sorted(multi.items()):
        _report(f"corpus {host}", run_group(host, pages, extract, sep), args.verbose)
    for host, pages in groups.items():
        if len(pages) == 1:
            single.add(run_group(host, pages, extract, sep)[0])
    print(_row(f"corpus, {sum(len(p) == 1 for p in groups.values())} one-page hosts", single))
    print(f"corpus: {len(groups)} hosts, {len(multi)} with more than one page; {no_url} pages without a URL skipped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
