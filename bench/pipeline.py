"""Throughput benchmark (a script, not a test): pages per second and CPU seconds per page.

Serves a generated site of N article pages built from the corpus (each copy made unique by a
marker in its title and first paragraph) on 127.0.0.1, from a separate process so the server's
CPU is not counted, and measures in one run:

1. the embedded crawl (``run_embedded``: all stages in one process, extraction on every core);
2. Redis-backed ``ingest worker`` processes: one for discover+fetch+sink, one with 2 extract
   processes, fed by ``ingest enqueue``;
3. a bare loop of ``trafilatura.extract`` over the same pages: the extraction limit per core.

CPU time is read from /proc for the whole process tree of each run (pool and worker children
included), sampled while it runs.

    python bench/pipeline.py [--pages 1000] [--skip-redis]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import RedisServer, free_port  # noqa: E402
from tests.support.site import build_site, corpus_articles, serve_site  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def _serve(pages: int, conn: Connection) -> None:
    site = build_site(corpus_articles(pages, unique_marker=True))
    with serve_site(site) as server:
        conn.send((server.base_url, len(site.articles), len(site.listing_paths)))
        conn.recv()  # block until told to stop


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    # utime and stime only: children are sampled themselves while alive, and adding the parent's
    # cutime as well would count them twice once reaped.
    return sum(int(x) for x in fields[11:13]) / TICKS


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return out


def tree_rss(*roots: int) -> int:
    """Summed RSS in bytes of ``roots`` and all their descendants (0 for those already gone)."""
    total, stack = 0, list(roots)
    while stack:
        pid = stack.pop()
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except (FileNotFoundError, ProcessLookupError):
            continue
        stack += _children(pid)
    return total


class TreeCPU:
    """Samples the CPU seconds of a process and all its descendants until stopped."""

    def __init__(self, *roots: int) -> None:
        self.roots = list(roots)
        self.seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        stack = list(self.roots)
        while stack:
            pid = stack.pop()
            cpu = _proc_cpu(pid)
            if cpu:
                self.seen[pid] = max(self.seen.get(pid, 0.0), cpu)
            stack += _children(pid)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self._sample()

    def __enter__(self) -> TreeCPU:
        self._sample()
        self.base = dict(self.seen)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sample()
        self._stop.set()
        self._thread.join()

    @property
    def seconds(self) -> float:
        """CPU seconds used by the tree since entering."""
        return sum(cpu - self.base.get(pid, 0.0) for pid, cpu in self.seen.items())


def bench_embedded(base_url: str, workdir: Path, processes: int) -> dict[str, Any]:
    """The embedded crawl, in this process, extraction on a pool of ``processes``."""
    from workers.core.logs import configure_logging
    from workers.core.settings import Settings
    from workers.pipeline.crawl import run_embedded

    settings = Settings.from_env({}, storage_url=str(workdir / "embedded"), allow_private=True, host_rate=0.0,
                                 log_level="error")
    with open(os.devnull, "w") as devnull:
        configure_logging(settings, stream=devnull)
        with TreeCPU(os.getpid()) as cpu:
            summary = run_embedded([base_url + "/"], settings, processes=processes, threads=16)
    return {"seconds": summary.seconds, "cpu": cpu.seconds, "stored": summary.stored,
            "fetched": summary.pages_fetched}


def bench_redis(base_url: str, workdir: Path, extract_processes: int, expected: int) -> dict[str, Any]:
    """Redis-backed workers in subprocesses, fed by ``ingest enqueue``."""
    from workers.core.storage import open_storage

    redis = RedisServer(port=free_port(), directory=workdir)
    redis.start()
    out = workdir / "redis-out"
    env = {**os.environ, "INGEST_BROKER_URL": redis.url, "INGEST_STORAGE_URL": str(out),
           "INGEST_ALLOW_PRIVATE": "1", "INGEST_HOST_RATE": "0", "INGEST_LOG_LEVEL": "warning",
           "INGEST_LOG_FORMAT": "json"}
    cli = [sys.executable, "-m", "workers.cli"]
    procs = [
        subprocess.Popen([*cli, "worker", "--stages", "discover,fetch,sink", "--processes", "1", "--threads", "16"],
                         env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([*cli, "worker", "--stages", "extract", "--processes", str(extract_processes),
                          "--threads", "1"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    storage = open_storage(str(out))
    time.sleep(3)  # let workers boot: start-up is not throughput
    client = redis.client()
    before = _redis_counters(client, redis.proc.pid if redis.proc else 0)
    try:
        with TreeCPU(*(p.pid for p in procs), redis.proc.pid if redis.proc else 0) as cpu:
            started = time.monotonic()
            subprocess.run([*cli, "enqueue", base_url + "/", "--kind", "listing"], env=env, cwd=ROOT, check=True,
                           capture_output=True)
            stored = 0
            while time.monotonic() - started < 1800:
                stored = sum(1 for _ in storage.keys("articles/"))
                if stored >= expected:
                    break
                time.sleep(0.25)
            seconds = time.monotonic() - started
        after = _redis_counters(client, redis.proc.pid if redis.proc else 0)
        memory = int(client.info("memory")["used_memory"])
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)
        redis.stop()
    per_page = {k: (after[k] - before[k]) / max(stored, 1) for k in after}
    return {"seconds": seconds, "cpu": cpu.seconds, "stored": stored, "redis": per_page, "redis_memory": memory}


def _redis_counters(client: Any, pid: int) -> dict[str, float]:
    """Commands, network bytes and the server's CPU seconds so far (differences give per-page cost)."""
    stats = client.info("stats")
    commands = sum(int(v["calls"]) for v in client.info("commandstats").values())
    return {"commands": float(commands), "bytes": float(stats["total_net_input_bytes"])
            + float(stats["total_net_output_bytes"]), "cpu_s": _proc_cpu(pid)}


