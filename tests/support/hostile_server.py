"""A real HTTP server on 127.0.0.1 that misbehaves in every way a fetcher must survive.

Start it as a context manager; :meth:`HostileServer.url` builds URLs for its routes::

    with HostileServer() as server:
        fetch_page(client, server.url("/stall"), ...)

Routes (``GET`` only; query strings tune some of them):

=================================  ================================================================
``/html``                          a small UTF-8 article page with ETag ``"v1"`` and Last-Modified;
                                   304 when ``If-None-Match`` carries that ETag
``/slow?s=SECONDS``                waits, then answers ``/html``
``/stall``                         headers and a tenth of the promised body, then silence
``/trickle``                       a chunked body, one small chunk every 50 ms, for up to 30 s
``/retry-seconds``                 429 with ``Retry-After: 7``
``/retry-date``                    503 with ``Retry-After`` an HTTP-date two minutes ahead
``/flaky/<any>``                   500 on the first request for that path, then the page
``/status/<code>``                 that status, a short text body
``/loop-a``, ``/loop-b``           redirect to each other
``/chain/<n>``                     n redirects, then the page
``/redirect?to=URL``               302 to URL
``/to-metadata``                   302 to ``http://169.254.169.254/latest/meta-data/``
``/to-private``                    302 to ``http://private.test:<this port>/html``
``/big?length=0|1``                50 MB of generated HTML, with or without Content-Length
``/bomb``                          a chunked gzip bomb: 1 MB on the wire, 1 GiB inflated
``/gzip``, ``/deflate``,           the page compressed with gzip, zlib-deflate and raw deflate
``/raw-deflate``
``/brotli``                        claims ``Content-Encoding: br`` (which the fetcher never asks for)
``/file.html``                     a PDF, served as ``application/pdf``
``/no-type/html``, ``/no-type/bin``  no Content-Type: an HTML page, and PNG bytes
``/charset/<codec>/<mode>``        a page in cp1251, shift_jis or latin-1; mode ``right``, ``wrong``
                                   (header names another charset) or ``none`` (no charset)
``/reset``                         reads the request, then resets the connection
=================================  ================================================================
"""

from __future__ import annotations

import functools
import socket
import ssl
import struct
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["CHARSET_PAGES", "PAGE", "HostileServer", "charset_page", "gzip_bomb"]

PAGE = (
    b"<!DOCTYPE html><html><head><meta charset=utf-8><title>Harbour reopens</title></head>"
    b"<body><article><h1>Harbour reopens after storm</h1><p>The harbour reopened on Monday "
    b"after three days of gales, the port authority said. Ferries resume at noon.</p>"
    b"</article></body></html>"
)
ETAG = '"v1"'
LAST_MODIFIED = "Mon, 06 Jan 2025 08:00:00 GMT"
BIG_BYTES = 50 * 1024 * 1024
BOMB_INFLATED = 1 << 30

#: codec -> (charset label sent when right, label sent when wrong, article text)
CHARSET_PAGES: dict[str, tuple[str, str, str]] = {
    "cp1251": ("windows-1251", "iso-8859-1", "Новости дня: в порту снова ходят паромы."),
    "shift_jis": ("Shift_JIS", "utf-8", "今日のニュース：港の営業が再開されました。"),
    "latin1": ("ISO-8859-1", "utf-8", "Café du port: la façade rénovée, déjà ouverte à Noël."),
}


def charset_page(codec: str) -> bytes:
    """The page served under ``/charset/<codec>/…``, encoded in ``codec``."""
    label, _, text = CHARSET_PAGES[codec]
    page = (
        f'<!DOCTYPE html><html><head><meta charset="{label}"><title>{text[:12]}</title></head>'
        f"<body><article><p>{text}</p></article></body></html>"
    )
    return page.encode(codec)


