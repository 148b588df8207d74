"""Every line of ``ingest worker``, its parent process included, goes through structlog: JSON off a
terminal, readable console lines on one, INGEST_LOG_FORMAT overriding both; tracebacks as text."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.conftest import RedisServer
from tests.support.pipeline import ROOT, worker_env
from workers.core.messages import sink_task
from workers.core.settings import Settings
from workers.pipeline.enqueue import send_task


def _run_worker(env: dict[str, str], tty: bool, seconds: float) -> str:
    """Start a worker (on a pseudo-terminal or a pipe), let it run, stop it, return everything it wrote."""
    args = [sys.executable, "-m", "workers.cli", "worker", "--stages", "sink", "--processes", "1", "--threads", "1"]
    if tty:
        leader, follower = pty.openpty()
        proc = subprocess.Popen(args, env=env, cwd=ROOT, stdin=follower, stdout=follower, stderr=follower,
                                start_new_session=True)
        os.close(follower)
    else:
        proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        leader = proc.stdout.fileno() if proc.stdout else -1
    output = b""
    deadline = time.monotonic() + seconds
    stopped = False
    while True:
        if not stopped and time.monotonic() > deadline:
            proc.send_signal(signal.SIGTERM)
            stopped = True
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                chunk = b""
            if not chunk and proc.poll() is not None:
                break
            output += chunk
        elif proc.poll() is not None:
            break
    proc.wait(30)
    if tty:
        os.close(leader)
    return output.decode("utf-8", "replace")


def _poison_sink(server: RedisServer) -> None:
    """A sink message that validates but cannot be stored (no such record kind): a logged traceback."""
    settings = Settings.from_env({}, broker_url=server.url)
    from workers.core.broker import make_broker

    broker = make_broker(settings, redis_client=server.client())
    send_task(broker, "sink", sink_task(crawl_id="logs", url_id="0" * 32, record={"not": "a record"}))
    broker.close()


def test_off_a_terminal_every_line_is_json_with_tracebacks_as_text(tmp_path: Path, redis_server: RedisServer) -> None:
    env = worker_env(INGEST_BROKER_URL=redis_server.url, INGEST_STORAGE_URL=str(tmp_path / "o"))
    env.pop("INGEST_LOG_FORMAT")
    _poison_sink(redis_server)
    text = _run_worker(env, tty=False, seconds=8)
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "the worker wrote something"
    events = [orjson.loads(line) for line in lines]  # every line, the parent's too, is JSON
    names = [str(e.get("event", "")) for e in events]
    assert any("booting up" in n or "Shutting down" in n or "Stopping" in n for n in names), names
    dead = [e for e in events if e.get("event") == "sink.dead"]
    assert dead and dead[0]["reason"] == "poison" and "sink message invalid" in dead[0]["error"]
    assert all("<traceback object" not in line for line in lines)


def test_an_unexpected_error_is_logged_with_its_traceback_as_text(tmp_path: Path,
                                                                  redis_server: RedisServer) -> None:
    from workers.core.broker import make_broker
    from workers.core.messages import fetch_task, page_task

    env = worker_env(INGEST_BROKER_URL=redis_server.url, INGEST_STORAGE_URL=str(tmp_path / "o"))
    broker = make_broker(Settings.from_env({}, broker_url=redis_server.url), redis_client=redis_server.client())
    url = "https://news.example/2024/05/01/gone.html"
    task = fetch_task(crawl_id="logs", url=url, url_id="1" * 32, kind="article")
    # Its raw page is not in storage: reading it raises inside the extract stage.
    send_task(broker, "extract", page_task(task, final_url=url, status=200, fetched_at="2024-05-01T00:00:00Z",
                                           raw_key="raw/news.example/11/missing.html", content_type="text/html",
                                           encoding=None, size=10))
    broker.close()
    args_env = dict(env)
    text = _run_worker_stages(args_env, "extract", seconds=8)
    events = [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]
    failed = [e for e in events if "unhandled exception" in str(e.get("event"))]
    assert failed, [e.get("event") for e in events]
    assert failed[0]["exception"].startswith("Traceback (most recent call last)")
    assert "KeyError" in failed[0]["exception"] and "<traceback object" not in text


def _run_worker_stages(env: dict[str, str], stages: str, seconds: float) -> str:
    args = [sys.executable, "-m", "workers.cli", "worker", "--stages", stages, "--processes", "1", "--threads", "1"]
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    time.sleep(seconds)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    return out.decode("utf-8", "replace")


@pytest.mark.parametrize("override", [None, "json"])
def test_on_a_terminal_lines_are_readable_unless_overridden(tmp_path: Path, redis_server: RedisServer,
                                                            override: str | None) -> None:
    env = worker_env(INGEST_BROKER_URL=redis_server.url, INGEST_STORAGE_URL=str(tmp_path / "o"))
    env.pop("INGEST_LOG_FORMAT")
    if override:
        env["INGEST_LOG_FORMAT"] = override
    _poison_sink(redis_server)
    text = _run_worker(env, tty=True, seconds=8)
    lines = [line.strip() for line in text.replace("\r", "").splitlines() if line.strip()]
    assert any("sink.dead" in line for line in lines), lines[-5:]
    json_lines = [line for line in lines if line.startswith("{")]
    if override == "json":
        assert json_lines and len(json_lines) == len(lines)
    else:
        assert not json_lines, json_lines[:2]
        assert any("booting up" in line or "Stopping" in line or "Shutting down" in line for line in lines)
