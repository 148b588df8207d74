"""Every ``stage.outcome`` line has the same fields, whatever the stage: an operator's log queries
(``status >= 500``, ``attempt > 1``, ``source == "paper"``) must not depend on which stage wrote it.
Absent values are null; the message's attempt (1 for the first delivery) and source come from the
message being handled."""

from __future__ import annotations

import io
from typing import Any

import orjson
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker
from dramatiq.message import Message

from workers.core.logs import OUTCOME_FIELDS, get_logger
from workers.core.middleware import LogContext


def _handling(*, retries: int, source: str | None = None) -> None:
    """Bind the log context as the workers' LogContext middleware does for a message being handled."""
    task = {"url": "https://h/a"} | ({"source": source} if source else {})
    message: Message[Any] = Message(queue_name="extract", actor_name="extract", args=(task,), kwargs={},
                      options={"retries": retries})
    LogContext().before_process_message(StubBroker(), MessageProxy(message))


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_outcome_lines_of_every_stage_carry_the_same_fields(json_log: io.StringIO) -> None:
    assert set(OUTCOME_FIELDS) >= {"url", "url_id", "crawl_id", "source", "host", "status", "ms", "bytes",
                                   "attempt", "error"}
    log = get_logger()
    trace = {"url": "https://h/a", "url_id": "0" * 32, "crawl_id": "c", "host": "h"}
    _handling(retries=2, source="paper")  # a third delivery of one of the source's messages
    log.warning("extract.retry", reason="storage unavailable", error="GenericError: down", delay_ms=2000, **trace)
    log.info("sink.stored", ms=3, bytes=100, version=1, **trace)
    log.info("fetch.done", status=200, ms=5, bytes=10, **trace)
    log.info("crawl.progress", fetched=3)  # not a stage outcome: left alone
    retry, stored, fetched, progress = _lines(json_log)
    for line in (retry, stored, fetched):
        assert set(OUTCOME_FIELDS) <= set(line), sorted(set(OUTCOME_FIELDS) - set(line))
        assert line["attempt"] == 3 and line["source"] == "paper" and "retries" not in line
    assert retry["status"] is None and retry["error"] == "GenericError: down"
    assert stored["error"] is None and fetched["status"] == 200
    assert "status" not in progress and "error" not in progress, "only stage outcomes are padded"


def test_an_attempt_the_stage_counts_itself_wins(json_log: io.StringIO) -> None:
    _handling(retries=0)
    get_logger().warning("fetch.retry", attempt=2, url="https://h/a")
    assert _lines(json_log)[0]["attempt"] == 2
