"""The article record: what extraction found, joined with what the fetch knew.  Pure functions."""

from __future__ import annotations

import hashlib
from typing import Any

from workers.core.messages import SCHEMA_VERSION
from workers.core.urls import host_of, url_id

__all__ = ["build_record", "with_text"]


def build_record(extracted: dict[str, Any], page: dict[str, Any]) -> dict[str, Any]:
    """Combine an ``extract_article`` result with the page message it came from.

    Identity comes from the URL the crawl asked for (``page["url"]``, already normalised), not
    from the final URL after redirects: that is what makes a redelivery or a refetch land on the
    same record key.
    """
    url = page["url"]
    found = page.get("found") or {}
    published, published_source = extracted.get("published"), "page"
    if not published and found.get("published"):
        # The page hides its date, but the feed or sitemap entry that led here carried one.
        published, published_source = found["published"], "discovery"
    record = {
        "schema_version": SCHEMA_VERSION,
        "id": url_id(url),
        "url": url,
        "final_url": page["final_url"],
        "canonical_url": extracted.get("canonical_url"),
        "host": host_of(url),
        "crawl_id": page["crawl_id"],
        "fetched_at": page["fetched_at"],
        "status": page["status"],
        "title": extracted.get("title"),
        "authors": list(extracted.get("authors") or []),
        "published": published,
        "published_source": published_source if published else None,
        "updated": extracted.get("updated"),
        "language": extracted.get("language"),
        "sitename": extracted.get("sitename"),
        "description": extracted.get("description"),
        "text": extracted.get("text") or "",
        "word_count": int(extracted.get("word_count") or 0),
        "content_sha256": extracted["content_sha256"],
        "raw_key": page["raw_key"],
        "encoding": page.get("encoding"),
        "extractor": extracted["extractor"],
        "image": extracted.get("image"),
        "tags": list(extracted.get("tags") or []),
        "duplicate_of": None,
        "duplicate_kind": None,
    }
    if found:
        record["discovered"] = {k: v for k, v in found.items() if v is not None}
    return record


def with_text(extracted: dict[str, Any], text: str) -> dict[str, Any]:
    """An extraction result with its text replaced (after site memory stripped blocks), and the
    fields derived from the text (word count, content hash) made to match."""
    return {
        **extracted,
        "text": text,
        "word_count": len(text.split()),
        "content_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
    }
