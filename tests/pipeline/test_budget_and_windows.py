"""Nothing lost at the edges: what the page budget cuts waits for the next poll, and a crash
between claiming and sending (enqueue, the scheduler, a discover message) loses no URL and no poll.

Real parts throughout: a redis-server of the test's own, the fixture site over HTTP on
127.0.0.1, the stage actors on a worker in this process; failures are injected into the send.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from dramatiq import Worker

import workers.pipeline.enqueue as enqueue_module
from tests.conftest import RedisServer
from tests.support.pipeline import load_records
from tests.support.site import Site, build_site, corpus_articles, serve_site
from workers.cli.crawls import crawl_lines
from workers.core.broker import make_broker
from workers.core.crawlstate import RedisCrawls
from workers.core.messages import fetch_task
from workers.core.middleware import InFlight
from workers.core.settings import Settings
from workers.core.storage import open_storage
from workers.core.urls import normalize_url, url_id
from workers.discover.frontier import MemorySeen, Seen, make_seen
from workers.discover.schedule import MemorySchedule, RedisSchedule, Schedule, poll_id
from workers.discover.scheduler import fire_due
from workers.pipeline.actors import declare_actors
from workers.pipeline.crawls import CrawlTracking
from workers.pipeline.enqueue import enqueue_urls
from workers.pipeline.runtime import Runtime, build_runtime
from workers.sources.registry import MemoryRegistry, RedisRegistry, Registry
from workers.sources.sourcefile import Source

#: Due time of the first poll round; later rounds one interval apart (poll ids follow from them).
FIRST_ROUND = 1_700_000_000.0
INTERVAL_S = 600.0


@contextmanager
def pipeline_on_redis(
    redis: RedisServer, out: Path, *, seen_backend: str = "exact"
) -> Iterator[tuple[Runtime, InFlight]]:
    """The four stage actors on a worker in this process, their shared state in ``redis``."""
    settings = Settings.from_env({}, storage_url=str(out), allow_private=True, host_rate=0.0,
                                 seen_backend=seen_backend)
    rt = build_runtime(settings, redis_client=redis.client())
    in_flight = InFlight()
    broker = make_broker(settings, in_flight=in_flight, dead_letters=rt.dead_letter)
    declare_actors(broker, rt)
    worker = Worker(broker, worker_threads=4, worker_timeout=100)
    worker.start()
    try:
        yield rt, in_flight
    finally:
        worker.stop(timeout=5_000)
        broker.close()
        rt.close()


def poll(rt: Runtime, in_flight: InFlight, source: Source, round_no: int) -> list[str]:
    """Make round ``round_no`` of ``source`` due, fire it as the scheduler does, wait until it is done."""
    due = FIRST_ROUND + round_no * INTERVAL_S
    rt.schedule.set(source.name, source.interval_s, due_at=due)
    fired = fire_due(rt.schedule, rt.sources, rt.send, rt.seen, now=due)
    assert in_flight.wait_idle(timeout=90), f"round {round_no} did not finish"
    return fired


def one_section_site(articles: int) -> Site:
    """A site whose /world/ page links ``articles`` articles (one page, no pagination needed)."""
    return build_site(corpus_articles(articles), sections=("world",), per_page=articles)


def budgeted_source(base_url: str, max_pages: int) -> Source:
    """Polls /world/ only (no listing hops), with a page budget of ``max_pages`` per poll."""
    return Source(name="fixture", start_urls=(base_url + "/world/",), kinds=("listing",),
                  allowed_hosts=("127.0.0.1",), interval_s=INTERVAL_S, max_depth=0, max_pages=max_pages)


def article_requests(requests: list[str], site: Site) -> list[str]:
    """The article pages among ``requests``."""
    paths = {a.path for a in site.articles}
    return [p for p in requests if p in paths]


# --- item 6: the page budget defers, it does not drop ---------------------------------------------


@pytest.mark.parametrize("backend", ["exact", "bloom"])
def test_what_the_page_budget_cuts_is_fetched_by_later_polls_and_never_twice(
    tmp_path: Path, redis_server: RedisServer, backend: str
) -> None:
    site = one_section_site(10)
    per_round: list[list[str]] = []
    with serve_site(site) as server, pipeline_on_redis(redis_server, tmp_path / "out", seen_backend=backend) as (
        rt, in_flight,
    ):
        source = budgeted_source(server.base_url, max_pages=4)
        rt.sources.put(source)
        for round_no in range(4):
            before = len(server.requests)
            assert poll(rt, in_flight, source, round_no) == ["fixture"]
            per_round.append(article_requests(server.request_paths()[before:], site))
    assert [len(r) for r in per_round] == [4, 4, 2, 0], "4 per poll, the cut waits for the next poll"
    fetched = Counter(p for r in per_round for p in r)
    assert set(fetched) == {a.path for a in site.articles}, "every article fetched in the end"
    assert set(fetched.values()) == {1}, "and none twice"
    records = load_records(open_storage(str(tmp_path / "out")))
    assert len(records) == len({r["url"] for r in records}) == 10


def test_a_discover_message_whose_send_fails_is_retried_and_its_urls_are_not_lost(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    site = one_section_site(6)
    per_round: list[list[str]] = []
    with serve_site(site) as server, pipeline_on_redis(redis_server, tmp_path / "out") as (rt, in_flight):
        source = budgeted_source(server.base_url, max_pages=4)
        rt.sources.put(source)
        rt.send = failing_once(rt.send, lambda stage, task: stage == "fetch" and task["kind"] == "article")
        for round_no in range(4):
            before = len(server.requests)
            poll(rt, in_flight, source, round_no)
            per_round.append(article_requests(server.request_paths()[before:], site))
    assert rt.outcomes["discover.done"] >= 4, "the failed discover message was retried and finished"
    fetched = Counter(p for r in per_round for p in r)
    assert set(fetched) == {a.path for a in site.articles}, "no article lost to the failed send"
    assert set(fetched.values()) == {1}
    assert all(len(r) <= 4 for r in per_round), "the budget held in every poll"


# --- item 10: send, then mark as sent --------------------------------------------------------------


def failing_once(send: Callable[..., None], when: Callable[..., bool]) -> Callable[..., None]:
    """``send``, except that its first call matching ``when`` raises as if Redis went away."""
    failed: list[bool] = []

    def flaky(*args: Any) -> None:
        if not failed and when(*args):
            failed.append(True)
            raise ConnectionError("Connection closed by server (injected)")
        send(*args)

    return flaky


def queued_urls(redis: RedisServer, queue: str = "fetch") -> list[str]:
    """The URLs of the tasks waiting on a Redis queue."""
    envelopes = redis.client().hvals(f"ingest:{queue}.msgs")
    return sorted(orjson.loads(e)["args"][0]["url"] for e in envelopes)


@pytest.mark.parametrize("backend", ["exact", "bloom"])
def test_enqueue_dying_between_claim_and_send_loses_no_url_when_run_again(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    settings = Settings.from_env({}, broker_url=redis_server.url, seen_backend=backend)
    urls = [normalize_url(f"https://news.example/world/story-{i}.html") for i in range(3)]
    lines = [(f"urls.txt:{i + 1}", u) for i, u in enumerate(urls)]
    monkeypatch.setattr(enqueue_module, "send_task", failing_once(
        enqueue_module.send_task, lambda broker, stage, task: task["url"] == urls[1]))
    with pytest.raises(ConnectionError):
        enqueue_urls(lines, settings, crawl_id="c1", redis_client=redis_server.client())
    assert queued_urls(redis_server) == urls[:1], "the first run sent one URL, then died"
    report = enqueue_urls(lines, settings, crawl_id="c1", redis_client=redis_server.client())
    assert queued_urls(redis_server) == urls, "the run again sent what the first did not, and nothing twice"
    assert (report.enqueued, report.duplicates) == (2, 1)
    again = enqueue_urls(lines, settings, crawl_id="c1", redis_client=redis_server.client())
    assert (again.enqueued, again.duplicates) == (0, 3), "a third run finds everything sent"


def test_a_repeated_line_is_still_a_duplicate(redis_server: RedisServer) -> None:
    settings = Settings.from_env({}, broker_url=redis_server.url)
    url = normalize_url("https://news.example/world/story.html")
    report = enqueue_urls([("a:1", url), ("a:2", url)], settings, crawl_id="c1", redis_client=redis_server.client())
    assert (report.enqueued, report.duplicates) == (1, 1)
    assert queued_urls(redis_server) == [url]


def scheduler_state(where: str, redis: RedisServer) -> tuple[Schedule, Registry, Seen]:
    """The schedule, sources and seen-sets of the embedded run (memory) or of the workers (Redis)."""
    if where == "memory":
        return MemorySchedule(), MemoryRegistry(), MemorySeen()
    client = redis.client()
    return RedisSchedule(client, "t"), RedisRegistry(client, "t"), make_seen(client, "t")


@pytest.mark.parametrize("where", ["memory", "redis"])
def test_a_poll_whose_send_fails_is_fired_on_the_next_tick_not_lost(redis_server: RedisServer, where: str) -> None:
    schedule, registry, seen = scheduler_state(where, redis_server)
    source = Source(name="news", start_urls=("https://news.example/", "https://news.example/feed/"),
                    kinds=("home", "feed"), interval_s=INTERVAL_S)
    registry.put(source)
    schedule.set("news", INTERVAL_S, due_at=FIRST_ROUND)
    sent: list[dict[str, Any]] = []
    send = failing_once(lambda stage, task: sent.append(task), lambda stage, task: task["kind"] == "feed")
    with pytest.raises(ConnectionError):
        fire_due(schedule, registry, send, seen, now=FIRST_ROUND)
    assert [t["kind"] for t in sent] == ["home"]
    assert fire_due(schedule, registry, send, seen, now=FIRST_ROUND + 1) == ["news"], "the round is still due"
    assert sorted((t["kind"], t["poll_id"]) for t in sent) == [("feed", poll_id(FIRST_ROUND)),
                                                                ("home", poll_id(FIRST_ROUND))]
    assert schedule.entries()["news"] == (FIRST_ROUND + INTERVAL_S, INTERVAL_S), "then rescheduled, once"
    assert fire_due(schedule, registry, send, seen, now=FIRST_ROUND + 2) == []
    assert len(sent) == 2, "each start page of the round sent once"


def test_a_once_only_source_whose_send_fails_still_fires(redis_server: RedisServer) -> None:
    client = redis_server.client()
    schedule, registry, seen = RedisSchedule(client, "t"), RedisRegistry(client, "t"), make_seen(client, "t")
    registry.put(Source(name="once", start_urls=("https://news.example/",), kinds=("home",), interval_s=0.0))
    schedule.set("once", 0.0, due_at=FIRST_ROUND)
    sent: list[dict[str, Any]] = []
    send = failing_once(lambda stage, task: sent.append(task), lambda stage, task: True)
    with pytest.raises(ConnectionError):
        fire_due(schedule, registry, send, seen, now=FIRST_ROUND)
    assert fire_due(schedule, registry, send, seen, now=FIRST_ROUND + 1) == ["once"]
    assert len(sent) == 1 and "once" not in schedule.entries(), "sent, then off the schedule"


def test_a_round_fired_again_after_a_crash_before_rescheduling_sends_nothing_twice(
    redis_server: RedisServer,
) -> None:
    client = redis_server.client()
    schedule, registry, seen = RedisSchedule(client, "t"), RedisRegistry(client, "t"), make_seen(client, "t")
    registry.put(Source(name="news", start_urls=("https://news.example/",), kinds=("home",), interval_s=INTERVAL_S))
    schedule.set("news", INTERVAL_S, due_at=FIRST_ROUND)
    sent: list[dict[str, Any]] = []

    class DiesBeforeRescheduling(RedisSchedule):
        def advance(self, name: str, due_at: float, now: float | None = None) -> bool:
            raise ConnectionError("Connection closed by server (injected)")

    with pytest.raises(ConnectionError):
        fire_due(DiesBeforeRescheduling(client, "t"), registry, lambda stage, task: sent.append(task), seen,
                 now=FIRST_ROUND)
    assert fire_due(schedule, registry, lambda stage, task: sent.append(task), seen, now=FIRST_ROUND + 1) == ["news"]
    assert len(sent) == 1, "the start page was sent once although the round fired twice"
    assert schedule.entries()["news"][0] == FIRST_ROUND + INTERVAL_S


def test_the_crawl_counts_the_links_its_page_budget_left_for_the_operator_to_see(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    site = one_section_site(10)
    with serve_site(site) as server, pipeline_on_redis(redis_server, tmp_path / "out") as (rt, in_flight):
        rt.observers.append(CrawlTracking(rt, redis_server.client()).observe)  # as the Redis workers count
        source = budgeted_source(server.base_url, max_pages=4)
        rt.sources.put(source)
        poll(rt, in_flight, source, 0)
    crawls = RedisCrawls(redis_server.client()).recent()
    assert len(crawls) == 1 and crawls[0]["fetched"] == 5, "the listing and four articles"
    assert crawls[0]["over_budget"] == 6, "the six links past the budget are counted, not only logged"
    assert any("page budget" in line and "6 links" in line for line in crawl_lines(crawls))


def test_a_start_url_sent_with_its_own_page_budget_is_cut_there(tmp_path: Path, redis_server: RedisServer) -> None:
    """``ingest enqueue --max-pages N`` (no source): the budget rides in the messages, as max_depth does."""
    site = one_section_site(10)
    with serve_site(site) as server, pipeline_on_redis(redis_server, tmp_path / "out") as (rt, in_flight):
        rt.observers.append(CrawlTracking(rt, redis_server.client()).observe)
        start = normalize_url(server.base_url + "/world/")
        assert rt.seen.claim("budget", [url_id(start)], owner="test") == [True]
        rt.send("fetch", fetch_task(crawl_id="budget", url=start, url_id=url_id(start), kind="listing", max_depth=0,
                                    allowed_hosts=["127.0.0.1"], max_pages=3))
        assert in_flight.wait_idle(timeout=90)
    assert len(load_records(open_storage(str(tmp_path / "out")))) == 3
    info = RedisCrawls(redis_server.client()).get("budget")
    assert info is not None and info["over_budget"] == 7
