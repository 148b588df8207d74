"""Speed benchmark (issue #14): every mode against the bare-extraction limit, interleaved rounds.

Builds a static news site from the dev corpus's pages (``--pages`` unique articles, a front page,
paginated section listings, robots.txt naming a sitemap of every article), writes it to a folder
and serves it from nginx (or, when nginx is absent, a multi-process Python static server: the
output says which) in separate processes, so the server's CPU is not counted. Then, ``--rounds``
times, in a rotated order so that noise from other processes lands on every side, with the limit
run again between every two modes (each mode's ratio is to the mean of the limit just before and
just after it, so a machine whose speed drifts does not tilt the ratios):

- limit: bare ``trafilatura.extract`` over the page bytes, one process per core (no HTTP);
- ``ingest crawl`` from the site root (finds robots.txt and the sitemap) and from the front page
  (``/index.html``: a listing, followed through the pagination);
- ``ingest worker`` on Redis, given the article URLs (``ingest enqueue - --kind article``), with
  1 and ``--processes`` extract processes (fetch, extract and sink in separate workers; the extract
  processes are the page-pool children of one ``ingest worker --stages extract`` process);
- peers (``bench/peers/``, installed from bench/peers/requirements.txt into .venv-peers):
  trafilatura's command line and a Scrapy spider with trafilatura, over the same URL list.

It prints pages per second as a ratio to the limit (median and range over rounds), CPU
milliseconds per page per stage, Redis commands, bytes and CPU per page and per broker message,
Redis memory per URL, and the worker trees' RSS over the run.

    python bench/speed.py [--pages 1000] [--rounds 3] [--processes N] [--skip-peers] [--only MODE,...]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pipeline import TreeCPU, _redis_counters, tree_rss  # noqa: E402
from bench.staticsite import StaticSite, static_server, write_site  # noqa: E402
from tests.conftest import RedisServer, free_port  # noqa: E402

PEERS_VENV = ROOT / ".venv-peers"
PEERS_DIR = ROOT / "bench" / "peers"
#: Broker messages per stored article in the article mode: fetch, extract, sink.
MESSAGES_PER_PAGE = 3


@dataclass
class Run:
    """One measurement: pages stored, wall seconds, CPU seconds per stage, extras."""

    stored: int
    seconds: float
    cpu: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)


_BODIES: list[bytes] = []


def _extract_slice(index: int, step: int) -> tuple[int, float]:
    import trafilatura

    cpu0 = time.process_time()
    done = sum(1 for html in _BODIES[index::step] if trafilatura.extract(html))
    return done, time.process_time() - cpu0


def run_limit(site: StaticSite, processes: int) -> Run:
    """Bare ``trafilatura.extract`` over the bytes, one forked process per core (after the import)."""
    global _BODIES
    import trafilatura  # noqa: F401  (imported before the fork: start-up is not throughput)

    _BODIES = site.bodies
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(processes) as pool:
        pool.map(abs, range(processes))  # the children are up
        started = time.perf_counter()
        results = pool.starmap(_extract_slice, [(i, processes) for i in range(processes)])
        seconds = time.perf_counter() - started
    return Run(sum(n for n, _ in results), seconds, {"extract": sum(c for _, c in results)})


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    # Politeness off, as for the peers (no throttle, 16 requests at once): no per-host rate, and as
    # many requests in flight to the one local host as the fetch worker has threads.
    env.update(INGEST_ALLOW_PRIVATE="1", INGEST_HOST_RATE="0", INGEST_HOST_CONCURRENCY="16", INGEST_LOG_LEVEL="error",
               INGEST_LOG_FORMAT="json", PYTHONUNBUFFERED="1", **extra)
    return env


CLI = [sys.executable, "-m", "workers.cli"]


#: The keys of a crawl's CPU in :class:`Run`: the main process, and its page pool (extraction).
CRAWL_MAIN, CRAWL_POOL = "discover+fetch+sink (main process)", "extract (pool)"


def run_crawl(start: str, workdir: Path, processes: int, max_depth: int, tree: Path = ROOT,
              max_pages: int | None = None) -> Run:
    """``ingest crawl START --json`` of the checkout at ``tree``; throughput from the summary's seconds
    (start-up excluded).  ``max_pages`` raises the crawl's page budget (default 10,000 pages, listings
    included: a 10,000-article site needs more); None leaves it, for checkouts without the option."""
    out = workdir / "crawl-out"
    shutil.rmtree(out, ignore_errors=True)
    # The checkout's own package first on the path: the venv's editable install points at the work tree.
    env = _env() if tree == ROOT else {**_env(), "PYTHONPATH": str(tree)}
    proc = subprocess.Popen([*CLI, "crawl", start, "--out", str(out), "--processes", str(processes),
                             "--max-depth", str(max_depth), "--json",
                             *(["--max-pages", str(max_pages)] if max_pages else [])], env=env, cwd=tree,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    started = time.perf_counter()
    with TreeCPU(proc.pid) as cpu:
        stdout, _ = proc.communicate(timeout=3600)
    wall = time.perf_counter() - started
    summary = json.loads(stdout)
    parent = cpu.seen.get(proc.pid, 0.0) - cpu.base.get(proc.pid, 0.0)
    shutil.rmtree(out, ignore_errors=True)
    return Run(int(summary["articles_stored"]), float(summary["seconds"]),
               {CRAWL_MAIN: parent, CRAWL_POOL: cpu.seconds - parent},
               {"command wall s": wall, "pages fetched": summary["pages_fetched"]})


class RSSSampler:
    """Samples the summed RSS of process trees every 0.5 s; keeps (stored pages, bytes)."""

    def __init__(self, roots: Sequence[int], progress: Callable[[], int]) -> None:
        self.roots, self.progress = list(roots), progress
        self.samples: list[tuple[int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:
        return tree_rss(*self.roots)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.samples.append((self.progress(), self._rss()))

    def __enter__(self) -> RSSSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self, total: int) -> dict[str, float]:
        """RSS (MB) after warm-up (the first sample past 20 % of the pages), at the end, and its growth."""
        if not self.samples:
            return {}
        warm = next((rss for done, rss in self.samples if done >= total * 0.2), self.samples[0][1])
        end, peak = self.samples[-1][1], max(rss for _, rss in self.samples)
        return {"rss warm MB": warm / 1e6, "rss end MB": end / 1e6, "rss peak MB": peak / 1e6,
                "rss growth %": 100 * (end - warm) / warm if warm else 0.0}


def start_workers(env: dict[str, str], extract_processes: int) -> dict[str, subprocess.Popen[bytes]]:
    """The benchmark's Redis workers by stage: discover+fetch, extract x ``extract_processes``, sink."""
    stages = {"discover+fetch": ["--stages", "discover,fetch", "--processes", "1", "--threads", "16"],
              # One worker process whose page pool holds the K extraction processes, with twice as many
              # threads: a thread does its message's Redis and storage work while the children parse
              # (session 7: 1.80 cores busy against 1.71 for K worker processes of one thread each).
              "extract": ["--stages", "extract", "--processes", "1", "--page-processes", str(extract_processes),
                          "--threads", str(2 * extract_processes)],
              "sink": ["--stages", "sink", "--processes", "1", "--threads", "4"]}  # fmt: skip
    return {name: subprocess.Popen([*CLI, "worker", *args], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
            for name, args in stages.items()}  # fmt: skip


def stop_workers(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    """Stop the workers gracefully, killing the process group of any still running after a minute."""
    for p in procs.values():
        p.terminate()
    for p in procs.values():
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def run_redis(site: StaticSite, origin: str, workdir: Path, extract_processes: int) -> Run:
    """Redis workers (discover+fetch, extract x N, sink), fed the article URLs by ``ingest enqueue``."""
    from workers.core.storage import open_storage

    rdir = workdir / f"redis-{time.monotonic_ns()}"
    rdir.mkdir()
    redis = RedisServer(port=free_port(), directory=rdir)
    redis.start()
    out = rdir / "out"
    env = _env(INGEST_BROKER_URL=redis.url, INGEST_STORAGE_URL=str(out))
    procs = start_workers(env, extract_processes)
    storage = open_storage(str(out))
    expected = len(site.article_paths)
    stored = [0]

    def progress() -> int:
        return stored[0]

    redis_pid = redis.proc.pid if redis.proc else 0
    try:
        time.sleep(4)  # let workers boot: start-up is not throughput
        client = redis.client()
        before = _redis_counters(client, redis_pid)
        urls = "".join(f"{origin}{p}\n" for p in site.article_paths).encode()
        trees = {name: TreeCPU(p.pid) for name, p in procs.items()}
        with RSSSampler([p.pid for p in procs.values()], progress) as rss:
            for t in trees.values():
                t.__enter__()
            started = time.perf_counter()
            subprocess.run([*CLI, "enqueue", "-", "--kind", "article"], input=urls, env=env, cwd=ROOT, check=True,
                           capture_output=True)
            while time.perf_counter() - started < 3600:
                stored[0] = sum(1 for _ in storage.keys("articles/"))
                if stored[0] >= expected:
                    break
                time.sleep(0.25)
            seconds = time.perf_counter() - started
            for t in trees.values():
                t.__exit__()
        after = _redis_counters(client, redis_pid)
        memory = int(client.info("memory")["used_memory"])
    finally:
        stop_workers(procs)
        redis.stop()
        shutil.rmtree(rdir, ignore_errors=True)
    n = max(stored[0], 1)
    cpu = {name: t.seconds for name, t in trees.items()}
    cpu["redis-server"] = after["cpu_s"] - before["cpu_s"]
    extra: dict[str, Any] = {
        "redis commands/page": (after["commands"] - before["commands"]) / n,
        "redis KiB/page": (after["bytes"] - before["bytes"]) / n / 1024,
        "redis commands/message": (after["commands"] - before["commands"]) / n / MESSAGES_PER_PAGE,
        "redis bytes/message": (after["bytes"] - before["bytes"]) / n / MESSAGES_PER_PAGE,
        "redis CPU ms/message": cpu["redis-server"] * 1000 / n / MESSAGES_PER_PAGE,
        "redis memory bytes/URL": memory / n,
        **rss.summary(expected),
    }
    return Run(stored[0], seconds, cpu, extra)


def ensure_peers() -> Path | None:
    """The interpreter of .venv-peers, installed from bench/peers/requirements.txt if needed; None if that fails."""
    python = PEERS_VENV / "bin" / "python"
    probe = [str(python), "-c", "import scrapy, trafilatura"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"installing the peers into {PEERS_VENV} (bench/peers/requirements.txt) ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True, capture_output=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(PEERS_DIR / "requirements.txt")],
                       check=True, capture_output=True, timeout=900)
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"peers skipped: could not install bench/peers/requirements.txt into {PEERS_VENV}: {exc}", flush=True)
        return None
    return python


def run_peer(python: Path, script: str, urls_file: Path, workdir: Path, *args: str) -> Run:
    """One peer script over the URL list; it prints {"stored", "seconds"}."""
    out = workdir / "peer-out"
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.Popen([str(python), str(PEERS_DIR / script), str(urls_file), str(out), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=workdir)
    with TreeCPU(proc.pid) as cpu:
        stdout, _ = proc.communicate(timeout=3600)
    shutil.rmtree(out, ignore_errors=True)
    result = json.loads(stdout.splitlines()[-1])
    return Run(int(result["stored"]), float(result["seconds"]), {"all": cpu.seconds})


# --- report ----------------------------------------------------------------------------------------


def report(results: dict[str, list[Run]], refs: dict[str, list[float]], limit: str) -> None:
    """Ratios to the limit around each run (median and range), CPU ms per page per stage, extras."""
    rounds = len(results[limit])
    lim_rates = refs[limit]
    print(f"\n{'mode':<42} {'stored':>7} {'pages/s':>8} {'ratio':>6} {'range':>11} {'CPU ms/page':>11}")
    for name, runs in results.items():
        rates = [r.stored / r.seconds if r.seconds else 0.0 for r in runs]
        ratios = [rate / ref for rate, ref in zip(rates, refs[name], strict=True)]
        cpu_ms = statistics.median(sum(r.cpu.values()) * 1000 / max(r.stored, 1) for r in runs)
        print(f"{name:<42} {min(r.stored for r in runs):>7} {statistics.median(rates):>8.1f} "
              f"{statistics.median(ratios):>6.2f} {min(ratios):>5.2f}-{max(ratios):<5.2f} {cpu_ms:>11.1f}")
    print(f"(ratio: pages/s over the mean of the limit's runs just before and just after; median, range; "
          f"the limit itself ran {min(lim_rates):.1f}-{max(lim_rates):.1f} pages/s over its {rounds} runs)")
    print("\nCPU ms per stored page, by stage (median over rounds):")
    for name, runs in results.items():
        stages = {k: statistics.median(r.cpu[k] * 1000 / max(r.stored, 1) for r in runs) for k in runs[0].cpu}
        print(f"  {name:<40} " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))
    print("\nextras (median over rounds):")
    for name, runs in results.items():
        if runs[0].extra:
            keys = [k for k in runs[0].extra if all(k in r.extra for r in runs)]
            print(f"  {name}: " + ", ".join(f"{k} {statistics.median(r.extra[k] for r in runs):.4g}" for k in keys))
    scaling = [k for k in results if k.startswith("redis workers")]
    if len(scaling) == 2:
        # From the ratios, not the raw rates: the two modes ran at different moments of a drifting machine.
        one, many = (statistics.median(r.stored / r.seconds / ref for r, ref in zip(results[k], refs[k], strict=True))
                     for k in scaling)  # fmt: skip
        n = int(scaling[1].split("(")[1].split()[0])
        print(f"\nscaling efficiency, extract processes 1 -> {n}: {many / one / n:.2f} "
              f"({one:.2f} -> {many:.2f} of the limit); ideal 1.00 if extraction were the only bottleneck")


def main() -> None:
    """Build and serve the site, run every mode ``--rounds`` times interleaved, print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="extract processes (N)")
    parser.add_argument("--server-workers", type=int, default=2, help="static server processes")
    parser.add_argument("--server", choices=("auto", "nginx", "python"), default="auto",
                        help="static server: nginx when installed (auto), or the Python fallback")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated subset: limit,root,front,redis1,redisN,peers")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(","))) | {"limit"}

    workdir = Path(tempfile.mkdtemp(prefix="ingest-speed-"))
    workdir.chmod(0o755)  # nginx's worker processes run as another user
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    n = args.processes
    try:
        site = write_site(args.pages, origin, workdir / "site")
        # Every article, listing, feed and sitemap of the site, with room to spare: the default budget
        # (10,000 pages) would cut a 10,000-article site short and the ratio would hide it.
        budget = 2 * args.pages + 1_000
        urls_file = workdir / "urls.txt"
        urls_file.write_text("".join(f"{origin}{p}\n" for p in site.article_paths))
        peers = None if args.skip_peers or (args.only and "peers" not in only) else ensure_peers()
        if args.skip_peers:
            print("peers skipped (--skip-peers)")
        modes: dict[str, Callable[[], Run]] = {"limit": lambda: run_limit(site, n)}
        wanted = {
            "root": ("ingest crawl / (site root)",
                     lambda: run_crawl(origin + "/", workdir, n, 10_000, max_pages=budget)),
            "front": ("ingest crawl /index.html (front page)",
                      lambda: run_crawl(origin + "/index.html", workdir, n, 10_000, max_pages=budget)),
            "redis1": ("redis workers (1 extract process)", lambda: run_redis(site, origin, workdir, 1)),
            "redisN": (f"redis workers ({n} extract processes)", lambda: run_redis(site, origin, workdir, n)),
        }
        names = {"limit": f"limit: bare trafilatura.extract x{n} processes"}
        for key, (name, fn) in wanted.items():
            if not args.only or key in only:
                modes[key], names[key] = fn, name
        if peers is not None:
            modes["cli"] = lambda: run_peer(peers, "trafilatura_cli.py", urls_file, workdir, "--parallel", str(n))
            names["cli"] = f"peer: trafilatura CLI (--parallel {n})"
            modes["scrapy"] = lambda: run_peer(peers, "scrapy_spider.py", urls_file, workdir)
            names["scrapy"] = "peer: Scrapy spider + trafilatura"
        with static_server(site.root, port, args.server_workers, args.server) as server:
            print(f"site: {len(site.article_paths)} articles, {site.listings} listing pages at {origin}, served by "
                  f"{server}; {os.cpu_count()} cores; {args.rounds} rounds, order rotated each round", flush=True)
            results: dict[str, list[Run]] = {k: [] for k in modes}
            # Each mode is compared with the limit measured just before and just after it: this
            # machine's speed drifts by a third within minutes, so one limit per round misjudges
            # modes that ran far from it (session 7: the limit ran at 60 to 91 pages/s).
            refs: dict[str, list[float]] = {k: [] for k in modes}
            others = [k for k in modes if k != "limit"]

            def measure(rnd: int, key: str) -> float:
                run = modes[key]()
                results[key].append(run)
                print(f"  round {rnd + 1}: {names[key]:<42} {run.stored:>6} pages in {run.seconds:6.1f} s "
                      f"= {run.stored / run.seconds:6.1f} pages/s", flush=True)
                return run.stored / run.seconds

            def limit_now(rnd: int) -> float:
                refs["limit"].append(measure(rnd, "limit"))
                return refs["limit"][-1]

            for rnd in range(args.rounds):
                order = others[rnd % max(1, len(others)):] + others[:rnd % max(1, len(others))]
                before = limit_now(rnd)
                for key in order:
                    measure(rnd, key)
                    after = limit_now(rnd)
                    refs[key].append((before + after) / 2)
                    before = after
            report({names[k]: v for k, v in results.items()}, {names[k]: v for k, v in refs.items()},
                   names["limit"])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
