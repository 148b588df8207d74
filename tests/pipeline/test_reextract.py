"""Re-extraction over an archive made by a real embedded crawl: only records whose text or
extractor version changed are rewritten; dry runs write nothing; host, prefix and date filters."""

from __future__ import annotations

import argparse
import hashlib
import io
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from structlog.testing import capture_logs

from tests.conftest import RedisServer, S3Server, free_port
from tests.support.pipeline import mixed_site
from tests.support.seedpages import seed_pages
from tests.support.site import ArticleSpec, build_site, serve_site
from workers.cli.ops import add_ops_parsers, run_ops
from workers.core.settings import Settings
from workers.core.storage import Storage, open_storage
from workers.extract.sitememory import RedisSiteMemory, fingerprint
from workers.pipeline.crawl import run_embedded, sources_for_urls
from workers.pipeline.reextract import reextract_record, reextract_storage

HOST = "127.0.0.1"
#: A note a site puts into the body of every article: plain prose, only the site memory can tell.
BOX = ("This story is part of our series on the northern valleys, reported with support from the "
       "regional press fund and shared with our partner newspapers.")


def with_box(html: str, paragraph: str) -> bytes:
    """The page with the note right after ``paragraph`` of its article."""
    end = html.index("</p>", html.index(paragraph[:40])) + len("</p>")
    return (html[:end] + f"<p>{BOX}</p>" + html[end:]).encode("utf-8")


