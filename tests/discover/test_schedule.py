"""The recrawl schedule: a poll fires once per interval, however many workers tick, across restarts."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.conftest import RedisServer, free_port
from workers.discover.schedule import MemorySchedule, RedisSchedule, Schedule, poll_id


def _cadence(schedule: Schedule) -> None:
    schedule.set("a", 60, due_at=1000)
    schedule.set("b", 0, due_at=1030)  # interval 0: once
    assert schedule.claim_due(now=999) == []
    assert schedule.claim_due(now=1000) == [("a", 1000)]
    assert schedule.claim_due(now=1000) == [], "a claimed round is not handed out again"
    assert schedule.claim_due(now=1059) == [("b", 1030)]
    assert schedule.claim_due(now=1060) == [("a", 1060)]
    assert schedule.claim_due(now=5000) == [("a", 1120)], "a long outage fires once, not once per missed round"
    assert schedule.entries() == {"a": (5020, 60)}
    assert "b" not in schedule.entries()
    schedule.remove("a")
    assert schedule.claim_due(now=10**9) == []


def test_memory_schedule_cadence() -> None:
    _cadence(MemorySchedule())


def test_redis_schedule_cadence(redis_server: RedisServer) -> None:
    _cadence(RedisSchedule(redis_server.client(), "t"))


def test_poll_id_names_the_round() -> None:
    assert poll_id(0) == "19700101T000000"


def test_concurrent_claimers_share_each_round_exactly_once(redis_server: RedisServer) -> None:
    schedules = [RedisSchedule(redis_server.client(), "t") for _ in range(6)]
    for i in range(20):
        schedules[0].set(f"s{i}", 60, due_at=1000 + i)
    got: list[tuple[str, float]] = []
    lock = threading.Lock()

    def tick(schedule: RedisSchedule) -> None:
        for now in range(1000, 1200, 5):
            claimed = schedule.claim_due(now=now)
            with lock:
                got.extend(claimed)

    threads = [threading.Thread(target=tick, args=(s,)) for s in schedules]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == len(set(got)), "no round fired twice"
    # Each source due at 1000+i fires at 1000+i, +60, +120 within [1000, 1195].
    assert len(got) == sum(len(range(1000 + i, 1196, 60)) for i in range(20))


def test_the_schedule_survives_a_redis_restart_with_aof(tmp_path: Path) -> None:
    server = RedisServer(port=free_port(), directory=tmp_path, appendonly=True)
    server.start()
    try:
        RedisSchedule(server.client(), "t").set("news", 600, due_at=2000)
        RedisSchedule(server.client(), "t").claim_due(now=2000)
        server.stop()  # SIGKILL: no shutdown save
        server.start()
        assert RedisSchedule(server.client(), "t").entries() == {"news": (2600, 600)}
    finally:
        server.stop()


@pytest.mark.parametrize("interval", [60.0, 0.5])
def test_memory_schedule_next_due_keeps_cadence(interval: float) -> None:
    s = MemorySchedule()
    s.set("x", interval, due_at=100)
    s.claim_due(now=100 + interval * 3.5)
    assert s.entries()["x"][0] == pytest.approx(100 + interval * 4)


@pytest.mark.parametrize(("queues", "ticks"), [(["fetch"], False), (["discover"], True), (None, True)])
def test_scheduler_ticks_only_in_workers_that_consume_discover(queues: list[str] | None, ticks: bool) -> None:
    """A fleet of fetch workers must not all tick the schedule: only the discover consumers do."""
    import dramatiq
    from dramatiq.brokers.stub import StubBroker

    from workers.discover.frontier import MemorySeen
    from workers.discover.scheduler import SchedulerMiddleware
    from workers.sources.registry import MemoryRegistry

    broker = StubBroker()
    broker.declare_queue("fetch")
    broker.declare_queue("discover")
    middleware = SchedulerMiddleware(MemorySchedule(), MemoryRegistry(), lambda q, m: None, MemorySeen(), tick_s=60)
    worker = dramatiq.Worker(broker, queues=None if queues is None else set(queues), worker_threads=1)
    middleware.after_worker_boot(broker, worker)
    try:
        assert (middleware._thread is not None) is ticks
    finally:
        middleware.before_worker_shutdown(broker, worker)

