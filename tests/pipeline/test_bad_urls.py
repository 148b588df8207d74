"""A message whose URL cannot be parsed is poison (dead-lettered at once), not an error retried for
minutes: the schema only checks the URL's shape, ``validate_url`` its parts (a broken IPv6 host,
whitespace), and every stage checks it on receipt."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from workers.core.messages import fetch_task, page_task
from workers.core.middleware import PoisonMessage
from workers.core.settings import Settings
from workers.pipeline import actors
from workers.pipeline.runtime import Runtime, build_runtime

BAD = ["http://[x", "http://[::1/", "http://exa mple.com/"]


@pytest.fixture
def rt() -> Runtime:
    runtime = build_runtime(Settings.from_env({}, storage_url=f"memory://{uuid.uuid4().hex}", allow_private=True))
    runtime.send = lambda stage, task: None
    runtime.send_later = lambda stage, task, delay_ms: None
    return runtime


def _messages(url: str) -> dict[str, dict[str, Any]]:
    fetch = fetch_task(crawl_id="c", url=url, url_id="0" * 32, kind="article")
    page = page_task(fetch, final_url=url, status=200, fetched_at="2025-01-01T00:00:00Z", raw_key="raw/x",
                     content_type="text/html", encoding=None, size=10)
    return {"fetch": fetch, "discover": {**page, "kind": "listing"}, "extract": page}


@pytest.mark.parametrize("url", BAD)
@pytest.mark.parametrize("stage", ["fetch", "discover", "extract"])
def test_an_unparseable_url_is_poison_in_every_stage(rt: Runtime, url: str, stage: str) -> None:
    with pytest.raises(PoisonMessage, match="URL"):
        getattr(actors, f"{stage}_stage")(rt, _messages(url)[stage])
