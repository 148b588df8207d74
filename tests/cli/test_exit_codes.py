"""Exit codes scripts can trust, and one-line errors instead of tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port
from tests.support.pipeline import ROOT, worker_env


def _ingest(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workers.cli", *args], capture_output=True, text=True,
                          env=worker_env(**env), cwd=ROOT, timeout=120)


def test_version() -> None:
    done = _ingest("--version")
    assert done.returncode == 0 and done.stdout.startswith("ingest ")


def test_a_crawl_that_fetches_nothing_fails_and_names_the_cause(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there: every connection is refused
    done = _ingest("crawl", f"http://127.0.0.1:{port}/", "--out", str(tmp_path / "o"), "--allow-private",
                   INGEST_FETCH_RETRIES="1")
    assert done.returncode == 3, done.stderr[-1500:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ingest crawl: could not reach 127.0.0.1: ") and "is the network up?" in last, last


def test_unreachable_redis_is_one_line_and_exit_2_from_every_command(tmp_path: Path) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    urls = tmp_path / "urls.txt"
    urls.write_text("https://news.example/a.html\n")
    for args in (["enqueue", "https://news.example/"], ["enqueue", "-f", str(urls)], ["status"], ["dlq", "list"],
                 ["sources", "list"], ["worker", "--stages", "fetch"]):
        done = _ingest(*args, INGEST_BROKER_URL=url)
        assert done.returncode == 2, (args, done.stderr[-800:])
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, (args, done.stderr[-800:])
        assert "hunter2" not in done.stderr and "127.0.0.1" in lines[0], lines[0]


def test_unreachable_storage_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = _ingest("crawl", "http://127.0.0.1:1/", "--out", "s3://bucket/x", "--allow-private",
                   INGEST_S3_ENDPOINT=f"http://127.0.0.1:{free_port()}", AWS_ACCESS_KEY_ID="k",
                   AWS_SECRET_ACCESS_KEY="s", AWS_REGION="us-east-1")
    assert done.returncode == 2, done.stderr[-1500:]
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("ingest crawl: cannot use storage s3://bucket/x"), lines[-3:]
    assert "Traceback" not in done.stderr
