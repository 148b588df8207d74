"""Article extraction and the record: any page gives a record that meets the article schema."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.hostile import BASE, FUZZ, html_documents, timed, timed_or_error, urls
from workers.core.messages import fetch_task, page_task, validate
from workers.core.urls import InvalidURL, normalize_url, url_id
from workers.extract.article import extract_article
from workers.sink.record import build_record

RECORD_FIELDS = {
    "id",
    "url",
    "canonical_url",
    "host",
    "title",
    "authors",
    "published",
    "updated",
    "language",
    "sitename",
    "description",
    "image",
    "tags",
    "text",
    "word_count",
    "content_sha256",
    "extractor",
}
ENCODINGS = st.sampled_from((None, "utf-8", "iso-8859-1", "shift_jis", "utf-16", "x-bogus", "base64"))
FOUND = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {"via": st.sampled_from(("start", "listing", "home", "feed", "sitemap", "robots", "enqueue"))},
        optional={
            "published": st.one_of(st.none(), st.text(max_size=30)),
            "title": st.one_of(st.none(), st.text(max_size=50)),
            "referrer": st.text(max_size=50),
        },
    ),
)


def _page(url: str, status: int, encoding: str | None, found: dict[str, Any] | None, size: int) -> dict[str, Any]:
    fetch = fetch_task(crawl_id="crawl-1", url=url, url_id=url_id(url), kind="article", found=found)
    page = page_task(
        fetch,
        final_url=url,
        status=status,
        fetched_at="2025-01-21T08:30:00Z",
        raw_key=f"raw/{url_id(url)}",
        content_type="text/html",
        encoding=encoding,
        size=size,
    )
    return validate("page", page)


@FUZZ
@given(html_documents(), ENCODINGS)
def test_extract_article_gives_a_record_for_any_page(html: bytes, encoding: str | None) -> None:
    record = timed(extract_article, html, BASE, encoding=encoding)
    assert set(record) >= RECORD_FIELDS
    assert isinstance(record["text"], str)
    assert record["word_count"] == len(record["text"].split())
    assert all(isinstance(a, str) for a in record["authors"]) and all(isinstance(t, str) for t in record["tags"])


@FUZZ
@given(urls())
def test_extract_article_refuses_only_its_url(url: str) -> None:
    result = timed_or_error(InvalidURL, extract_article, b"<html><body><p>A short text.</p></body></html>", url)
    assert isinstance(result, InvalidURL | dict)


@FUZZ
@given(html_documents(), ENCODINGS, st.integers(100, 599), FOUND)
def test_build_record_meets_the_article_schema(
    html: bytes, encoding: str | None, status: int, found: dict[str, Any] | None
) -> None:
    url = normalize_url(BASE)
    extracted = timed(extract_article, html, url, encoding=encoding)
    record = timed(build_record, extracted, _page(url, status, encoding, found, len(html)))
    validate("article", record)
    assert record["url"] == url and record["host"] == "news.example.com"
    assert record["published_source"] in ("page", "discovery", None)
