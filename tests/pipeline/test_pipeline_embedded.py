"""The embedded crawl end to end: a real HTTP server on 127.0.0.1, the four actors, local storage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.support.pipeline import ROOT, assert_site_stored, load_records, mixed_site
from tests.support.site import serve_site
from workers.core.settings import Settings
from workers.core.storage import is_raw_page, open_storage
from workers.pipeline.crawl import run_embedded


def test_embedded_crawl_stores_every_article_once(tmp_path: Path) -> None:
    site = mixed_site()
    out = tmp_path / "out"
    with serve_site(site) as server:
        settings = Settings.from_env({}, storage_url=str(out), allow_private=True, host_rate=0.0)
        summary = run_embedded([server.base_url + "/"], settings, processes=2, threads=8)
        requested = [path for path, _ in server.requests]
    storage = open_storage(str(out))
    records = load_records(storage)
    assert_site_stored(site, server.base_url, records)
    assert len(requested) == len(set(requested)), "a page was fetched twice"
    n_articles = len(site.articles)
    assert summary.stored == n_articles
    assert summary.outcomes["extract.done"] == n_articles
    served = [p for p in requested if p in site.pages]
    assert sorted(served) == sorted([*site.listing_paths, *(a.path for a in site.articles)])
    assert summary.pages_fetched == len(served) == n_articles + len(site.listing_paths)
    # Discovery also asked for robots.txt and the feed the front page announces (both missing here).
    assert set(requested) - set(served) == {"/robots.txt", "/feed/"}
    assert summary.outcomes["fetch.absent"] == 1, "the missing robots.txt is noted, not counted as skipped"
    assert len([k for k in storage.keys("raw/") if is_raw_page(k)]) == summary.pages_fetched
    assert summary.by_reason("failed") == {} and not summary.interrupted
    assert summary.by_reason("skipped") == {"fetch.http_error": 1}, "only the missing feed"
    assert summary.as_dict()["articles_stored"] == n_articles


def test_second_crawl_into_the_same_store_writes_nothing_new(tmp_path: Path) -> None:
    site = mixed_site(corpus=4, seed_per_style=1)
    settings = Settings.from_env({}, storage_url=str(tmp_path), allow_private=True, host_rate=0.0)
    with serve_site(site) as server:
        first = run_embedded([server.base_url + "/"], settings, processes=1, threads=4)
        second = run_embedded([server.base_url + "/"], settings, processes=1, threads=4)
    assert first.stored == len(site.articles)
    assert second.stored == 0 and second.outcomes["sink.exists"] == len(site.articles)
    assert len(load_records(open_storage(str(tmp_path)))) == len(site.articles)


def test_private_addresses_are_refused_without_allow_private(tmp_path: Path) -> None:
    site = mixed_site(corpus=2, seed_per_style=1)
    with serve_site(site) as server:
        settings = Settings.from_env({}, storage_url=str(tmp_path), host_rate=0.0)
        summary = run_embedded([server.base_url + "/"], settings, processes=1, threads=2)
        assert server.requests == [], "the guard must refuse before connecting"
    assert summary.outcomes == {"fetch.refused": 1}
    assert summary.by_reason("skipped") == {"fetch.refused": 1}


def _ingest(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workers.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)})


def test_crawl_command_prints_a_summary_and_logs_json_off_a_terminal(tmp_path: Path) -> None:
    site = mixed_site(corpus=4, seed_per_style=1)
    with serve_site(site) as server:
        done = _ingest("crawl", server.base_url + "/", "--out", str(tmp_path / "o"), "--allow-private",
                       "--host-rate", "0", "--processes", "2", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    summary = orjson.loads(done.stdout)
    assert summary["articles_stored"] == len(site.articles) and summary["failed"] == {}
    events = [orjson.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    stored = [e for e in events if e["event"] == "sink.stored"]
    assert len(stored) == len(site.articles)
    for e in stored:
        assert {"url", "url_id", "crawl_id", "host", "ms", "bytes"} <= e.keys()
    assert {e["event"] for e in events} >= {"fetch.done", "discover.done", "extract.done", "sink.stored"}
    assert len(list((tmp_path / "o" / "articles").rglob("*.json"))) == len(site.articles)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["crawl", "ftp://x.example/"], "scheme"),
        (["crawl", "https://x.example/", "--processes", "0"], "at least 1"),
        (["crawl", "https://x.example/", "--host-rate", "-1"], "negative"),
        (["worker"], "INGEST_BROKER_URL"),
        (["worker", "--stages", "fetch,parse"], "parse"),
        (["enqueue", "https://x.example/"], "INGEST_BROKER_URL"),
        (["extract", "/nonexistent.html", "--url", "https://x.example/a"], "cannot read"),
    ],
)
def test_bad_arguments_end_with_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    done = _ingest(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_extract_command_prints_the_record(tmp_path: Path) -> None:
    from tests.support.seedpages import seed_pages

    page = seed_pages()[0]
    path = tmp_path / "page.html"
    path.write_text(page.html, encoding="utf-8")
    done = _ingest("extract", str(path), "--url", "https://news.example" + page.path)
    assert done.returncode == 0, done.stderr
    record = orjson.loads(done.stdout)
    assert record["title"] and page.paragraphs[-1] in record["text"]
    assert not any(t in record["text"] for t in page.teasers)
