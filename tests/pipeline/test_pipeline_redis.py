"""Scaled out: `ingest worker` processes on a real redis-server, records over S3 to moto."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import RedisServer, S3Server
from tests.support.pipeline import (
    ROOT,
    assert_site_stored,
    events_named,
    load_records,
    mixed_site,
    wait_for,
    worker_env,
    workers,
)
from tests.support.site import serve_site
from workers.core.storage import is_raw_page, open_storage


def test_workers_on_redis_store_every_article_once_in_s3(
    tmp_path: Path, redis_server: RedisServer, s3_server: S3Server
) -> None:
    site = mixed_site()
    storage_url = f"s3://{s3_server.bucket}/crawl"
    env = worker_env(INGEST_BROKER_URL=redis_server.url, INGEST_STORAGE_URL=storage_url, INGEST_ALLOW_PRIVATE="1",
                     INGEST_HOST_RATE="0", **s3_server.env())
    storage = open_storage(storage_url, s3_endpoint=s3_server.endpoint)
    with serve_site(site) as server, workers(
        (["--stages", "discover,fetch,sink", "--processes", "1", "--threads", "8"], tmp_path / "a.log"),
        (["--stages", "extract", "--processes", "2", "--threads", "1"], tmp_path / "b.log"),
        env=env,
    ) as procs:
        sent = subprocess.run(
            [sys.executable, "-m", "workers.cli", "enqueue", server.base_url + "/", "--kind", "listing",
             "--crawl-id", "redis-e2e"],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
        )
        assert sent.returncode == 0, sent.stderr
        assert "enqueued 1" in sent.stderr
        wait_for(lambda: len(list(storage.keys("articles/"))) >= len(site.articles), 120, "all records in S3")
        wait_for(lambda: redis_server.client().llen("ingest:fetch") == 0, 10, "an empty fetch queue")
        for p in procs:
            assert p.stop() == 0
        records = load_records(storage)
        assert_site_stored(site, server.base_url, records)
        assert {r["crawl_id"] for r in records} == {"redis-e2e"}
        assert len(events_named(procs, "sink.stored")) == len(site.articles)
        extracted = events_named(procs, "extract.done")
        assert len(extracted) == len(site.articles)
        assert all(e["crawl_id"] == "redis-e2e" and e["host"] == "127.0.0.1" for e in extracted)
        requested = [path for path, _ in server.requests]
        assert len(requested) == len(set(requested)), "a page was fetched twice"
    assert len([k for k in storage.keys("raw/") if is_raw_page(k)]) == len(events_named(procs, "fetch.done"))
