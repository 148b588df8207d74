"""Run one call in a forked child with a hard timeout, so a runaway regex fails a test instead of hanging it.

A regex that backtracks catastrophically holds the GIL inside C code: no thread, signal handler or
pytest-timeout can interrupt it.  Only another process can, so the call runs in a fork (which shares
the already imported modules, so it starts in milliseconds) and is killed when it overruns.
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["Outcome", "run_bounded"]


@dataclass(frozen=True)
class Outcome:
    """What one bounded call did: its result or exception, and how long it took in the child."""

    seconds: float
    value: Any = None
    error: str | None = None  #: ``"TypeName: message"`` when the call raised


def _child(conn: Connection, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    started = time.perf_counter()
    try:
        value = fn(*args)
    except BaseException as exc:  # report everything: the parent decides what is acceptable
        conn.send(
            Outcome(time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        )
    else:
        elapsed = time.perf_counter() - started
        try:
            conn.send(Outcome(elapsed, value=value))
        except Exception:  # an unpicklable result still says how long the call took
            conn.send(Outcome(elapsed, value=repr(value)))
    conn.close()


def run_bounded(fn: Callable[..., Any], *args: Any, timeout: float = 5.0) -> Outcome:
    """``fn(*args)`` in a forked child; raises ``TimeoutError`` (after killing it) past ``timeout`` s."""
    context = multiprocessing.get_context("fork")
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(child, fn, args), daemon=True)
    process.start()
    child.close()
    try:
        if not parent.poll(timeout):
            raise TimeoutError(f"{getattr(fn, '__name__', fn)} did not return within {timeout} s")
        outcome: Outcome = parent.recv()
        return outcome
    finally:
        parent.close()
        if process.is_alive():
            process.kill()
        process.join()
