"""``ingest export`` over an archive made by two real embedded crawls: JSON Lines of the records,
WARC 1.1 of the raw pages read back with warcio (and checked by ``warcio check``/``index``), filters."""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import io
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from warcio.archiveiterator import ArchiveIterator

from tests.support.site import Site, build_site, corpus_articles, serve_site
from workers.cli.export import add_export_parser, run_export
from workers.cli.main import main
from workers.core.messages import validate
from workers.core.settings import Settings
from workers.core.storage import Storage, is_raw_page, open_storage, raw_headers_key
from workers.core.urls import normalize_url
from workers.pipeline.crawl import run_embedded

CRAWLS = ("export-a", "export-b")


@dataclass
class Archive:
    """A folder holding two crawls of the fixture site (each served on its own port)."""

    folder: Path
    site: Site
    bases: dict[str, str]  #: crawl id -> the base URL it crawled
    pages: dict[str, int]  #: crawl id -> pages fetched

    @property
    def storage(self) -> Storage:
        return open_storage(str(self.folder))


def crawl_into(storage_url: str, site: Site, crawl_id: str) -> tuple[str, int]:
    """Crawl ``site`` into ``storage_url``; (its base URL, pages fetched)."""
    settings = Settings.from_env({}, storage_url=storage_url, allow_private=True, host_rate=0.0)
    with serve_site(site) as server:
        summary = run_embedded([server.base_url + "/"], settings, processes=1, threads=4, crawl_id=crawl_id)
    assert summary.stored == len(site.articles) and summary.by_reason("failed") == {}
    return server.base_url, summary.pages_fetched


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    folder = tmp_path_factory.mktemp("export-archive")
    site = build_site(corpus_articles(3), sections=("world", "politics"), per_page=5)
    bases, pages = {}, {}
    for crawl_id in CRAWLS:
        bases[crawl_id], pages[crawl_id] = crawl_into(str(folder), site, crawl_id)
    return Archive(folder, site, bases, pages)


def export(*args: str) -> int:
    """Run ``ingest export`` with ``args``."""
    return main(["export", *args])


def read_warc(path: Path) -> list[Any]:
    """Every record of a WARC file, with its content read (warcio records are streamed)."""
    records = []
    with path.open("rb") as f:
        for record in ArchiveIterator(f):
            record.body = record.content_stream().read()
            records.append(record)
    return records


def served(site: Site, url: str) -> bytes:
    """The bytes the fixture site serves at ``url``."""
    return site.pages[urlsplit(url).path][0]


def test_jsonl_has_one_valid_record_per_article_and_filters_by_crawl(archive: Archive, tmp_path: Path) -> None:
    out = tmp_path / "all.jsonl"
    assert export("--storage", str(archive.folder), "-o", str(out)) == 0
    records = [validate("article", orjson.loads(line)) for line in out.read_bytes().splitlines()]
    expected = {normalize_url(base + a.path) for base in archive.bases.values() for a in archive.site.articles}
    assert sorted(r["url"] for r in records) == sorted(expected), "each article once, nothing else"
    assert not list(tmp_path.glob("*.part")), "the partial file was renamed"

    one = tmp_path / "a.jsonl.gz"
    assert export("--storage", str(archive.folder), "--crawl-id", "export-a", "-o", str(one)) == 0
    only_a = [orjson.loads(line) for line in gzip.decompress(one.read_bytes()).splitlines()]
    assert {r["crawl_id"] for r in only_a} == {"export-a"} and len(only_a) == len(archive.site.articles)
    assert all(r["url"].startswith(archive.bases["export-a"]) for r in only_a)


