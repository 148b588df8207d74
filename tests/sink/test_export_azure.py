"""An embedded crawl into ``az://`` (Azurite on 127.0.0.1), exported back out as JSONL and WARC."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.sink.test_export import crawl_into, read_warc, served
from tests.support.azurite import Azurite
from tests.support.site import build_site, corpus_articles
from workers.cli.main import main
from workers.core.messages import validate
from workers.core.storage import is_raw_page, open_storage, raw_headers_key
from workers.core.urls import normalize_url


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    with Azurite(tmp_path_factory.mktemp("azurite")) as server:
        server.create_container("archive")
        yield server


@pytest.fixture
def azure_env(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Azurite:
    for name in ("AZURE_STORAGE_USE_EMULATOR", "AZURITE_BLOB_STORAGE_URL", "AZURE_STORAGE_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in azurite.env().items():
        monkeypatch.setenv(name, value)
    return azurite


def test_a_crawl_into_azure_exports_as_jsonl_and_warc(azure_env: Azurite, tmp_path: Path) -> None:
    url = f"az://archive/crawl-{uuid.uuid4().hex[:8]}"
    site = build_site(corpus_articles(2), sections=("world",), per_page=5)
    base, fetched = crawl_into(url, site, "azure-1")
    storage = open_storage(url)
    pages = [k for k in storage.keys("raw/") if is_raw_page(k)]
    assert len(pages) == fetched and len(list(storage.keys("raw/"))) == 2 * fetched, "a sidecar per page"

    jsonl = tmp_path / "records.jsonl"
    assert main(["export", "--storage", url, "-o", str(jsonl)]) == 0
    records = [validate("article", orjson.loads(line)) for line in jsonl.read_bytes().splitlines()]
    assert sorted(r["url"] for r in records) == sorted(normalize_url(base + a.path) for a in site.articles)

    warc = tmp_path / "pages.warc.gz"
    assert main(["export", "--storage", url, "--format", "warc", "--crawl-id", "azure-1", "-o", str(warc)]) == 0
    responses = {r.rec_headers.get_header("WARC-Target-URI"): r for r in read_warc(warc) if r.rec_type == "response"}
    assert len(responses) == fetched
    for key in pages:
        sidecar = orjson.loads(storage.get(raw_headers_key(key)))
        assert responses[sidecar["final_url"]].body == served(site, sidecar["final_url"]) == storage.get(key)
        assert responses[sidecar["final_url"]].rec_headers.get_header("WARC-Date") == sidecar["fetched_at"]
