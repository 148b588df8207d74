"""Time-bounded calls in killable children: a page that holds the GIL in C cannot freeze the worker."""

from __future__ import annotations

import os
import re
import threading
import time

import pytest

from workers.core.bounded import BoundedPool, ChildCrashed, PageTimeout, PoolClosed, RemoteError


def backtrack(n: int) -> bool:
    """Catastrophic backtracking: C code holding the GIL for about 2**n steps."""
    return re.match(r"(a+)+$", "a" * n + "b") is not None


def double(x: int) -> int:
    """A well-behaved page."""
    return 2 * x


def boom(x: int) -> int:
    """A parser bug."""
    raise ValueError(f"bad page {x}")


def die(code: int) -> int:
    """A child killed under the parent (out of memory, say)."""
    os._exit(code)


def test_a_call_over_the_limit_is_killed_while_the_parent_keeps_running() -> None:
    pool = BoundedPool(1, time_limit_s=1.0)
    ticks = 0
    stop = threading.Event()

    def heartbeat() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.05)

    beat = threading.Thread(target=heartbeat)
    try:
        assert pool.run(double, 21) == 42
        beat.start()
        started = time.monotonic()
        with pytest.raises(PageTimeout, match="1 s per-page time limit"):
            pool.run(backtrack, 40)
        took = time.monotonic() - started
        stop.set()
        beat.join()
        assert took < 3, f"the call ended {took:.1f}s after it began"
        assert ticks >= 10, "the parent's threads ran during the hostile call (no GIL held here)"
        assert pool.run(double, 4) == 8, "a new child took the killed one's place"
        assert pool.timeouts == 1
    finally:
        pool.close()


def test_errors_and_crashes_in_the_child_are_reported_not_hung() -> None:
    pool = BoundedPool(2, time_limit_s=5.0)
    try:
        with pytest.raises(RemoteError, match="ValueError: bad page 3"):
            pool.run(boom, 3)
        with pytest.raises(ChildCrashed, match="exit code 7"):
            pool.run(die, 7)
        assert pool.run(double, 1) == 2
        assert PageTimeout.reason_code == "timeout" and ChildCrashed.reason_code == "crashed"
    finally:
        pool.close()


def _backtrack_in_thread(pool: BoundedPool) -> tuple[threading.Thread, list[BaseException]]:
    """A call that would run for a minute, started in a thread; what it raised lands in the list."""
    errors: list[BaseException] = []

    def call() -> None:
        try:
            pool.run(backtrack, 60)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=call)
    t.start()
    return t, errors


def test_closing_the_pool_ends_a_call_in_flight_at_once() -> None:
    pool = BoundedPool(1, time_limit_s=60.0)
    t, errors = _backtrack_in_thread(pool)
    time.sleep(1.0)
    started = time.monotonic()
    pool.close()
    t.join(10)
    assert not t.is_alive() and time.monotonic() - started < 5
    assert len(errors) == 1 and isinstance(errors[0], PoolClosed)
    with pytest.raises(PoolClosed):
        pool.run(double, 1)


def test_a_close_while_a_child_is_still_starting_ends_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a loaded machine a child can take seconds to start; a close in that moment must not miss
    it (the call would then run its page to the end, long after shutdown)."""
    import workers.core.bounded as bounded

    started = threading.Event()

    class SlowChild(bounded._Child):
        def __init__(self, ctx: object) -> None:
            started.set()
            time.sleep(1.5)
            super().__init__(ctx)

    monkeypatch.setattr(bounded, "_Child", SlowChild)
    pool = BoundedPool(1, time_limit_s=60.0)
    t, errors = _backtrack_in_thread(pool)
    assert started.wait(10)
    pool.close()  # while the child is being started
    t.join(10)
    alive = t.is_alive()
    if alive:  # do not leave a 60 s child behind
        with pool._lock:
            children = [*pool._busy]
        for child in children:
            child.kill()
        t.join(10)
    assert not alive, "the call outlived the pool"
    assert len(errors) == 1 and isinstance(errors[0], PoolClosed)


def test_a_child_killed_by_two_threads_at_once_closes_its_pipe_once() -> None:
    """The pool's close and the call it interrupts both kill the child; two closes of one pipe at
    once ended the call with ``OSError: Bad file descriptor`` instead of PoolClosed."""
    import multiprocessing

    from workers.core.bounded import _Child

    ctx = multiprocessing.get_context("forkserver")
    for _ in range(10):
        child = _Child(ctx)
        child.wait_ready()
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def kill(c: _Child = child, b: threading.Barrier = barrier, out: list[BaseException] = errors) -> None:
            b.wait()
            try:
                c.kill()
            except BaseException as exc:
                out.append(exc)

        threads = [threading.Thread(target=kill) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert errors == []
