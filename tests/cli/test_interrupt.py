"""Ctrl-C stops ``ingest crawl`` within seconds, with the summary, even while pages hang."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.support.pipeline import ROOT, worker_env


class _Stalling(BaseHTTPRequestHandler):
    """A front page linking to pages that never answer (each request hangs for a minute)."""

    def do_GET(self) -> None:
        if self.path == "/":
            body = b"".join(b'<h2><a href="/2024/05/0%d/story-%d.html">Story %d</a></h2>' % (i, i, i)
                            for i in range(1, 9))
            body = b"<html><body><main>" + body + b"</main></body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path == "/robots.txt":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        time.sleep(60)

    def log_message(self, format: str, *args: object) -> None:
        return


@contextmanager
def _stalling_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stalling)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_ctrl_c_stops_a_crawl_with_hanging_pages_within_seconds(tmp_path: Path) -> None:
    env = worker_env()
    with _stalling_server() as base:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "crawl", base + "/", "--out", str(tmp_path / "o"),
             "--allow-private", "--host-rate", "0", "--threads", "4", "--processes", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT, start_new_session=True,
        )
        time.sleep(6)  # the front page is read and four fetches hang
        assert proc.poll() is None, "the crawl is still running"
        started = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        time.sleep(0.5)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # and an impatient second one
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise AssertionError(f"still running 20 s after Ctrl-C: {err[-2000:]}") from None
        took = time.monotonic() - started
    assert took < 6, f"stopped {took:.1f}s after Ctrl-C"
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in out and "pages fetched:" in out, out
    assert "Traceback" not in err, err[-2000:]
