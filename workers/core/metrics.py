"""Prometheus metrics: the pipeline's own series, Dramatiq's, and queue state read from Redis.

Worker processes write their counters to files in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's
multi-process mode), and one exposition server per host, a fork of ``ingest worker``, serves them
all on ``INGEST_METRICS_PORT``: one port per host however many worker processes run.  The same
server answers ``/healthz`` (every worker process is alive and so are its threads, from files the
processes refresh every few seconds) and ``/readyz`` (Redis answers), for liveness and readiness
probes.  Queue depth, delay, in-flight count, oldest message age, dead letters and frontier size are
read from Redis at scrape time, so an autoscaler sees the same numbers whichever host it asks.

Labels are bounded: stage, outcome, status class, reason, queue; never a URL or a host.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from dramatiq.broker import Broker
from dramatiq.middleware import Middleware

__all__ = ["LIVENESS_STALE_S", "DramatiqMetrics", "Liveness", "PipelineMetrics", "metrics_dir", "serve", "status_class"]

#: A worker process whose liveness file is older than this counts as dead (it refreshes every 2 s).
LIVENESS_STALE_S = 15.0
_STAGES = ("discover", "fetch", "extract", "sink")
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def metrics_dir() -> Path | None:
    """The multi-process directory, when metrics are on in this process."""
    raw = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(raw) if raw else None


def status_class(status: Any) -> str:
    """``2xx`` … ``5xx`` for an HTTP status, ``error`` when there was no answer."""
    return f"{int(status) // 100}xx" if isinstance(status, int) and 100 <= status < 600 else "error"


class PipelineMetrics:
    """The pipeline's series, fed from the one outcome line each message ends with."""

    def __init__(self) -> None:
        import prometheus_client as prom

        self.outcomes = prom.Counter("ingest_outcomes", "Messages by stage and outcome (one per log line).",
                                     ["stage", "outcome"])
        self.pages = prom.Counter("ingest_pages_fetched", "Pages fetched, by HTTP status class.", ["status_class"])
        self.bytes = prom.Counter("ingest_fetch_bytes", "Bytes of page bodies fetched.")
        self.waits = prom.Counter("ingest_waits", "Fetches sent back to wait (politeness slot, robots.txt).",
                                  ["kind"])
        self.records = prom.Counter("ingest_records_written", "Article records written to storage.")
        self.dead = prom.Counter("ingest_dead_letters", "Messages dead-lettered, by stage and reason.",
                                 ["stage", "reason"])
        self.seconds = prom.Histogram("ingest_stage_seconds", "Time to handle one message, by stage.", ["stage"],
                                      buckets=_BUCKETS)
        self.discovered = prom.Counter("ingest_discovered_urls", "URLs found on discovery pages.")
        self.claimed = prom.Counter("ingest_claimed_urls", "URLs new to their crawl, sent on to fetch.")

    def outcome(self, event: str, fields: dict[str, Any]) -> None:
        """Count one ``stage.outcome`` line and what it says (status, bytes, time, links)."""
        stage, _, result = event.partition(".")
        if stage not in _STAGES:
            return
        self.outcomes.labels(stage, result).inc()
        ms = fields.get("ms")
        if isinstance(ms, int | float) and result not in {"retry", "delayed", "robots_wait"}:
            self.seconds.labels(stage).observe(ms / 1000)
        if stage == "fetch" and "status" in fields and result not in {"retry", "delayed", "disallowed", "robots_wait"}:
            self.pages.labels(status_class(fields.get("status"))).inc()
            self.bytes.inc(int(fields.get("bytes") or 0))
        if stage == "fetch" and result == "delayed":
            self.waits.labels("politeness").inc()
        if stage == "fetch" and result == "robots_wait":
            self.waits.labels("robots").inc()
        if stage == "sink" and result in {"stored", "updated"}:
            self.records.inc()
        if stage == "discover" and result == "done":
            self.discovered.inc(int(fields.get("links") or 0))
            self.claimed.inc(int(fields.get("new") or 0))

    def dead_letter(self, stage: str, reason: str) -> None:
        """Count a dead letter."""
        self.dead.labels(stage, reason).inc()


class Liveness(Middleware):
    """Every few seconds, each worker process writes how many of its threads are alive."""

    def __init__(self, directory: Path, every_s: float = 2.0) -> None:
        self.directory = directory
        self.every_s = every_s
        self._stop = threading.Event()

    def after_worker_boot(self, broker: Broker, worker: Any) -> None:
        """Start the writer thread of this process."""
        path = self.directory / f"alive-{os.getpid()}.txt"

        def beat() -> None:
            while not self._stop.is_set():
                threads = [*worker.workers, *worker.consumers.values()]
                alive = sum(1 for t in threads if t.is_alive())
                tmp = path.with_suffix(".tmp")
                tmp.write_text(f"{time.time()} {alive} {len(threads)}")
                tmp.replace(path)
                self._stop.wait(self.every_s)

        threading.Thread(target=beat, name="ingest-liveness", daemon=True).start()

    def before_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        """A process stopping on purpose is not a dead one."""
        self._stop.set()
        (self.directory / f"alive-{os.getpid()}.txt").unlink(missing_ok=True)


