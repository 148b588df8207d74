"""Long-run memory benchmark (issue #14): worker RSS growth and Redis bytes per URL over many pages.

The speed benchmark's runs are too short (1,000 pages) to show a slow leak, and Redis memory per
URL only means something once the run is long enough for per-URL state (seen-sets, frontier,
dead letters, stats) to dominate fixed costs.  This script serves ``--pages`` corpus pages from
nginx (as ``bench/speed.py`` does), enqueues ``--urls`` *distinct* article URLs over them (the
page bodies repeat, the URLs do not: ``?copy=K`` is ignored by the static server but is part of
the URL's identity), and runs the Redis workers (discover+fetch, extract x N, sink) to the end.

It prints, per worker tree, RSS after warm-up (the first sample past 20 % of the URLs stored) and
at the end and the growth between them (the target: < 10 %), Redis ``used_memory`` growth per
URL, the keys Redis holds at the end by prefix, and the Redis commands per stored page by name
(``INFO commandstats`` differences), which say where the broker's round trips go.

    python bench/memory_run.py [--urls 50000] [--pages 1000] [--processes 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pipeline import tree_rss  # noqa: E402
from bench.speed import CLI, _env, start_workers, stop_workers  # noqa: E402
from bench.staticsite import static_server, write_site  # noqa: E402
from tests.conftest import RedisServer, free_port  # noqa: E402


def commandstats(client: Any) -> Counter[str]:
    """Calls per Redis command so far (``INFO commandstats``)."""
    return Counter({k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in client.info("commandstats").items()})


def key_prefixes(client: Any, limit: int = 200_000) -> Counter[str]:
    """Redis keys at the end, grouped by their name up to the first id-like part."""
    found: Counter[str] = Counter()
    for i, key in enumerate(client.scan_iter(count=1000)):
        if i >= limit:
            break
        name = key.decode() if isinstance(key, bytes) else str(key)
        found[":".join(name.split(":")[:2])] += 1
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--urls", type=int, default=50_000, help="distinct article URLs to store")
    parser.add_argument("--pages", type=int, default=1000, help="distinct page bodies behind them")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="extract processes")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="ingest-memrun-"))
    workdir.chmod(0o755)  # nginx's worker processes run as another user
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    redis = RedisServer(port=free_port(), directory=workdir)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        site = write_site(args.pages, origin, workdir / "site")
        paths = site.article_paths
        urls = [f"{origin}{paths[i % len(paths)]}?copy={i // len(paths)}" for i in range(args.urls)]
        redis.start()
        out = workdir / "out"
        env = _env(INGEST_BROKER_URL=redis.url, INGEST_STORAGE_URL=str(out))
        with static_server(site.root, port, 2) as server:
            procs = start_workers(env, args.processes)
            time.sleep(4)  # let workers boot
            client = redis.client()
            mem0 = int(client.info("memory")["used_memory"])
            cmd0 = commandstats(client)
            print(f"{args.urls} URLs over {len(paths)} pages, {server}; {args.processes} extract processes; "
                  f"redis used_memory at start {mem0 / 1e6:.1f} MB", flush=True)
            started = time.perf_counter()
            feeder = threading.Thread(target=subprocess.run, daemon=True, kwargs={
                "args": [*CLI, "enqueue", "-", "--kind", "article"], "input": "".join(u + "\n" for u in urls).encode(),
                "env": env, "cwd": ROOT, "check": True, "capture_output": True})
            feeder.start()
            samples: list[tuple[float, int, dict[str, int], int]] = []
            articles = out / "articles"
            while time.perf_counter() - started < 6 * 3600:
                stored = sum(len(files) for _, _, files in os.walk(articles)) if articles.exists() else 0
                rss = {name: tree_rss(p.pid) for name, p in procs.items()}
                samples.append((time.perf_counter() - started, stored, rss, int(client.info("memory")["used_memory"])))
                print(f"  {samples[-1][0]:7.0f} s  stored {stored:>6}  "
                      + "  ".join(f"{k} {v / 1e6:.0f} MB" for k, v in rss.items())
                      + f"  redis {samples[-1][3] / 1e6:.1f} MB", flush=True)
                if stored >= args.urls:
                    break
                time.sleep(args.every)
            seconds = time.perf_counter() - started
            cmd1 = commandstats(client)
            mem1 = int(client.info("memory")["used_memory"])
            prefixes = key_prefixes(client)
    finally:
        stop_workers(procs)
        redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    stored = samples[-1][1]
    print(f"\nstored {stored} of {args.urls} in {seconds:.0f} s ({stored / seconds:.1f} pages/s)")
    warm = next((s for s in samples if s[1] >= 0.2 * args.urls), samples[0])
    print(f"worker RSS (warm = first sample past 20 % stored, at {warm[1]} pages):")
    for name in samples[-1][2]:
        w, e = warm[2][name], samples[-1][2][name]
        peak = max(s[2][name] for s in samples)
        print(f"  {name:<16} warm {w / 1e6:7.1f} MB  end {e / 1e6:7.1f} MB  peak {peak / 1e6:7.1f} MB  "
              f"growth {100 * (e - w) / w if w else 0:+.1f} %")
    print(f"redis used_memory: start {mem0 / 1e6:.1f} MB, end {mem1 / 1e6:.1f} MB, "
          f"{(mem1 - mem0) / max(args.urls, 1):.0f} bytes per URL; after warm-up "
          f"{(mem1 - warm[3]) / max(stored - warm[1], 1):.0f} bytes per further URL")
    print("redis keys at the end by prefix: " + ", ".join(f"{k} {n}" for k, n in prefixes.most_common(12)))
    diff = cmd1 - cmd0
    total = sum(diff.values())
    print(f"redis commands per stored page: {total / max(stored, 1):.1f}; by command: "
          + ", ".join(f"{k} {n / max(stored, 1):.1f}" for k, n in diff.most_common(15)))


if __name__ == "__main__":
    main()
