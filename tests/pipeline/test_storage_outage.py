"""Object storage down for longer than a few retries: nothing is lost, the stages wait it out."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from dramatiq import Worker

from tests.conftest import S3Server
from tests.pipeline.test_resilience import _record
from workers.core.broker import make_broker
from workers.core.messages import sink_task, validate
from workers.core.middleware import InFlight
from workers.core.settings import Settings
from workers.core.storage import open_storage
from workers.pipeline.actors import declare_actors
from workers.pipeline.runtime import build_runtime


def _outage(s3: S3Server, down_s: float) -> threading.Thread:
    def run() -> None:
        s3.stop()
        time.sleep(down_s)
        s3.start()

    t = threading.Thread(target=run)
    t.start()
    return t


@pytest.mark.timeout(200)
def test_records_sent_while_the_store_is_down_are_written_when_it_is_back(tmp_path: Path, s3_server: S3Server) -> None:
    url = f"s3://{s3_server.bucket}/outage"
    settings = Settings.from_env({}, storage_url=url, s3_endpoint=s3_server.endpoint)
    rt = build_runtime(settings)
    in_flight = InFlight()
    broker = make_broker(settings, in_flight=in_flight, dead_letters=rt.dead_letter, dead_letter_store=rt.dead_letters)
    declare_actors(broker, rt)
    worker = Worker(broker, worker_threads=4, worker_timeout=100)
    records = [validate("article", _record(n)) for n in range(12)]
    outage = _outage(s3_server, 40)  # longer than the three retries (about 15 s) that used to be all
    time.sleep(0.5)
    worker.start()
    started = time.monotonic()
    try:
        for record in records:
            rt.send("sink", sink_task(crawl_id="outage", url_id=record["id"], record=record))
        outage.join()
        assert in_flight.wait_idle(timeout=150), "every message settled after the store came back"
        recovered = time.monotonic() - started - 40
    finally:
        worker.stop(5_000)
        broker.close()
        rt.close()
    storage = open_storage(url, s3_endpoint=s3_server.endpoint)
    assert rt.dead_letters.count() == 0, [x["reason"] for x in rt.dead_letters.list()]
    assert len(list(storage.keys("articles/"))) == len(records)
    retries = rt.outcomes["sink.retry"]
    assert retries >= len(records), "each record waited the outage out"
    print(f"store down 40 s: {retries} sink retries, {len(records)} records written {recovered:.1f}s after")
