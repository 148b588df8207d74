"""Time-bounded calls: parse outside data in a child process that can be killed.

A page can make a parser run for minutes (a regex that backtracks, a 10 MB page of links) and,
in C code, hold the GIL all that time: no Python-level timeout can interrupt it, the worker's
heartbeats stop, and the broker hands the message to the next worker, which freezes too.  So the
stages that parse pages (discover, extract) run that work here: each call goes to an idle child
process and waits at most ``time_limit_s``; a call over it kills its child (a new one takes its
place on the next call) and raises :class:`PageTimeout`, which dead-letters the message.

Children start from a forkserver with the parsers already imported, so a replacement costs
milliseconds, and they ignore SIGINT: Ctrl-C stops the parent, which then closes the pool.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from workers.core.middleware import PoisonMessage

__all__ = ["BoundedPool", "ChildCrashed", "PageTimeout", "PoolClosed", "RemoteError"]

T = TypeVar("T")

class PageTimeout(PoisonMessage):
    """A page took longer than the per-page time limit; retrying it would only time out again."""

    reason_code = "timeout"


class ChildCrashed(PoisonMessage):
    """The child died handling the page (killed for memory, a crash in C): do not feed it again."""

    reason_code = "crashed"


class PoolClosed(RuntimeError):
    """The pool was closed (shutdown) while a call waited or ran: the message is retried later."""


class RemoteError(RuntimeError):
    """The function raised in the child; the message carries the child's traceback."""


def _serve(conn: Connection) -> None:
    """A child's loop: run each (function, args) received and send back the outcome."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn.send(_READY)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        fn, args = job
        try:
            conn.send((True, fn(*args)))
        except BaseException as exc:  # everything goes back to the parent, which decides
            conn.send((False, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


_READY = "ready"
#: How long a new child may take to start (the forkserver's first start imports the parsers, which
#: on a loaded machine takes seconds); not part of any page's time limit.
_START_TIMEOUT_S = 120.0


class _Child:
    def __init__(self, ctx: Any) -> None:
        self.conn, child_end = ctx.Pipe()
        self.process: BaseProcess = ctx.Process(target=_serve, args=(child_end,), daemon=True)
        self.process.start()
        child_end.close()
        self.ready = False
        self._kill_lock = threading.Lock()

    def wait_ready(self) -> None:
        """Block until the child runs its loop, so its start-up never counts against a page."""
        if self.ready:
            return
        if not self.conn.poll(_START_TIMEOUT_S) or self.conn.recv() != _READY:
            raise EOFError("the child did not start")
        self.ready = True

    def kill(self) -> None:
        # Both a closing pool and the call it interrupts kill the child: closing one pipe twice at
        # once makes the second os.close fail with EBADF, so one of them does it.
        with self._kill_lock:
            if self.process.is_alive():
                self.process.kill()
            self.process.join(5)
            self.conn.close()


class BoundedPool:
    """Up to ``size`` child processes running one time-limited call each (see the module docstring)."""

    def __init__(self, size: int, time_limit_s: float, preload: list[str] | None = None) -> None:
        if size < 1 or time_limit_s <= 0:
            raise ValueError("a bounded pool needs at least one process and a positive time limit")
        self.size = size
        self.time_limit_s = time_limit_s
        self._ctx = multiprocessing.get_context("forkserver")
        # The modules every child needs, imported once by the forkserver instead of by each child.
        self._ctx.set_forkserver_preload(preload or [])
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[_Child] = []
        self._busy: set[_Child] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.timeouts = 0
        self.crashes = 0

    def run(self, fn: Callable[..., T], *args: Any, time_limit_s: float | None = None) -> T:
        """``fn(*args)`` in a child, within the time limit; raises PageTimeout, ChildCrashed, RemoteError."""
        limit = self.time_limit_s if time_limit_s is None else time_limit_s
        with self._slots:
            child = self._take()
            try:
                child.wait_ready()
                child.conn.send((fn, args))
                ready = child.conn.poll(limit)
                if ready:
                    ok, payload = child.conn.recv()
            except (EOFError, OSError, BrokenPipeError):
                self._drop(child)
                if self._closed:
                    raise PoolClosed("the pool was closed during the call") from None
                self.crashes += 1
                raise ChildCrashed(f"the process handling the page died (exit code {child.process.exitcode})") from None
            if not ready:
                self._drop(child)
                if self._closed:
                    raise PoolClosed("the pool was closed during the call")
                self.timeouts += 1
                raise PageTimeout(f"took longer than the {limit:g} s per-page time limit")
            self._give_back(child)
        if not ok:
            raise RemoteError(payload)
        return payload  # type: ignore[no-any-return]

    def _take(self) -> _Child:
        with self._lock:
            if self._closed:
                raise PoolClosed("the pool is closed")
            child = self._idle.pop() if self._idle else None
        if child is None or not child.process.is_alive():
            child = _Child(self._ctx)
        with self._lock:
            # Starting a child can take seconds on a loaded machine: a close meanwhile never saw it.
            if not self._closed:
                self._busy.add(child)
                return child
        child.kill()
        raise PoolClosed("the pool was closed while its child started")

    def _give_back(self, child: _Child) -> None:
        with self._lock:
            self._busy.discard(child)
            if not self._closed:
                self._idle.append(child)
                return
        child.kill()

    def _drop(self, child: _Child) -> None:
        with self._lock:
            self._busy.discard(child)
        child.kill()

    def close(self) -> None:
        """Kill every child now, busy ones included; calls in flight raise PoolClosed."""
        with self._lock:
            self._closed = True
            children = [*self._idle, *self._busy]
            self._idle.clear()
        for child in children:
            child.kill()
