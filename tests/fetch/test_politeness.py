"""Per-host politeness: spacing, reservations, concurrency leases, back-off and latency, shared by workers.

Every behaviour test runs on both policies (in-process and on a real redis-server) with an injected
clock, so the numbers are exact; one test runs real threads on the real clock and checks only the
spacing invariant, which must hold however the threads interleave.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import RedisServer
from workers.fetch.politeness import (
    BUSY_WAIT_S,
    EWMA_ALPHA,
    HostPolicy,
    MemoryHostPolicy,
    Permit,
    RedisHostPolicy,
    after_response,
    plan_acquire,
)

Workers = Callable[..., list[HostPolicy]]


@pytest.fixture(params=["memory", "redis"])
def workers(request: pytest.FixtureRequest) -> Workers:
    """``workers(n, **options)``: n policy handles sharing one state (n Redis clients, or one object)."""
    server: RedisServer | None = request.getfixturevalue("redis_server") if request.param == "redis" else None

    def make(n: int = 1, **options: Any) -> list[HostPolicy]:
        if server is None:
            shared: HostPolicy = MemoryHostPolicy(**options)
            return [shared] * n
        ns = f"t{uuid.uuid4().hex[:8]}"
        return [RedisHostPolicy(server.client(), ns, **options) for _ in range(n)]

    return make


def test_waiters_get_distinct_increasing_slots(workers: Workers) -> None:
    a, b = workers(2)
    permits = [(a if i % 2 else b).acquire("h", interval_s=1.0, max_concurrency=10, now=100.0) for i in range(5)]
    assert permits[0].wait_s == 0 and permits[0].lease is not None
    assert [p.slot_at for p in permits[1:]] == [101.0, 102.0, 103.0, 104.0]
    assert [p.wait_s for p in permits[1:]] == [1.0, 2.0, 3.0, 4.0]
    assert all(p.lease is None for p in permits[1:]), "a waiter holds no concurrency lease"
    assert a.state("h", now=100.0)["next_send"] == 105.0
    assert a.acquire("other", interval_s=1.0, max_concurrency=10, now=100.0).wait_s == 0, "hosts are independent"


def test_concurrent_acquirers_get_one_go_and_distinct_slots(workers: Workers) -> None:
    handles = workers(8)
    permits: list[Permit] = []
    lock = threading.Lock()

    def ask(policy: HostPolicy) -> None:
        for _ in range(5):
            p = policy.acquire("h", interval_s=0.5, max_concurrency=50, now=10.0)
            with lock:
                permits.append(p)

    threads = [threading.Thread(target=ask, args=(h,)) for h in handles]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(p.wait_s == 0 for p in permits) == 1
    slots = sorted(p.slot_at for p in permits if p.slot_at is not None)
    assert slots == [10.0 + 0.5 * i for i in range(1, 40)], "39 waiters, 39 distinct slots, no gaps"


def test_holder_goes_at_its_slot_and_waits_when_early(workers: Workers) -> None:
    (p,) = workers()
    p.acquire("h", interval_s=1.0, max_concurrency=10, now=100.0)
    held = p.acquire("h", interval_s=1.0, max_concurrency=10, now=100.0)
    assert held.slot_at == 101.0
    early = p.acquire("h", interval_s=1.0, max_concurrency=10, slot_at=101.0, now=100.75)
    assert early.slot_at == 101.0 and early.wait_s == 0.25, "early: same slot, wait the rest"
    assert p.state("h", now=100.75)["next_slot"] == 102.0, "coming back early reserves nothing new"
    on_time = p.acquire("h", interval_s=1.0, max_concurrency=10, slot_at=101.0, now=101.0)
    assert on_time.wait_s == 0 and on_time.lease is not None


def test_a_late_send_pushes_the_next_holder_not_the_spacing(workers: Workers) -> None:
    (p,) = workers()
    p.acquire("h", interval_s=1.0, max_concurrency=10, now=100.0)
    first = p.acquire("h", interval_s=1.0, max_concurrency=10, now=100.0)
    second = p.acquire("h", interval_s=1.0, max_concurrency=10, now=100.0)
    late = p.acquire("h", interval_s=1.0, max_concurrency=10, slot_at=first.slot_at, now=101.75)
    assert late.wait_s == 0, "a late holder still goes"
    on_time = p.acquire("h", interval_s=1.0, max_concurrency=10, slot_at=second.slot_at, now=102.0)
    assert on_time.wait_s == 0.75 and on_time.slot_at == 102.0, "waits for last send + interval"
    go = p.acquire("h", interval_s=1.0, max_concurrency=10, slot_at=on_time.slot_at, now=102.75)
    assert go.wait_s == 0
    assert go.at - late.at >= 1.0


def test_new_caller_never_jumps_the_waiters(workers: Workers) -> None:
    (p,) = workers()
    p.acquire("h", interval_s=1.0, max_concurrency=10, now=100.0)
    p.acquire("h", interval_s=1.0, max_concurrency=10, now=100.0)
    newcomer = p.acquire("h", interval_s=1.0, max_concurrency=10, now=101.5)
    assert newcomer.slot_at == 102.0, "slot 101 is promised to a waiter even after its time has come"


def test_concurrency_cap_and_release(workers: Workers) -> None:
    a, b = workers(2)
    one = a.acquire("h", interval_s=0.0, max_concurrency=2, now=100.0)
    two = b.acquire("h", interval_s=0.0, max_concurrency=2, now=100.0)
    assert one.wait_s == two.wait_s == 0 and one.lease != two.lease
    full = a.acquire("h", interval_s=0.0, max_concurrency=2, now=100.0)
    assert full.wait_s == pytest.approx(BUSY_WAIT_S) and full.lease is None
    assert b.state("h", now=100.0)["in_flight"] == 2
    assert one.lease is not None
    b.release("h", one.lease, latency_s=0.05, status=200, retry_after_s=None, now=100.05)
    assert a.state("h", now=100.05)["in_flight"] == 1
    back = a.acquire("h", interval_s=0.0, max_concurrency=2, slot_at=full.slot_at, now=100.1)
    assert back.wait_s == 0 and back.lease is not None


def test_concurrency_refusal_waits_for_the_slow_server(workers: Workers) -> None:
    (p,) = workers()
    first = p.acquire("h", interval_s=0.0, max_concurrency=1, now=100.0)
    assert first.lease is not None
    p.release("h", first.lease, latency_s=0.8, status=200, retry_after_s=None, now=100.8)
    p.acquire("h", interval_s=0.0, max_concurrency=1, now=101.0)
    refused = p.acquire("h", interval_s=0.0, max_concurrency=1, now=101.0)
    assert refused.wait_s == pytest.approx(0.8), "come back after about one response time"


def test_leases_of_dead_workers_expire(workers: Workers) -> None:
    (p,) = workers(lease_ttl_s=10.0)
    assert p.acquire("h", interval_s=0.0, max_concurrency=1, now=100.0).wait_s == 0  # never released
    assert p.acquire("h", interval_s=0.0, max_concurrency=1, now=109.0).wait_s > 0
    assert p.state("h", now=110.0)["in_flight"] == 0
    assert p.acquire("h", interval_s=0.0, max_concurrency=1, now=110.0).wait_s == 0


def test_retry_after_pushes_every_workers_next_send(workers: Workers) -> None:
    a, b = workers(2)
    sent = a.acquire("h", interval_s=1.0, max_concurrency=10, now=100.0)
    held = [b.acquire("h", interval_s=1.0, max_concurrency=10, now=100.0) for _ in range(3)]
    a.release("h", sent.lease, latency_s=0.1, status=429, retry_after_s=30.0, now=100.25)
    fresh = b.acquire("h", interval_s=1.0, max_concurrency=10, now=100.5)
    assert fresh.slot_at == 130.25, "no worker sends before the Retry-After"
    later = [b.acquire("h", interval_s=1.0, max_concurrency=10, slot_at=h.slot_at, now=h.slot_at) for h in held]
    slots = [p.slot_at for p in [fresh, *later]]
    assert all(s is not None and s >= 130.25 for s in slots)
    assert len(set(slots)) == 4, "the pushed waiters line up instead of all waking at 130.25"
    assert b.acquire("h", interval_s=1.0, max_concurrency=10, slot_at=130.25, now=130.25).wait_s == 0


def test_retry_after_is_capped(workers: Workers) -> None:
    (p,) = workers(max_penalty_s=60.0)
    p.release("h", None, latency_s=None, status=503, retry_after_s=86_400.0, now=100.0)
    assert p.state("h", now=100.0)["blocked_until"] == 160.0


def test_penalty_doubles_to_its_cap_and_halves_on_success(workers: Workers) -> None:
    (p,) = workers(max_penalty_s=20.0)
    p.acquire("h", interval_s=0.5, max_concurrency=10, now=0.0)
    penalties = []
    for status in (429, 503, 429, 429, 429, 429):
        p.release("h", None, latency_s=0.1, status=status, retry_after_s=None, now=1.0)
        penalties.append(p.state("h", now=1.0)["penalty_s"])
    assert penalties == [1.0, 2.0, 4.0, 8.0, 16.0, 20.0]
    assert p.acquire("h", interval_s=0.5, max_concurrency=10, now=100.0).interval_s == 20.0
    p.release("h", None, latency_s=0.1, status=500, retry_after_s=None, now=100.0)
    assert p.state("h", now=100.0)["penalty_s"] == 20.0, "other 5xx leave the penalty alone"
    decayed = []
    for status in (200, 404, 200, 304, 200, 200):
        p.release("h", None, latency_s=0.1, status=status, retry_after_s=None, now=100.0)
        decayed.append(p.state("h", now=100.0)["penalty_s"])
    assert decayed == [10.0, 5.0, 2.5, 1.25, 0.0, 0.0]
    assert p.acquire("h", interval_s=0.5, max_concurrency=10, now=200.0).interval_s == 0.5


def test_first_penalty_is_twice_a_slow_rate(workers: Workers) -> None:
    (p,) = workers()
    p.acquire("h", interval_s=5.0, max_concurrency=1, now=0.0)
    p.release("h", None, latency_s=None, status=429, retry_after_s=None, now=1.0)
    assert p.state("h", now=1.0)["penalty_s"] == 10.0


def test_penalty_spaces_the_next_send(workers: Workers) -> None:
    (p,) = workers()
    go = p.acquire("h", interval_s=0.5, max_concurrency=10, now=100.0)
    p.release("h", go.lease, latency_s=0.1, status=429, retry_after_s=None, now=100.2)
    nxt = p.acquire("h", interval_s=0.5, max_concurrency=10, now=100.6)
    assert nxt.interval_s == 1.0 and nxt.slot_at == 101.0


def test_latency_ewma_raises_the_interval_of_a_slow_host(workers: Workers) -> None:
    (p,) = workers(slow_latency_s=1.0)
    p.release("h", None, latency_s=0.5, status=200, retry_after_s=None, now=0.0)
    assert p.state("h", now=0.0)["ewma_latency_s"] == 0.5
    assert p.acquire("h", interval_s=0.25, max_concurrency=10, now=1.0).interval_s == 0.25, "fast enough"
    for _ in range(4):
        p.release("h", None, latency_s=4.0, status=200, retry_after_s=None, now=1.0)
    ewma = p.state("h", now=1.0)["ewma_latency_s"]
    keep = 1 - EWMA_ALPHA
    assert ewma == pytest.approx(0.5 * keep**4 + 4.0 * (1 - keep**4))
    slow = p.acquire("h", interval_s=0.25, max_concurrency=10, now=10.0)
    assert slow.interval_s == ewma
    assert p.acquire("h", interval_s=0.25, max_concurrency=10, now=10.0).slot_at == 10.0 + ewma
    for _ in range(20):
        p.release("h", None, latency_s=0.1, status=200, retry_after_s=None, now=10.0)
    assert p.acquire("h", interval_s=0.25, max_concurrency=10, now=100.0).interval_s == 0.25, "recovers"


def test_crawl_delay_is_just_a_longer_interval(workers: Workers) -> None:
    (p,) = workers()
    crawl_delay, rate_interval = 10.0, 0.5
    p.acquire("h", interval_s=max(rate_interval, crawl_delay), max_concurrency=10, now=0.0)
    assert p.acquire("h", interval_s=max(rate_interval, crawl_delay), max_concurrency=10, now=1.0).slot_at == 10.0


def test_bad_arguments_are_refused(workers: Workers) -> None:
    (p,) = workers()
    with pytest.raises(ValueError, match="max_concurrency"):
        p.acquire("h", interval_s=1.0, max_concurrency=0)
    with pytest.raises(ValueError, match="interval_s"):
        p.acquire("h", interval_s=float("nan"), max_concurrency=1)


def test_sends_stay_spaced_under_real_threads_and_late_wakes(workers: Workers) -> None:
    """Eight workers, each sleeping out its wait (plus random lateness) as a delayed message would."""
    interval, per_worker = 0.02, 5
    handles = workers(8)
    sends: list[float] = []
    lock = threading.Lock()

    def work(policy: HostPolicy, seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(per_worker):
            slot: float | None = None
            while True:
                permit = policy.acquire("h", interval_s=interval, max_concurrency=3, slot_at=slot)
                if permit.wait_s == 0:
                    break
                slot = permit.slot_at
                time.sleep(permit.wait_s + rng.uniform(0, 0.01))
            with lock:
                sends.append(permit.at)
            time.sleep(rng.uniform(0, 0.005))
            policy.release("h", permit.lease, latency_s=0.005, status=200, retry_after_s=None)

    threads = [threading.Thread(target=work, args=(h, i)) for i, h in enumerate(handles)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    sends.sort()
    assert len(sends) == 8 * per_worker
    gaps = [b - a for a, b in itertools.pairwise(sends)]
    assert min(gaps) >= interval - 1e-9, f"two sends {min(gaps):.4f}s apart"
    assert handles[0].state("h")["in_flight"] == 0


def test_redis_state_lives_in_expiring_keys(redis_server: RedisServer) -> None:
    client = redis_server.client()
    p = RedisHostPolicy(client, "t", lease_ttl_s=30.0)
    p.acquire("news.example", interval_s=30.0, max_concurrency=2)
    assert 0 < client.pttl("t:host:{news.example}") <= (6 * 3600 + 30) * 1000, "idle life after the last reservation"
    assert 0 < client.pttl("t:leases:{news.example}") <= 90_000
    waiting = p.acquire("news.example", interval_s=30.0, max_concurrency=2)
    assert 25.0 < waiting.wait_s <= 30.0, "the server's clock, in seconds"


# --- The Memory and Redis policies are the same machine: random histories give identical answers. ---

_op = st.one_of(
    st.tuples(st.just("acquire"), st.sampled_from([0.0, 0.1, 0.5, 1.0, 3.0, 50.0]),
              st.sampled_from([0.0, 0.5, 1.0, 2.5]), st.integers(1, 3), st.integers(-1, 4)),
    st.tuples(st.just("release"), st.sampled_from([0.0, 0.2, 1.0]), st.integers(-1, 4),
              st.sampled_from([None, 0.05, 1.5, 6.0]), st.sampled_from([None, 200, 404, 429, 500, 503]),
              st.sampled_from([None, 0.0, 2.0, 5000.0])),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(_op, min_size=1, max_size=25))
def test_memory_and_redis_policies_agree(redis_server: RedisServer, ops: list[tuple[Any, ...]]) -> None:
    mem = MemoryHostPolicy(lease_ttl_s=20.0, slow_latency_s=1.0, max_penalty_s=100.0)
    red = RedisHostPolicy(redis_server.client(), f"d{uuid.uuid4().hex[:8]}", lease_ttl_s=20.0, slow_latency_s=1.0,
                          max_penalty_s=100.0)
    now = 1000.0
    held: list[float] = []
    leases: list[tuple[str, str]] = []
    for op in ops:
        now += op[1]
        if op[0] == "acquire":
            _, _, interval, cap, pick = op
            slot = held.pop(pick % len(held)) if held and pick >= 0 else None
            m, r = (pol.acquire("h", interval_s=interval, max_concurrency=cap, slot_at=slot, now=now)
                    for pol in (mem, red))
            assert (m.wait_s, m.slot_at, m.interval_s, m.at) == (r.wait_s, r.slot_at, r.interval_s, r.at)
            assert (m.lease is None) == (r.lease is None)
            if m.slot_at is not None:
                held.append(m.slot_at)
            if m.lease is not None and r.lease is not None:
                leases.append((m.lease, r.lease))
        else:
            _, _, pick, latency, status, retry_after = op
            ml, rl = leases.pop(pick % len(leases)) if leases and pick >= 0 else (None, None)
            mem.release("h", ml, latency_s=latency, status=status, retry_after_s=retry_after, now=now)
            red.release("h", rl, latency_s=latency, status=status, retry_after_s=retry_after, now=now)
        assert mem.state("h", now=now) == red.state("h", now=now)


def test_pure_rules_need_no_store() -> None:
    from workers.fetch.politeness import HostState, PolicyRules

    rules = PolicyRules()
    state, come_back, slot, eff = plan_acquire(HostState(), rules, now=5.0, interval_s=2.0, max_concurrency=1,
                                               in_flight=0, slot_at=None)
    assert (come_back, slot, eff, state.last_send, state.next_slot) == (None, None, 2.0, 5.0, 7.0)
    state = after_response(state, rules, now=5.5, latency_s=0.3, status=503, retry_after_s=4.0)
    assert (state.penalty_s, state.blocked_until, state.ewma_s) == (4.0, 9.5, 0.3)
    _, come_back, slot, eff = plan_acquire(state, rules, now=6.0, interval_s=2.0, max_concurrency=1,
                                           in_flight=0, slot_at=None)
    assert (come_back, slot, eff) == (9.5, 9.5, 4.0)


def test_one_stalled_answer_does_not_make_a_fast_host_slow(workers: Workers) -> None:
    """A single read timeout among fast answers is an outlier: were the host called slow at once,
    every fetch queued for it would reserve slots seconds apart and keep that pace long after."""
    (p,) = workers(slow_latency_s=1.0)
    for _ in range(20):
        p.release("h", None, latency_s=0.05, status=200, retry_after_s=None, now=1.0)
    p.release("h", None, latency_s=5.0, status=None, retry_after_s=None, now=1.0)
    assert p.acquire("h", interval_s=0.0, max_concurrency=10, now=2.0).interval_s == 0.0
    for _ in range(6):  # but a host that keeps answering slowly is slow
        p.release("h", None, latency_s=5.0, status=200, retry_after_s=None, now=2.0)
    assert p.acquire("h", interval_s=0.0, max_concurrency=10, now=3.0).interval_s > 1.0
