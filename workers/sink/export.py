"""Export an archive: the article records as JSON Lines, or the raw pages as WARC 1.1.

Pure logic over a :class:`~workers.core.storage.Storage` and a binary stream; ``ingest export``
(``workers/cli/export.py``) opens both.  A WARC has a ``warcinfo`` record first, then per raw page
a ``response`` record (the stored status line and headers, the body exactly as stored, its
``WARC-Date`` the fetch time) and, when an article record was made from that page, a ``metadata``
record naming it (``WARC-Concurrent-To`` the response).  warcio writes the records: it is the
reference library of the web-archiving tools (pywb, ``warcio check``/``index``) and pure Python.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Protocol

import orjson
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from workers.core.storage import Storage, is_raw_page, raw_headers_key, record_key

__all__ = ["ExportReport", "Selection", "Writable", "export_jsonl", "export_warc", "record_keys", "utc_day"]

#: Headers that describe the bytes on the wire, not the body as stored (decoded, de-chunked): in
#: the archive they would make every reader decode the body a second time, or cut it.
_WIRE_HEADERS = frozenset({"content-encoding", "transfer-encoding", "content-length"})
WARC_1_1 = "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/"


class Writable(Protocol):
    """Where an export goes: a binary file, stdout's buffer, a gzip stream."""

    def write(self, data: bytes, /) -> object:
        """Write ``data``."""


@dataclass(frozen=True)
class Selection:
    """Which records or pages to export: a crawl, UTC days ``since``..``until`` (inclusive,
    ``YYYY-MM-DD``) of the fetch, a host, and a source's storage prefix (``"guardian/"``)."""

    crawl_id: str | None = None
    since: str | None = None
    until: str | None = None
    host: str | None = None
    prefix: str = ""

    def takes(self, crawl_id: object, fetched_at: object) -> bool:
        """Whether something of ``crawl_id`` fetched at ``fetched_at`` (ISO 8601) is selected."""
        if self.crawl_id is not None and crawl_id != self.crawl_id:
            return False
        if self.since is None and self.until is None:
            return True
        day = utc_day(fetched_at)
        if day is None:
            return False
        return (self.since is None or day >= self.since) and (self.until is None or day <= self.until)


@dataclass
class ExportReport:
    """What one export wrote and left out."""

    format: str
    written: int = 0  #: records (jsonl) or response records, one per raw page (warc)
    linked: int = 0  #: warc: metadata records naming the article record made from the page
    outside: int = 0  #: outside the selection (crawl, dates)
    unreadable: int = 0  #: not JSON, or gone between listing and reading
    unknown: int = 0  #: warc: raw pages with neither a response sidecar nor a record (URL unknown)
    rebuilt: int = 0  #: warc: pages from before headers were kept: status line and type from the record

    def as_dict(self) -> dict[str, Any]:
        """The counts as a JSON-ready dict."""
        return asdict(self)

    def render(self) -> str:
        """One line for a terminal."""
        if self.format == "jsonl":
            line = f"exported {self.written} records"
        else:
            line = f"exported {self.written} pages ({self.linked} with their article record)"
            if self.rebuilt:
                line += f", {self.rebuilt} with headers rebuilt from the record"
            if self.unknown:
                line += f", {self.unknown} skipped: URL unknown"
        if self.outside:
            line += f", {self.outside} outside the selection"
        if self.unreadable:
            line += f", {self.unreadable} unreadable"
        return line


def utc_day(timestamp: object) -> str | None:
    """The UTC date (``YYYY-MM-DD``) of an ISO 8601 timestamp; None when it is not one."""
    if not isinstance(timestamp, str):
        return None
    try:
        when = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).date().isoformat()


def record_keys(storage: Storage, selection: Selection) -> Iterator[str]:
    """Keys of the article records under ``[prefix]articles/[host/]``, in listing order."""
    prefix = f"{selection.prefix}articles/" + (f"{selection.host}/" if selection.host else "")
    return (key for key in storage.keys(prefix) if key.endswith(".json"))


