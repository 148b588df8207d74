"""``ingest enqueue --jsonl`` with ``--json``: per-URL metadata in, a report for the calling script out,
through the real command (a subprocess) into a real redis-server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from tests.conftest import RedisServer, free_port
from tests.support.pipeline import ROOT, worker_env
from workers.sources.sourcefile import DEFAULT_MAX_DEPTH


def _enqueue(*args: str, stdin: str = "", broker_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workers.cli", "enqueue", *args], input=stdin, capture_output=True,
                          text=True, env=worker_env(INGEST_BROKER_URL=broker_url), cwd=ROOT, timeout=60)


def queued_tasks(redis: RedisServer) -> list[dict[str, Any]]:
    """The fetch tasks waiting in Redis, in queue order: Dramatiq keeps a list of message ids and a
    hash of id -> JSON envelope, whose first argument is the task."""
    client = redis.client()
    ids = client.lrange("ingest:fetch", 0, -1)
    return [orjson.loads(client.hget("ingest:fetch.msgs", mid))["args"][0] for mid in ids]


STDIN = "\n".join([
    '{"url": "https://news.example/world/a.html"}',
    "not json at all",
    '["https://news.example/x.html"]',
    '{"kind": "article"}',
    '{"url": "https://news.example/b.html", "title": "B", "lang": "en"}',
    '{"url": "https://news.example/c.html", "kind": "video"}',
    '{"url": "ftp://news.example/file"}',
    "",
    '{"url": "https://news.example/", "kind": "listing", "source": "harbour", "crawl_id": "other", "max_depth": 1}',
    '{"url": "https://news.example/world/a.html?utm_source=feed"}',
    '{"url": "https://news.example/d.html", "max_depth": "2"}',
    '{"url": 5}',
    '{"url": "https://news.example/e.html", "source": "Has Spaces"}',
]) + "\n"


def test_jsonl_sends_good_lines_with_their_metadata_and_reports_bad_ones(redis_server: RedisServer) -> None:
    done = _enqueue("--jsonl", "-", "--json", "--crawl-id", "jl", stdin=STDIN, broker_url=redis_server.url)
    assert done.returncode == 1, done.stderr
    report = orjson.loads(done.stdout)
    assert (report["crawl_id"], report["crawl_ids"]) == ("jl", ["jl", "other"])
    assert (report["sent"], report["already_queued"]) == (2, 1)
    rejected = {r["line"]: r for r in report["rejected"]}
    assert sorted(rejected) == [2, 3, 4, 5, 6, 7, 11, 12, 13]
    assert all(r["where"] == f"<stdin>:{line}" for line, r in rejected.items())
    assert rejected[2]["reason"].startswith("not JSON") and rejected[2]["url"] is None
    assert rejected[3]["reason"] == "not a JSON object"
    assert rejected[4]["reason"] == "no url"
    assert rejected[5]["reason"] == ("unknown keys 'lang', 'title'; expected url, kind, source, crawl_id, max_depth, "
                                     "max_pages")
    assert rejected[6] == {"line": 6, "where": "<stdin>:6", "url": "https://news.example/c.html",
                           "reason": "kind 'video': expected listing or article"}
    assert rejected[7]["reason"] == "scheme 'ftp' is not http or https"
    assert rejected[11]["reason"] == "max_depth '2': expected a whole number of at least 0"
    assert rejected[12]["reason"] == "expected a URL string, got int"
    assert rejected[13]["reason"].startswith("source 'Has Spaces'")

    errors = done.stderr.strip().splitlines()
    assert "<stdin>:4: no url" in errors
    assert "<stdin>:7: 'ftp://news.example/file': scheme 'ftp' is not http or https" in errors
    assert errors[-1] == "crawls jl, other: enqueued 2, already queued 1, rejected 9"

    tasks = queued_tasks(redis_server)
    assert [(t["url"], t["kind"], t["crawl_id"]) for t in tasks] == [
        ("https://news.example/world/a.html", "article", "jl"),
        ("https://news.example/", "listing", "other"),
    ]
    assert "source" not in tasks[0] and tasks[1]["source"] == "harbour"
    assert (tasks[0]["max_depth"], tasks[1]["max_depth"]) == (DEFAULT_MAX_DEPTH, 1)


def test_jsonl_from_a_file_names_the_file_and_exits_0_when_all_are_sent(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    batch = tmp_path / "batch.jsonl"
    batch.write_text('{"url": "https://news.example/a.html"}\n{"url": ""}\n')
    first = _enqueue("--jsonl", str(batch), "--kind", "listing", "--crawl-id", "f", broker_url=redis_server.url)
    assert first.returncode == 1
    assert any(line.startswith(f"{batch}:2: ") for line in first.stderr.splitlines()), first.stderr
    assert first.stdout == "", "without --json nothing goes to stdout"

    batch.write_text('{"url": "https://news.example/a.html"}\n{"url": "https://news.example/b.html", "kind": '
                     '"article"}\n')
    again = _enqueue("--jsonl", str(batch), "--json", "--kind", "listing", "--crawl-id", "f",
                     broker_url=redis_server.url)
    assert again.returncode == 0, again.stderr
    assert orjson.loads(again.stdout) == {"crawl_id": "f", "crawl_ids": ["f"], "sent": 1, "already_queued": 1,
                                          "rejected": []}
    assert [(t["url"], t["kind"]) for t in queued_tasks(redis_server)] == [
        ("https://news.example/a.html", "listing"), ("https://news.example/b.html", "article")]


def test_json_report_for_plain_urls_too(redis_server: RedisServer) -> None:
    done = _enqueue("https://news.example/a.html", "-", "--json", "--crawl-id", "p", stdin="not a url\n",
                    broker_url=redis_server.url)
    assert done.returncode == 1
    report = orjson.loads(done.stdout)
    assert (report["sent"], report["already_queued"]) == (1, 0)
    assert [(r["where"], r["line"], r["url"]) for r in report["rejected"]] == [("<stdin>:1", 1, "not a url")]


def test_bad_arguments_and_unreachable_redis_exit_2(tmp_path: Path, redis_server: RedisServer) -> None:
    mixed = _enqueue("--jsonl", "-", "https://news.example/a.html", broker_url=redis_server.url)
    assert mixed.returncode == 2 and "--jsonl" in mixed.stderr and "not both" in mixed.stderr
    depth = _enqueue("--jsonl", "-", "--max-depth", "-2", stdin='{"url": "https://news.example/a.html"}\n',
                     broker_url=redis_server.url)
    assert depth.returncode == 2 and "--max-depth -2: expected a whole number" in depth.stderr
    missing = _enqueue("--jsonl", str(tmp_path / "none.jsonl"), "--json", broker_url=redis_server.url)
    assert missing.returncode == 2 and "cannot read" in missing.stderr and missing.stdout == ""
    down = _enqueue("--jsonl", "-", "--json", stdin='{"url": "https://news.example/a.html"}\n',
                    broker_url=f"redis://127.0.0.1:{free_port()}/0")
    assert down.returncode == 2 and down.stdout == ""
    assert len(down.stderr.strip().splitlines()) == 1 and "cannot reach Redis" in down.stderr
    assert queued_tasks(redis_server) == []


def test_the_page_budget_rides_in_the_task_from_the_flag_or_the_line(redis_server: RedisServer) -> None:
    lines = ('{"url": "https://news.example/", "kind": "listing"}\n'
             '{"url": "https://other.example/", "kind": "listing", "max_pages": 50000}\n'
             '{"url": "https://third.example/", "kind": "listing", "max_pages": 0}\n')
    done = _enqueue("--jsonl", "-", "--json", "--max-pages", "20000", stdin=lines, broker_url=redis_server.url)
    assert done.returncode == 1, done.stderr
    report = orjson.loads(done.stdout)
    assert [r["reason"] for r in report["rejected"]] == ["max_pages 0: expected a whole number of at least 1"]
    assert [t.get("max_pages") for t in queued_tasks(redis_server)] == [20000, 50000]
    bad = _enqueue("https://news.example/", "--max-pages", "0", broker_url=redis_server.url)
    assert bad.returncode == 2 and "--max-pages" in bad.stderr
