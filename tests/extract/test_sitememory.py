"""Site memory: blocks that recur on a host's pages become that host's boilerplate, within bounds."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import RedisServer
from tests.support.seedpages import seed_pages
from workers.extract.sitememory import (
    MAX_BOILERPLATE_CHARS,
    MemorySiteMemory,
    RedisSiteMemory,
    SiteMemory,
    SiteRules,
    fingerprint,
    strip_recurring,
)

HOST = "news.example.org"
SUBSCRIBE = "Subscribe to our newsletter and get the day's top stories every morning"
LEGAL = "© 2026 Harbour Gazette. All rights reserved. Reproduction only with written permission"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _article_blocks() -> list[list[str]]:
    """Paragraphs of 18 pages: the 6 seed articles, then each again twice (a marker in the first paragraph)."""
    return [list(page.paragraphs) for marker in ("", "copy b", "copy c") for page in seed_pages(marker=marker)]


class Variant:
    """Makes site memories of one kind: in memory (``client`` None) or in one Redis server."""

    def __init__(self, client: Any | None) -> None:
        self.client: Any = client
        self._made = 0

    def __call__(self, rules: SiteRules | None = None) -> SiteMemory:
        if self.client is None:
            return MemorySiteMemory(rules)
        self._made += 1
        return RedisSiteMemory(self.client, f"t{self._made}", rules)


@pytest.fixture(params=["memory", "redis"])
def make_memory(request: pytest.FixtureRequest) -> Iterator[Variant]:
    """Each test below runs on both variants (Redis on its own server)."""
    if request.param == "memory":
        yield Variant(None)
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        yield Variant(server.client())


def test_fingerprint_ignores_case_whitespace_and_digits() -> None:
    assert fingerprint("Published 21.01.2025  by  Staff") == fingerprint("published 03.11.2024 by staff\n")
    assert fingerprint("Ｆｕｌｌ width") == fingerprint("full width"), "NFKC folds compatibility forms"
    assert fingerprint("Subscribe now") != fingerprint("Subscribe later")


def test_fingerprint_value_is_pinned() -> None:
    """Redis keeps fingerprints for weeks: a change of normalisation or hash would silently reset every host."""
    assert fingerprint("More From Naenara (En)") == "c20e032c66b2c420"


def test_shared_block_recurs_once_on_min_pages_and_min_share(make_memory: Variant) -> None:
    memory: SiteMemory = make_memory()
    articles = _article_blocks()
    answers = []
    for n, paragraphs in enumerate(articles[:5]):
        fps = [fingerprint(b) for b in [*paragraphs, SUBSCRIBE]]
        flags = memory.observe_and_check(HOST, f"page-{n}", fps)
        answers.append(flags[-1])
        assert not any(flags[:-1]), "article paragraphs of distinct articles never recur"
    assert answers == [False, False, True, True, True], "recurring from the 3rd page (min_pages=3)"
    assert memory.recurring(HOST, [fingerprint(SUBSCRIBE.upper())]) == [True]


def test_block_below_the_share_is_not_boilerplate(make_memory: Variant) -> None:
    memory: SiteMemory = make_memory()
    for n, paragraphs in enumerate(_article_blocks()[:10]):
        extra = [LEGAL] if n < 4 else []
        memory.observe(HOST, f"page-{n}", [fingerprint(b) for b in [*paragraphs, *extra]])
        on_four = memory.recurring(HOST, [fingerprint(LEGAL)])[0]
        assert on_four == (2 <= n <= 7), f"after page {n}: {min(n + 1, 4)} of {n + 1} pages"


def test_other_hosts_are_unaffected(make_memory: Variant) -> None:
    memory: SiteMemory = make_memory()
    for n in range(5):
        memory.observe(HOST, f"page-{n}", [fingerprint(SUBSCRIBE)])
    assert memory.recurring(HOST, [fingerprint(SUBSCRIBE)]) == [True]
    assert memory.recurring("other.example.net", [fingerprint(SUBSCRIBE)]) == [False]
    assert memory.observe_and_check("other.example.net", "page-0", [fingerprint(SUBSCRIBE)]) == [False]


def test_redelivered_page_is_counted_once(make_memory: Variant) -> None:
    memory: SiteMemory = make_memory()
    fps = [fingerprint(SUBSCRIBE), fingerprint(SUBSCRIBE)]  # twice on one page: still one page
    for _ in range(5):
        assert memory.observe_and_check(HOST, "page-0", fps) == [False, False]
    memory.observe(HOST, "page-1", fps)
    assert memory.recurring(HOST, fps) == [False, False], "2 distinct pages, below min_pages"
    memory.observe(HOST, "page-2", fps)
    assert memory.recurring(HOST, fps) == [True, True]


def test_strip_recurring_drops_shared_short_blocks_only(make_memory: Variant) -> None:
    memory: SiteMemory = make_memory()
    syndicated = "Syndicated statement. " * 25  # > 400 characters, on every page
    assert len(syndicated) > MAX_BOILERPLATE_CHARS
    results = []
    for n, paragraphs in enumerate(_article_blocks()[:4]):
        blocks = [*paragraphs, syndicated, SUBSCRIBE, "", LEGAL]
        results.append(strip_recurring(blocks, HOST, f"page-{n}", memory))
    assert [dropped for _, dropped in results] == [0, 0, 2, 2]
    kept, _ = results[3]
    assert SUBSCRIBE not in kept and LEGAL not in kept
    assert syndicated in kept, "long blocks are article text even when repeated"
    assert all(p in kept for p in _article_blocks()[3]), "no article paragraph lost"


def test_strip_recurring_never_drops_everything(make_memory: Variant) -> None:
    memory: SiteMemory = make_memory()
    for n in range(5):
        kept, dropped = strip_recurring([SUBSCRIBE, "  ", LEGAL], HOST, f"page-{n}", memory)
        assert (kept, dropped) == ([SUBSCRIBE, "  ", LEGAL], 0)
    # The memory did learn: a page with one more block loses the two shared ones.
    kept, dropped = strip_recurring([SUBSCRIBE, "A new paragraph of text.", LEGAL], HOST, "page-9", memory)
    assert (kept, dropped) == (["A new paragraph of text."], 2)


def test_block_count_per_host_is_bounded_and_boilerplate_survives(make_memory: Variant) -> None:
    memory: SiteMemory = make_memory(SiteRules(max_blocks=20, max_pages_remembered=5))
    for n, paragraphs in enumerate(_article_blocks()):
        memory.observe(HOST, f"page-{n}", [fingerprint(b) for b in [*paragraphs, SUBSCRIBE]])
    assert memory.recurring(HOST, [fingerprint(SUBSCRIBE)]) == [True], "the most frequent block is never evicted"
    if isinstance(memory, RedisSiteMemory):
        blocks, seen, count = memory.keys(HOST)
        client = make_memory.client
        assert client.zcard(blocks) == 20
        assert client.zcard(seen) == 5
        assert client.hget(count, "pages") == b"18"
        for key in (blocks, seen, count):
            assert 0 < client.ttl(key) <= 30 * 86400
    else:
        assert isinstance(memory, MemorySiteMemory)
        state = memory._hosts[HOST]
        assert len(state.blocks) == 20 and len(state.seen) == 5 and state.pages == 18


def test_forgotten_page_ids_are_the_oldest(make_memory: Variant) -> None:
    memory: SiteMemory = make_memory(SiteRules(max_pages_remembered=3, min_pages=2, min_share=0.01))
    for n in range(4):
        memory.observe(HOST, f"page-{n}", [fingerprint(f"block {chr(97 + n)}")])
    memory.observe(HOST, "page-3", [fingerprint(SUBSCRIBE)])  # still remembered: not counted
    memory.observe(HOST, "page-2", [fingerprint(SUBSCRIBE)])
    memory.observe(HOST, "page-1", [fingerprint(SUBSCRIBE)])
    memory.observe(HOST, "page-0", [fingerprint(SUBSCRIBE)])  # forgotten: counted again
    assert memory.recurring(HOST, [fingerprint(SUBSCRIBE)]) == [False], "only page-0 counted it (1 < 2)"
    memory.observe(HOST, "page-9", [fingerprint(SUBSCRIBE)])
    assert memory.recurring(HOST, [fingerprint(SUBSCRIBE)]) == [True], "page-0 and page-9"


def test_counts_decay_so_a_redesign_is_learnt(make_memory: Variant) -> None:
    memory: SiteMemory = make_memory(SiteRules(window=20))
    old_box, new_box = fingerprint("Old sidebar: most read"), fingerprint("New sidebar: trending now")
    for n in range(100):
        memory.observe(HOST, f"old-{n}", [old_box])
    learnt_after = None
    for n in range(40):
        memory.observe(HOST, f"new-{n}", [new_box])
        if learnt_after is None and memory.recurring(HOST, [new_box]) == [True]:
            learnt_after = n + 1
    assert learnt_after is not None and learnt_after <= 20, "without decay it would take 100 pages"
    assert memory.recurring(HOST, [old_box]) == [False], "the old box faded out"


def test_memory_variant_expires_idle_hosts() -> None:
    clock = Clock()
    memory = MemorySiteMemory(SiteRules(ttl_s=3600), clock=clock)
    for n in range(3):
        memory.observe(HOST, f"page-{n}", [fingerprint(SUBSCRIBE)])
    clock.now += 3599
    assert memory.recurring(HOST, [fingerprint(SUBSCRIBE)]) == [True]
    memory.observe("other.example.net", "p", [])
    clock.now += 1
    assert memory.hosts() == ["other.example.net"]
    assert memory.recurring(HOST, [fingerprint(SUBSCRIBE)]) == [False]
    assert memory.observe_and_check(HOST, "page-0", [fingerprint(SUBSCRIBE)]) == [False], "a fresh start"


def test_redis_keys_expire_after_the_ttl(redis_server: RedisServer) -> None:
    client = redis_server.client()
    memory = RedisSiteMemory(client, "t", SiteRules(ttl_s=600))
    memory.observe(HOST, "page-0", [fingerprint(SUBSCRIBE)])
    keys = memory.keys(HOST)
    assert all(k.startswith(f"t:sitemem:{HOST}:") for k in keys)
    assert sorted(k.decode() for k in client.keys("*")) == sorted(keys)
    assert all(0 < client.ttl(k) <= 600 for k in keys)
    memory.recurring(HOST, [fingerprint(SUBSCRIBE)])  # reading does not keep a host alive
    client.expire(keys[0], 5)
    memory.observe(HOST, "page-1", [])  # observing does
    assert all(client.ttl(k) > 5 for k in keys)


def test_memory_and_redis_agree(redis_server: RedisServer) -> None:
    """A long random run with tight bounds and decay gives identical answers in both variants."""
    rules = SiteRules(window=40, max_blocks=10, max_pages_remembered=30)
    memory, redis_memory = MemorySiteMemory(rules), RedisSiteMemory(redis_server.client(), "t", rules)
    rng = random.Random(5)
    # Letters, not numbers: digits are folded to 0, so "block 1" and "block 2" are one block.
    pool = [fingerprint(f"block {chr(97 + i // 26)}{chr(97 + i % 26)}") for i in range(80)]
    for step in range(500):
        host = rng.choice(["a.example", "b.example"])
        page = f"p{rng.randint(0, 60)}"
        # Four blocks on about half the pages, and a tail of rare ones that overflows max_blocks.
        fps = rng.sample(pool[:4], 2) + rng.sample(pool, rng.randint(0, 6))
        assert memory.observe_and_check(host, page, fps) == redis_memory.observe_and_check(host, page, fps), step
    assert any(memory.recurring("a.example", pool)), "the run exercised recurring blocks"
    client = redis_server.client()
    for host in ("a.example", "b.example"):
        # Same counts, same evictions (ties broken alike), same remembered pages in the same order.
        blocks, seen, count = redis_memory.keys(host)
        state = memory._hosts[host]
        assert {k.decode(): v for k, v in client.zrange(blocks, 0, -1, withscores=True)} == state.blocks
        assert [k.decode() for k in client.zrange(seen, 0, -1)] == list(state.seen)
        assert float(client.hget(count, "pages")) == state.pages


def test_concurrent_redelivery_counts_a_page_once(redis_server: RedisServer) -> None:
    memories = [RedisSiteMemory(redis_server.client(), "t") for _ in range(8)]
    start = threading.Barrier(len(memories))

    def deliver(memory: RedisSiteMemory, page: str) -> None:
        start.wait()
        memory.observe(HOST, page, [fingerprint(SUBSCRIBE)])

    threads = [threading.Thread(target=deliver, args=(m, f"page-{i % 2}")) for i, m in enumerate(memories)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client = redis_server.client()
    assert client.hget(f"t:sitemem:{HOST}:count", "pages") == b"2"
    assert client.zscore(f"t:sitemem:{HOST}:blocks", fingerprint(SUBSCRIBE)) == 2.0


def test_a_source_line_every_article_ends_with_is_kept() -> None:
    memory = MemorySiteMemory()
    topics = ["harbour", "ferries", "storm", "market", "school", "bridge", "forest", "election"]
    for i, topic in enumerate(topics):
        blocks = [f"This article says something entirely its own about the {topic} and nothing else.", "KCNA"]
        kept, dropped = strip_recurring(blocks, "kcna.example", f"page-{i}", memory)
        assert kept[-1] == "KCNA" and dropped == 0
