"""The chaos suite's harness: a cluster of ``ingest worker`` groups, completion polling, verdicts, figures.

A :class:`ChaosRun` owns one crawl of a :class:`~tests.support.chaos_site.ChaosSite` by four worker
groups (one per stage, each ``--processes 2``), on a Redis the test started, into a store the test
reads directly.  A scenario starts the run, injects its faults through the run's methods (which
note each fault's window), then calls :meth:`ChaosRun.finish`: it waits until every expected
record is stored *and* every queue is empty (failing fast, with missing URLs, queue depths and
each worker's last log lines, when the crawl stops progressing or runs out of time), stops the
workers, and returns a :class:`Verdict` with every problem found and the run's figures:

- **exactly once**: one record per expected article URL (none missing, none extra), no URL
  stored under two keys, no record written twice (two ``sink.stored`` for one URL);
- **dead letters**: the set of (stage, URL, reason) in the Redis dead-letter store is exactly the
  site's permanent failures, each letter with its reason, error and attempt count, none twice;
- **summary**: the crawl's summary (``ingest crawls --json``, its one ``crawl.finished`` line and
  ``crawls/<id>.json`` in storage) says finished, nothing remaining, as many records stored as
  storage holds and as many pages failed as there are dead letters, and was not declared before
  the last record was stored; ``ingest status --json`` shows no message waiting, in flight or
  delayed.

Figures (printed as one table line, collected as JSON): articles, records, faults injected,
retries, redeliveries (messages a SIGKILLed worker held, handed back by the broker, plus messages a
worker sent back after losing Redis), reprocessed (a URL finished again by a stage that had
finished it: what redelivery costs), duplicate writes prevented (``sink.exists``), seconds from
the end of the last fault to the next stored record and to the end of the crawl.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from tests.support.chaos_site import ChaosSite, FaultyServer
from tests.support.pipeline import ROOT, WorkerProcess, worker_env
from workers.core.broker import QUEUES
from workers.core.deadletters import RedisDeadLetters
from workers.core.encoder import POISON_QUEUE
from workers.core.storage import Storage

__all__ = [
    "DEFAULT_GROUPS",
    "FIGURES_HEADER",
    "ChaosRun",
    "CrawlStuck",
    "FaultWindow",
    "Verdict",
    "figures_line",
    "queue_state",
    "record_figures",
]

NAMESPACE = "ingest"

#: The worker groups of a run: several processes of each kind, as in production.
DEFAULT_GROUPS: dict[str, list[str]] = {
    "fetch": ["--stages", "fetch", "--processes", "2", "--threads", "8"],
    "discover": ["--stages", "discover", "--processes", "2", "--threads", "2"],
    "extract": ["--stages", "extract", "--processes", "2", "--threads", "1"],
    "sink": ["--stages", "sink", "--processes", "2", "--threads", "4"],
}

#: Settings every chaos run shares: a stalled answer ends after 5 s without a byte, a dead worker's
#: messages come back after 15 s (3x the per-page time limit, the least the settings allow).
BASE_ENV: dict[str, str] = {
    "INGEST_ALLOW_PRIVATE": "1",
    "INGEST_HOST_RATE": "0",
    "INGEST_HOST_CONCURRENCY": "8",
    "INGEST_CONNECT_TIMEOUT": "5",
    "INGEST_READ_TIMEOUT": "5",
    "INGEST_REQUEST_TIMEOUT": "10",
    "INGEST_PAGE_TIME_LIMIT": "5",
    "INGEST_HEARTBEAT_TIMEOUT_MS": "15000",
    "INGEST_LOG_LEVEL": "info",
}

#: Outcome events that finish a stage's work on a URL (a second one for the URL is a redelivery).
_FINISHING = {
    "fetch": {"done", "http_error", "not_html", "too_large", "refused", "redirect_loop", "invalid_url",
              "disallowed", "not_modified"},
    "discover": {"done", "timeout"},
    "extract": {"done", "empty", "timeout"},
    "sink": {"stored", "exists"},
}


#: What a worker logs when it sends back the messages it held across a lost Redis connection.
_REQUEUED = re.compile(r"Requeued (\d+) stranded messages")


class CrawlStuck(AssertionError):
    """The crawl stopped progressing or ran out of time; the message says where it stands."""


@dataclass
class FaultWindow:
    """One injected fault: what, and when it started and ended (epoch seconds)."""

    kind: str
    start: float
    end: float | None = None


def queue_state(client: Any, namespace: str = NAMESPACE) -> dict[str, int]:
    """Nonzero Dramatiq queue keys: ready lists (``ns:q``, ``ns:q.DQ``) and unacknowledged messages
    (``ns:q.msgs``, ``ns:q.DQ.msgs``, which hold delayed messages a worker keeps in memory too).
    Empty when nothing waits, runs or is delayed anywhere."""
    names = []
    pipe = client.pipeline(transaction=False)
    for q in (*QUEUES, POISON_QUEUE):
        for key in (f"{namespace}:{q}", f"{namespace}:{q}.DQ"):
            names += [key, key + ".msgs"]
            pipe.llen(key)
            pipe.hlen(key + ".msgs")
    return {n: int(v) for n, v in zip(names, pipe.execute(), strict=True) if int(v)}


def _timestamp(event: dict[str, Any]) -> float | None:
    raw = event.get("timestamp")
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw).timestamp()
    except ValueError:
        return None


@dataclass
class WorkerGroup:
    """One ``ingest worker`` command line and every incarnation of it (a kill starts a new one)."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_dir: Path
    incarnations: list[WorkerProcess] = field(default_factory=list)

    @property
    def current(self) -> WorkerProcess | None:
        """The incarnation started last."""
        return self.incarnations[-1] if self.incarnations else None

    def start(self) -> None:
        """Start a new incarnation, logging to its own file."""
        log = self.log_dir / f"{self.name}.{len(self.incarnations) + 1}.log"
        self.incarnations.append(WorkerProcess(self.args, self.env, log))

    def alive(self) -> bool:
        """Whether the current incarnation runs."""
        cur = self.current
        return cur is not None and cur.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole current incarnation (parent, worker processes, page-pool children)."""
        cur = self.current
        if cur is not None and cur.proc.poll() is None:
            cur.kill()

    def events(self) -> list[dict[str, Any]]:
        """Structured log lines of every incarnation, tagged with the group's name."""
        out = []
        for p in self.incarnations:
            for e in p.events():
                e["_group"] = self.name
                out.append(e)
        return out

    def tail(self, lines: int = 12) -> list[str]:
        """The last log lines of the current incarnation."""
        cur = self.current
        if cur is None or not cur.log_path.exists():
            return []
        return [line.decode("utf-8", "replace")[:400] for line in cur.log_path.read_bytes().splitlines()[-lines:]]


