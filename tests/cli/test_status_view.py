"""``ingest status``: queues with dead letters and age, rates, crawls, workers, memory; ``--watch``."""

from __future__ import annotations

import io
import os
import selectors
import signal
import subprocess
import sys
import time

import orjson

from tests.conftest import RedisServer
from tests.support.pipeline import ROOT, wait_for
from workers.cli.main import build_parser
from workers.cli.ops import run_ops
from workers.core.crawlstate import RedisCrawls
from workers.core.deadletters import RedisDeadLetters, make_letter
from workers.core.settings import Settings
from workers.pipeline.enqueue import enqueue_urls

CLEAR = "\x1b[H\x1b[2J"


def _status(settings: Settings, *argv: str) -> str:
    out = io.StringIO()
    assert run_ops(build_parser().parse_args(["status", *argv]), settings, out=out) == 0
    return out.getvalue()


def _letter(n: int, stage: str) -> dict[str, object]:
    return make_letter(letter_id=f"{stage}-{n}", stage=stage, reason="http_error", error="HTTP 404",
                       message={"queue_name": stage, "actor_name": stage, "args": [{}], "kwargs": {}}, attempts=1)


#: When :func:`_fill` counted its outcomes (the rates are per minute of that time).
_FILLED_AT = [0.0]


def _fill(redis_server: RedisServer) -> Settings:
    settings = Settings.from_env({}, broker_url=redis_server.url)
    urls = [("test", f"http://127.0.0.1:9/s/{i}.html") for i in range(4)]
    enqueue_urls(urls, settings, kind="article", crawl_id="seen-it")
    letters = RedisDeadLetters(redis_server.client(), "ingest")
    for i in range(3):
        letters.add(_letter(i, "fetch"))
    letters.add(_letter(0, "extract"))
    crawls = RedisCrawls(redis_server.client(), "ingest")
    now = _FILLED_AT[0] = time.time()
    for _ in range(5):
        crawls.observe("fetch.done", "seen-it", None, now=now)
    crawls.observe("sink.stored", "seen-it", None, now=now)
    crawls.observe("sink.stored", "seen-it", None, now=now - 120)
    return settings


def test_status_json_has_every_part(redis_server: RedisServer) -> None:
    settings = _fill(redis_server)
    time.sleep(0.3)
    doc = orjson.loads(_status(settings, "--json"))
    assert set(doc) >= {"queues", "rates", "crawls", "sources", "workers", "memory", "hosts", "days"}
    fetch = doc["queues"]["fetch"]
    assert (fetch["ready"], fetch["in_flight"], fetch["delayed"]) == (4, 0, 0)
    assert fetch["dead_letters"] == 3 and doc["queues"]["extract"]["dead_letters"] == 1
    assert 0.3 <= fetch["oldest_age_s"] < 30, "the first enqueued message has waited since the enqueue"
    assert doc["queues"]["sink"]["oldest_age_s"] == 0
    rates = doc["rates"]
    # The five fetches sit in the minute they were counted in: the last one, or the one before when
    # the minute turned while ``ingest status`` started (it did, once in CI).
    counted = time.strftime("%H:%M", time.gmtime(_FILLED_AT[0]))
    assert len(rates["minutes"]) == 10 and [m["minute"] for m in rates["minutes"]][-2:].count(counted) == 1
    assert [m["fetched"] for m in rates["minutes"] if m["minute"] == counted] == [5]
    assert sum(m["fetched"] for m in rates["minutes"]) == 5
    assert sum(m["stored"] for m in rates["minutes"]) == 2
    assert rates["fetched_per_minute"] == 0.5 and rates["stored_per_minute"] == 0.2
    [crawl] = doc["crawls"]
    assert crawl["crawl_id"] == "seen-it" and crawl["state"] == "running"
    assert (crawl["discovered"], crawl["fetched"], crawl["stored"], crawl["remaining"]) == (4, 5, 2, 4)
    assert doc["sources"] == {}, "a crawl without a source counts for none"
    assert doc["workers"] == []
    kinds = doc["memory"]["kinds"]
    assert {"seen", "queues", "dlq", "crawls", "rates"} <= set(kinds)
    assert all(k["bytes"] > 0 and k["keys"] > 0 for k in kinds.values())
    assert doc["memory"]["complete"] is True and doc["memory"]["used_bytes"] > 0


