"""Prometheus metrics of a running worker: scraped during a crawl, the series move; probes answer."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import RedisServer, free_port
from tests.support.pipeline import mixed_site, wait_for, worker_env, workers
from tests.support.site import serve_site
from workers.core.metrics import liveness, status_class
from workers.core.settings import Settings
from workers.core.storage import open_storage
from workers.pipeline.enqueue import enqueue_urls

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([0-9.eE+-]+|NaN|[+-]Inf)$")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def _samples(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            out[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return out


def _total(samples: dict[str, float], name: str, **labels: str) -> float:
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(v for k, v in samples.items() if k.split("{")[0] == name and all(w in k for w in wanted))


def test_status_classes_are_bounded() -> None:
    assert [status_class(s) for s in (200, 304, 404, 503, None, 0, 999)] == [
        "2xx", "3xx", "4xx", "5xx", "error", "error", "error"]


def test_no_liveness_files_is_unhealthy(tmp_path: Path) -> None:
    assert liveness(tmp_path) == (False, "no worker process has reported yet")
    (tmp_path / "alive-1.txt").write_text("100.0 3 4")
    ok, why = liveness(tmp_path, now=101.0)
    assert not ok and "1 of 4 threads dead" in why
    assert liveness(tmp_path, now=200.0)[1] == "worker process 1 silent for 100s"


def test_a_worker_serves_metrics_that_move_during_a_crawl(tmp_path: Path, redis_server: RedisServer) -> None:
    site = mixed_site(corpus=12, seed_per_style=1)
    out = tmp_path / "out"
    port = free_port()
    env = worker_env(INGEST_BROKER_URL=redis_server.url, INGEST_STORAGE_URL=str(out), INGEST_ALLOW_PRIVATE="1",
                     INGEST_HOST_RATE="4")
    base = f"http://127.0.0.1:{port}"
    storage = open_storage(str(out))
    with serve_site(site) as server, workers(
        (["--processes", "2", "--threads", "4", "--metrics-port", str(port)], tmp_path / "w.log"), env=env
    ) as procs:
        wait_for(lambda: _get(base + "/healthz")[0] == 200, 60, "a healthy worker")
        assert _get(base + "/readyz") == (200, "redis reachable\n")
        enqueue_urls([("test", server.base_url + "/")], Settings.from_env(env), kind="listing", crawl_id="metrics")
        wait_for(lambda: len(list(storage.keys("articles/"))) >= 3, 60, "the first records")
        first = _samples(_get(base + "/metrics")[1])
        wait_for(lambda: len(list(storage.keys("articles/"))) == len(site.articles), 120, "every article")
        wait_for(lambda: _total(_samples(_get(base + "/metrics")[1]), "ingest_records_written_total")
                 == len(site.articles), 20, "the last records counted")
        last = _samples(_get(base + "/metrics")[1])
        assert _get(base + "/nothing")[0] == 404
        redis_server.stop()
        assert _get(base + "/readyz")[0] == 503, "not ready without Redis"
        redis_server.start()
        assert procs[0].stop() == 0
    assert _total(first, "ingest_outcomes_total", stage="fetch", outcome="done") > 0
    assert _total(last, "ingest_outcomes_total", stage="fetch", outcome="done") > _total(
        first, "ingest_outcomes_total", stage="fetch", outcome="done")
    assert _total(last, "ingest_records_written_total") == len(site.articles)
    assert _total(last, "ingest_pages_fetched_total", status_class="2xx") >= len(site.articles)
    assert _total(last, "ingest_fetch_bytes_total") > 10_000
    assert _total(last, "ingest_stage_seconds_count", stage="extract") == len(site.articles)
    assert _total(last, "ingest_claimed_urls_total") >= len(site.articles)
    assert _total(last, "ingest_waits_total", kind="politeness") > 0, "host rate 4/s makes fetches wait"
    assert _total(last, "dramatiq_messages_total", queue_name="sink") == len(site.articles)
    assert any(k.startswith('ingest_queue_depth{queue="fetch"}') for k in last)
    assert any(k.startswith('ingest_queue_oldest_age_seconds{queue="extract"}') for k in last)
    assert "ingest_frontier_urls" in last and last["ingest_frontier_urls"] >= len(site.articles)
    # Bounded labels only: no URL or host ever becomes a label.
    assert not [k for k in last if "127.0.0.1" in k or "http:" in k or "https:" in k]
