"""Export logic on hand-made archives: selection by crawl, day, host and prefix; how a stored
response becomes a WARC record (decoded body, HTTP/2, later fetches); unreadable objects."""

from __future__ import annotations

import hashlib
import io
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from warcio.archiveiterator import ArchiveIterator

from workers.cli.main import main
from workers.core.storage import Storage, open_storage, raw_headers_key, raw_key, record_key
from workers.core.urls import url_id
from workers.sink.export import Selection, export_jsonl, export_warc, utc_day

BODY = "<html><body><p>Ünïcode harbour news</p></body></html>".encode()


def _store() -> Storage:
    return open_storage(f"memory://{uuid.uuid4().hex}")


def put_page(storage: Storage, url: str, body: bytes, *, crawl_id: str = "c1", fetched_at: str = "2025-01-21T10:00:00Z",
             prefix: str = "", headers: list[list[str]] | None = None, status_line: str = "HTTP/1.1 200 OK",
             sidecar: bool = True) -> str:
    """A raw page (and, with ``sidecar``, its response) as the fetch stage stores it; returns its key."""
    host = url.split("/")[2]
    key = prefix + raw_key(host, url_id(url), hashlib.sha256(body).hexdigest())
    storage.put(key, body)
    if sidecar:
        storage.put(raw_headers_key(key), orjson.dumps({
            "url": url, "final_url": url, "crawl_id": crawl_id, "fetched_at": fetched_at, "status": 200,
            "status_line": status_line, "headers": headers or [["Content-Type", "text/html; charset=utf-8"]]}))
    return key


def put_record(storage: Storage, url: str, page_key: str, *, crawl_id: str = "c1",
               fetched_at: str = "2025-01-21T10:00:00Z", prefix: str = "") -> dict[str, Any]:
    """A (partial) article record of ``url`` made from the page under ``page_key``."""
    host, uid = url.split("/")[2], url_id(url)
    record = {"id": uid, "url": url, "final_url": url, "host": host, "crawl_id": crawl_id,
              "fetched_at": fetched_at, "status": 200, "raw_key": page_key, "encoding": "utf-8", "title": "Harbour"}
    storage.put(prefix + record_key(host, uid), orjson.dumps(record))
    return record


def warc_records(storage: Storage, selection: Selection | None = None) -> list[Any]:
    """The records of an uncompressed WARC export, each with its content as ``body``."""
    out = io.BytesIO()
    export_warc(storage, selection or Selection(), out, gzip=False)
    records = []
    for record in ArchiveIterator(io.BytesIO(out.getvalue())):
        record.body = record.content_stream().read()
        records.append(record)
    return records


def test_selection_by_crawl_and_inclusive_utc_days() -> None:
    day = Selection(since="2025-01-02", until="2025-01-02")
    assert day.takes("x", "2025-01-02T00:00:00Z") and day.takes("x", "2025-01-02T23:59:59.999Z")
    assert not day.takes("x", "2025-01-01T23:59:59Z") and not day.takes("x", "2025-01-03T00:00:00Z")
    assert day.takes("x", "2025-01-01T23:30:00-02:00"), "compared in UTC: that is Jan 2, 01:30"
    assert not day.takes("x", "yesterday") and not day.takes("x", None), "no readable date, no match"
    assert Selection().takes("x", None), "without dates the date does not matter"
    assert not Selection(crawl_id="a").takes("b", "2025-01-02T00:00:00Z")
    assert utc_day("2025-01-02T10:00:00") == "2025-01-02" and utc_day(7) is None