def _crawl(storage_url: str, prefix: str | None = None) -> None:
    site = mixed_site(corpus=4, seed_per_style=1)
    settings = Settings.from_env({}, storage_url=storage_url, allow_private=True, host_rate=0.0)
    with serve_site(site) as server:
        sources = [replace(s, storage_prefix=prefix) for s in sources_for_urls([server.base_url + "/"])]
        summary = run_embedded([], settings, processes=1, threads=4, sources=sources)
    assert summary.stored == len(site.articles) == 10


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the records and raw pages of one crawl of the fixture site (made once)."""
    folder = tmp_path_factory.mktemp("archive")
    _crawl(str(folder))
    return folder


@pytest.fixture
def store(archive: Path, tmp_path: Path) -> Iterator[tuple[Storage, Path]]:
    """A private copy of the archive, for a test to change."""
    folder = tmp_path / "store"
    shutil.copytree(archive, folder)
    yield open_storage(str(folder)), folder


def records(storage: Storage, prefix: str = "") -> dict[str, dict[str, Any]]:
    return {key: orjson.loads(storage.get(key)) for key in storage.keys(prefix + "articles/")}


def tamper(storage: Storage, key: str, *, text: str | None = "An older extractor kept this teaser.",
           version: str | None = None, **fields: Any) -> dict[str, Any]:
    """Make the record look written by an older extractor; returns the original."""
    original = orjson.loads(storage.get(key))
    record = {**original, **fields}
    if text is not None:
        record.update(text=text, word_count=len(text.split()),
                      content_sha256=hashlib.sha256(text.encode()).hexdigest())
    if version is not None:
        record["extractor"] = {**record["extractor"], "version": version}
    storage.put(key, orjson.dumps(record))
    return dict(original)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --- the pure part -------------------------------------------------------------------------------


def test_an_untouched_record_is_unchanged(store: tuple[Storage, Path]) -> None:
    storage, _ = store
    for record in records(storage).values():
        assert reextract_record(record, storage.get(record["raw_key"])) is None


def test_new_text_with_old_fetch_fields_and_unknown_fields_copied(store: tuple[Storage, Path]) -> None:
    storage, _ = store
    fresh = next(iter(records(storage).values()))
    old = {**fresh, "text": "stale", "content_sha256": hashlib.sha256(b"stale").hexdigest(), "word_count": 1,
           "crawl_id": "crawl-of-2024", "fetched_at": "2024-03-01T08:00:00Z", "status": 203,
           "duplicate_of": "0" * 32, "duplicate_kind": "near", "reviewed_by": "night desk"}
    new = reextract_record(old, storage.get(old["raw_key"]))
    assert new is not None
    assert new["text"] == fresh["text"] and new["content_sha256"] == fresh["content_sha256"]
    assert new["word_count"] == fresh["word_count"]
    for field in ("crawl_id", "fetched_at", "status", "final_url", "raw_key", "url", "id", "host", "discovered"):
        assert new[field] == old[field], field
    assert (new["duplicate_of"], new["duplicate_kind"]) == ("0" * 32, "near"), "verdicts of other stages stay"
    assert new["reviewed_by"] == "night desk", "fields unknown here are copied through"


def test_the_discovery_date_still_fills_in_for_a_page_without_one(store: tuple[Storage, Path]) -> None:
    storage, _ = store

    def dateless(html: bytes, url: str, *, encoding: str | None = None) -> dict[str, Any]:
        from workers.extract.article import extract_article

        return {**extract_article(html, url, encoding=encoding), "published": None}

    fresh = next(iter(records(storage).values()))
    old = {**fresh, "text": "stale", "discovered": {"via": "feed", "published": "2024-12-24"}}
    new = reextract_record(old, storage.get(old["raw_key"]), extract=dateless)
    assert new is not None and new["published"] == "2024-12-24" and new["published_source"] == "discovery"
    assert new["discovered"] == old["discovered"]


def test_a_new_extractor_version_alone_is_a_change(store: tuple[Storage, Path]) -> None:
    storage, _ = store
    fresh = next(iter(records(storage).values()))
    old = {**fresh, "extractor": {**fresh["extractor"], "version": "0+trafilatura-1.6"}}
    new = reextract_record(old, storage.get(old["raw_key"]))
    assert new is not None and new == fresh


def test_extraction_fields_come_from_the_extractor_given(store: tuple[Storage, Path]) -> None:
    storage, _ = store
    old = next(iter(records(storage).values()))

    def newer(html: bytes, url: str, *, encoding: str | None = None) -> dict[str, Any]:
        from workers.extract.article import extract_article

        out = extract_article(html, url, encoding=encoding)
        return {**out, "title": "Retitled", "image": "https://cdn.example/a.jpg", "mood": "sunny",
                "extractor": {**out["extractor"], "version": "9+test"}}

    new = reextract_record(old, storage.get(old["raw_key"]), extract=newer)
    assert new is not None and new["title"] == "Retitled" and new["extractor"]["version"] == "9+test"
    assert new["image"] == "https://cdn.example/a.jpg"
    assert "mood" not in new, "only what build_record makes of an extraction goes into the record"


# --- the loop over a folder ----------------------------------------------------------------------


def test_a_fresh_archive_has_nothing_to_rewrite(store: tuple[Storage, Path]) -> None:
    storage, folder = store
    before = snapshot(folder)
    report = reextract_storage(storage)
    assert (report.seen, report.unchanged, report.rewritten, report.empty_now, report.errors) == (10, 10, 0, 0, 0)
    assert snapshot(folder) == before


def test_only_tampered_records_are_rewritten(store: tuple[Storage, Path]) -> None:
    storage, folder = store
    keys = sorted(records(storage))
    originals = {keys[0]: tamper(storage, keys[0]), keys[1]: tamper(storage, keys[1], version="0+old"),
                 keys[2]: tamper(storage, keys[2], text=None, version="0+old")}
    before = snapshot(folder)
    with capture_logs() as logs:
        report = reextract_storage(storage)
    assert (report.seen, report.rewritten, report.unchanged, report.errors) == (10, 3, 7, 0)
    after = records(storage)
    for key, original in originals.items():
        assert after[key] == original, f"{key} was not restored"
    changed = {k for k in before if before[k] != snapshot(folder).get(k)}
    assert changed == {str(Path(k)) for k in originals}, "exactly the tampered records were written"
    assert sorted(e["key"] for e in logs if e["event"] == "reextract.rewritten") == sorted(originals)
    assert [e["rewritten"] for e in logs if e["event"] == "reextract.done"] == [3]


def test_dry_run_counts_and_writes_nothing(store: tuple[Storage, Path]) -> None:
    storage, folder = store
    keys = sorted(records(storage))
    tamper(storage, keys[3])
    tamper(storage, keys[4])
    before = snapshot(folder)
    report = reextract_storage(storage, dry_run=True)
    assert (report.rewritten, report.unchanged) == (2, 8)
    assert snapshot(folder) == before
    assert "would rewrite 2" in report.render()


def test_host_filter(store: tuple[Storage, Path]) -> None:
    storage, folder = store
    key = sorted(records(storage))[0]
    tamper(storage, key)
    before = snapshot(folder)
    other = reextract_storage(storage, host="other.example")
    assert other.seen == 0 and snapshot(folder) == before
    mine = reextract_storage(storage, host=HOST)
    assert (mine.seen, mine.rewritten) == (10, 1)


def test_date_filter_uses_the_fetch_day(store: tuple[Storage, Path]) -> None:
    storage, _ = store
    old_key, new_key = sorted(records(storage))[:2]
    tamper(storage, old_key, fetched_at="2024-03-01T23:59:59.000Z")
    tamper(storage, new_key, fetched_at="2025-06-01T00:00:00.000+02:00")  # 2025-05-31 in UTC
    recent = reextract_storage(storage, since="2025-01-01", dry_run=True)
    assert (recent.seen, recent.rewritten, recent.outside) == (9, 1, 1)
    span = reextract_storage(storage, since="2025-05-31", until="2025-05-31", dry_run=True)
    assert (span.seen, span.rewritten, span.outside) == (1, 1, 9)
    early = reextract_storage(storage, until="2024-12-31")
    assert (early.seen, early.rewritten, early.outside) == (1, 1, 9)
    rewritten = records(storage)[old_key]
    assert rewritten["fetched_at"] == "2024-03-01T23:59:59.000Z" and "older extractor" not in rewritten["text"]
    assert "older extractor" in records(storage)[new_key]["text"], "outside the dates: left alone"


def test_missing_raw_page_unreadable_record_and_empty_page(store: tuple[Storage, Path]) -> None:
    storage, folder = store
    all_records = records(storage)
    gone, empty, broken = sorted(all_records)[:3]
    tamper(storage, gone)
    (folder / all_records[gone]["raw_key"]).unlink()
    tamper(storage, empty)
    storage.put(all_records[empty]["raw_key"], b"<html><body></body></html>")
    storage.put(broken, b"{not json")
    before = snapshot(folder)
    with capture_logs() as logs:
        report = reextract_storage(storage)
    assert (report.seen, report.errors, report.empty_now, report.unchanged, report.rewritten) == (9, 2, 1, 7, 0)
    assert snapshot(folder) == before, "nothing is written for a page that now gives no text"
    reasons = [e["reason"] for e in logs if e["event"] == "reextract.error"]
    assert len(reasons) == 2 and any("unreadable record" in r for r in reasons)
    assert any("is missing" in r for r in reasons)


# --- the command, and other stores ---------------------------------------------------------------


def ops_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ingest")
    add_ops_parsers(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_reextract_command_prints_counts(store: tuple[Storage, Path]) -> None:
    storage, folder = store
    tamper(storage, sorted(records(storage))[0])
    settings = Settings.from_env({}, storage_url=str(folder))
    out = io.StringIO()
    assert run_ops(ops_args("reextract", "--dry-run", "--processes", "1"), settings, out=out) == 0
    assert out.getvalue().strip() == "dry run: seen 10, would rewrite 1, unchanged 9, empty now 0, errors 0"
    out = io.StringIO()
    assert run_ops(ops_args("reextract", "--json", "--host", HOST, "--processes", "1"), settings, out=out) == 0
    assert orjson.loads(out.getvalue()) == {"seen": 10, "rewritten": 1, "unchanged": 9, "empty_now": 0,
                                            "errors": 0, "outside": 0, "dry_run": False}
    storage.put(sorted(records(storage))[1], b"[")
    args = ops_args("reextract", "--storage", str(folder), "--processes", "1")
    assert run_ops(args, Settings.from_env({}), out=io.StringIO()) == 1, "exit 1 when a record could not be done"


def test_reextract_on_a_process_pool_gives_the_same_result(store: tuple[Storage, Path]) -> None:
    storage, folder = store
    keys = sorted(records(storage))
    originals = {key: tamper(storage, key) for key in keys[:4]}
    (folder / originals[keys[3]]["raw_key"]).unlink()
    out = io.StringIO()
    args = ops_args("reextract", "--json", "--processes", "2")
    assert run_ops(args, Settings.from_env({}, storage_url=str(folder)), out=out) == 1
    assert orjson.loads(out.getvalue()) | {"dry_run": None} == {
        "seen": 10, "rewritten": 3, "unchanged": 6, "empty_now": 0, "errors": 1, "outside": 0, "dry_run": None}
    after = records(storage)
    assert all(after[key] == originals[key] for key in keys[:3])


def test_reextract_command_rejects_an_empty_date_range(capsys: pytest.CaptureFixture[str]) -> None:
    args = ops_args("reextract", "--since", "2025-02-01", "--until", "2025-01-01")
    assert run_ops(args, Settings.from_env({}, storage_url="memory://nothing")) == 2
    assert "is after --until" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ops_args("reextract", "--since", "yesterday")


def test_source_prefix_on_memory_storage() -> None:
    url = f"memory://reextract-{uuid.uuid4().hex}"
    _crawl(url, prefix="paper/")
    storage = open_storage(url)
    prefixed = records(storage, "paper/")
    assert len(prefixed) == 10 and not records(storage)
    tamper(storage, sorted(prefixed)[0])
    settings = Settings.from_env({}, storage_url=url)
    out = io.StringIO()
    assert run_ops(ops_args("reextract", "--json", "--processes", "1"), settings, out=out) == 0
    assert orjson.loads(out.getvalue())["seen"] == 0, "without the prefix, the source's records are not there"
    out = io.StringIO()
    args = ops_args("reextract", "--json", "--source-prefix", "paper", "--processes", "1")
    assert run_ops(args, settings, out=out) == 0
    assert orjson.loads(out.getvalue())["rewritten"] == 1
    assert "older extractor" not in records(storage, "paper/")[sorted(prefixed)[0]]["text"]


def test_reextract_on_s3(archive: Path, s3_server: S3Server) -> None:
    url = f"s3://{s3_server.bucket}/archive"
    s3 = open_storage(url, s3_endpoint=s3_server.endpoint)
    local = open_storage(str(archive))
    for key in local.keys(""):
        s3.put(key, local.get(key))
    key = sorted(records(s3))[0]
    original = tamper(s3, key)
    report = reextract_storage(s3)
    assert (report.seen, report.rewritten, report.unchanged) == (10, 1, 9)
    assert records(s3)[key] == original


# --- site memory: what a host repeats stays out ---------------------------------------------------


@pytest.fixture(scope="module")
def boxed_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A crawl of seed pages that all carry the same note in their body: the extract stage learnt
    it as the site's boilerplate after the first pages (one thread: a deterministic order)."""
    folder = tmp_path_factory.mktemp("boxed")
    specs = [ArticleSpec(path=p.path, html=with_box(p.html, p.paragraphs[1]), title=p.title, must_have=p.paragraphs,
                         must_not=p.teasers) for p in seed_pages(count_per_style=2)]
    settings = Settings.from_env({}, storage_url=str(folder), allow_private=True, host_rate=0.0)
    with serve_site(build_site(specs, per_page=20)) as server:
        summary = run_embedded([server.base_url + "/"], settings, processes=1, threads=1)
    assert summary.stored == len(specs)
    return folder


