"""Storage URLs beyond folders and S3: Azure against a real Azurite on 127.0.0.1, GCS by its URL and
its errors (no emulator that obstore can write to is installable here), and the raw-page sidecar keys."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.support.azurite import ACCOUNT, ACCOUNT_KEY, Azurite
from workers.core.storage import (
    STORE_ERRORS,
    Storage,
    StorageError,
    is_raw_page,
    open_storage,
    raw_headers_key,
    raw_key,
)

_CLOUD_ENV = ("AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_ACCESS_KEY",
              "AZURE_STORAGE_MASTER_KEY", "AZURE_STORAGE_USE_EMULATOR", "AZURITE_BLOB_STORAGE_URL",
              "AZURE_STORAGE_ENDPOINT", "AZURE_ENDPOINT", "AZURE_STORAGE_SAS_KEY", "AZURE_STORAGE_TOKEN",
              "GOOGLE_SERVICE_ACCOUNT", "GOOGLE_SERVICE_ACCOUNT_PATH", "GOOGLE_SERVICE_ACCOUNT_KEY",
              "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_BEARER_TOKEN", "GOOGLE_BASE_URL")


@pytest.fixture(autouse=True)
def _no_cloud_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the cloud variables a test sets itself."""
    for name in _CLOUD_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """One Azurite for the module, with a container ``ingest``."""
    with Azurite(tmp_path_factory.mktemp("azurite")) as server:
        server.create_container("ingest")
        yield server


@pytest.fixture
def azure_env(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Azurite:
    """The environment pointing ``az://`` URLs at the module's Azurite."""
    for name, value in azurite.env().items():
        monkeypatch.setenv(name, value)
    return azurite


def _round_trip(storage: Storage) -> None:
    assert storage.put_new("articles/h/1.json", b"first") is True
    assert storage.put_new("articles/h/1.json", b"second") is False, "a repeat must not overwrite"
    assert storage.get("articles/h/1.json") == b"first"
    storage.put("articles/h/2.json", b"x")
    storage.put("articles/h/2.json", b"y")
    assert storage.get("articles/h/2.json") == b"y"
    assert sorted(storage.keys("articles/")) == ["articles/h/1.json", "articles/h/2.json"]
    assert storage.exists("articles/h/1.json") and not storage.exists("articles/h/3.json")
    with pytest.raises(KeyError):
        storage.get("articles/h/3.json")
    storage.delete("articles/h/1.json")
    storage.delete("articles/h/1.json")  # gone already: no error
    assert not storage.exists("articles/h/1.json")
    assert list(storage.keys("articles/")) == ["articles/h/2.json"]


def test_raw_page_sidecars_are_keyed_like_their_page_and_told_apart() -> None:
    page = raw_key("news.example", "ab" + "0" * 30, "f" * 64)
    assert raw_headers_key(page) == page.removesuffix(".html") + ".headers.json"
    assert raw_headers_key("guardian/" + page) == "guardian/" + raw_headers_key(page), "a source prefix stays"
    assert is_raw_page(page) and not is_raw_page(raw_headers_key(page))
    with pytest.raises(ValueError):
        raw_headers_key(raw_headers_key(page))


def test_azure_container_round_trip(azure_env: Azurite) -> None:
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    storage = open_storage(f"az://ingest/{prefix}")
    _round_trip(storage)
    # The prefix is a folder of the container: the same object seen from the container's root.
    assert open_storage("az://ingest").get(f"{prefix}/articles/h/2.json") == b"y"


def test_azure_through_obstores_own_emulator_settings(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> None:
    # The README's other way: obstore's AZURE_STORAGE_USE_EMULATOR + AZURITE_BLOB_STORAGE_URL, no INGEST_*.
    monkeypatch.setenv("AZURE_STORAGE_USE_EMULATOR", "true")
    monkeypatch.setenv("AZURITE_BLOB_STORAGE_URL", f"http://127.0.0.1:{azurite.port}")
    storage = open_storage(f"azure://ingest/e-{uuid.uuid4().hex[:8]}")
    assert storage.put_new("raw/h/page.html", b"<html></html>") is True
    assert storage.put_new("raw/h/page.html", b"other") is False
    assert storage.get("raw/h/page.html") == b"<html></html>"


def test_azure_errors_stay_obstore_errors(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", ACCOUNT)
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", "d3Jvbmcga2V5")  # base64, but not the account's key
    monkeypatch.setenv("INGEST_AZURE_ENDPOINT", azurite.endpoint)
    with pytest.raises(STORE_ERRORS):
        open_storage("az://ingest").put("x.json", b"{}")
    down = f"http://127.0.0.1:{free_port()}/{ACCOUNT}"
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", ACCOUNT_KEY)
    with pytest.raises(STORE_ERRORS) as caught:
        open_storage("az://ingest", azure_endpoint=down).exists("x.json")
    assert down.split("/")[2] in str(caught.value), "the error names the endpoint that did not answer"


def test_azure_urls_need_a_container_and_an_account() -> None:
    with pytest.raises(StorageError, match="needs a container"):
        open_storage("az://")
    with pytest.raises(StorageError, match="AZURE_STORAGE_ACCOUNT_NAME") as caught:
        open_storage("az://ingest/prefix")
    assert "\n" not in str(caught.value), "one line, not obstore's debug dump"


def test_gcs_urls_need_a_bucket() -> None:
    for url in ("gs://", "gcs:///prefix"):
        with pytest.raises(StorageError, match=r"needs a bucket, as in gc?s:"):
            open_storage(url)


def test_gcs_opens_and_an_unreachable_endpoint_is_a_store_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # No emulator here takes obstore's writes (fake-gcs-server refuses its XML-API PUT, and
    # gcp-storage-emulator answers it without an ETag), so: the store opens, and a request to an
    # endpoint that is down fails as a retryable store error naming that endpoint, with no token
    # asked of Google's metadata server (the emulator form needs no credentials).
    down = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("INGEST_GCS_ENDPOINT", down)
    storage = open_storage("gs://news-archive/ingest")
    assert storage.url == "gs://news-archive/ingest"
    with pytest.raises(STORE_ERRORS) as caught:
        storage.put_new("articles/h/1.json", b"{}")
    message = str(caught.value)
    assert down.removeprefix("http://") in message and "169.254.169.254" not in message
    with pytest.raises(STORE_ERRORS):
        open_storage("gcs://news-archive", gcs_endpoint=down).get("articles/h/1.json")


def test_unknown_schemes_name_every_kind_of_storage(tmp_path: Path) -> None:
    with pytest.raises(StorageError) as caught:
        open_storage("ftp://x/y")
    for scheme in ("s3://", "gs://", "az://", "memory://", "file://"):
        assert scheme in str(caught.value)
    assert open_storage(str(tmp_path / "folder")).put_new("k", b"v"), "folders still open as before"