def _load(storage: Storage, key: str) -> dict[str, Any] | None:
    """The JSON object under ``key``; None when absent, not JSON or not an object."""
    try:
        value = orjson.loads(storage.get(key))
    except (KeyError, orjson.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def export_jsonl(storage: Storage, selection: Selection, out: Writable) -> ExportReport:
    """Write every selected article record to ``out``, one JSON object a line."""
    report = ExportReport("jsonl")
    for key in record_keys(storage, selection):
        record = _load(storage, key)
        if record is None:
            report.unreadable += 1
        elif not selection.takes(record.get("crawl_id"), record.get("fetched_at")):
            report.outside += 1
        else:
            out.write(orjson.dumps(record) + b"\n")
            report.written += 1
    return report


def export_warc(
    storage: Storage,
    selection: Selection,
    out: Writable,
    *,
    gzip: bool = True,
    filename: str = "ingest.warc.gz",
    software: str = "ingest",
) -> ExportReport:
    """Write the selected raw pages to ``out`` as WARC 1.1 (each record its own gzip member when
    ``gzip``), after a ``warcinfo`` record naming ``filename`` and ``software``."""
    report = ExportReport("warc")
    writer = WARCWriter(out, gzip=gzip, warc_version="WARC/1.1")
    info = {"software": software, "format": "WARC File Format 1.1", "conformsTo": WARC_1_1,
            "description": "raw pages with their responses, exported from an ingest archive ("
                           + _describe(selection) + ")"}
    writer.write_record(writer.create_warcinfo_record(filename, info))
    for key in _page_keys(storage, selection):
        response = _load(storage, raw_headers_key(key))
        # The sidecar decides first: pages of other crawls cost no read of their record.
        if response is not None and not selection.takes(response.get("crawl_id"), response.get("fetched_at")):
            report.outside += 1
            continue
        linked = _linked_record(storage, key, selection.prefix)
        if response is None:
            if linked is None or not isinstance(linked[1].get("final_url"), str):
                report.unknown += 1
                continue
            response = _rebuilt_response(linked[1])
            if not selection.takes(response.get("crawl_id"), response.get("fetched_at")):
                report.outside += 1
                continue
        try:
            body = storage.get(key)
        except KeyError:  # deleted since it was listed
            report.unreadable += 1
            continue
        response_id = _write_response(writer, response, body)
        report.written += 1
        report.rebuilt += bool(response.get("rebuilt"))
        if linked is not None:
            _write_link(writer, response, *linked, response_id)
            report.linked += 1
    return report


def _describe(selection: Selection) -> str:
    parts = [f"{name} {value}" for name, value in asdict(selection).items() if value]
    return ", ".join(parts) or "everything"


def _page_keys(storage: Storage, selection: Selection) -> Iterator[str]:
    prefix = f"{selection.prefix}raw/" + (f"{selection.host}/" if selection.host else "")
    # The listing holds each page's .headers.json sidecar too: that is read with its page.
    return (key for key in storage.keys(prefix) if is_raw_page(key))


def _linked_record(storage: Storage, key: str, prefix: str) -> tuple[str, dict[str, Any]] | None:
    """(key, record) of the article record made from the raw page under ``key``, if any."""
    parts = key.removeprefix(prefix).split("/")
    if len(parts) != 5 or parts[0] != "raw":
        return None
    found = prefix + record_key(parts[1], parts[3])
    record = _load(storage, found)
    # The record may be of a later fetch (changed bytes, another raw page): not this page's.
    if record is None or record.get("raw_key") != key:
        return None
    return found, record


def _rebuilt_response(record: dict[str, Any]) -> dict[str, Any]:
    """The response of a page stored before its headers were: what the record knows of it."""
    status = int(record.get("status") or 200)
    content_type = "text/html" + (f"; charset={record['encoding']}" if record.get("encoding") else "")
    return {"url": record.get("url"), "final_url": record["final_url"], "crawl_id": record.get("crawl_id"),
            "fetched_at": record.get("fetched_at"), "status": status, "status_line": f"HTTP/1.1 {status}",
            "headers": [["Content-Type", content_type]], "rebuilt": True}


def _status_line(response: dict[str, Any]) -> str:
    """``200 OK`` for warcio (which adds the protocol): the stored line, with its reason phrase
    filled in when the server (or HTTP/2) sent none."""
    _, _, rest = str(response.get("status_line") or "").partition(" ")
    code, _, phrase = rest.partition(" ")
    if not code.isdigit():
        code = str(response.get("status") or 200)
    if not phrase:
        try:
            phrase = HTTPStatus(int(code)).phrase
        except ValueError:
            phrase = "Unknown"
    return f"{code} {phrase}"


def _write_response(writer: Any, response: dict[str, Any], body: bytes) -> str:
    """Write the response record of one page; returns its WARC-Record-ID."""
    headers = []
    for name, value in response.get("headers") or []:
        lower = str(name).lower()
        if lower in _WIRE_HEADERS:
            # Kept for the reader under another name, as replay tools do with rewritten headers.
            headers.append((f"X-Archive-Orig-{name}", str(value)))
        else:
            headers.append((str(name), str(value)))
    headers.append(("Content-Length", str(len(body))))
    # The header block is written in HTTP/1.1 form whatever the wire spoke (HTTP/2 has none of its
    # own); WARC readers expect an HTTP/1.x status line.
    protocol = "HTTP/1.0" if str(response.get("status_line", "")).startswith("HTTP/1.0") else "HTTP/1.1"
    http_headers = StatusAndHeaders(_status_line(response), headers, protocol=protocol)
    warc_headers = {"WARC-Date": _warc_date(response.get("fetched_at"))}
    record = writer.create_warc_record(str(response["final_url"]), "response", payload=io.BytesIO(body),
                                       length=len(body), http_headers=http_headers,
                                       warc_headers_dict=warc_headers)
    writer.write_record(record)
    return str(record.rec_headers.get_header("WARC-Record-ID"))


def _write_link(writer: Any, response: dict[str, Any], key: str, record: dict[str, Any], response_id: str) -> None:
    """A metadata record beside the response, naming the article record made from the page."""
    fields = {
        "ingest-record-key": key,
        "ingest-record-id": record.get("id"),
        "ingest-url": record.get("url"),
        "ingest-crawl-id": record.get("crawl_id"),
        "title": record.get("title"),
        "published": record.get("published"),
    }
    # application/warc-fields: one "name: value" a line; values are single-line text.
    block = "".join(f"{name}: {' '.join(str(value).split())}\r\n" for name, value in fields.items() if value)
    data = block.encode("utf-8")
    link = writer.create_warc_record(str(response["final_url"]), "metadata", payload=io.BytesIO(data),
                                     length=len(data), warc_content_type="application/warc-fields",
                                     warc_headers_dict={"WARC-Date": _warc_date(response.get("fetched_at")),
                                                        "WARC-Concurrent-To": response_id})
    writer.write_record(link)


def _warc_date(fetched_at: object) -> str:
    """A WARC 1.1 date (UTC, ``Z``, fractions kept) for the fetch time; now when it is unreadable."""
    when = None
    if isinstance(fetched_at, str):
        try:
            when = datetime.fromisoformat(fetched_at.replace("Z", "+00:00"))
        except ValueError:
            when = None
    if when is None:
        when = datetime.now(UTC)
    elif when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