def test_jsonl_by_host_and_by_source_prefix() -> None:
    storage = _store()
    for url, prefix in [("https://a.example/1", ""), ("https://a.example/2", ""), ("https://b.example/1", ""),
                        ("https://a.example/3", "guardian/")]:
        put_record(storage, url, put_page(storage, url, BODY, prefix=prefix), prefix=prefix)

    def urls(selection: Selection) -> list[str]:
        out = io.BytesIO()
        report = export_jsonl(storage, selection, out)
        assert report.written == len(out.getvalue().splitlines())
        return sorted(orjson.loads(line)["url"] for line in out.getvalue().splitlines())

    assert urls(Selection(host="a.example")) == ["https://a.example/1", "https://a.example/2"]
    assert urls(Selection()) == ["https://a.example/1", "https://a.example/2", "https://b.example/1"]
    assert urls(Selection(prefix="guardian/")) == ["https://a.example/3"]
    warc = warc_records(storage, Selection(prefix="guardian/", host="a.example"))
    assert [r.rec_headers.get_header("WARC-Target-URI") for r in warc if r.rec_type == "response"] == [
        "https://a.example/3"]
    metadata = [r for r in warc if r.rec_type == "metadata"]
    assert b"ingest-record-key: guardian/articles/a.example/" in metadata[0].body


def test_a_decoded_body_is_archived_with_its_wire_headers_renamed() -> None:
    storage = _store()
    headers = [["Content-Type", "text/html; charset=utf-8"], ["Content-Encoding", "gzip"], ["Content-Length", "31"],
               ["Transfer-Encoding", "chunked"], ["Vary", "Accept-Encoding"]]
    put_page(storage, "https://a.example/z", BODY, headers=headers, status_line="HTTP/2 200")
    [_, response] = warc_records(storage)
    http = response.http_headers
    assert http.protocol == "HTTP/1.1" and http.get_statuscode() == "200" and http.statusline == "200 OK"
    assert http.get_header("Content-Encoding") is None and http.get_header("Transfer-Encoding") is None
    assert http.get_header("X-Archive-Orig-Content-Encoding") == "gzip"
    assert http.get_header("Content-Length") == str(len(BODY)) and http.get_header("Vary") == "Accept-Encoding"
    assert response.body == BODY, "no reader tries to gunzip the decoded body"
    assert response.rec_headers.get_header("WARC-Date") == "2025-01-21T10:00:00.000Z"


def test_an_older_fetch_of_a_page_is_archived_without_the_newer_record() -> None:
    storage = _store()
    url = "https://a.example/story"
    old = put_page(storage, url, b"<html>old</html>", fetched_at="2025-01-20T08:00:00Z")
    new = put_page(storage, url, b"<html>new</html>", fetched_at="2025-01-21T08:00:00Z")
    put_record(storage, url, new, fetched_at="2025-01-21T08:00:00Z")
    records = warc_records(storage)
    responses = {r.body: r for r in records if r.rec_type == "response"}
    assert set(responses) == {b"<html>old</html>", b"<html>new</html>"} and old != new
    [link] = [r for r in records if r.rec_type == "metadata"]
    assert link.rec_headers.get_header("WARC-Concurrent-To") == responses[b"<html>new</html>"].rec_headers.get_header(
        "WARC-Record-ID")
    dated = warc_records(storage, Selection(until="2025-01-20"))
    assert [r.body for r in dated if r.rec_type == "response"] == [b"<html>old</html>"]


def test_unreadable_records_are_counted_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = open_storage(str(tmp_path / "store"))
    put_record(storage, "https://a.example/1", put_page(storage, "https://a.example/1", BODY))
    storage.put("articles/a.example/zz/broken.json", b"{not json")
    out = tmp_path / "out.jsonl"
    assert main(["export", "--storage", str(tmp_path / "store"), "-o", str(out)]) == 1
    assert "exported 1 records, 1 unreadable" in capsys.readouterr().err
    assert len(out.read_bytes().splitlines()) == 1
    plain = tmp_path / "out.warc"
    assert main(["export", "--format", "warc", "--storage", str(tmp_path / "store"), "-o", str(plain)]) == 0
    assert plain.read_bytes().startswith(b"WARC/1.1\r\n"), "a .warc name is not gzipped"


def test_a_bad_storage_url_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--storage", "gs://"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ingest export: ") and "needs a bucket" in err and err.count("\n") == 1
