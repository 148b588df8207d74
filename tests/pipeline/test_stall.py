"""A worker that stalls but lives (a GC pause, a starved CPU, a paused container) keeps its messages:
another worker does not take them over and do the work twice."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import RedisServer
from tests.support.pipeline import events_named, mixed_site, wait_for, worker_env, workers
from tests.support.site import serve_site
from workers.core.settings import Settings
from workers.core.storage import open_storage
from workers.pipeline.enqueue import enqueue_urls

STALL_S = 15  # longer than the 10 s heartbeat timeout this project used to have


@pytest.mark.timeout(240)
def test_a_stalled_but_alive_worker_does_not_lose_its_messages_to_another(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    site = mixed_site(corpus=12, seed_per_style=1)
    out = tmp_path / "out"
    # 3 requests a second to the one host: many fetches sit in the first worker's delay queue.
    env = worker_env(INGEST_BROKER_URL=redis_server.url, INGEST_STORAGE_URL=str(out), INGEST_ALLOW_PRIVATE="1",
                     INGEST_HOST_RATE="3")
    storage = open_storage(str(out))
    client = redis_server.client()

    def held() -> int:
        return sum(int(client.scard(k)) for k in client.keys("ingest:__acks__.*"))

    with serve_site(site) as server, workers(
        (["--processes", "1", "--threads", "4"], tmp_path / "a.log"), env=env
    ) as first:
        enqueue_urls([("test", server.base_url + "/")], Settings.from_env(env), kind="listing", crawl_id="stall")
        wait_for(lambda: held() >= 5 and len(list(storage.keys("articles/"))) >= 1, 60, "work held by the worker")
        os.killpg(first[0].proc.pid, signal.SIGSTOP)
        stalled_with = held()
        try:
            with workers((["--processes", "1", "--threads", "4"], tmp_path / "b.log"), env=env) as second:
                time.sleep(STALL_S)
                os.killpg(first[0].proc.pid, signal.SIGCONT)
                wait_for(lambda: len(list(storage.keys("articles/"))) == len(site.articles), 120, "every article")
                for p in (*first, *second):
                    p.stop()
        finally:
            if first[0].proc.poll() is None:
                os.killpg(first[0].proc.pid, signal.SIGCONT)
    fetched = Counter(e["url"] for e in events_named([*first, *second], "fetch.done"))
    twice = sorted(url for url, n in fetched.items() if n > 1)
    print(f"stalled {STALL_S}s holding {stalled_with} messages; pages fetched twice: {len(twice)}")
    assert not twice, f"pages taken over from the stalled worker and fetched again: {twice[:3]}"
    stored = events_named([*first, *second], "sink.stored")
    assert len(stored) == len(site.articles) == len({e["url_id"] for e in stored})
