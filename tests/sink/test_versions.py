"""Versioned records for ``refresh = true`` sources, on a local folder and on S3 (moto).

A changed article becomes a new version of its record (``first_seen`` kept, the previous
version under ``versions/``); unchanged content, a redelivery and a late older fetch write
nothing; versions racing each other never leave an older one in place of a newer one.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from structlog.testing import capture_logs

from tests.conftest import S3Server
from tests.support.pipeline import load_records
from tests.support.site import build_site, corpus_articles, serve_site
from workers.core.messages import sink_task, validate
from workers.core.settings import Settings
from workers.core.storage import Storage, open_storage, record_key
from workers.core.urls import normalize_url, url_id
from workers.pipeline.actors import sink_stage
from workers.pipeline.crawl import run_embedded
from workers.pipeline.runtime import Runtime, build_runtime
from workers.sources.sourcefile import Source

URL = normalize_url("https://news.example/world/2025/01/21/a-story.html")
KEY = record_key("news.example", url_id(URL))
T0 = datetime(2025, 1, 21, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["folder", "s3"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings storing into a local folder, or into a bucket of a moto S3 server."""
    if request.param == "folder":
        return Settings.from_env({}, storage_url=str(tmp_path / "out"), allow_private=True, host_rate=0.0)
    s3: S3Server = request.getfixturevalue("s3_server")
    return Settings.from_env({}, storage_url=f"s3://{s3.bucket}/archive", s3_endpoint=s3.endpoint,
                             allow_private=True, host_rate=0.0)


@pytest.fixture
def rt(settings: Settings) -> Runtime:
    """A runtime on that storage, knowing a refreshed source ``paper`` and a plain one ``plain``."""
    runtime = build_runtime(settings)
    runtime.sources.put(Source(name="paper", start_urls=("https://news.example/",), kinds=("home",), refresh=True))
    runtime.sources.put(Source(name="plain", start_urls=("https://news.example/",), kinds=("home",)))
    return runtime


def iso(t: datetime) -> str:
    """A fetch time as the fetch stage writes it."""
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def task(text: str, fetched_at: datetime, source: str = "paper") -> dict[str, Any]:
    """A sink message for the one article, with ``text`` as fetched at ``fetched_at``."""
    record = {"schema_version": 1, "id": url_id(URL), "url": URL, "final_url": URL, "canonical_url": None,
              "host": "news.example", "crawl_id": "paper", "fetched_at": iso(fetched_at), "status": 200,
              "title": "A story", "authors": [], "published": None, "language": "en", "sitename": None,
              "description": None, "text": text, "word_count": len(text.split()),
              "content_sha256": hashlib.sha256(text.encode()).hexdigest(), "raw_key": "raw/x",
              "extractor": {"name": "x", "version": "1", "options": {}}}
    message = sink_task(crawl_id="paper", url_id=url_id(URL), record=record)
    message["source"] = source
    return message


def sink(rt: Runtime, message: dict[str, Any]) -> list[str]:
    """Run the sink on ``message``; the outcome events it logged."""
    with capture_logs() as logs:
        sink_stage(rt, message)
    return [e["event"] for e in logs if str(e.get("event", "")).startswith("sink.")]


def current(storage: Storage) -> dict[str, Any]:
    """The article's record as stored (validated against the schema)."""
    return validate("article", orjson.loads(storage.get(KEY)))


def versions(storage: Storage) -> list[dict[str, Any]]:
    """The kept versions of the article's record, oldest first."""
    return [validate("article", orjson.loads(storage.get(k))) for k in sorted(storage.keys("versions/"))]


def test_a_changed_article_becomes_a_new_version_keeping_first_seen(rt: Runtime) -> None:
    assert sink(rt, task("First text of the story.", T0)) == ["sink.stored"]
    first = current(rt.storage)
    assert (first["version"], first["first_seen"]) == (1, iso(T0))
    assert versions(rt.storage) == [], "a record that never changed has no history"
    assert sink(rt, task("First text of the story, corrected.", T0 + timedelta(hours=1))) == ["sink.updated"]
    second = current(rt.storage)
    assert second["version"] == 2 and second["text"].endswith("corrected.")
    assert second["first_seen"] == iso(T0) and second["fetched_at"] == iso(T0 + timedelta(hours=1))
    assert second["updated_at"] >= iso(T0)
    assert [v["version"] for v in versions(rt.storage)] == [1, 2]
    assert versions(rt.storage)[0] == first, "the previous version is kept as it was"
    assert sink(rt, task("Third take.", T0 + timedelta(hours=2))) == ["sink.updated"]
    assert current(rt.storage)["version"] == 3 and current(rt.storage)["first_seen"] == iso(T0)
    assert [v["text"] for v in versions(rt.storage)] == [
        "First text of the story.", "First text of the story, corrected.", "Third take."]


