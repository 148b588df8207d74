"""What the fetch stage feeds the host's latency average: the time of answers, not of timeouts.

A read timeout is a fault (retried with back-off), not a measure of how fast the host answers:
counted as a 5 s "latency", a few timeouts in a burst would mark a fast host slow and space every
fetch queued for it seconds apart (Scrapy's AutoThrottle likewise adjusts only on responses).
Against a real server on 127.0.0.1 that never answers ``/slow`` in time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.hostile_server import HostileServer
from workers.core.messages import fetch_task
from workers.core.settings import Settings
from workers.core.urls import host_of, url_id
from workers.fetch.politeness import EWMA_ALPHA
from workers.fetch.stage import TransientFailure, fetch
from workers.pipeline.runtime import Runtime, build_runtime


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with HostileServer() as srv:
        yield srv


@pytest.fixture
def rt() -> Iterator[Runtime]:
    runtime = build_runtime(Settings(allow_private=True, respect_robots=False, host_rate=0, read_timeout=0.3,
                                     connect_timeout=1.0))
    runtime.send = lambda stage, task: None
    runtime.send_later = lambda stage, task, delay_ms: None
    try:
        yield runtime
    finally:
        runtime.close()


def _fetch(rt: Runtime, url: str) -> dict[str, Any]:
    task = fetch_task(crawl_id="c", url=url, url_id=url_id(url), kind="article")
    trace = {"url": task["url"], "url_id": task["url_id"], "crawl_id": "c", "host": host_of(task["url"])}
    fetch(rt, task, None, trace, 0)
    return trace


def test_a_timed_out_request_does_not_feed_the_latency_average(rt: Runtime, server: HostileServer) -> None:
    trace = _fetch(rt, server.url("/html"))
    answered = rt.policy.state(trace["host"])["ewma_latency_s"]
    assert 0 < answered < 0.3
    with pytest.raises(TransientFailure):
        _fetch(rt, server.url("/slow?s=2"))
    assert rt.policy.state(trace["host"])["ewma_latency_s"] == answered


def test_an_answer_feeds_it(rt: Runtime, server: HostileServer) -> None:
    trace = _fetch(rt, server.url("/slow?s=0.2"))
    assert rt.policy.state(trace["host"])["ewma_latency_s"] >= 0.2


def test_a_body_that_stalls_counts_only_until_its_headers(rt: Runtime, server: HostileServer) -> None:
    trace = _fetch(rt, server.url("/html"))
    answered = rt.policy.state(trace["host"])["ewma_latency_s"]
    with pytest.raises(TransientFailure):
        _fetch(rt, server.url("/stall"))
    after = rt.policy.state(trace["host"])["ewma_latency_s"]
    sample = (after - (1 - EWMA_ALPHA) * answered) / EWMA_ALPHA
    assert sample < 0.15, f"the stalled fetch counted {sample:.2f} s; its headers came at once, the stall lasted 0.3 s"
