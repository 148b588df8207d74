"""Politeness across processes: a host limited to 2 requests per second never receives more."""

from __future__ import annotations

import itertools
from pathlib import Path

from tests.conftest import RedisServer
from tests.support.pipeline import mixed_site, wait_for, worker_env, workers
from tests.support.site import serve_site
from workers.core.settings import Settings
from workers.core.storage import open_storage
from workers.pipeline.enqueue import enqueue_urls

#: Arrival jitter allowed at the server: the time between a worker's send decision and the request
#: reaching the server's accept loop (thread scheduling on a loaded 2-core machine).
JITTER_S = 0.03


def test_four_fetch_processes_keep_a_host_at_two_requests_per_second(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    site = mixed_site(corpus=14, seed_per_style=1)
    out = tmp_path / "out"
    env = worker_env(INGEST_BROKER_URL=redis_server.url, INGEST_STORAGE_URL=str(out), INGEST_ALLOW_PRIVATE="1",
                     INGEST_HOST_RATE="2")
    storage = open_storage(str(out))
    with serve_site(site) as server, workers(
        (["--stages", "fetch", "--processes", "4", "--threads", "4"], tmp_path / "fetch.log"),
        (["--stages", "discover,extract,sink", "--processes", "1", "--threads", "4"], tmp_path / "rest.log"),
        env=env,
    ):
        enqueue_urls([("test", server.base_url + "/")], Settings.from_env(env), kind="listing", crawl_id="rate")
        wait_for(lambda: len(list(storage.keys("articles/"))) == len(site.articles), 180, "every article")
        times = sorted(t for _, t in server.requests)
    assert len(times) >= len(site.articles) + 4
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.5 - JITTER_S, f"two requests {min(gaps):.3f}s apart"
    # No more than 2 requests in any one-second window (with the same jitter allowance).
    assert all(times[i + 2] - times[i] >= 1.0 - JITTER_S for i in range(len(times) - 2))
    # And not needlessly slow: while fetches queue up, they go out at the rate, not slower.
    assert sum(1 for g in gaps if g < 0.6) >= 5
