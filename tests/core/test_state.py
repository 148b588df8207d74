"""Storage and shared state (seen-set, host slots) on real backends: folder, memory, S3, Redis."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.conftest import RedisServer, S3Server
from workers.core.storage import Storage, StorageError, deadletter_key, open_storage, raw_key, record_key
from workers.discover.frontier import MemorySeen, RedisSeen, Seen


def test_key_layout_groups_by_host_and_is_deterministic() -> None:
    uid = "ab" + "0" * 30
    assert record_key("news.example", uid) == f"articles/news.example/ab/{uid}.json"
    assert raw_key("news.example", uid, "f" * 64) == f"raw/news.example/ab/{uid}/{'f' * 32}.html"
    assert deadletter_key("fetch", "m1") == "deadletters/fetch/m1.json"


def _exercise(storage: Storage) -> None:
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


def test_local_folder_storage(tmp_path: Path) -> None:
    _exercise(open_storage(str(tmp_path / "out")))
    assert (tmp_path / "out" / "articles" / "h" / "1.json").read_bytes() == b"first"


def test_file_url_storage(tmp_path: Path) -> None:
    _exercise(open_storage(f"file://{tmp_path}/out2"))
    assert (tmp_path / "out2" / "articles" / "h" / "2.json").exists()


def test_memory_storage_is_shared_by_url() -> None:
    a = open_storage("memory://test-shared")
    _exercise(a)
    assert open_storage("memory://test-shared").get("articles/h/1.json") == b"first"
    assert not open_storage("memory://other").exists("articles/h/1.json")


def test_s3_storage_over_the_s3_protocol(s3_server: S3Server) -> None:
    _exercise(open_storage(f"s3://{s3_server.bucket}/archive", s3_endpoint=s3_server.endpoint))
    import boto3

    listed = boto3.client("s3", endpoint_url=s3_server.endpoint).list_objects_v2(Bucket=s3_server.bucket)
    assert sorted(o["Key"] for o in listed["Contents"]) == ["archive/articles/h/1.json", "archive/articles/h/2.json"]


@pytest.mark.parametrize("url", ["s3://", "gopher://x/y"])
def test_bad_storage_urls_are_refused(url: str) -> None:
    with pytest.raises(StorageError):
        open_storage(url)


def _claims(seen: Seen) -> None:
    assert seen.claim("c1", ["a", "b"], owner="m1") == [True, True]
    assert seen.claim("c1", ["a", "c"], owner="m2") == [False, True], "another owner does not get a seen URL"
    assert seen.claim("c1", ["a", "b"], owner="m1") == [True, True], "a redelivered message keeps its claims"
    assert seen.claim("c2", ["a"], owner="m2") == [True], "crawls are separate"
    assert seen.claim("c1", [], owner="m1") == []


def test_memory_seen() -> None:
    _claims(MemorySeen())


def test_redis_seen(redis_server: RedisServer) -> None:
    _claims(RedisSeen(redis_server.client(), "t"))


def test_redis_seen_under_concurrent_claimers(redis_server: RedisServer) -> None:
    seen = RedisSeen(redis_server.client(), "t")
    ids = [f"u{i}" for i in range(300)]
    wins: dict[str, list[str]] = {}
    lock = threading.Lock()

    def claimer(owner: str) -> None:
        got = seen.claim("c", ids, owner=owner)
        with lock:
            wins[owner] = [uid for uid, ok in zip(ids, got, strict=True) if ok]

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    owned = [uid for claimed in wins.values() for uid in claimed]
    assert sorted(owned) == sorted(ids), "every URL claimed by exactly one worker"


def test_bloom_seen_checks_then_marks(redis_server: RedisServer) -> None:
    from workers.discover.frontier import BloomSeen

    bloom = BloomSeen(redis_server.client(), "t", capacity=10_000, error_rate=0.001)
    ids = [f"{i:032x}" for i in range(2000)]
    assert bloom.claim("c", ids, owner="m1") == [True] * len(ids)
    assert bloom.claim("c", ids, owner="m1") == [True] * len(ids), "nothing is marked before commit"
    bloom.commit("c", ids[:1000])
    got = bloom.claim("c", ids, owner="m2")
    assert got[:1000] == [False] * 1000, "committed ids are seen (no false negatives)"
    false_positives = got[1000:].count(False)
    assert false_positives <= 10, f"{false_positives} false positives in 1000 at a 0.1% target"
    assert bloom.claim("other", ids[:5], owner="m1") == [True] * 5
    size = redis_server.client().strlen("t:bloom:c")
    assert size <= bloom.bits // 8 + 1 and bloom.bits < 200_000, "about 14 bits per URL of capacity"


def test_make_seen_follows_the_setting(redis_server: RedisServer) -> None:
    from workers.discover.frontier import BloomSeen, make_seen

    assert isinstance(make_seen(redis_server.client(), "t", "bloom"), BloomSeen)
    assert isinstance(make_seen(redis_server.client(), "t", "exact"), RedisSeen)