def liveness(directory: Path, now: float | None = None) -> tuple[bool, str]:
    """(healthy, why) from the worker processes' liveness files."""
    now = time.time() if now is None else now
    files = sorted(directory.glob("alive-*.txt"))
    if not files:
        return False, "no worker process has reported yet"
    problems = []
    for f in files:
        try:
            at, alive, total = f.read_text().split()
        except (OSError, ValueError):
            continue
        pid = f.stem.removeprefix("alive-")
        if now - float(at) > LIVENESS_STALE_S:
            problems.append(f"worker process {pid} silent for {now - float(at):.0f}s")
        elif int(alive) < int(total):
            problems.append(f"worker process {pid}: {int(total) - int(alive)} of {total} threads dead")
    return (not problems), "; ".join(problems) or f"{len(files)} worker processes alive"


class _RedisCollector:
    """Queue and dead-letter gauges read from Redis at scrape time."""

    def __init__(self, client: Any, namespace: str) -> None:
        self.client = client
        self.ns = namespace

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        from workers.core.queuestats import dead_letter_counts, frontier_size, queue_stats

        depth = GaugeMetricFamily("ingest_queue_depth", "Messages waiting in a queue.", labels=["queue"])
        delayed = GaugeMetricFamily("ingest_queue_delayed", "Messages waiting for their time.", labels=["queue"])
        flight = GaugeMetricFamily("ingest_queue_in_flight", "Messages taken by a worker, not yet settled.",
                                   labels=["queue"])
        age = GaugeMetricFamily("ingest_queue_oldest_age_seconds", "Age of the oldest waiting message.",
                                labels=["queue"])
        dead = GaugeMetricFamily("ingest_dead_letters_kept", "Dead letters kept, by stage.", labels=["stage"])
        frontier = GaugeMetricFamily("ingest_frontier_urls", "URLs in the crawls' seen-sets.")
        try:
            for q in queue_stats(self.client, self.ns, _STAGES):
                depth.add_metric([q["queue"]], q["ready"])
                delayed.add_metric([q["queue"]], q["delayed"])
                flight.add_metric([q["queue"]], q["in_flight"])
                age.add_metric([q["queue"]], q["oldest_age_s"])
            for stage, n in dead_letter_counts(self.client, self.ns).items():
                dead.add_metric([stage], n)
            frontier.add_metric([], frontier_size(self.client, self.ns))
        except Exception:  # Redis away: /readyz says so; the scrape still serves the counters
            return
        yield from (depth, delayed, flight, age, dead, frontier)


def serve() -> None:
    """The exposition server (a fork of ``ingest worker``): /metrics, /healthz, /readyz."""
    import prometheus_client as prom
    from prometheus_client import multiprocess

    from workers.core.settings import Settings

    settings = Settings.from_env()
    found = metrics_dir()
    if found is None or not settings.metrics_port:
        return
    directory: Path = found
    from workers.core.redisclient import redis_client
    client = redis_client(settings.broker_url, socket_connect_timeout=2, socket_timeout=5)
    collector = _RedisCollector(client, settings.namespace)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                registry = prom.CollectorRegistry()
                multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
                registry.register(collector)
                self._send(200, prom.generate_latest(registry), prom.CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                ok, why = liveness(directory)
                self._send(200 if ok else 503, why.encode() + b"\n", "text/plain")
            elif path == "/readyz":
                try:
                    client.ping()
                    self._send(200, b"redis reachable\n", "text/plain")
                except Exception as exc:
                    self._send(503, f"redis unreachable: {type(exc).__name__}\n".encode(), "text/plain")
            else:
                self._send(404, b"try /metrics, /healthz or /readyz\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer((settings.metrics_host, settings.metrics_port), Handler)
    server.daemon_threads = True
    server.serve_forever()


def _dramatiq_metrics_class() -> type[Middleware]:
    from dramatiq.middleware.prometheus import Prometheus

    class DramatiqMetrics(Prometheus):
        """Dramatiq's own series (messages, errors, retries, durations), served by our server:
        Dramatiq's would fork a second exposition server on the same port."""

        @property
        def forks(self) -> list[Any]:
            return []

    return DramatiqMetrics


def DramatiqMetrics() -> Middleware:
    """Dramatiq's Prometheus middleware without its own exposition server (imported late: it reads
    its database path from the environment at import time)."""
    return _dramatiq_metrics_class()()