def test_unchanged_content_a_redelivery_and_a_late_older_fetch_write_nothing(rt: Runtime) -> None:
    sink(rt, task("Text.", T0))
    sink(rt, task("Text, v2.", T0 + timedelta(hours=1)))
    stored = rt.storage.get(KEY)
    stored_versions = sorted(rt.storage.keys("versions/"))
    assert sink(rt, task("Text, v2.", T0 + timedelta(hours=2))) == ["sink.exists"], "refetched, unchanged"
    assert sink(rt, task("Text, v2.", T0 + timedelta(hours=1))) == ["sink.exists"], "a redelivery"
    assert sink(rt, task("Text.", T0)) == ["sink.stale"], "a redelivery of the first version: older than v2"
    assert sink(rt, task("Text, an older fetch arriving late.", T0 + timedelta(minutes=30))) == ["sink.stale"]
    assert rt.storage.get(KEY) == stored, "the record was not rewritten"
    assert sorted(rt.storage.keys("versions/")) == stored_versions


def test_without_refresh_the_first_record_stays(rt: Runtime) -> None:
    assert sink(rt, task("Text.", T0, source="plain")) == ["sink.stored"]
    assert sink(rt, task("Other text.", T0 + timedelta(hours=1), source="plain")) == ["sink.exists"]
    assert current(rt.storage)["text"] == "Text." and current(rt.storage)["version"] == 1


def test_racing_versions_never_leave_an_older_one_in_place(rt: Runtime) -> None:
    sink(rt, task("Version zero.", T0))
    count = 8
    barrier = threading.Barrier(count)
    before = rt.outcomes.copy()

    def write(i: int) -> None:
        message = task(f"Version {i} of the story.", T0 + timedelta(minutes=i + 1))
        barrier.wait()
        sink_stage(rt, message)

    threads = [threading.Thread(target=write, args=(i,)) for i in reversed(range(count))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = current(rt.storage)
    assert final["text"] == f"Version {count - 1} of the story.", "the newest fetch wins"
    chain = versions(rt.storage)
    assert [v["version"] for v in chain] == list(range(1, len(chain) + 1)), "versions numbered without gaps"
    assert [v["fetched_at"] for v in chain] == sorted({v["fetched_at"] for v in chain}), "each newer than the last"
    assert chain[-1] == final and {v["first_seen"] for v in chain} == {iso(T0)}
    outcomes = rt.outcomes - before
    assert outcomes["sink.updated"] == len(chain) - 1 >= 1, "each update made one version"
    assert outcomes["sink.updated"] + outcomes["sink.stale"] == count, "the others found a newer one"


def test_a_refreshed_crawl_updates_the_changed_article_and_writes_nothing_else(settings: Settings) -> None:
    site = build_site(corpus_articles(3, unique_marker=True), sections=("world",), per_page=3)
    storage = open_storage(settings.storage_url, s3_endpoint=settings.s3_endpoint)
    with serve_site(site) as server:
        source = Source(name="paper", start_urls=(server.base_url + "/world/",), kinds=("listing",),
                        allowed_hosts=("127.0.0.1",), interval_s=0.0, max_depth=0, refresh=True)
        first = run_embedded([], settings, processes=1, threads=1, sources=[source])
        before = {k: storage.get(k) for k in storage.keys("articles/")}
        changed = site.articles[0]
        body, content_type = site.pages[changed.path]
        assert b"[copy 0000]" in body
        site.pages[changed.path] = (body.replace(b"[copy 0000]", b"[copy 0000, corrected]"), content_type)
        second = run_embedded([], settings, processes=1, threads=1, sources=[source])
        changed_key = record_key("127.0.0.1", url_id(normalize_url(server.base_url + changed.path)))
    assert first.stored == 3
    assert (second.outcomes.get("sink.updated"), second.outcomes.get("sink.exists"), second.stored) == (1, 2, 0)
    after = {k: storage.get(k) for k in storage.keys("articles/")}
    assert {k for k in after if after[k] != before[k]} == {changed_key}, "only the changed record was written"
    record = validate("article", orjson.loads(after[changed_key]))
    old = orjson.loads(before[changed_key])
    assert record["version"] == 2 and "[copy 0000, corrected]" in record["text"]
    assert record["first_seen"] == old["first_seen"] == old["fetched_at"] != record["fetched_at"]
    kept = sorted(storage.keys("versions/"))
    assert len(kept) == 2 and storage.get(kept[0]) == before[changed_key] and storage.get(kept[1]) == after[changed_key]
    assert len(load_records(storage)) == 3, "the history stays out of articles/"
