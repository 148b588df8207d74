"""Shared fixtures: a real redis-server and a real S3-compatible server, each on a free port.

Tests start what they need themselves and never rely on a service someone else started, so
they can kill and restart it, and so CI on a clean machine behaves like a laptop.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class RedisServer:
    """A redis-server process owned by one test: it can be killed and started again."""

    port: int
    directory: Path
    appendonly: bool = False
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The broker URL of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or restart) the server and wait until it answers."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (.ci/run installs it with apt-get)")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "always",
             "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        """Kill the server (SIGKILL: an outage, not a shutdown)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None

    def client(self) -> Any:
        """A redis-py client for this server."""
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server on a free port, for this test only."""
    server = RedisServer(port=free_port(), directory=tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class S3Server:
    """moto's standalone S3 server on a free port, with one bucket."""

    endpoint: str
    bucket: str
    server: Any = None

    def stop(self) -> None:
        """Take the endpoint down (connections refused); the buckets survive in this process."""
        self.server.stop()

    def start(self) -> None:
        """Bring the endpoint back on the same port, serving the same buckets."""
        from moto.server import ThreadedMotoServer

        port = int(self.endpoint.rsplit(":", 1)[1])
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.server.start()

    def env(self) -> dict[str, str]:
        """Environment for a process that should store into this server."""
        return {
            "AWS_ACCESS_KEY_ID": "ingest-test",
            "AWS_SECRET_ACCESS_KEY": "ingest-test-secret",
            "AWS_REGION": "us-east-1",
            "INGEST_S3_ENDPOINT": self.endpoint,
        }


@pytest.fixture
def s3_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    """A real S3-protocol server (moto) on 127.0.0.1 with a bucket named ``ingest-test``."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    s3 = S3Server(endpoint=f"http://127.0.0.1:{port}", bucket="ingest-test", server=server)
    # moto keeps its state per Python process, not per server: start every test from empty.
    urllib.request.urlopen(urllib.request.Request(f"{s3.endpoint}/moto-api/reset", method="POST"), timeout=10)
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1").create_bucket(Bucket=s3.bucket)
    try:
        yield s3
    finally:
        s3.server.stop()


@pytest.fixture(autouse=True)
def _clean_ingest_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the INGEST_* variables they set themselves."""
    for key in list(os.environ):
        if key.startswith("INGEST_") and key != "INGEST_CORPUS_DIR":
            monkeypatch.delenv(key)


@pytest.fixture
def json_log() -> Iterator[Any]:
    """The process's logging configured for JSON into a buffer (an ``io.StringIO``); restored afterwards."""
    import io

    import structlog

    from workers.core.logs import configure_logging
    from workers.core.settings import Settings

    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging(Settings(log_format="json", log_level="debug"), stream=stream)
    try:
        yield stream
    finally:
        structlog.configure(**saved)
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.contextvars.clear_contextvars()
