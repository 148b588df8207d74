"""The benchmarks' local news site: corpus pages written to a folder and served by a fast static server.

``write_site`` builds it from the dev corpora (``tests.support.site``: unique articles, a front
page, paginated section listings, robots.txt naming a sitemap of every article); ``static_server``
serves the folder from nginx when it is installed, else from Python processes on one
SO_REUSEPORT socket, in processes of their own so that the server's CPU is not counted.  Used by
``bench/speed.py`` and ``bench/memory_run.py``.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.site import build_site, corpus_articles  # noqa: E402


@dataclass
class StaticSite:
    """A site written to ``root`` (one file per path), its article URLs and page bodies."""

    root: Path
    article_paths: list[str]
    bodies: list[bytes]
    listings: int


def write_site(pages: int, origin: str, root: Path) -> StaticSite:
    """Write the front page, listings, articles, robots.txt and a sitemap of every article."""
    specs = corpus_articles(pages, unique_marker=True)
    site = build_site(specs, per_page=20)
    files: dict[str, bytes] = {path: body for path, (body, _) in site.pages.items()}
    files["/index.html"] = files["/"]
    files["/robots.txt"] = f"User-agent: *\nAllow: /\nSitemap: {origin}/sitemap.xml\n".encode()
    entries = "".join(f"<url><loc>{origin}{a.path}</loc></url>" for a in site.articles)
    files["/sitemap.xml"] = (f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns='
                             f'"http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>\n').encode()
    for path, body in files.items():
        target = root / unquote(path).lstrip("/")
        if path.endswith("/"):
            target = target / "index.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
    return StaticSite(root, [a.path for a in site.articles], [a.html for a in site.articles], len(site.listing_paths))


@contextmanager
def static_server(root: Path, port: int, workers: int, choice: str = "auto") -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1:``port`` with nginx, else Python processes; yields which one."""
    nginx = None if choice == "python" else shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None)
    if choice == "nginx" and not nginx:
        raise SystemExit("--server nginx: nginx not found (apt-get install nginx-light)")
    procs_mp: list[multiprocessing.process.BaseProcess] = []
    if nginx:
        conf = root.parent / "nginx.conf"
        conf.write_text(
            f"worker_processes {workers};\ndaemon off;\npid {root.parent}/nginx.pid;\n"
            f"error_log {root.parent}/nginx-error.log warn;\nevents {{ worker_connections 1024; }}\n"
            f"http {{ access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;\n"
            f"  types {{ text/html html; application/xml xml; text/plain txt; }} default_type text/html;\n"
            f"  client_body_temp_path {root.parent}/tmp; proxy_temp_path {root.parent}/tmp;\n"
            f"  fastcgi_temp_path {root.parent}/tmp; uwsgi_temp_path {root.parent}/tmp;\n"
            f"  scgi_temp_path {root.parent}/tmp;\n"
            f"  server {{ listen 127.0.0.1:{port}; root {root}; index index.html; }} }}\n")
        (root.parent / "tmp").mkdir(exist_ok=True)
        proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(root.parent)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True)
        kind = f"nginx ({subprocess.run([nginx, '-v'], capture_output=True, text=True).stderr.strip()}, " \
               f"{workers} worker processes)"
        procs = [proc]
    else:
        why = "as asked (--server python)" if choice == "python" else \
            "nginx not found (apt-get install nginx-light for the reference figures)"
        print(f"static server: {why}; serving with {workers} Python processes on one SO_REUSEPORT socket",
              flush=True)
        ctx = multiprocessing.get_context("fork")
        procs_mp += [ctx.Process(target=_py_serve, args=(root, port), daemon=True) for _ in range(workers)]
        for p in procs_mp:
            p.start()
        kind = f"python http.server ({workers} processes, SO_REUSEPORT)"
        procs = []
    try:
        _wait_port(port)
        yield kind
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        if not nginx:
            for p in procs_mp:
                p.terminate()
                p.join(5)


def _py_serve(root: Path, port: int) -> None:
    files = {"/" + str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = unquote(urlsplit(self.path).path)
            body = files.get(path) or files.get(path.rstrip("/") + "/index.html")
            ctype = "application/xml" if path.endswith(".xml") else "text/plain" if path.endswith(".txt") \
                else "text/html"
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: Any) -> None:
            return

    class Server(HTTPServer):
        def server_bind(self) -> None:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            super().server_bind()

    import socketserver

    class Threaded(socketserver.ThreadingMixIn, Server):
        daemon_threads = True

    Threaded(("127.0.0.1", port), Handler).serve_forever()


def _wait_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"static server did not start on port {port}")


# --- measurements ----------------------------------------------------------------------------------
