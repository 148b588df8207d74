"""Chaos: crawl a generated site with several worker processes of each kind while things break.

Each scenario crawls a site of distinct articles (plus a few links to pages that do not exist)
with four worker groups (fetch, discover, extract, sink; two processes each) on a real Redis, and
breaks one thing on purpose:

- worker groups SIGKILLed at random (seeded) moments and restarted;
- Redis SIGKILLed mid-crawl and restarted from its append-only file;
- Redis unreachable for 20 s (a proxy refuses and resets connections) while many fetches wait in
  the delay queue for their host's rate limit;
- the S3 endpoint (moto, behind a proxy) down for 60 s (30 s in the short version);
- the site answering 10% of requests with a 500 or a 30 s stall, and serving hostile pages (a
  DOCTYPE of forty ``[]``, a 9.5 MB page of links, markup nested 20,000 deep).

Then every expected article must be stored exactly once, the dead letters must be exactly the
permanent failures (the 404s, the page of links that cannot be extracted in time) with their
reasons, and ``ingest status`` must agree with storage (see tests/support/chaos_harness.py).
Every scenario prints its figures as a table row and adds them to ``chaos-figures.json`` in
pytest's base temp folder.

The short version (300 articles, each fault once) runs with the default ``pytest``; the full one
(2,000 articles, more kills and restarts) with ``pytest -m chaos``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RedisServer, S3Server, free_port
from tests.support.chaos_harness import ChaosRun, CrawlStuck, record_figures
from tests.support.chaos_proxy import TcpProxy
from tests.support.chaos_site import FaultPlan, build_chaos_site, serve_chaos_site
from workers.core.storage import Storage, open_storage

SEED = 20250121


@dataclass(frozen=True)
class Size:
    """How big a run is: the short one for every test run, the full one for ``-m chaos``."""

    name: str
    articles: int
    kills: int  #: worker-group SIGKILLs in the kill scenario
    redis_restarts: int
    host_rate: float  #: requests per second to the site while Redis is unreachable
    #: Requests per second to the site in the kill and restart scenarios: the crawl outlasts the faults.
    paced_rate: float
    s3_down_s: float  #: how long the S3 endpoint is down
    timeout_s: float  #: the crawl's limit, from the first fault on

    def __str__(self) -> str:
        return self.name


# The short S3 outage is half the minute: CI runs every short scenario within about five
# minutes, and the stages' backoff after an outage takes about as long again as the outage.
SHORT = Size("short", articles=300, kills=5, redis_restarts=1, host_rate=20, paced_rate=25, s3_down_s=30,
             timeout_s=200)
FULL = Size("full", articles=2000, kills=16, redis_restarts=3, host_rate=20, paced_rate=25, s3_down_s=60,
            timeout_s=1500)
SIZES = [
    pytest.param(SHORT, id="short"),
    pytest.param(FULL, id="full", marks=[pytest.mark.chaos, pytest.mark.timeout(2400)]),
]
REDIS_UNREACHABLE_S = 20.0


@contextmanager
def redis_service(tmp_path: Path, *, appendonly: bool = False) -> Iterator[RedisServer]:
    """A redis-server of this test's own (AOF with fsync on every write when ``appendonly``)."""
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(port=free_port(), directory=directory, appendonly=appendonly)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def chaos_run(
    scenario: str,
    tmp_path: Path,
    size: Size,
    redis: RedisServer,
    *,
    worker_broker_url: str | None = None,
    storage: tuple[Storage, str, dict[str, str]] | None = None,
    env: dict[str, str] | None = None,
    plan: FaultPlan | None = None,
    hostile: bool = False,
    per_page: int | None = None,
) -> Iterator[ChaosRun]:
    """A started :class:`ChaosRun` of a fresh chaos site; its workers are stopped on the way out."""
    chaos = build_chaos_site(size.articles, seed=SEED, hostile=hostile, per_page=per_page)
    if storage is None:
        out = tmp_path / "out"
        storage = (open_storage(str(out)), str(out), {})
    reader, url, storage_env = storage
    with serve_chaos_site(chaos, plan) as server:
        run = ChaosRun(
            f"{scenario}-{size}", chaos=chaos, server=server, log_dir=tmp_path / "logs", redis_url=redis.url,
            redis_client=redis.client, worker_broker_url=worker_broker_url or redis.url, storage=reader,
            storage_url=url, storage_env=storage_env, env=env,
        )
        try:
            run.start()
            yield run
        finally:
            run.stop()


def conclude(run: ChaosRun, figures_file: Path, timeout: float, *, stall_s: float = 90.0) -> dict[str, Any]:
    """Wait for the crawl to finish, record its figures, fail with every problem found."""
    stuck: str | None = None
    try:
        run.wait_done(timeout, stall_s=stall_s)
    except CrawlStuck as exc:
        stuck = str(exc)
    finally:
        run.stop()
    verdict = run.verdict()
    if stuck is not None:
        verdict.problems.insert(0, stuck)
    record_figures(figures_file, verdict.figures, verdict.problems)
    verdict.assert_ok()
    return verdict.figures


