"""The ingest command as operators use it: enqueue from scripts, progress on a terminal."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import orjson

from tests.conftest import RedisServer
from tests.support.pipeline import ROOT, mixed_site
from tests.support.site import serve_site


def _env(**extra: str) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **extra}


def test_enqueue_sends_valid_urls_and_reports_bad_lines_with_their_origin(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text(
        "# morning list\n"
        "https://news.example/world/a-story.html\n"
        "ftp://news.example/file\n"
        "\n"
        "https://news.example/world/a-story.html?utm_source=x\n"
        "https://user:pw@news.example/x.html\n"
        "https://news.example/culture/another-story.html\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "workers.cli", "enqueue", "-f", str(urls), "https://news.example/sport/third.html",
         "-", "--crawl-id", "cli-test"],
        input="not a url\nhttps://news.example/science/fourth.html\n",
        env=_env(INGEST_BROKER_URL=redis_server.url), cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1, "a rejected line makes the exit code 1"
    lines = done.stderr.strip().splitlines()
    assert f"{urls}:3: 'ftp://news.example/file': scheme 'ftp' is not http or https" in lines
    assert any(line.startswith(f"{urls}:6: ") and "user-info" in line for line in lines)
    assert any(line.startswith("<stdin>:1: 'not a url'") for line in lines)
    assert lines[-1] == "crawl cli-test: enqueued 4, already queued 1, rejected 3"
    again = subprocess.run([sys.executable, "-m", "workers.cli", "enqueue", "https://news.example/sport/third.html",
                            "--crawl-id", "cli-test"], env=_env(INGEST_BROKER_URL=redis_server.url), cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "enqueued 0, already queued 1" in again.stderr
    client = redis_server.client()
    queued = [orjson.loads(client.hget("ingest:fetch.msgs", mid)) for mid in client.lrange("ingest:fetch", 0, -1)]
    tasks = [m["args"][0] for m in queued]
    assert sorted(t["url"] for t in tasks) == [
        "https://news.example/culture/another-story.html",
        "https://news.example/science/fourth.html",
        "https://news.example/sport/third.html",
        "https://news.example/world/a-story.html",
    ]
    assert {t["kind"] for t in tasks} == {"article"} and {t["crawl_id"] for t in tasks} == {"cli-test"}


def test_enqueue_without_input_is_a_usage_error(redis_server: RedisServer) -> None:
    done = subprocess.run([sys.executable, "-m", "workers.cli", "enqueue"],
                          env=_env(INGEST_BROKER_URL=redis_server.url), cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "give URLs" in done.stderr


def test_crawl_on_a_terminal_shows_a_live_progress_line_and_a_summary(tmp_path: Path) -> None:
    site = mixed_site(corpus=3, seed_per_style=1)
    with serve_site(site) as server:
        leader, follower = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "crawl", server.base_url + "/", "--out", str(tmp_path / "o"),
             "--allow-private", "--host-rate", "0", "--processes", "1"],
            stdin=follower, stdout=follower, stderr=follower, env=_env(TERM="xterm"), cwd=ROOT,
        )
        os.close(follower)
        output = b""
        while True:
            ready, _, _ = select.select([leader], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        assert proc.wait(30) == 0
        os.close(leader)
    text = output.decode("utf-8", "replace")
    assert "\r" in text and "pages/s" in text and "stored" in text, "a live progress line"
    assert f"articles stored: {len(site.articles)}" in text
    assert '"event"' not in text, "no JSON log lines on a terminal"


def _sources(*args: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workers.cli", "sources", *args],
                          env=_env(INGEST_BROKER_URL=redis_url), cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_sources_validate_load_list_and_replace(tmp_path: Path, redis_server: RedisServer) -> None:
    first = tmp_path / "sources.toml"
    first.write_text(
        '[[source]]\nname = "harbour"\nstart = "https://harbour.example/news/"\ninterval = "15m"\n\n'
        '[[source]]\nname = "islands"\nstart = ["https://islands.example/", "https://islands.example/sport/"]\n'
        'interval = "1h"\n'
    )
    checked = _sources("validate", str(first), redis_url=redis_server.url)
    assert checked.returncode == 0 and "2 source(s), no problems" in checked.stdout
    loaded = _sources("load", str(first), redis_url=redis_server.url)
    assert loaded.returncode == 0 and "loaded 2 source(s)" in loaded.stdout
    listed = _sources("list", redis_url=redis_server.url)
    rows = sorted(line.split() for line in listed.stdout.strip().splitlines())
    assert listed.returncode == 0 and [row[0] for row in rows] == ["harbour", "islands"]
    assert rows[0][1:4] == ["1", "start", "URL(s)"] and rows[1][1] == "2"
    assert "every    900s" in listed.stdout and "every   3600s" in listed.stdout
    assert "not scheduled" not in listed.stdout
    # --replace drops the sources the new file no longer names, from the registry and the schedule.
    second = tmp_path / "fewer.toml"
    second.write_text('[[source]]\nname = "islands"\nstart = "https://islands.example/"\ninterval = "1h"\n')
    replaced = _sources("load", str(second), "--replace", redis_url=redis_server.url)
    assert replaced.returncode == 0 and "removed 1" in replaced.stdout
    after = _sources("list", redis_url=redis_server.url)
    assert [line.split()[0] for line in after.stdout.strip().splitlines()] == ["islands"]


def test_sources_commands_report_file_problems_and_need_a_shared_broker(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('[[source]]\nname = "Bad Name"\nstart = "ftp://x"\n')
    checked = _sources("validate", str(broken), redis_url="memory://")
    assert checked.returncode == 1 and f"{broken}:" in checked.stderr and "problem(s)" in checked.stderr
    listed = _sources("list", redis_url="memory://")
    assert listed.returncode == 2 and "needs a shared broker" in listed.stderr
