"""``ingest trace URL``: a URL's journey from the workers' logs, Redis and storage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from tests.conftest import RedisServer
from tests.support.pipeline import ROOT, wait_for, worker_env, workers
from tests.support.site import build_site, corpus_articles, serve_site
from workers.core.settings import Settings
from workers.core.storage import open_storage
from workers.core.urls import normalize_url, url_id
from workers.pipeline.enqueue import enqueue_urls


def _trace(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workers.cli", "trace", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=60, input=stdin)


def test_trace_follows_a_stored_and_a_missing_page(tmp_path: Path, redis_server: RedisServer) -> None:
    site = build_site(corpus_articles(3), per_page=3)
    gone = site.articles[0].path
    del site.pages[gone]
    kept = site.articles[1].path
    out = tmp_path / "out"
    env = worker_env(INGEST_BROKER_URL=redis_server.url, INGEST_STORAGE_URL=str(out), INGEST_ALLOW_PRIVATE="1",
                     INGEST_HOST_RATE="0")
    storage = open_storage(str(out))
    log = tmp_path / "w.log"
    with serve_site(site) as server, workers((["--processes", "1", "--threads", "4"], log), env=env) as procs:
        enqueue_urls([("test", server.base_url + "/")], Settings.from_env(env), kind="listing", crawl_id="trace")
        wait_for(lambda: len(list(storage.keys("articles/"))) == len(site.articles) - 1, 60, "the records")
        assert procs[0].stop() == 0
        stored_url, gone_url = server.base_url + kept, server.base_url + gone
    journey = orjson.loads(_trace(env, stored_url, "--logs", str(log), "--json").stdout)
    events = [e["event"] for e in journey["log"]]
    assert events.index("fetch.done") < events.index("extract.done") < events.index("sink.stored")
    assert journey["url_id"] == url_id(normalize_url(stored_url))
    assert journey["record_key"] and journey["raw_pages"] and journey["seen"]
    text = _trace(env, gone_url, "--logs", "-", stdin=log.read_text())
    assert text.returncode == 0
    assert "fetch.http_error" in text.stdout and "dead letter" in text.stdout and "http_error" in text.stdout
    unknown = _trace(env, server.base_url + "/never-linked.html")
    assert unknown.returncode == 1 and "nothing known about this URL" in unknown.stdout
