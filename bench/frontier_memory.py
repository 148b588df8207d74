"""Memory of the seen-set per million URLs, exact (Redis hash) and Bloom (Redis bitmap).

Starts its own redis-server, claims N URL ids in batches as discover would, and reports Redis's
``used_memory`` growth per million URLs.

    python bench/frontier_memory.py [--urls 1000000]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import RedisServer, free_port  # noqa: E402
from workers.discover.frontier import BloomSeen, RedisSeen, Seen  # noqa: E402


def _ids(n: int) -> list[str]:
    return [hashlib.sha256(f"https://news.example/story-{i}.html".encode()).hexdigest()[:32] for i in range(n)]


def main() -> None:
    """Measure both variants and print bytes per URL and MB per million."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--urls", type=int, default=1_000_000)
    args = parser.parse_args()
    ids = _ids(args.urls)
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(port=free_port(), directory=Path(tmp))
        server.start()
        try:
            client = server.client()
            variants: dict[str, Seen] = {
                "exact (hash url_id -> owner)": RedisSeen(client, "exact"),
                "bloom (0.1% false positives)": BloomSeen(client, "bloom", capacity=args.urls, error_rate=0.001),
            }
            print(f"{'seen-set':<30} {'URLs':>10} {'MB':>8} {'bytes/URL':>10} {'MB per 1M':>10} {'s':>6}")
            for name, seen in variants.items():
                before = int(client.info("memory")["used_memory"])
                started = time.perf_counter()
                for i in range(0, len(ids), 1000):
                    batch = ids[i : i + 1000]
                    seen.claim("crawl", batch, owner=f"discover-message-{i}")
                    seen.commit("crawl", batch)
                seconds = time.perf_counter() - started
                grown = int(client.info("memory")["used_memory"]) - before
                print(f"{name:<30} {len(ids):>10} {grown / 1e6:>8.1f} {grown / len(ids):>10.1f} "
                      f"{grown / len(ids):>10.1f} {seconds:>6.1f}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
