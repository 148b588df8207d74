"""Which worker processes are alive, seen from Redis: one heartbeat key per process.

Every worker process refreshes ``{ns}:workers:<host>:<pid>`` (JSON: queues, threads alive, start
time) every :data:`BEAT_S` seconds with a TTL of :data:`BEAT_TTL_S`: a process that dies stops
refreshing and its key expires on its own; one stopping on purpose deletes it.  ``ingest
status`` lists them, from any host, without reaching the workers' metrics ports.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

import orjson
from dramatiq.broker import Broker
from dramatiq.middleware import Middleware

from workers.core.logs import get_logger

__all__ = ["BEAT_S", "BEAT_TTL_S", "WorkerPresence", "alive_workers"]

BEAT_S = 5.0
#: Three missed beats and a process counts as gone.
BEAT_TTL_S = 16


def _key(namespace: str, host: str, pid: int) -> str:
    return f"{namespace}:workers:{host}:{pid}"


class WorkerPresence(Middleware):
    """Keeps this worker process's heartbeat key in Redis while it runs."""

    def __init__(self, client: Any, namespace: str, *, every_s: float = BEAT_S, ttl_s: int = BEAT_TTL_S) -> None:
        self.client = client
        self.namespace = namespace
        self.every_s = every_s
        self.ttl_s = ttl_s
        self._stop = threading.Event()
        self._key: str | None = None
        self.log = get_logger()

    def after_worker_boot(self, broker: Broker, worker: Any) -> None:
        """Start beating."""
        host, pid = socket.gethostname(), os.getpid()
        self._key = key = _key(self.namespace, host, pid)
        whitelist = getattr(worker, "consumer_whitelist", None)
        queues = sorted({q.removesuffix(".DQ") for q in (whitelist or worker.consumers)})
        started = time.time()

        def beat() -> None:
            while not self._stop.is_set():
                threads = list(worker.workers)
                doc = {"host": host, "pid": pid, "queues": queues, "threads": len(threads),
                       "alive": sum(1 for t in threads if t.is_alive()), "started_at": started, "at": time.time()}
                try:
                    self.client.set(key, orjson.dumps(doc), ex=self.ttl_s)
                except Exception as exc:  # Redis away for a moment: the next beat tries again
                    self.log.debug("presence.error", reason=f"{type(exc).__name__}: {exc}"[:200])
                self._stop.wait(self.every_s)

        threading.Thread(target=beat, name="ingest-presence", daemon=True).start()

    def before_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        """A process stopping on purpose leaves at once, not a TTL later."""
        self._stop.set()
        if self._key is not None:
            try:
                self.client.delete(self._key)
            except Exception as exc:  # it expires anyway
                self.log.debug("presence.error", reason=f"{type(exc).__name__}: {exc}"[:200])


def alive_workers(client: Any, namespace: str, now: float | None = None) -> list[dict[str, Any]]:
    """The worker processes whose heartbeat has not expired, by host and pid, with ``age_s`` of the last beat."""
    keys = sorted(client.scan_iter(match=f"{namespace}:workers:*", count=1000))
    now = time.time() if now is None else now
    out = []
    for raw in client.mget(keys) if keys else []:
        if raw is None:  # expired between the scan and the read
            continue
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        doc["age_s"] = round(max(0.0, now - float(doc.get("at", now))), 1)
        out.append(doc)
    return sorted(out, key=lambda d: (str(d.get("host")), int(d.get("pid", 0))))