@pytest.fixture
def boxed(boxed_archive: Path, tmp_path: Path) -> tuple[Storage, Path]:
    folder = tmp_path / "boxed"
    shutil.copytree(boxed_archive, folder)
    return open_storage(str(folder)), folder


def test_what_the_site_repeats_is_not_put_back(boxed: tuple[Storage, Path]) -> None:
    storage, _ = boxed
    before = records(storage)
    kept_box = sorted(k for k, r in before.items() if BOX in r["text"])
    stripped = [r for r in before.values() if BOX not in r["text"]]
    assert 1 <= len(kept_box) < len(stripped), "the crawl stripped the note from all but its first pages"
    # Without a site memory, re-extraction alone would put the note back: why the loop keeps one.
    naive = reextract_record(stripped[0], storage.get(stripped[0]["raw_key"]))
    assert naive is not None and BOX in naive["text"]
    report = reextract_storage(storage)
    assert (report.seen, report.rewritten, report.unchanged) == (len(before), len(kept_box), len(stripped))
    after = records(storage)
    assert not [k for k, r in after.items() if BOX in r["text"]], "the cold-start pages lose the note now"
    assert all(after[k]["text"] == r["text"] for k, r in before.items() if k not in kept_box)


def _only(storage: Storage, key: str) -> None:
    """Date the record alone on 2024-01-01, so a date filter selects just it."""
    tamper(storage, key, text=None, fetched_at="2024-01-01T12:00:00Z")


