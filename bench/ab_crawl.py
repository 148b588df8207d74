"""A/B of ``ingest crawl`` between a git revision and the work tree, interleaved (issue #14).

    python bench/ab_crawl.py --base REV [--pages 1000] [--runs 6]

This machine's speed drifts by a third within minutes, so pages per second of two runs minutes
apart compare poorly.  Here the base revision (checked out into a temporary git worktree) and the
work tree crawl the same static site (bench/staticsite.py) in alternating order, and besides
pages/s the script prints each side's main-process and page-pool CPU per page and their ratio:
two figures of one run, which a drifting machine moves together, so a change to the main process
(fetch, discover, sink, messages) shows in ``main/pool`` even when pages/s is noise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.speed import CRAWL_MAIN, CRAWL_POOL, run_crawl  # noqa: E402
from bench.staticsite import static_server, write_site  # noqa: E402
from tests.conftest import free_port  # noqa: E402


def crawl(tree: Path, start: str, workdir: Path) -> tuple[float, float, float]:
    """(main-process CPU ms per page, pool CPU ms per page, pages/s) of one ``ingest crawl`` from ``tree``."""
    run = run_crawl(start, workdir, os.cpu_count() or 1, 10_000, tree=tree)
    stored = max(run.stored, 1)
    return run.cpu[CRAWL_MAIN] * 1000 / stored, run.cpu[CRAWL_POOL] * 1000 / stored, run.stored / run.seconds


def main() -> None:
    """Check out ``--base``, build and serve the site, alternate the two crawls, print medians."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="git revision to compare the work tree with")
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=6, help="crawls per side, alternating which goes first")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ingest-ab-"))
    workdir.chmod(0o755)  # nginx's worker processes run as another user
    base = workdir / "base"
    subprocess.run(["git", "worktree", "add", "--detach", str(base), args.base], cwd=ROOT, check=True,
                   capture_output=True)  # fmt: skip
    trees = {f"base {args.base}": base, "work tree": ROOT}
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in trees}
    try:
        site = write_site(args.pages, origin, workdir / "site")
        with static_server(site.root, port, 2):
            for run in range(args.runs):
                order = list(trees.items()) if run % 2 == 0 else list(reversed(trees.items()))
                for name, tree in order:
                    main_ms, pool_ms, rate = crawl(tree, origin + "/", workdir)
                    results[name].append((main_ms, pool_ms, rate))
                    print(f"  run {run + 1}: {name:<20} main {main_ms:6.2f} ms/page, pool {pool_ms:6.2f} ms/page, "
                          f"main/pool {main_ms / pool_ms:.3f}, {rate:6.1f} pages/s", flush=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nmedians over {args.runs} runs each ({args.pages} pages, `ingest crawl /`):")
    for name, rows in results.items():
        print(f"  {name:<20} main {statistics.median(r[0] for r in rows):6.2f} ms/page, "
              f"pool {statistics.median(r[1] for r in rows):6.2f} ms/page, "
              f"main/pool {statistics.median(r[0] / r[1] for r in rows):.3f}, "
              f"{statistics.median(r[2] for r in rows):6.1f} pages/s")


if __name__ == "__main__":
    main()
