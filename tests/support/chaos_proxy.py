"""A TCP proxy on 127.0.0.1 that can take a service "off the network" without touching the service.

Killing a server to simulate an outage loses what it keeps in memory (moto's buckets) or tests a
restart rather than a network failure.  Put :class:`TcpProxy` in front of it instead and point the
workers at the proxy: :meth:`TcpProxy.down` closes the listening socket (new connections are
refused) and resets every open connection (RST, as a crashed host or a dropped route does);
:meth:`TcpProxy.up` listens again on the same port.  The service keeps running, with its data::

    with TcpProxy(upstream_port=6379) as proxy:
        env["INGEST_BROKER_URL"] = f"redis://127.0.0.1:{proxy.port}/0"
        ...
        proxy.down()
        time.sleep(20)
        proxy.up()

One thread accepts, two threads per connection pump bytes; that is plenty for the few hundred
connections a test cluster opens.  ``connections`` and ``resets`` count what happened, for figures.
"""

from __future__ import annotations

import socket
import struct
import threading
from contextlib import suppress
from types import TracebackType

__all__ = ["TcpProxy"]

_CHUNK = 256 * 1024


def _reset(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP RST instead of an orderly FIN (SO_LINGER with a zero timeout)."""
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with suppress(OSError):
        sock.close()


class TcpProxy:
    """Forward 127.0.0.1:``port`` to 127.0.0.1:``upstream_port``, with an on/off switch."""

    def __init__(self, upstream_port: int, *, port: int = 0, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self._lock = threading.Lock()
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._closed = False
        #: Connections accepted and forwarded, and connections cut by :meth:`down`.
        self.connections = 0
        self.resets = 0
        self.port = port
        self.up()

    @property
    def is_up(self) -> bool:
        """True while the proxy accepts and forwards connections."""
        return self._listener is not None

    def url(self, scheme: str, path: str = "") -> str:
        """``scheme://127.0.0.1:<port><path>``, e.g. ``url("redis", "/0")``."""
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def up(self) -> None:
        """Listen (again) on the proxy's port; a no-op when already up."""
        with self._lock:
            if self._listener is not None or self._closed:
                return
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(512)
            self.port = listener.getsockname()[1]
            self._listener = listener
            self._accepting = threading.Thread(target=self._accept, args=(listener,), name=f"proxy-{self.port}",
                                               daemon=True)
            self._accepting.start()

    def down(self) -> None:
        """Refuse new connections and reset every open one; the upstream service is not touched."""
        with self._lock:
            listener, self._listener = self._listener, None
            pairs, self._pairs = self._pairs, set()
        if listener is not None:
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for client, upstream in pairs:
            self.resets += 1
            _reset(client)
            _reset(upstream)
        if self._accepting is not None:
            self._accepting.join(5)

    def close(self) -> None:
        """Take the proxy down for good."""
        self.down()
        self._closed = True

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed: down()
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._listener is not listener:  # went down while connecting
                    _reset(client)
                    _reset(upstream)
                    return
                self._pairs.add((client, upstream))
                self.connections += 1
            pair = (client, upstream)
            threading.Thread(target=self._pump, args=(client, upstream, pair), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, pair), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, pair: tuple[socket.socket, socket.socket]) -> None:
        try:
            while True:
                data = src.recv(_CHUNK)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        # One side ended: end both (the other pump thread then sees its recv fail and returns).
        with self._lock:
            known = pair in self._pairs
            self._pairs.discard(pair)
        if known:
            for s in pair:
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with suppress(OSError):
                    s.close()