@functools.cache
def gzip_bomb() -> bytes:
    """A valid gzip stream of 1 GiB of zeros in about 1 MB.

    Each 1 MiB block is compressed after a full flush, which resets the compressor's state, so
    every block compresses to the same bytes and is computed once; the trailer is fixed by hand.
    """
    block = bytes(1 << 20)
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    head = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    repeat = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = comp.flush()[:-8]  # final empty block; its CRC/size trailer covers only two blocks
    blocks = BOMB_INFLATED // len(block)
    crc = 0
    for _ in range(blocks):
        crc = zlib.crc32(block, crc)
    return head + repeat * (blocks - 1) + tail + struct.pack("<II", crc, BOMB_INFLATED & 0xFFFFFFFF)


def _big_html_chunks(total: int) -> Iterator[bytes]:
    """``total`` bytes of HTML, generated as it is sent."""
    head = b"<!DOCTYPE html><html><body>"
    yield head
    line = b"<p>" + b"filler " * 140 + b"</p>\n"
    sent = len(head)
    while sent < total:
        piece = line[: total - sent]
        sent += len(piece)
        yield piece


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: HostileServer, address: tuple[str, int], tls: ssl.SSLContext | None) -> None:
        self.owner = owner
        self.tls = tls
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        if self.tls is None:
            return sock, addr
        # The handshake happens on the first read, in the handler's thread, not in accept().
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The fetcher hangs up mid-body on purpose (too large, deadline); that is not an error.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle's algorithm and the
        # client's delayed ACK add 40 ms to many answers.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.owner.count_connection()

    # -- response helpers --------------------------------------------------------------------

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _html(self, body: bytes = PAGE, extra: dict[str, str] | None = None) -> None:
        self._send(200, body, {"Content-Type": "text/html; charset=utf-8", **(extra or {})})

    def _chunked(self, headers: dict[str, str], chunks: Iterable[bytes], pause: float = 0.0) -> None:
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        stop = self.server.owner.stopping
        for chunk in chunks:
            if pause and stop.wait(pause):
                return
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")

    def _redirect(self, location: str, status: int = 302) -> None:
        self._send(status, b"", {"Location": location})

    # -- routes --------------------------------------------------------------------------------

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
        owner = self.server.owner
        hits = owner.hit(path, dict(self.headers.items()))
        page_headers = {"ETag": ETAG, "Last-Modified": LAST_MODIFIED}

        if path == "/html":
            if self.headers.get("If-None-Match") == ETAG:
                self._send(304, b"", page_headers)
            else:
                self._html(PAGE, page_headers)
        elif path == "/slow":
            owner.stopping.wait(float(query.get("s", "1")))
            self._html()
        elif path == "/stall":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(PAGE) * 10))
            self.end_headers()
            self.wfile.write(PAGE)
            self.wfile.flush()
            owner.stopping.wait(30)
        elif path == "/trickle":
            chunks = (b"<p>drip</p>" for _ in range(600))
            self._chunked({"Content-Type": "text/html"}, chunks, pause=0.05)
        elif path == "/retry-seconds":
            self._send(429, b"slow down", {"Retry-After": "7", "Content-Type": "text/plain"})
        elif path == "/retry-date":
            when = formatdate(time.time() + 120, usegmt=True)
            self._send(503, b"maintenance", {"Retry-After": when, "Content-Type": "text/plain"})
        elif path.startswith("/flaky/"):
            if hits == 1:
                self._send(500, b"oops", {"Content-Type": "text/plain"})
            else:
                self._html()
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            self._send(code, f"status {code}".encode(), {"Content-Type": "text/plain"})
        elif path == "/loop-a":
            self._redirect("/loop-b")
        elif path == "/loop-b":
            self._redirect(owner.url("/loop-a"), 301)
        elif path.startswith("/chain/"):
            left = int(path.rsplit("/", 1)[1])
            if left > 0:
                self._redirect(f"/chain/{left - 1}")
            else:
                self._html()
        elif path == "/redirect":
            self._redirect(query["to"])
        elif path == "/to-metadata":
            self._redirect("http://169.254.169.254/latest/meta-data/")
        elif path == "/to-private":
            self._redirect(f"http://private.test:{owner.port}/html")
        elif path == "/big":
            headers = {"Content-Type": "text/html"}
            if query.get("length") == "1":
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(BIG_BYTES))
                self.end_headers()
                for piece in _big_html_chunks(BIG_BYTES):
                    self.wfile.write(piece)
            else:
                self._chunked(headers, _big_html_chunks(BIG_BYTES))
        elif path == "/bomb":
            # Chunked, so no Content-Length gives the size away up front.
            bomb = gzip_bomb()
            pieces = (bomb[i : i + 65536] for i in range(0, len(bomb), 65536))
            self._chunked({"Content-Type": "text/html", "Content-Encoding": "gzip"}, pieces)
        elif path in ("/gzip", "/deflate", "/raw-deflate"):
            wbits = {"/gzip": 31, "/deflate": 15, "/raw-deflate": -15}[path]
            comp = zlib.compressobj(6, zlib.DEFLATED, wbits)
            body = comp.compress(PAGE) + comp.flush()
            coding = "gzip" if path == "/gzip" else "deflate"
            self._send(200, body, {"Content-Type": "text/html", "Content-Encoding": coding})
        elif path == "/brotli":
            self._send(200, b"\x0b\x02\x80hello\x03", {"Content-Type": "text/html", "Content-Encoding": "br"})
        elif path == "/file.html":
            pdf = b"%PDF-1.4\n" + b"%\xe2\xe3\xcf\xd3\n" + b"1 0 obj << >> endobj\n" * 2000 + b"%%EOF\n"
            self._send(200, pdf, {"Content-Type": "application/pdf"})
        elif path == "/no-type/html":
            self._send(200, b"\n  " + PAGE)
        elif path == "/no-type/bin":
            self._send(200, b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
        elif path.startswith("/charset/"):
            _, _, codec, mode = path.split("/")
            right, wrong, _ = CHARSET_PAGES[codec]
            content_type = {"right": f"text/html; charset={right}", "wrong": f"text/html; charset={wrong}"}
            self._send(200, charset_page(codec), {"Content-Type": content_type.get(mode, "text/html")})
        elif path == "/reset":
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
        else:
            self._send(404, b"no such page", {"Content-Type": "text/plain"})


class HostileServer:
    """The server, its thread, and what it saw: hits per path, request headers, connections."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, certfile: str | None = None, keyfile: str | None = None
    ) -> None:
        self.host = host
        self._requested_port = port
        #: Server names clients asked for in TLS (SNI), in order.
        self.sni: list[str | None] = []
        self._tls: ssl.SSLContext | None = None
        if certfile is not None:
            self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._tls.load_cert_chain(certfile, keyfile)
            self._tls.sni_callback = self._record_sni
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self.hits: Counter[str] = Counter()
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.connections = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def _record_sni(self, sock: Any, name: str | None, ctx: ssl.SSLContext) -> None:
        with self._lock:
            self.sni.append(name)

    @property
    def port(self) -> int:
        """The port the server listens on (known once started)."""
        if self._server is None:
            raise RuntimeError("server not started")
        return int(self._server.server_address[1])

    def url(self, path: str, host: str | None = None) -> str:
        """An absolute URL of ``path`` on this server, optionally spelled with another host name."""
        host = host or (f"[{self.host}]" if ":" in self.host else self.host)
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def hit(self, path: str, headers: dict[str, str]) -> int:
        """Record a request; returns how many requests ``path`` has had, this one included."""
        with self._lock:
            self.hits[path] += 1
            self.requests.append((path, headers))
            return self.hits[path]

    def count_connection(self) -> None:
        """Record one accepted TCP connection."""
        with self._lock:
            self.connections += 1

    def start(self) -> HostileServer:
        """Bind and serve in a background thread."""
        self._server = _Server(self, (self.host, self._requested_port), self._tls)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release stalled handlers, stop serving, close the socket."""
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
