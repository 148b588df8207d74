"""``ingest crawls|pause|resume|cancel`` against a real redis-server (no workers needed)."""

from __future__ import annotations

import io
import time

import orjson
import pytest

from tests.conftest import RedisServer
from workers.cli.main import build_parser, main
from workers.core.crawlstate import RedisCrawls, crawl_key
from workers.core.settings import Settings
from workers.pipeline.enqueue import enqueue_urls


def _run(settings: Settings, *argv: str) -> tuple[int, str]:
    from workers.cli.crawls import run_crawls

    out = io.StringIO()
    code = run_crawls(build_parser().parse_args(list(argv)), settings, out=out)
    return code, out.getvalue()


def _enqueued(redis_server: RedisServer, crawl_id: str, n: int = 3) -> Settings:
    settings = Settings.from_env({}, broker_url=redis_server.url)
    urls = [("test", f"http://127.0.0.1:9/{crawl_id}/{i}.html") for i in range(n)]
    report = enqueue_urls(urls, settings, kind="article", crawl_id=crawl_id)
    assert report.enqueued == n
    return settings


def test_enqueue_registers_a_crawl_that_crawls_lists(redis_server: RedisServer) -> None:
    settings = _enqueued(redis_server, "first", 3)
    time.sleep(0.01)
    _enqueued(redis_server, "second", 2)
    code, out = _run(settings, "crawls", "--json")
    assert code == 0
    crawls = [orjson.loads(line) for line in out.splitlines()]
    assert [c["crawl_id"] for c in crawls] == ["second", "first"], "newest first"
    first = crawls[1]
    assert first["state"] == "running"
    assert (first["discovered"], first["remaining"], first["stored"], first["failed"]) == (3, 3, 0, 0)
    assert first["started_at"] <= crawls[0]["started_at"] <= time.time()
    code, text = _run(settings, "crawls")
    assert code == 0
    rows = [line.split() for line in text.splitlines()[1:] if line.strip()]
    assert [r[0] for r in rows] == ["second", "first"]
    assert rows[1][1] == "running" and "3" in rows[1]


def test_pause_resume_cancel_change_the_state_the_workers_read(redis_server: RedisServer) -> None:
    settings = _enqueued(redis_server, "ctl")
    workers_view = RedisCrawls(redis_server.client(), "ingest", cache_s=0.0)
    assert workers_view.control("ctl") == "running"
    assert _run(settings, "pause", "ctl") == (0, "crawl ctl: paused\n")
    assert workers_view.control("ctl") == "paused"
    assert _run(settings, "pause", "ctl") == (0, "crawl ctl: paused already\n")
    assert _run(settings, "resume", "ctl") == (0, "crawl ctl: running\n")
    assert workers_view.control("ctl") == "running"
    assert _run(settings, "cancel", "ctl") == (0, "crawl ctl: cancelled (its remaining messages are dropped)\n")
    assert workers_view.control("ctl") == "cancelled"
    code, _ = _run(settings, "pause", "ctl")
    assert code == 2, "a cancelled crawl cannot be paused"
    assert redis_server.client().hget(crawl_key("ingest", "ctl"), "state") == b"cancelled"


def test_the_workers_cache_the_state_for_a_moment_only(redis_server: RedisServer) -> None:
    _enqueued(redis_server, "cached")
    view = RedisCrawls(redis_server.client(), "ingest", cache_s=0.5)
    assert view.control("cached") == "running"
    RedisCrawls(redis_server.client(), "ingest").pause("cached")
    assert view.control("cached") == "running", "within the cache time"
    time.sleep(0.6)
    assert view.control("cached") == "paused"


def test_an_unknown_crawl_is_one_line_and_exit_2(redis_server: RedisServer,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings.from_env({}, broker_url=redis_server.url)
    for action in ("pause", "resume", "cancel"):
        assert _run(settings, action, "nope")[0] == 2
        err = capsys.readouterr().err
        assert err == f"ingest {action}: no crawl 'nope' (see `ingest crawls`)\n"


def test_crawl_commands_go_through_ingest_main(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    _enqueued(redis_server, "via-main")
    monkeypatch.setenv("INGEST_BROKER_URL", redis_server.url)
    assert main(["pause", "via-main"]) == 0
    assert capsys.readouterr().out == "crawl via-main: paused\n"
    assert main(["crawls"]) == 0
    assert "via-main" in capsys.readouterr().out
    monkeypatch.delenv("INGEST_BROKER_URL")
    assert main(["crawls"]) == 2
    assert "INGEST_BROKER_URL=redis://" in capsys.readouterr().err