@dataclass
class Verdict:
    """What a finished run found: ``problems`` (empty when it passed) and its ``figures``."""

    scenario: str
    problems: list[str]
    figures: dict[str, Any]

    def assert_ok(self) -> None:
        """Fail with every problem found, one per line."""
        if self.problems:
            raise AssertionError(f"chaos scenario {self.scenario!r} failed:\n- " + "\n- ".join(self.problems))


class ChaosRun:
    """One crawl of a chaos site by worker groups on Redis; see the module docstring.

    ``worker_broker_url`` is what the workers use (a proxy in front of Redis, for outages);
    ``redis_client`` talks to Redis directly, as the test's observer.  ``storage`` reads the
    store directly as well; ``storage_url``/``storage_env`` are what the workers get.
    """

    def __init__(
        self,
        scenario: str,
        *,
        chaos: ChaosSite,
        server: FaultyServer,
        log_dir: Path,
        redis_url: str,
        redis_client: Callable[[], Any],
        worker_broker_url: str,
        storage: Storage,
        storage_url: str,
        storage_env: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
        groups: dict[str, list[str]] | None = None,
    ) -> None:
        self.scenario = scenario
        self.chaos = chaos
        self.server = server
        self.redis_url = redis_url
        self._redis_client = redis_client
        self.storage = storage
        self.crawl_id = f"chaos-{scenario}"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir = log_dir
        settings = {**BASE_ENV, **(env or {})}
        self.env = worker_env(INGEST_BROKER_URL=worker_broker_url, INGEST_STORAGE_URL=storage_url,
                              **(storage_env or {}), **settings)
        self.groups = {name: WorkerGroup(name, args, self.env, log_dir)
                       for name, args in (groups or DEFAULT_GROUPS).items()}
        self.expected = chaos.expected_records(server.base_url)
        self.expected_keys = set(self.expected.values())
        self.faults: list[FaultWindow] = []
        self.kills = 0
        #: Messages the killed worker processes held unacknowledged when they died.
        self.held_by_killed = 0
        self.started_at = 0.0
        self.done_at: float | None = None
        #: The crawl's summary as ``ingest crawls --json`` showed it when judged.
        self.summary: dict[str, Any] | None = None

    # -- running -----------------------------------------------------------------------------

    def client(self) -> Any:
        """A fresh direct Redis client (the server may have been restarted since the last one)."""
        return self._redis_client()

    def start(self) -> None:
        """Start every worker group and enqueue the site's front page as a listing."""
        for group in self.groups.values():
            group.start()
        sent = subprocess.run(
            [sys.executable, "-m", "workers.cli", "enqueue", self.server.base_url + "/", "--kind", "listing",
             "--crawl-id", self.crawl_id],
            env={**self.env, "INGEST_BROKER_URL": self.redis_url}, cwd=ROOT, capture_output=True, text=True,
            timeout=60,
        )
        assert sent.returncode == 0 and "enqueued 1" in sent.stderr, sent.stderr
        self.started_at = time.time()

    def kill(self, name: str, *, restart_after: float = 0.0) -> None:
        """SIGKILL one worker group and start it again ``restart_after`` seconds later.

        Counts the messages the killed processes held (their ``__acks__`` sets, which the broker
        hands back to the queues once their heartbeats are older than the heartbeat timeout).
        """
        before = self._heartbeats()
        window = FaultWindow(f"kill {name}", time.time())
        self.faults.append(window)
        self.groups[name].kill()
        self.kills += 1
        if restart_after:
            time.sleep(restart_after)
        self.groups[name].start()
        window.end = time.time()
        # The killed processes' heartbeats stand still; a live one beats on every poll (200 ms).
        time.sleep(max(0.0, window.start + 2.5 - time.time()))
        after = self._heartbeats()
        dead = [w for w, beat in before.items() if after.get(w) == beat]
        client = self.client()
        try:
            self.held_by_killed += sum(int(client.scard(k)) for w in dead
                                       for k in client.scan_iter(f"{NAMESPACE}:__acks__.{w}.*", count=1000))
        finally:
            client.close()

    def _heartbeats(self) -> dict[str, float]:
        client = self.client()
        try:
            return {k.decode(): float(v) for k, v in client.zrange(f"{NAMESPACE}:__heartbeats__", 0, -1,
                                                                   withscores=True)}
        finally:
            client.close()

    def fault(self, kind: str) -> FaultWindow:
        """Note the start of a fault the scenario injects itself; set ``end`` when it is over."""
        window = FaultWindow(kind, time.time())
        self.faults.append(window)
        return window

    def stored_keys(self) -> set[str]:
        """Keys under ``articles/`` in the store right now."""
        return set(self.storage.keys("articles/"))

    def _queues(self) -> dict[str, int] | None:
        try:
            client = self.client()
            try:
                return queue_state(client)
            finally:
                client.close()
        except Exception:  # Redis is down on purpose in some scenarios
            return None

    def _check_alive(self) -> None:
        dead = [g.name for g in self.groups.values() if not g.alive()]
        if dead:
            raise CrawlStuck(self.diagnostics(f"worker group(s) {', '.join(dead)} exited on their own"))

    def wait_for_records(self, count: int, timeout: float, what: str) -> float:
        """Wait until at least ``count`` records are stored (to time a fault); seconds waited."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if len(self.stored_keys()) >= count:
                return time.monotonic() - start
            self._check_alive()
            time.sleep(0.25)
        raise CrawlStuck(self.diagnostics(f"timed out after {timeout:.0f} s waiting for {what}"))

    def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> float:
        """Wait until ``predicate()`` holds (for a fault's precondition); seconds waited."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if predicate():
                return time.monotonic() - start
            self._check_alive()
            time.sleep(0.25)
        raise CrawlStuck(self.diagnostics(f"timed out after {timeout:.0f} s waiting for {what}"))

    def wait_done(self, timeout: float, *, stall_s: float = 90.0, settle_s: float = 2.0) -> None:
        """Wait until every expected record is stored and every queue is empty (twice, ``settle_s``
        apart).  Fails fast when nothing changes for ``stall_s`` seconds, or at ``timeout``."""
        deadline = time.monotonic() + timeout
        last_change = time.monotonic()
        last: tuple[int, tuple[tuple[str, int], ...] | None] | None = None
        while time.monotonic() < deadline:
            stored = self.stored_keys()
            queues = self._queues()
            state = (len(stored), tuple(sorted(queues.items())) if queues is not None else None)
            if state != last:
                last, last_change = state, time.monotonic()
            if self.expected_keys <= stored and queues == {}:
                time.sleep(settle_s)
                if self._queues() == {} and self.expected_keys <= self.stored_keys():
                    self.done_at = time.time()
                    return
                continue
            self._check_alive()
            if time.monotonic() - last_change > stall_s:
                raise CrawlStuck(self.diagnostics(f"no progress for {stall_s:.0f} s"))
            time.sleep(0.5)
        raise CrawlStuck(self.diagnostics(f"crawl not finished after {timeout:.0f} s"))

    def stop(self) -> None:
        """Stop every worker group: SIGTERM to all parents at once, then wait (SIGKILL after 30 s)."""
        procs = [p for g in self.groups.values() for p in g.incarnations if p.proc.poll() is None]
        for p in procs:
            p.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for p in procs:
            try:
                p.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.proc.pid, signal.SIGKILL)
                p.proc.wait(10)
        for g in self.groups.values():
            for p in g.incarnations:
                if not p._log.closed:
                    p._log.close()

    # -- reading the outcome -----------------------------------------------------------------

    def events(self) -> list[dict[str, Any]]:
        """Every structured log line of every worker incarnation."""
        return [e for g in self.groups.values() for e in g.events()]

    def diagnostics(self, headline: str) -> str:
        """Where the crawl stands: missing URLs, queue depths, dead letters, each worker's last lines."""
        stored = self.stored_keys()
        by_key = {k: u for u, k in self.expected.items()}
        missing = sorted(by_key[k] for k in self.expected_keys - stored)
        lines = [
            f"{self.scenario}: {headline}",
            f"records: {len(stored & self.expected_keys)}/{len(self.expected_keys)} stored, "
            f"{len(stored - self.expected_keys)} unexpected",
            f"missing ({len(missing)}): {missing[:10]}",
            f"queues: {self._queues()}",
        ]
        try:
            client = self.client()
            letters = RedisDeadLetters(client, NAMESPACE).list()
            client.close()
            lines.append(f"dead letters ({len(letters)}): "
                         f"{sorted((x.get('stage'), x.get('url'), x.get('reason')) for x in letters)[:10]}")
        except Exception as exc:
            lines.append(f"dead letters: unreadable ({exc})")
        try:
            client = self.client()
            for key in sorted(client.scan_iter(f"{NAMESPACE}:host:*", count=100))[:5]:
                policy = {k.decode(): v.decode() for k, v in client.hgetall(key).items()}
                ahead = float(policy.get("next_slot", 0)) - float(client.time()[0])
                lines.append(f"host policy {key.decode()}: {policy}; next free slot in {ahead:.0f} s")
            client.close()
        except Exception as exc:
            lines.append(f"host policy: unreadable ({exc})")
        lines.append(f"faults so far: {[f.kind for f in self.faults]}; site faults {dict(self.server.faults())}")
        for g in self.groups.values():
            state = "running" if g.alive() else f"exited {g.current.proc.returncode if g.current else None}"
            lines.append(f"--- {g.name} (incarnation {len(g.incarnations)}, {state}), last lines:")
            lines += ["    " + t for t in g.tail()]
        return "\n".join(lines)

    def finish(self, timeout: float, *, stall_s: float = 90.0) -> Verdict:
        """Wait for the end of the crawl, stop the workers and judge the outcome (see the module docstring)."""
        try:
            self.wait_done(timeout, stall_s=stall_s)
        finally:
            self.stop()
        return self.verdict()

    def verdict(self) -> Verdict:
        """Problems and figures of the finished run."""
        problems: list[str] = []
        events = self.events()
        records = [orjson.loads(self.storage.get(k)) for k in sorted(self.stored_keys())]
        base = self.server.base_url
        # Exactly once: one record per expected URL, no other, none written twice.
        stored_keys = self.stored_keys()
        by_key = {k: u for u, k in self.expected.items()}
        missing = sorted(by_key[k] for k in self.expected_keys - stored_keys)
        extra = sorted(stored_keys - self.expected_keys)
        if missing:
            problems.append(f"lost: {len(missing)} article(s) never stored, e.g. {missing[:5]}")
        if extra:
            problems.append(f"unexpected records: {len(extra)}, e.g. {extra[:5]}")
        urls = Counter(r.get("url") for r in records)
        twice = sorted(u for u, n in urls.items() if n > 1)
        if twice:
            problems.append(f"duplicate records: {len(twice)} URL(s) stored under two keys, e.g. {twice[:5]}")
        writes = Counter(e.get("url_id") for e in events if e.get("event") == "sink.stored")
        rewritten = sorted(str(u) for u, n in writes.items() if n > 1)
        if rewritten:
            problems.append(f"duplicate writes: {len(rewritten)} record(s) written twice (sink.stored), "
                            f"e.g. url_id {rewritten[:5]}")
        # Dead letters: exactly the permanent failures, each with its reason.
        client = self.client()
        try:
            letters = RedisDeadLetters(client, NAMESPACE).list()
        finally:
            client.close()
        expected_letters = self.chaos.expected_dead_letters(base)
        seen = Counter((x.get("stage"), x.get("url"), x.get("reason")) for x in letters)
        got = set(seen)
        if got != expected_letters:
            problems.append(
                f"dead letters differ from the permanent failures: missing {sorted(expected_letters - got)}, "
                f"unexpected {sorted(got - expected_letters, key=str)[:10]}"
                + (f" (+{len(got - expected_letters) - 10} more)" if len(got - expected_letters) > 10 else "")
            )
        doubled = sorted(k for k, n in seen.items() if n > 1)
        if doubled:
            problems.append(f"dead letters kept twice for one failure: {doubled[:5]}")
        incomplete = [x.get("id") for x in letters
                      if not x.get("reason") or not (x.get("last_error") or {}).get("error")
                      or int(x.get("attempts") or 0) < 1]
        if incomplete:
            problems.append(f"dead letters without reason, error or attempt count: {incomplete[:5]}")
        # The crawl's summary (`ingest crawls`, the crawl.finished line, crawls/<id>.json) agrees with storage.
        problems += self._summary_problems(events, records, letters)
        status = self.status()
        if status is None:
            problems.append("`ingest status --json` failed")
        else:
            unsettled = {q: d for q, d in status["queues"].items()
                         if d.get("ready") or d.get("in_flight") or d.get("delayed")}
            if unsettled:
                problems.append(f"`ingest status` shows unsettled queues after the crawl: {unsettled}")
        figures = self.figures(events, records, letters, status)
        return Verdict(self.scenario, problems, figures)

    def crawl_summary(self, wait_s: float = 10.0) -> dict[str, Any] | None:
        """This run's crawl as ``ingest crawls --json`` shows it (waiting up to ``wait_s`` for it to
        say finished: the last settlement may trail the empty queues by a moment)."""
        deadline = time.monotonic() + wait_s
        while True:
            done = subprocess.run([sys.executable, "-m", "workers.cli", "crawls", "--json"],
                                  env={**self.env, "INGEST_BROKER_URL": self.redis_url}, cwd=ROOT,
                                  capture_output=True, timeout=60)
            found = None
            if done.returncode == 0:
                for line in done.stdout.splitlines():
                    doc = orjson.loads(line) if line.strip().startswith(b"{") else None
                    if isinstance(doc, dict) and doc.get("crawl_id") == self.crawl_id:
                        found = doc
            if (found is not None and found.get("state") == "finished") or time.monotonic() > deadline:
                return found
            time.sleep(0.5)

    def _summary_problems(self, events: list[dict[str, Any]], records: list[dict[str, Any]],
                          letters: list[dict[str, Any]]) -> list[str]:
        problems: list[str] = []
        crawl = self.crawl_summary()
        self.summary = crawl
        if crawl is None:
            return [f"`ingest crawls --json` has no crawl {self.crawl_id!r}"]
        figures = {k: crawl.get(k) for k in ("state", "discovered", "fetched", "stored", "failed", "remaining")}
        if crawl.get("state") != "finished" or crawl.get("remaining"):
            problems.append(f"the crawl's summary does not say finished: {figures}")
        if crawl.get("stored") != len(records):
            problems.append(f"the crawl's summary counts {crawl.get('stored')} records stored, storage holds "
                            f"{len(records)}: {figures}")
        if crawl.get("failed") != len(letters):
            problems.append(f"the crawl's summary counts {crawl.get('failed')} pages failed, the dead letters hold "
                            f"{len(letters)}: {figures}")
        stored_at = [t for e in events if e.get("event") == "sink.stored" and (t := _timestamp(e)) is not None]
        finished_at = crawl.get("finished_at")
        if finished_at and stored_at and max(stored_at) > float(finished_at) + 0.5:
            problems.append(f"the crawl was declared finished {max(stored_at) - float(finished_at):.1f} s before "
                            "its last record was stored")
        finished = [e for e in events if e.get("event") == "crawl.finished" and e.get("crawl_id") == self.crawl_id]
        if len(finished) != 1:
            problems.append(f"crawl.finished logged {len(finished)} times, not once")
        try:
            kept = orjson.loads(self.storage.get(f"crawls/{self.crawl_id}.json"))
        except KeyError:
            problems.append(f"no crawls/{self.crawl_id}.json in storage")
        else:
            if kept.get("stored") != len(records) or kept.get("failed") != len(letters):
                problems.append(f"crawls/{self.crawl_id}.json counts stored={kept.get('stored')} "
                                f"failed={kept.get('failed')}; storage holds {len(records)} records, the dead "
                                f"letters {len(letters)}")
        return problems

    def status(self) -> dict[str, Any] | None:
        """``ingest status --json`` against the run's Redis (read directly)."""
        done = subprocess.run([sys.executable, "-m", "workers.cli", "status", "--json"],
                              env={**self.env, "INGEST_BROKER_URL": self.redis_url}, cwd=ROOT,
                              capture_output=True, timeout=60)
        if done.returncode != 0:
            return None
        doc: dict[str, Any] = orjson.loads(done.stdout)
        return doc

    def figures(self, events: list[dict[str, Any]], records: list[dict[str, Any]], letters: list[dict[str, Any]],
                status: dict[str, Any] | None) -> dict[str, Any]:
        """The run's figures (see the module docstring)."""
        names = Counter(str(e.get("event")) for e in events)
        finishing: dict[str, Counter[str]] = {s: Counter() for s in _FINISHING}
        for e in events:
            stage, _, outcome = str(e.get("event", "")).partition(".")
            if outcome in _FINISHING.get(stage, ()) and e.get("url_id"):
                finishing[stage][str(e["url_id"])] += 1
        reprocessed = {s: sum(n - 1 for n in c.values()) for s, c in finishing.items()}
        stranded = sum(int(m.group(1)) for e in events if (m := _REQUEUED.search(str(e.get("event", "")))))
        ended = [f.end for f in self.faults if f.end is not None]
        last_end = max(ended) if ended else None
        stored_at = sorted(t for e in events if e.get("event") == "sink.stored" and (t := _timestamp(e)) is not None)
        first_after = next((t for t in stored_at if last_end is not None and t > last_end), None)
        site_faults = self.server.faults()
        return {
            "scenario": self.scenario,
            "articles": len(self.expected),
            "records": len(records),
            "faults": [f.kind for f in self.faults],
            "faults_injected": len(self.faults) + sum(site_faults.values()),
            "site_faults": dict(site_faults),
            "kills": self.kills,
            "retries": sum(n for k, n in names.items() if k.endswith(".retry")),
            "redeliveries": self.held_by_killed + stranded,
            "held_by_killed": self.held_by_killed,
            "stranded_requeued": stranded,
            "reprocessed": sum(reprocessed.values()),
            "reprocessed_by_stage": reprocessed,
            "duplicates_prevented": names.get("sink.exists", 0),
            "sink_stored_events": names.get("sink.stored", 0),
            "dead_letters": len(letters),
            "timeouts": {k: n for k, n in names.items() if k.endswith(".timeout")},
            "recover_first_record_s": round(first_after - last_end, 1) if first_after and last_end else None,
            "recover_complete_s": round(self.done_at - last_end, 1) if self.done_at and last_end else None,
            "crawl_s": round((self.done_at or time.time()) - self.started_at, 1),
            "requests": len(self.server.requests),
            "summary": None if self.summary is None else {
                k: self.summary.get(k) for k in ("state", "discovered", "fetched", "stored", "failed", "remaining")},
            # Extraction health counts an extraction, not a URL: a redelivered page counts twice.
            "health_pages": (None if status is None else
                             {h["host"]: h["overall"]["pages"] for h in status.get("hosts", [])}),
        }


def figures_line(figures: dict[str, Any]) -> str:
    """One table row of a run's figures (README-ready)."""
    return (
        f"| {figures['scenario']} | {figures['articles']} | {figures['records']} | {figures['faults_injected']} "
        f"| {figures['retries']} | {figures['redeliveries']} | {figures['reprocessed']} "
        f"| {figures['duplicates_prevented']} "
        f"| {figures['dead_letters']} | {figures['recover_first_record_s']} | {figures['recover_complete_s']} "
        f"| {figures['crawl_s']} |"
    )


FIGURES_HEADER = ("| scenario | articles | records | faults injected | retries | redeliveries | reprocessed "
                  "| duplicates prevented | dead letters | first record after fault (s) | crawl done after fault (s) "
                  "| crawl (s) |")


def record_figures(path: Path, figures: dict[str, Any], problems: Iterable[str] = ()) -> None:
    """Add (or replace) a scenario's figures in the JSON file at ``path`` and print its table row."""
    doc: dict[str, Any] = orjson.loads(path.read_bytes()) if path.exists() else {}
    doc[figures["scenario"]] = {**figures, "problems": list(problems)}
    path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    print(f"\n{FIGURES_HEADER}\n{figures_line(figures)}\nfigures: {path}")
