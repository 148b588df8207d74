"""Discovery benchmark (a script, not a test): recall and precision of a crawl started at the front page only.

For each generated site layout of ``tests/support/layouts.py`` (fifteen of them: sections as
``/world``, ``/news/world``, ``/section/world/page/1.html``, ``?cat=3``, ``/c/12345``; articles as
``/2024/05/01/slug``, ``/a/12345``, ``/story.php?id=9``, ``/slug-123456.html``,
``/news/articles/c0abc123``, bare ``/slug``; pagination by ``rel=next``, ``?page=N``, ``/page/N/``,
numbered links or a "load more" JSON endpoint; navigation in ``<nav>``, a header ``<ul>`` or a
``<select>``; "Read more" teasers; eight without sitemap and feed), serve the site on 127.0.0.1, run the embedded crawl
from its front page and compare the records with the site's articles:

* recall = articles stored / articles that exist;
* non-article records = records of any other page (front page, sections, endpoints, a
  corrections-policy page with a long text); precision = articles / records.

    python bench/discovery.py [--articles 150] [--per-page 8] [--processes 2] [--layout NAME ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.layout_crawl import LayoutScore, crawl_layout  # noqa: E402
from tests.support.layouts import LAYOUTS  # noqa: E402
from workers.core.logs import configure_logging  # noqa: E402
from workers.core.settings import Settings  # noqa: E402

#: What the issue asks for on every layout.
TARGET_RECALL = 0.98
TARGET_PRECISION = 1.0


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> int:
    """Crawl every layout (or those named) and print the table; exit 1 when one misses the target."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=150, help="articles per site (default 150)")
    parser.add_argument("--per-page", type=int, default=8, help="teasers per listing page (default 8)")
    parser.add_argument("--processes", type=int, default=2, help="extraction processes (default 2)")
    parser.add_argument("--layout", action="append", default=[], help="only this layout (repeatable)")
    args = parser.parse_args(argv)
    with open(os.devnull, "w") as devnull:
        configure_logging(Settings.from_env({}), stream=devnull, quiet=True)
        layouts = [lay for lay in LAYOUTS if not args.layout or lay.name in args.layout]
        header = ["layout", "sections", "articles", "pagination", "nav", "sitemap", "existing", "found", "recall",
                  "non-article records", "precision", "requests", "seconds"]
        print(_row(header))
        print(_row(["---"] * len(header)), flush=True)
        scores: list[LayoutScore] = []
        for lay in layouts:
            with tempfile.TemporaryDirectory(prefix="ingest-discovery-") as out:
                started = time.monotonic()
                score = crawl_layout(lay, Path(out), articles=args.articles, per_page=args.per_page,
                                     processes=args.processes, threads=16)
                seconds = time.monotonic() - started
            scores.append(score)
            print(_row([lay.name, lay.sections, lay.articles, lay.pagination, lay.nav, "yes" if lay.sitemap else "no",
                        str(score.existing), str(score.found), f"{score.recall:.3f}", str(score.non_articles),
                        f"{score.precision:.3f}", str(score.requests), f"{seconds:.1f}"]), flush=True)
    failed = [s for s in scores if s.recall < TARGET_RECALL or s.precision < TARGET_PRECISION]
    for s in failed:
        print(f"{s.layout}: missing {list(s.missing[:3])}, non-articles {list(s.extra[:3])}", file=sys.stderr)
    print(f"\n{len(scores) - len(failed)} of {len(scores)} layouts meet recall >= {TARGET_RECALL} and precision "
          f"{TARGET_PRECISION}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
