"""The broker under ordinary faults: a Redis blip mid-message, delayed messages across an outage,
malformed envelopes.  A real redis-server (append-only file on) is stopped and started under a
live Dramatiq worker in this process; each test fails if a message is lost or a thread dies."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import orjson
import pytest
from dramatiq import Worker

from tests.conftest import RedisServer, free_port
from workers.core.broker import make_broker
from workers.core.deadletters import RedisDeadLetters, make_letter
from workers.core.settings import Settings


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server that keeps every write on disk, so a restart is an outage, not a data loss."""
    server = RedisServer(port=free_port(), directory=tmp_path, appendonly=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _broker(server: RedisServer, letters: list[dict[str, Any]] | None = None) -> dramatiq.Broker:
    import redis

    settings = Settings.from_env({}, broker_url=server.url)
    # Short socket timeouts: a stopped server is noticed in a second, as in production with keepalive.
    client = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=1, socket_connect_timeout=1)
    dead = RedisDeadLetters(server.client(), settings.namespace)

    def record(stage: str, message_id: str, letter: dict[str, Any]) -> None:
        if letters is not None:
            letters.append(letter)

    return make_broker(settings, redis_client=client, dead_letters=record if letters is not None else None,
                       dead_letter_store=dead)


def _run_worker(broker: dramatiq.Broker) -> Worker:
    worker = Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    return worker


def _blip(server: RedisServer, seconds: float) -> threading.Thread:
    def outage() -> None:
        server.stop()
        time.sleep(seconds)
        server.start()

    t = threading.Thread(target=outage)
    t.start()
    return t


def _wait(predicate: Any, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s")


def test_a_retry_whose_enqueue_meets_a_redis_outage_is_not_lost(aof_redis: RedisServer) -> None:
    broker = _broker(aof_redis)
    calls: list[int] = []
    outage: list[threading.Thread] = []

    @dramatiq.actor(queue_name="fetch", actor_name="flaky", broker=broker, max_retries=5, min_backoff=100,
                    max_backoff=200)
    def flaky(n: int) -> None:
        calls.append(n)
        if len(calls) == 1:
            # Redis goes away while this message is being handled, for longer than redis-py's own
            # reconnect attempts (10 tries, about 10 s): the retry cannot be enqueued.
            outage.append(_blip(aof_redis, 14))
            time.sleep(0.5)
            raise RuntimeError("first attempt fails")

    flaky.send(7)
    worker = _run_worker(broker)
    try:
        _wait(lambda: len(calls) >= 2, 45)
    finally:
        worker.stop(5_000)
        for t in outage:
            t.join()
    assert calls[:2] == [7, 7], "the failed message ran again once Redis was back"


def test_delayed_messages_held_by_a_live_worker_come_back_after_an_outage(aof_redis: RedisServer) -> None:
    broker = _broker(aof_redis)
    done: list[int] = []

    @dramatiq.actor(queue_name="fetch", actor_name="later", broker=broker)
    def later(n: int) -> None:
        done.append(n)

    worker = _run_worker(broker)
    try:
        for n in range(5):
            later.send_with_options(args=(n,), delay=3_000)
        client = aof_redis.client()
        _wait(lambda: sum(int(client.scard(k)) for k in client.keys("ingest:__acks__.*.fetch.DQ")) == 5, 10)
        _blip(aof_redis, 14).join()  # the worker holds them in memory while Redis is away
        recovered = _wait(lambda: sorted(done) == list(range(5)), 25)
    finally:
        worker.stop(5_000)
    print(f"delayed messages delivered {recovered:.1f}s after Redis came back")
    assert sorted(done) == list(range(5))


def _raw_envelope(queue: str, actor: str, redis_id: str | None) -> bytes:
    return orjson.dumps({
        "queue_name": queue, "actor_name": actor, "args": [1], "kwargs": {},
        "options": {"redis_message_id": redis_id} if redis_id else {},
        "message_id": str(uuid.uuid4()), "message_timestamp": int(time.time() * 1000),
    })


def test_envelopes_naming_no_queue_or_no_actor_are_dead_letters_and_no_thread_dies(aof_redis: RedisServer) -> None:
    letters: list[dict[str, Any]] = []
    broker = _broker(aof_redis, letters)
    done: list[int] = []

    @dramatiq.actor(queue_name="fetch", actor_name="ok", broker=broker)
    def ok(n: int) -> None:
        done.append(n)

    client = aof_redis.client()
    bad = [_raw_envelope("no-such-queue", "ok", "bad-0"), _raw_envelope("fetch", "no_such_actor", "bad-1"),
           _raw_envelope("fetch", "ok", None)]
    for i, body in enumerate(bad):
        mid = f"bad-{i}"
        client.hset("ingest:fetch.msgs", mid, body)
        client.rpush("ingest:fetch", mid)
    worker = _run_worker(broker)
    try:
        for n in range(6):
            ok.send(n)
        _wait(lambda: len(done) == 6 and len(letters) == 3, 15)
        threads = [t for t in worker.workers if t.is_alive()]
    finally:
        worker.stop(5_000)
    assert len(threads) == 2, "no worker thread died"
    errors = " | ".join(str(x["last_error"]["error"]) for x in letters)
    assert "names queue 'no-such-queue'" in errors and "no actor named 'no_such_actor'" in errors
    assert "no redis_message_id" in errors
    stored = RedisDeadLetters(client, "ingest").list()
    assert len(stored) == 3 and all(s["stage"] == "fetch" and s["reason"] == "poison" for s in stored)
    assert int(client.llen("ingest:fetch")) == 0 and not client.hlen("ingest:fetch.msgs")


def test_dead_letters_in_redis_never_expire_and_update_on_repeat(aof_redis: RedisServer) -> None:
    client = aof_redis.client()
    store = RedisDeadLetters(client, "ingest")
    store.add(make_letter(letter_id="m1", stage="sink", reason="retries_exhausted", error="first", message={},
                          attempts=1, at=100.0))
    store.add(make_letter(letter_id="m1", stage="sink", reason="retries_exhausted", error="second", message={},
                          attempts=3, at=200.0))
    letter = store.get("m1")
    assert letter is not None
    assert letter["first_error"]["error"] == "first" and letter["last_error"]["error"] == "second"
    assert letter["attempts"] == 3 and store.count() == 1
    assert client.ttl("ingest:dlq:letters") == -1 and client.ttl("ingest:dlq:index") == -1
    assert [x["id"] for x in store.list(older_than_s=10)] == ["m1"]
    assert store.remove(["m1", "m2"]) == 1 and store.count() == 0
