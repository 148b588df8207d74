"""The Python API at the package's top (``from workers import enqueue, crawl, extract_article``),
against a real redis-server, real worker processes and a real site on 127.0.0.1."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import workers
from tests.conftest import RedisServer, free_port
from tests.support.pipeline import ROOT, assert_site_stored, load_records, mixed_site, wait_for, worker_env
from tests.support.pipeline import workers as worker_processes
from tests.support.site import build_site, corpus_articles, serve_site
from workers import EnqueueResult, Rejected, crawl, enqueue, extract_article
from workers.core.settings import Settings, SettingsError
from workers.core.storage import open_storage
from workers.core.urls import url_id
from workers.pipeline.crawl import CrawlSummary


def queued_tasks(redis: RedisServer, queue: str = "fetch") -> list[dict[str, Any]]:
    """The tasks waiting on a Redis queue, in queue order (Dramatiq: list of ids, hash of envelopes)."""
    client = redis.client()
    ids = client.lrange(f"ingest:{queue}", 0, -1)
    return [orjson.loads(client.hget(f"ingest:{queue}.msgs", mid))["args"][0] for mid in ids]


def test_importing_the_package_or_its_settings_loads_no_heavy_dependency() -> None:
    probe = (
        "import sys, workers.core.settings, workers\n"
        "heavy = sorted(m for m in ('trafilatura', 'redis', 'dramatiq', 'lxml') if m in sys.modules)\n"
        "print(','.join(heavy) or 'none')\n"
        "from workers import enqueue, crawl, extract_article, EnqueueResult\n"
        "print(callable(enqueue) and callable(crawl) and callable(extract_article))\n"
        "try:\n    workers.no_such_name\nexcept AttributeError as exc:\n    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["none", "True", "module 'workers' has no attribute 'no_such_name'"]


def test_the_top_names_are_the_stable_implementations() -> None:
    from workers.extract.article import extract_article as stage_extract
    from workers.pipeline import enqueue as enqueue_module

    assert extract_article is stage_extract
    assert enqueue is enqueue_module.enqueue and EnqueueResult is enqueue_module.EnqueueResult
    assert workers.CrawlSummary is CrawlSummary and workers.Settings is Settings
    assert set(workers.__all__) <= set(dir(workers)), "dir() lists what __all__ promises"


def test_every_public_import_path_the_readme_promises_resolves() -> None:
    readme = (ROOT / "README.md").read_text()
    paragraph = readme[readme.index("Public import paths"):].split("\n\n", 1)[0]
    paths = re.findall(r"`(workers\.[\w.]+)`", paragraph)
    assert "workers.enqueue" in paths and "workers.pipeline.enqueue.enqueue_urls" in paths
    for path in paths:
        module, _, name = path.rpartition(".")
        assert callable(getattr(importlib.import_module(module), name)), path


def test_enqueue_takes_a_generator_and_reports_rejected_urls_with_index_and_reason(redis_server: RedisServer) -> None:
    given: list[object] = [
        "https://news.example/world/a.html",
        "ftp://news.example/file",
        "https://news.example/world/a.html?utm_source=x",  # the same page once normalised
        "  https://news.example/culture/b.html  ",
        "https://user:pw@news.example/c.html",
        42,
        "",
    ]
    consumed: list[int] = []

    def lines() -> Iterator[Any]:
        for i, url in enumerate(given):
            consumed.append(i)
            yield url

    result = enqueue(lines(), crawl_id="api-1", source="harbour", max_depth=2, broker_url=redis_server.url)
    assert consumed == list(range(len(given))), "the whole generator was read"
    assert (result.crawl_id, result.sent, result.already_queued) == ("api-1", 2, 1)
    assert result.crawl_ids == ("api-1",)
    assert [(r.index, r.url) for r in result.rejected] == [
        (1, "ftp://news.example/file"), (4, "https://user:pw@news.example/c.html"), (5, "42"), (6, "")]
    assert result.rejected[0] == Rejected(index=1, url="ftp://news.example/file",
                                          reason="scheme 'ftp' is not http or https")
    assert "user-info" in result.rejected[1].reason
    assert result.rejected[2].reason == "expected a URL string, got int"
    assert result.rejected[3].reason
    assert not result.ok
    tasks = queued_tasks(redis_server)
    assert [t["url"] for t in tasks] == ["https://news.example/world/a.html", "https://news.example/culture/b.html"]
    assert {(t["kind"], t["crawl_id"], t["source"], t["max_depth"], t["depth"]) for t in tasks} == {
        ("listing", "api-1", "harbour", 2, 0)}
    assert [t["url_id"] for t in tasks] == [url_id(t["url"]) for t in tasks]
    with pytest.raises(AttributeError):
        result.sent = 5  # type: ignore[misc]  # frozen: a result is a fact, not a form to fill in


def test_enqueue_reads_settings_from_the_environment_and_counts_a_second_run_as_queued(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INGEST_BROKER_URL", redis_server.url)
    first = enqueue(["https://news.example/a.html", "https://news.example/b.html"], kind="article", crawl_id="env")
    again = enqueue(iter(["https://news.example/b.html"]), kind="article", crawl_id="env")
    assert (first.sent, first.already_queued, first.rejected, first.ok) == (2, 0, (), True)
    assert (again.sent, again.already_queued) == (0, 1)
    assert [t["kind"] for t in queued_tasks(redis_server)] == ["article", "article"]
    fresh = enqueue(["https://news.example/b.html"], kind="article")
    assert fresh.crawl_id != "env" and fresh.sent == 1, "without a crawl id, a new crawl"


def test_enqueue_refuses_bad_arguments_before_sending_anything(redis_server: RedisServer) -> None:
    settings = Settings.from_env({}, broker_url=redis_server.url)
    url = ["https://news.example/a.html"]
    with pytest.raises(ValueError, match="kind 'video'"):
        enqueue(url, kind="video", settings=settings)
    with pytest.raises(ValueError, match="max_depth"):
        enqueue(url, max_depth=-1, settings=settings)
    with pytest.raises(ValueError, match="source 'Not A Name'"):
        enqueue(url, source="Not A Name", settings=settings)
    with pytest.raises(ValueError, match="crawl_id"):
        enqueue(url, crawl_id="x" * 65, settings=settings)
    with pytest.raises(TypeError, match="one string"):
        enqueue("https://news.example/a.html", settings=settings)
    with pytest.raises(TypeError, match="unknown setting 'brokr_url'"):
        enqueue(url, brokr_url=redis_server.url)
    with pytest.raises(SettingsError, match="shared broker"):
        enqueue(url, settings=Settings.from_env({}))
    assert queued_tasks(redis_server) == []


def test_enqueued_urls_are_crawled_by_the_workers(tmp_path: Path, redis_server: RedisServer) -> None:
    site = build_site(corpus_articles(4), per_page=2)
    out = tmp_path / "out"
    env = worker_env(INGEST_BROKER_URL=redis_server.url, INGEST_STORAGE_URL=str(out), INGEST_ALLOW_PRIVATE="1",
                     INGEST_HOST_RATE="0")
    storage = open_storage(str(out))
    with serve_site(site) as server, worker_processes(
        (["--processes", "1", "--threads", "4"], tmp_path / "w.log"), env=env
    ) as procs:
        result = enqueue((u for u in [server.base_url + "/"]), crawl_id="api-workers",
                         settings=Settings.from_env(env))
        assert (result.sent, result.rejected) == (1, ())
        wait_for(lambda: len(list(storage.keys("articles/"))) >= len(site.articles), 120, "every record stored")
        wait_for(lambda: redis_server.client().llen("ingest:fetch") == 0, 10, "an empty fetch queue")
        assert procs[0].stop() == 0
    records = load_records(storage)
    assert_site_stored(site, server.base_url, records)
    assert {r["crawl_id"] for r in records} == {"api-workers"}


def test_crawl_runs_embedded_even_when_the_environment_names_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing listens on this port: had crawl() used the environment's broker, it would fail.
    monkeypatch.setenv("INGEST_BROKER_URL", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setenv("INGEST_HOST_RATE", "0")
    site = mixed_site(corpus=3, seed_per_style=1)
    out = tmp_path / "out"
    with serve_site(site) as server:
        summary = crawl((u for u in [server.base_url + "/"]), out=str(out), processes=1, threads=4,
                        crawl_id="api-crawl", allow_private=True)
    assert isinstance(summary, CrawlSummary)
    assert summary.crawl_id == "api-crawl" and summary.stored == len(site.articles)
    assert summary.storage.endswith("out") and not summary.interrupted
    records = load_records(open_storage(str(out)))
    assert_site_stored(site, server.base_url, records)


def test_crawl_of_articles_only_and_its_argument_checks(tmp_path: Path) -> None:
    site = build_site(corpus_articles(2), per_page=2)
    settings = Settings.from_env({}, storage_url=str(tmp_path / "out"), allow_private=True, host_rate=0.0)
    with serve_site(site) as server:
        summary = crawl([server.base_url + a.path for a in site.articles], kind="article", settings=settings,
                        processes=1)
        requested = server.request_paths()
    assert summary.stored == 2 and summary.pages_fetched == 2
    assert not [p for p in requested if p in site.listing_paths], "articles only: no listing was read"
    with pytest.raises(TypeError, match="one string"):
        crawl("https://news.example/", settings=settings)
    with pytest.raises(ValueError, match="kind 'feed'"):
        crawl(["https://news.example/"], kind="feed", settings=settings)


def test_extract_article_from_the_top_gives_the_stage_record() -> None:
    spec = corpus_articles(1)[0]
    record = extract_article(spec.html, "https://news.example" + spec.path)
    assert record["url"] == "https://news.example" + spec.path
    text = " ".join(record["text"].split())
    assert all(" ".join(s.split()) in text for s in spec.must_have)
