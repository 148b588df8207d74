"""``ingest dlq``: list, show, retry and purge dead letters against a real Redis and real workers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from tests.conftest import RedisServer
from tests.support.pipeline import ROOT, wait_for, worker_env, workers
from tests.support.site import build_site, corpus_articles, serve_site
from workers.cli.dlq import parse_age
from workers.core.deadletters import RedisDeadLetters, make_letter
from workers.core.settings import Settings
from workers.core.storage import open_storage
from workers.pipeline.enqueue import enqueue_urls


def _dlq(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workers.cli", "dlq", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=60)


def test_ages_parse_with_units() -> None:
    assert parse_age("7d") == 7 * 86400 and parse_age("90s") == 90 and parse_age("1.5h") == 5400


def test_a_missing_page_is_a_dead_letter_that_retry_sends_again(tmp_path: Path, redis_server: RedisServer) -> None:
    site = build_site(corpus_articles(3), per_page=3)
    gone = site.articles[0].path
    page = site.pages.pop(gone)  # 404 at first: a permanent failure, dead-lettered
    out = tmp_path / "out"
    env = worker_env(INGEST_BROKER_URL=redis_server.url, INGEST_STORAGE_URL=str(out), INGEST_ALLOW_PRIVATE="1",
                     INGEST_HOST_RATE="0")
    store = RedisDeadLetters(redis_server.client(), "ingest")
    storage = open_storage(str(out))
    with serve_site(site) as server, workers(
        (["--processes", "1", "--threads", "4"], tmp_path / "w.log"), env=env
    ) as procs:
        enqueue_urls([("test", server.base_url + "/")], Settings.from_env(env), kind="listing", crawl_id="dlq")
        # Two 404s: the article taken down, and the feed every page announces (the root is read as a
        # home page, as `ingest crawl` reads it, so the feed is asked for), which the site never had.
        wait_for(lambda: len(store.list(reason="http_error")) == 2, 60, "the 404s dead-lettered")
        wait_for(lambda: len(list(storage.keys("articles/"))) == len(site.articles) - 1, 60, "the other records")

        listed = _dlq(env, "list", "--reason", "http_error")
        assert listed.returncode == 0, listed.stderr
        assert gone in listed.stdout and "fetch" in listed.stdout and "HTTP 404" in listed.stdout
        assert listed.stdout.rstrip().endswith("2 dead letters") and "/feed/" in listed.stdout
        as_json = [orjson.loads(line) for line in _dlq(env, "list", "--json").stdout.splitlines()]
        letter_id = next(x["id"] for x in as_json
                         if x["reason"] == "http_error" and x["message"]["args"][0]["url"].endswith(gone))
        shown = orjson.loads(_dlq(env, "show", letter_id).stdout)
        assert shown["stage"] == "fetch" and shown["message"]["args"][0]["url"].endswith(gone)
        assert shown["first_error"]["error"] and shown["attempts"] == 1

        site.pages[gone] = page  # the operator fixed the site
        retried = _dlq(env, "retry", letter_id)
        assert retried.returncode == 0 and "retried 1" in retried.stdout, retried.stdout + retried.stderr
        wait_for(lambda: len(list(storage.keys("articles/"))) == len(site.articles), 60, "the retried page stored")
        assert store.get(letter_id) is None
        assert procs[0].stop() == 0

    missing = _dlq(env, "show", "no-such-id")
    assert missing.returncode == 1 and "no dead letter 'no-such-id'" in missing.stderr
    assert _dlq(env, "retry").returncode == 2


def test_purge_drops_only_what_it_is_asked_to(tmp_path: Path, redis_server: RedisServer) -> None:
    store = RedisDeadLetters(redis_server.client(), "ingest")
    store.add(make_letter(letter_id="old", stage="sink", reason="poison", error="x", message={}, attempts=1, at=1.0))
    store.add(make_letter(letter_id="new", stage="fetch", reason="timeout", error="y", message={}, attempts=1))
    env = worker_env(INGEST_BROKER_URL=redis_server.url, INGEST_STORAGE_URL=str(tmp_path / "out"))
    purged = _dlq(env, "purge", "--older-than", "7d")
    assert purged.returncode == 0 and "purged 1 dead letter" in purged.stdout
    assert [x["id"] for x in store.list()] == ["new"]
    skipped = _dlq(env, "retry", "--all")
    assert "retried 0, skipped 1" in skipped.stdout, "a letter without a stage message is not sent anywhere"
    assert _dlq(env, "purge").returncode == 0 and store.count() == 0
    bad = _dlq(env, "purge", "--older-than", "soon")
    assert bad.returncode == 2 and "expected a number and a unit" in bad.stderr
