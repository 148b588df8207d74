"""URL shapes and the site memory of probe verdicts, in memory and in Redis."""

from __future__ import annotations

import pytest

from tests.conftest import RedisServer
from workers.discover.shapes import MemoryShapeMemory, RedisShapeMemory, ShapeMemory, learned_kind, url_shape


@pytest.mark.parametrize(
    ("url", "shape"),
    [
        ("https://n.example/2024/05/01/some-long-story", "/{n}/{n}/{n}/{slug}"),
        ("https://n.example/c/12345", "/c/{id}"),
        ("https://n.example/a/310013", "/a/{id}"),
        ("https://n.example/story.php?id=9", "/story.php?id={n}"),
        ("https://n.example/story-of-the-day-123456.html", "/{slug}-{id}.html"),
        ("https://n.example/news/articles/c0abc12def3", "/news/articles/{id}"),
        ("https://n.example/section/world/page/3.html", "/section/world/page/{n}.html"),
        ("https://n.example/index.php?cat=3&page=2", "/index.php?cat={n}&page={n}"),
        ("https://n.example/world/", "/world/"),
        ("https://n.example/", "/"),
    ],
)
def test_url_shapes_generalise_numbers_ids_and_slugs(url: str, shape: str) -> None:
    assert url_shape(url) == shape


def test_a_shape_is_learnt_after_enough_agreeing_verdicts() -> None:
    assert learned_kind({"article": 2}) is None
    assert learned_kind({"article": 3}) == "article"
    assert learned_kind({"listing": 9, "article": 1}) == "listing"
    assert learned_kind({"listing": 3, "article": 2}) is None
    assert learned_kind({"other": 5}) is None, "'other' pages are probed again"


def _exercise(memory: ShapeMemory) -> None:
    for _ in range(3):
        memory.record("n.example", "/c/{id}", "listing")
    memory.record("n.example", "/a/{id}", "article")
    memory.record("other.example", "/c/{id}", "article")
    assert memory.counts("n.example", ["/c/{id}", "/a/{id}", "/x"]) == {"/c/{id}": {"listing": 3},
                                                                         "/a/{id}": {"article": 1}}
    assert memory.counts("other.example", ["/c/{id}"]) == {"/c/{id}": {"article": 1}}
    for i in range(10):
        memory.record("full.example", f"/s{i}", "other")
    memory.record("full.example", "/s0", "other")
    known = memory.counts("full.example", [f"/s{i}" for i in range(10)])
    assert len(known) == 4 and known["/s0"] == {"other": 2}, "bounded: the first shapes stay, new ones are not kept"


def test_memory_twin_is_bounded_per_host() -> None:
    _exercise(MemoryShapeMemory(max_shapes=4))


def test_redis_memory_is_shared_bounded_and_expiring(redis_server: RedisServer) -> None:
    client = redis_server.client()
    _exercise(RedisShapeMemory(client, "t", max_shapes=4))
    assert RedisShapeMemory(client, "t").counts("n.example", ["/c/{id}"]) == {"/c/{id}": {"listing": 3}}
    assert 0 < client.ttl("t:shapes:n.example") <= 30 * 86400