def test_date_filters_use_the_fetch_day(archive: Archive, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    today = datetime.now(UTC).date()
    # The crawls ran moments ago: today (or yesterday, had midnight passed since) holds them all.
    since = (today - timedelta(days=1)).isoformat()
    assert export("--storage", str(archive.folder), "--since", since, "-o", str(tmp_path / "in.jsonl")) == 0
    assert len((tmp_path / "in.jsonl").read_bytes().splitlines()) == 2 * len(archive.site.articles)
    tomorrow = (today + timedelta(days=1)).isoformat()
    capsys.readouterr()
    assert export("--storage", str(archive.folder), "--format", "warc", "--since", tomorrow,
                  "-o", str(tmp_path / "none.warc.gz")) == 0
    assert "exported 0 pages" in capsys.readouterr().err
    records = read_warc(tmp_path / "none.warc.gz")
    assert [r.rec_type for r in records] == ["warcinfo"], "a valid, empty archive"
    assert export("--storage", str(archive.folder), "--since", tomorrow, "--until", since) == 2


def test_warc_holds_every_page_with_its_url_date_and_exact_bytes(archive: Archive, tmp_path: Path) -> None:
    path = tmp_path / "crawl.warc.gz"
    assert export("--storage", str(archive.folder), "--format", "warc", "-o", str(path)) == 0
    records = read_warc(path)
    assert records[0].rec_type == "warcinfo" and records[0].rec_headers.get_header("WARC-Filename") == path.name
    assert records[0].rec_headers.protocol == "WARC/1.1"
    assert b"software: ingest/" in records[0].body

    storage = archive.storage
    pages = [k for k in storage.keys("raw/") if is_raw_page(k)]
    responses = {r.rec_headers.get_header("WARC-Target-URI"): r for r in records if r.rec_type == "response"}
    assert len(responses) == len(pages) == sum(archive.pages.values()), "every fetched page, once"
    for key in pages:
        sidecar = orjson.loads(storage.get(raw_headers_key(key)))
        record = responses[sidecar["final_url"]]
        body = storage.get(key)
        assert record.body == body == served(archive.site, sidecar["final_url"]), "the exact bytes"
        assert record.rec_headers.get_header("WARC-Date") == sidecar["fetched_at"]
        digest = "sha1:" + base64.b32encode(hashlib.sha1(body).digest()).decode()
        assert record.rec_headers.get_header("WARC-Payload-Digest") == digest
        assert record.http_headers.get_statuscode() == "200"
        assert record.http_headers.get_header("Content-Type") == archive.site.pages[
            urlsplit(sidecar["final_url"]).path][1]
        assert record.http_headers.get_header("Content-Length") == str(len(body))

    links = [r for r in records if r.rec_type == "metadata"]
    assert len(links) == 2 * len(archive.site.articles), "one per article record"
    ids = {r.rec_headers.get_header("WARC-Record-ID"): r for r in responses.values()}
    for link in links:
        response = ids[link.rec_headers.get_header("WARC-Concurrent-To")]
        fields = dict(line.split(": ", 1) for line in link.body.decode().splitlines())
        article = orjson.loads(storage.get(fields["ingest-record-key"]))
        assert article["final_url"] == response.rec_headers.get_header("WARC-Target-URI")
        assert article["fetched_at"] == response.rec_headers.get_header("WARC-Date")
        assert fields["ingest-crawl-id"] == article["crawl_id"] and fields["ingest-url"] == article["url"]


def test_warcio_tools_accept_the_archive(archive: Archive, tmp_path: Path) -> None:
    path = tmp_path / "b.warc.gz"
    assert export("--storage", str(archive.folder), "--format", "warc", "--crawl-id", "export-b",
                  "-o", str(path)) == 0
    warcio = Path(sys.executable).with_name("warcio")
    check = subprocess.run([str(warcio), "check", "-v", str(path)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count("digest pass") == len(read_warc(path)), "every record's digests pass"
    index = subprocess.run([str(warcio), "index", "-f", "warc-type,warc-target-uri,http:status", str(path)],
                           capture_output=True, text=True, timeout=60, check=True)
    rows = [orjson.loads(line) for line in index.stdout.splitlines()]
    responses = [r for r in rows if r["warc-type"] == "response"]
    assert len(responses) == archive.pages["export-b"]
    assert all(r["warc-target-uri"].startswith(archive.bases["export-b"]) and r["http:status"] == "200"
               for r in responses), "only crawl export-b, every page a 200"


def test_pages_from_before_sidecars_are_rebuilt_from_their_record(archive: Archive, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "old"
    shutil.copytree(archive.folder, folder)
    storage = open_storage(str(folder))
    article = orjson.loads(next(storage.get(k) for k in storage.keys("articles/")))
    storage.delete(raw_headers_key(article["raw_key"]))
    linked = {orjson.loads(storage.get(k))["raw_key"] for k in storage.keys("articles/")}
    listing = next(k for k in storage.keys("raw/") if is_raw_page(k) and k not in linked)
    storage.delete(raw_headers_key(listing))  # a listing page: no record knows its URL
    capsys.readouterr()
    out = io.BytesIO()
    parser = argparse.ArgumentParser()
    add_export_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", "--format", "warc", "--storage", str(folder)])
    assert run_export(args, Settings.from_env({}), stdout=out) == 0
    assert "1 with headers rebuilt from the record, 1 skipped: URL unknown" in capsys.readouterr().err
    warc = tmp_path / "stdout.warc"
    warc.write_bytes(out.getvalue())
    assert warc.read_bytes().startswith(b"WARC/1.1\r\n"), "stdout is not gzipped unless asked"
    responses = {r.rec_headers.get_header("WARC-Target-URI"): r for r in read_warc(warc) if r.rec_type == "response"}
    rebuilt = responses[article["final_url"]]
    assert rebuilt.body == storage.get(article["raw_key"])
    assert rebuilt.rec_headers.get_header("WARC-Date") == article["fetched_at"]
    assert rebuilt.http_headers.get_statuscode() == str(article["status"])
    assert len(responses) == sum(archive.pages.values()) - 1