def bench_trafilatura(pages: int) -> dict[str, Any]:
    """A bare ``trafilatura.extract`` loop over the same page bytes, on one core."""
    import trafilatura

    bodies = [a.html for a in corpus_articles(pages, unique_marker=True)]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    extracted = sum(1 for html in bodies if trafilatura.extract(html))
    return {"seconds": time.perf_counter() - wall0, "cpu": time.process_time() - cpu0, "stored": extracted}


def main() -> None:
    """Run the three measurements and print one table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="embedded extraction processes")
    parser.add_argument("--skip-redis", action="store_true")
    args = parser.parse_args()

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(args.pages, child), daemon=True)
    server.start()
    base_url, n_articles, n_listings = parent.recv()
    workdir = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    rows: list[tuple[str, dict[str, Any]]] = []
    try:
        print(f"site: {n_articles} articles, {n_listings} listing pages at {base_url}; {os.cpu_count()} cores",
              flush=True)
        rows.append((f"embedded crawl ({args.processes} extract processes)",
                     bench_embedded(base_url, workdir, args.processes)))
        if not args.skip_redis:
            rows.append(("redis workers (2 extract processes)", bench_redis(base_url, workdir, 2, n_articles)))
        rows.append(("bare trafilatura.extract loop (1 core)", bench_trafilatura(args.pages)))
    finally:
        parent.send("stop")
        server.join(10)
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{'run':<44} {'articles':>8} {'seconds':>8} {'pages/s':>8} {'CPU s':>8} {'CPU s/page':>10}")
    for name, r in rows:
        n = r["stored"] or 1
        print(f"{name:<44} {r['stored']:>8} {r['seconds']:>8.1f} {n / r['seconds']:>8.1f} {r['cpu']:>8.1f} "
              f"{r['cpu'] / n:>10.4f}")
    for name, r in rows:
        if "redis" in r:
            per = r["redis"]
            cpu_ms = per["cpu_s"] * 1000
            print(f"Redis per stored page ({name}): {per['commands']:.0f} commands, {per['bytes'] / 1024:.1f} KiB "
                  f"in+out, {cpu_ms:.2f} ms of Redis CPU -> one Redis core carries about "
                  f"{1000 / cpu_ms if cpu_ms else float('inf'):.0f} pages/s; memory at the end "
                  f"{r['redis_memory'] / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