def test_status_text_shows_each_part(redis_server: RedisServer) -> None:
    settings = _fill(redis_server)
    lines = _status(settings).splitlines()
    header = next(line for line in lines if line.startswith("queue "))
    assert header.split()[1:] == ["ready", "in", "flight", "delayed", "dead", "letters", "oldest"]
    assert next(line for line in lines if line.startswith("fetch ")).split()[1:6] == ["4", "0", "0", "0", "3"]
    assert any(line.startswith("last 10 min:") and "5 pages fetched" in line and "2 records stored" in line
               for line in lines)
    assert any(line.split()[:2] == ["seen-it", "running"] for line in lines)
    assert "workers: none alive" in lines
    memory = lines.index(next(line for line in lines if line.startswith("redis memory")))
    assert {line.split()[0] for line in lines[memory + 1:] if line.startswith("  ")} >= {"seen", "queues", "dlq"}


class _Watch:
    """``ingest status --watch`` in a subprocess, its output read as it comes."""

    def __init__(self, redis_server: RedisServer, *args: str) -> None:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("INGEST_")},
               "INGEST_BROKER_URL": redis_server.url, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "status", "--watch", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
        assert self.proc.stdout is not None
        self.stdout = self.proc.stdout
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.stdout, selectors.EVENT_READ)
        self.seen = b""

    def output(self) -> str:
        """Everything written so far."""
        while self.selector.select(timeout=0.05):
            chunk = os.read(self.stdout.fileno(), 65536)
            if not chunk:
                break
            self.seen += chunk
        return self.seen.decode()

    def frames(self) -> list[str]:
        """The screens drawn so far (the last one may be partial)."""
        return self.output().split(CLEAR)[1:]

    def interrupt(self) -> int:
        """Ctrl-C; returns the exit code."""
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(10)
        finally:
            self.selector.close()
            self.stdout.close()
            assert self.proc.stderr is not None
            self.proc.stderr.close()


def test_watch_redraws_in_place_until_interrupted(redis_server: RedisServer) -> None:
    settings = Settings.from_env({}, broker_url=redis_server.url)
    watch = _Watch(redis_server, "--interval", "0.3")
    try:
        wait_for(lambda: len(watch.frames()) >= 2, 20, "two frames")
        assert all("queue " in f for f in watch.frames()[:2])
        enqueue_urls([("test", f"http://127.0.0.1:9/w/{i}.html") for i in range(7)], settings, kind="article",
                     crawl_id="watched")

        def fetch_rows() -> list[str]:  # the last frame may still be drawing, and one drawn mid-enqueue shows fewer
            return [next(line for line in f.splitlines() if line.startswith("fetch ")).split()[1]
                    for f in watch.frames()[:-1]]

        wait_for(lambda: "7" in fetch_rows(), 20, "a later frame showing the seven new URLs")
        assert fetch_rows()[0] == "0", "the same screen, redrawn with the new figures"
        assert any("watched" in f for f in watch.frames()[:-1]), "and the new crawl"
    finally:
        assert watch.interrupt() == 130


def test_watch_says_when_redis_is_away_and_carries_on(redis_server: RedisServer) -> None:
    watch = _Watch(redis_server, "--interval", "0.2", "--json")
    try:
        wait_for(lambda: watch.output().count("\n") >= 2, 20, "two documents")
        first = orjson.loads(watch.output().splitlines()[0])
        assert "queues" in first and CLEAR not in watch.output(), "with --json: one document per line, no ANSI"
        redis_server.stop()
        wait_for(lambda: "cannot read" in watch.output(), 30, "the outage on screen")
        redis_server.start()
        at = len(watch.output())
        wait_for(lambda: '"queues"' in watch.output()[at:], 30, "figures again once Redis is back")
        errors = [orjson.loads(line) for line in watch.output().splitlines() if '"error"' in line]
        assert errors and errors[0]["error"].startswith(f"cannot read redis://127.0.0.1:{redis_server.port}/0")
    finally:
        assert watch.interrupt() == 130