def test_the_workers_site_memory_is_consulted_not_taught(boxed: tuple[Storage, Path],
                                                         redis_server: RedisServer) -> None:
    storage, folder = boxed
    key = next(k for k, r in sorted(records(storage).items()) if BOX not in r["text"])
    _only(storage, key)
    one_day = ("reextract", "--json", "--since", "2024-01-01", "--until", "2024-01-01", "--processes", "1")
    # Alone, one page teaches nothing: the note would come back.
    out = io.StringIO()
    assert run_ops(ops_args(*one_day, "--dry-run"), Settings.from_env({}, storage_url=str(folder)), out=out) == 0
    assert orjson.loads(out.getvalue())["rewritten"] == 1
    # The workers' memory has seen the note on the host's pages: the record stays as it is.
    client = redis_server.client()
    shared = RedisSiteMemory(client, "ingest")
    for i in range(5):
        shared.observe(HOST, f"{i:032x}", [fingerprint(BOX)])
    state = {k: client.dump(k) for k in sorted(client.keys("*"))}
    settings = Settings.from_env({}, storage_url=str(folder), broker_url=redis_server.url)
    out = io.StringIO()
    assert run_ops(ops_args(*one_day), settings, out=out) == 0
    assert orjson.loads(out.getvalue()) | {"dry_run": None} == {
        "seen": 1, "rewritten": 0, "unchanged": 1, "empty_now": 0, "errors": 0, "outside": 11, "dry_run": None}
    assert {k: client.dump(k) for k in sorted(client.keys("*"))} == state, "the shared memory was not taught"


def test_reextract_with_an_unreachable_site_memory_stops(boxed: tuple[Storage, Path],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    _, folder = boxed
    settings = Settings.from_env({}, storage_url=str(folder), broker_url=f"redis://127.0.0.1:{free_port()}/0")
    assert run_ops(ops_args("reextract", "--processes", "1"), settings) == 2
    err = capsys.readouterr().err
    assert err.startswith("ingest reextract: cannot read the site memory") and len(err.strip().splitlines()) == 1
