"""The crawl counts the seen-sets and settlements keep in Redis: claims open chains, settlements
close them, the last one finishes the crawl, a new claim reopens it; a scheduled source keeps its keys."""

from __future__ import annotations

import pytest

from tests.conftest import RedisServer
from workers.core.crawlstate import CRAWL_KEEP_S, MAX_STARTS, RedisCrawls, crawl_key, scope_crawl, starts_key
from workers.discover.frontier import Seen, make_seen
from workers.discover.schedule import RedisSchedule


def _seen(redis_server: RedisServer, backend: str) -> Seen:
    return make_seen(redis_server.client(), "ingest", backend, capacity=10_000)


def test_scopes_name_their_crawl() -> None:
    assert scope_crawl("news") == ("news", False)
    assert scope_crawl("news/20240101T000000") == ("news", True)
    assert scope_crawl("a/b") == ("a/b", False), "a crawl id may hold a slash"
    assert scope_crawl("a/b/20240101T000000") == ("a/b", True)


@pytest.mark.parametrize("backend", ["exact", "bloom"])
def test_claims_open_settlements_close_and_the_last_one_finishes(redis_server: RedisServer, backend: str) -> None:
    seen, crawls, client = _seen(redis_server, backend), RedisCrawls(redis_server.client(), "ingest"), \
        redis_server.client()
    assert seen.claim("adhoc", ["a", "b", "c"], owner="m1") == [True, True, True]
    seen.commit("adhoc", ["a", "b"])
    seen.release("adhoc", ["c"], owner="m1")  # cut by a page budget: not the crawl's any more
    info = crawls.get("adhoc")
    assert info is not None and (info["state"], info["discovered"], info["remaining"]) == ("running", 2, 2)
    if backend == "exact":
        assert seen.claim("adhoc", ["a"], owner="m1") == [False], "sent already"
    assert crawls.settle("adhoc") is None, "one of two chains still open"
    assert crawls.settle("adhoc") == "finished"
    assert crawls.settle("adhoc") is None, "reported once"
    info = crawls.get("adhoc")
    assert info is not None and info["state"] == "finished" and info["remaining"] == 0
    assert info["finished_at"] is not None and info["finished_at"] >= info["started_at"]
    set_key = "ingest:seen:adhoc" if backend == "exact" else "ingest:bloom:adhoc"
    for key in (set_key, crawl_key("ingest", "adhoc")):
        assert 0 < client.ttl(key) <= CRAWL_KEEP_S, key

    assert seen.claim("adhoc", ["d"], owner="m2") == [True]  # more URLs for the same crawl
    info = crawls.get("adhoc")
    assert info is not None and (info["state"], info["remaining"], info["finished_at"]) == ("running", 1, None)
    assert client.ttl(crawl_key("ingest", "adhoc")) == -1 and client.ttl(set_key) == -1, "kept again"


def test_a_scheduled_source_keeps_its_keys_when_a_round_drains(redis_server: RedisServer) -> None:
    RedisSchedule(redis_server.client(), "ingest").set("src", 900.0, due_at=1.0)
    seen, crawls = _seen(redis_server, "exact"), RedisCrawls(redis_server.client(), "ingest")
    assert seen.claim("src/20240101T000000", ["front"], owner="schedule") == [True]
    assert seen.claim("src", ["article"], owner="m") == [True]
    assert [crawls.settle("src"), crawls.settle("src")] == [None, "finished"]
    client = redis_server.client()
    assert client.ttl("ingest:seen:src") == -1 and client.ttl(crawl_key("ingest", "src")) == -1
    assert client.ttl("ingest:seen:src/20240101T000000") > 0, "its poll rounds still expire"


def test_a_cancelled_crawl_stays_cancelled_when_it_drains(redis_server: RedisServer) -> None:
    seen, crawls = _seen(redis_server, "exact"), RedisCrawls(redis_server.client(), "ingest")
    seen.claim("c", ["a"], owner="m")
    assert crawls.cancel("c") == "cancelled"
    assert crawls.settle("c") == "cancelled"
    info = crawls.get("c")
    assert info is not None and info["state"] == "cancelled" and info["finished_at"] is not None
    assert crawls.change("c", "cancel") == ("cancelled", False)
    with pytest.raises(ValueError, match="cannot be resumed"):
        crawls.resume("c")


def test_outcomes_count_as_progress_and_failures(redis_server: RedisServer) -> None:
    seen, crawls = _seen(redis_server, "exact"), RedisCrawls(redis_server.client(), "ingest")
    seen.claim("p", ["a", "b", "c", "d"], owner="m")
    for event in ("fetch.done", "fetch.done", "fetch.delayed", "fetch.http_error", "extract.dead", "sink.stored",
                  "sink.exists", "fetch.paused", "discover.done"):
        crawls.observe(event, "p", "the-source")
    crawls.observe("fetch.done", "unknown-crawl", None)
    info = crawls.get("p")
    assert info is not None
    assert (info["fetched"], info["stored"], info["failed"]) == (2, 1, 2), "a 404 and a dead letter failed"
    assert info["source"] == "the-source" and info["outcomes"]["fetch.delayed"] == 1
    assert crawls.get("unknown-crawl") is None, "outcomes do not make crawls"
    assert [c["crawl_id"] for c in crawls.recent()] == ["p"]


def test_a_chain_ended_twice_by_a_redelivery_ends_once(redis_server: RedisServer) -> None:
    """After a Redis restart or a kill, the message that ends a URL's chain can be handled twice;
    counted twice, the crawl would say finished while another URL's record was still on its way."""
    seen, crawls = _seen(redis_server, "exact"), RedisCrawls(redis_server.client(), "ingest")
    assert seen.claim("twice", ["a", "b"], owner="m1") == [True, True]
    seen.commit("twice", ["a", "b"])
    assert crawls.settle("twice", url_id="a", scope="twice") is None
    assert crawls.settle("twice", url_id="a", scope="twice", dead_event="fetch.dead") is None, "a redelivery"
    info = crawls.get("twice")
    assert info is not None and (info["state"], info["remaining"], info["failed"]) == ("running", 1, 0)
    assert crawls.settle("twice", url_id="b", scope="twice", dead_event="fetch.dead") == "finished"
    info = crawls.get("twice")
    assert info is not None and info["failed"] == 1
    assert seen.claim("twice", ["a"], owner="m1") == [False], "an ended chain is not claimable again"


def test_start_urls_past_the_kept_few_cost_no_round_trip(redis_server: RedisServer) -> None:
    """``ingest enqueue`` of a URL list makes every URL a start: the crawl keeps the first few for its
    status view, and the fetch workers stop asking Redis once those are kept (one call a page was
    2.4 round trips a page, with redeliveries, in bench/speed.py's Redis mode)."""
    seen, crawls, client = _seen(redis_server, "exact"), RedisCrawls(redis_server.client(), "ingest"), \
        redis_server.client()
    urls = [f"https://example.com/a/{i}" for i in range(MAX_STARTS + 30)]
    assert all(seen.claim("adhoc", urls, owner="m1"))
    seen.commit("adhoc", urls)

    def evalsha_calls() -> int:
        return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))

    for url in urls[:MAX_STARTS]:
        crawls.add_start("adhoc", url)
    before = evalsha_calls()
    for url in urls[MAX_STARTS:]:
        crawls.add_start("adhoc", url)
    assert evalsha_calls() - before <= 1, "once full, the kept starts are not asked for again"
    assert client.smembers(starts_key("ingest", "adhoc")) == {u.encode() for u in urls[:MAX_STARTS]}