@pytest.mark.parametrize("size", SIZES)
def test_workers_sigkilled_at_random_moments(tmp_path: Path, size: Size, chaos_figures: Path) -> None:
    rng = random.Random(SEED)
    # A rate limit stretches the crawl over the kills; the moments are points of progress, drawn at
    # random, so they fall mid-crawl however fast the machine is.
    with redis_service(tmp_path) as redis, chaos_run("sigkill", tmp_path, size, redis,
                                                     env={"INGEST_HOST_RATE": f"{size.paced_rate:g}"}) as run:
        # Every kind of worker dies at least once, then random ones.
        order = sorted(run.groups)
        rng.shuffle(order)
        victims = (order + [rng.choice(sorted(run.groups)) for _ in range(size.kills)])[: size.kills]
        moments = sorted(rng.uniform(0.03, 0.8) for _ in victims)
        for name, share in zip(victims, moments, strict=True):
            run.wait_for_records(max(1, int(share * len(run.expected))), 120, f"{share:.0%} of the records")
            time.sleep(rng.uniform(0.0, 1.0))
            run.kill(name, restart_after=rng.uniform(0.0, 1.5))
        figures = conclude(run, chaos_figures, size.timeout_s)
    assert figures["kills"] == size.kills


@pytest.mark.parametrize("size", SIZES)
def test_redis_restarted_mid_crawl_with_aof(tmp_path: Path, size: Size, chaos_figures: Path) -> None:
    # Paced, so fetches wait in the delay queue (held in the workers' memory) when Redis dies.
    with redis_service(tmp_path, appendonly=True) as redis, chaos_run(
        "redis-restart", tmp_path, size, redis, env={"INGEST_HOST_RATE": f"{size.paced_rate:g}"}
    ) as run:
        for i in range(size.redis_restarts):
            share = (i + 1) / (size.redis_restarts + 2)
            run.wait_for_records(int(share * len(run.expected)), 120, f"{share:.0%} of the records")
            window = run.fault("redis restart")
            redis.stop()  # SIGKILL: every write acknowledged so far is in the AOF (fsync always)
            time.sleep(2.0)
            redis.start()
            window.end = time.time()
        conclude(run, chaos_figures, size.timeout_s)


@pytest.mark.parametrize("size", SIZES)
def test_redis_unreachable_while_fetches_wait_in_the_delay_queue(
    tmp_path: Path, size: Size, chaos_figures: Path
) -> None:
    with redis_service(tmp_path) as redis, TcpProxy(redis.port) as proxy, chaos_run(
        "redis-unreachable", tmp_path, size, redis, worker_broker_url=proxy.url("redis", "/0"),
        env={"INGEST_HOST_RATE": f"{size.host_rate:g}"}, per_page=50,
    ) as run:
        client = redis.client()

        def delayed() -> int:
            return int(client.hlen("ingest:fetch.DQ.msgs"))

        run.wait_until(lambda: delayed() >= 50 and len(run.stored_keys()) >= 5, 120,
                       "50 fetches waiting in the delay queue")
        held = delayed()
        window = run.fault(f"redis unreachable {REDIS_UNREACHABLE_S:g} s ({held} delayed)")
        proxy.down()
        time.sleep(REDIS_UNREACHABLE_S)
        proxy.up()
        window.end = time.time()
        client.close()
        figures = conclude(run, chaos_figures, size.timeout_s)
    assert held >= 50
    assert figures["records"] == figures["articles"]


@pytest.mark.parametrize("size", SIZES)
def test_s3_endpoint_down(tmp_path: Path, size: Size, s3_server: S3Server, chaos_figures: Path) -> None:
    moto_port = int(s3_server.endpoint.rsplit(":", 1)[1])
    url = f"s3://{s3_server.bucket}/chaos"
    reader = open_storage(url, s3_endpoint=s3_server.endpoint)
    with redis_service(tmp_path) as redis, TcpProxy(moto_port) as proxy:
        worker_s3 = {**s3_server.env(), "INGEST_S3_ENDPOINT": proxy.url("http")}
        with chaos_run("s3-down", tmp_path, size, redis, storage=(reader, url, worker_s3)) as run:
            run.wait_for_records(int(0.2 * len(run.expected)), 120, "a fifth of the records")
            window = run.fault(f"s3 down {size.s3_down_s:g} s")
            proxy.down()
            time.sleep(size.s3_down_s)
            proxy.up()
            window.end = time.time()
            # Backoff after a minute's outage reaches about a minute: no progress for that long is normal.
            figures = conclude(run, chaos_figures, size.timeout_s, stall_s=150)
    assert figures["retries"] > 0, "the outage was not felt"


@pytest.mark.parametrize("size", SIZES)
def test_site_errors_stalls_and_hostile_pages(tmp_path: Path, size: Size, chaos_figures: Path) -> None:
    plan = FaultPlan(rate=0.10, seed=SEED, stall_s=30.0)
    with redis_service(tmp_path) as redis, chaos_run("site-faults", tmp_path, size, redis, plan=plan,
                                                     hostile=True) as run:
        figures = conclude(run, chaos_figures, size.timeout_s)
    faults = figures["site_faults"]
    assert faults.get("500") and (faults.get("stall") or faults.get("stall-partial")), faults
    assert figures["retries"] >= sum(faults.values()), "every faulty answer was retried"
