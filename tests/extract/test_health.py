"""Per-host extraction health: counters, percentiles, drift, and the `status` command on real Redis."""

from __future__ import annotations

import argparse
import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import orjson
import pytest
from dramatiq.brokers.redis import RedisBroker
from structlog.testing import capture_logs

from tests.conftest import RedisServer, free_port
from tests.support.seedpages import seed_pages
from workers.cli.ops import add_ops_parsers, run_ops
from workers.core.settings import Settings
from workers.extract.article import extract_article
from workers.extract.health import (
    MIN_PAGES,
    TTL_S,
    HealthStore,
    MemoryHealthStore,
    PageHealth,
    RedisHealthStore,
    drift,
    ends_in_cue,
    page_health,
    percentile,
    summarize,
)

SEED_TEXT = Path("/work/shared/seed/naenara-page-as-text.txt")
TODAY = dt.datetime.now(dt.UTC).date()


def day(k: int) -> str:
    """The UTC date ``k`` days before today."""
    return (TODAY - dt.timedelta(days=k)).isoformat()


def page(host: str = "news.example", *, words: int = 600, empty: bool = False, dated: bool = True,
         teasers: int = 0, cue: bool = False, on: str | None = None) -> PageHealth:
    return PageHealth(host=host, empty=empty, has_date=dated, words=0 if empty else words,
                      teaser_blocks_removed=teasers, day=on or day(0), cue_ending=cue)


# --- one page ------------------------------------------------------------------------------------


def test_page_health_of_a_real_extraction() -> None:
    seed = seed_pages()[0]
    extracted = extract_article(seed.html.encode(), "https://news.example" + seed.path)
    health = page_health(extracted, host="news.example", fetched_at="2025-01-21T23:30:00-02:00")
    assert health.host == "news.example" and not health.empty
    assert health.words == extracted["word_count"] > 50
    assert health.has_date == bool(extracted["published"]) and health.has_date
    assert health.day == "2025-01-22", "the day is the UTC date of the fetch"
    assert not health.cue_ending and not health.leak_suspect, "the teaser list was filtered"


def test_page_health_of_an_empty_page_and_of_reported_teasers() -> None:
    empty = page_health(extract_article(b"<html><body></body></html>", "https://news.example/a"))
    assert empty.empty and empty.words == 0 and not empty.has_date and empty.day == TODAY.isoformat()
    teased = page_health({"host": "h.example", "text": "Body.", "word_count": 1, "teaser_blocks_removed": 3})
    assert teased.teaser_blocks_removed == 3 and teased.leak_suspect and teased.host == "h.example"


def test_text_ending_in_cue_lines_is_a_leak_suspect() -> None:
    text = SEED_TEXT.read_text(encoding="utf-8")
    body = text[: text.index("More From")]
    assert ends_in_cue(text), "the naive dump ends with teasers under cue headings"
    assert not ends_in_cue(body), "the article alone ends with its last paragraph"
    assert ends_in_cue(body + "\nRead more: Looted colonial art returns home")
    health = page_health({"text": body + "\nMore From Naenara (En)\n", "published": "2025-01-21"}, host="h")
    assert health.cue_ending and health.leak_suspect and health.teaser_blocks_removed == 0


# --- arithmetic ----------------------------------------------------------------------------------


def test_percentiles_by_nearest_rank_and_weighted() -> None:
    values = list(range(1, 11))
    assert [percentile(values, q) for q in (10, 50, 90, 100)] == [1, 5, 9, 10]
    assert percentile([], 50) is None
    # One value standing for 10 pages outweighs nine values standing for one each.
    assert percentile([100, *[1] * 9], 50, [10, *[1] * 9]) == 100
    assert percentile([100, *[1] * 9], 50) == 1


def test_summary_counts_shares_and_lengths_per_day_and_overall() -> None:
    rows = [
        (day(1), {"pages": 4, "empty": 1, "undated": 2, "leak": 1}, [100, 200, 300]),
        (day(0), {"pages": 2}, [1000, 1000]),
    ]
    summary = summarize("h", rows)
    first, second = summary["per_day"]
    assert first["day"] == day(1) and first["pages"] == 4
    assert (first["empty_share"], first["missing_date_share"], first["leak_share"]) == (0.25, 0.5, 0.25)
    assert first["words"] == {"p10": 100, "p50": 200, "p90": 300}
    assert second["words"]["p50"] == 1000
    overall = summary["overall"]
    assert overall["pages"] == 6 and overall["empty"] == 1 and overall["empty_share"] == round(1 / 6, 4)
    assert overall["words"] == {"p10": 100, "p50": 300, "p90": 1000}


# --- stores --------------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HealthStore]:
    if request.param == "memory":
        yield MemoryHealthStore()
        return
    server = RedisServer(port=free_port(), directory=tmp_path)
    server.start()
    try:
        yield RedisHealthStore(server.client(), "t")
    finally:
        server.stop()


def test_store_counts_pages_per_host_and_day(store: HealthStore) -> None:
    for words in (100, 200, 300, 400):
        store.record(page(words=words, on=day(2)))
    store.record(page(empty=True, dated=False, on=day(2)))
    store.record(page(words=50, teasers=2, on=day(0)))
    store.record(page(words=70, cue=True, dated=False, on=day(0)))
    store.record(page("other.example", on=day(0)))
    store.record(page(on=day(9)))  # outside a 7-day window
    assert store.hosts() == ["news.example", "other.example"]
    summary = store.summary("news.example", days=7)
    assert [d["day"] for d in summary["per_day"]] == [day(2), day(0)]
    older, latest = summary["per_day"]
    assert older["pages"] == 5 and older["empty"] == 1 and older["empty_share"] == 0.2
    assert older["missing_date_share"] == 0.2 and older["leak_share"] == 0.0
    assert older["words"] == {"p10": 100, "p50": 200, "p90": 400}, "percentiles of non-empty pages"
    assert latest["pages"] == 2 and latest["teased"] == 1 and latest["cue_ending"] == 1 and latest["leak"] == 2
    assert latest["leak_share"] == 1.0 and latest["missing_date_share"] == 0.5
    assert summary["overall"]["pages"] == 7
    assert store.summary("news.example", days=10)["overall"]["pages"] == 8
    assert store.summary("nobody.example")["per_day"] == []


def test_redis_sample_is_bounded_and_expires(redis_server: RedisServer) -> None:
    client = redis_server.client()
    store = RedisHealthStore(client, "t", sample_size=50)
    for i in range(300):
        store.record(page(words=i + 1))
    counts_key, words_key = f"t:health:{day(0)}:news.example", f"t:health:words:{day(0)}:news.example"
    assert client.zcard(words_key) == 50
    assert int(client.hget(counts_key, "pages")) == 300
    assert 0 < client.ttl(counts_key) <= TTL_S and 0 < client.ttl(words_key) <= TTL_S
    figures = store.summary("news.example", days=1)["overall"]
    # A uniform sample of 1..300: its median is near 150 (bounds far beyond sampling noise).
    assert figures["pages"] == 300 and 40 < figures["words"]["p50"] < 260
    assert figures["words"]["p10"] < figures["words"]["p50"] < figures["words"]["p90"]


def test_redis_hosts_not_seen_for_a_month_drop_out(redis_server: RedisServer) -> None:
    now = dt.datetime.now(dt.UTC).timestamp()
    client = redis_server.client()
    RedisHealthStore(client, "t", clock=lambda: now - TTL_S - 60).record(page("gone.example", on=day(31)))
    store = RedisHealthStore(client, "t", clock=lambda: now)
    assert store.hosts() == []
    store.record(page("live.example"))
    assert store.hosts() == ["live.example"]


def test_a_redis_outage_does_not_fail_the_extraction() -> None:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    dead = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    with capture_logs() as logs:
        RedisHealthStore(dead, "t").record(page())
    assert [e["event"] for e in logs] == ["health.unrecorded"] and logs[0]["host"] == "news.example"
    with pytest.raises(redis.ConnectionError):
        RedisHealthStore(dead, "t").hosts()


# --- drift ---------------------------------------------------------------------------------------


def history(latest: list[PageHealth], *, days: int = 6, per_day: int = 50) -> dict[str, Any]:
    """Six healthy days (620 words, 2% empty, all dated) and then ``latest`` today."""
    store = MemoryHealthStore()
    for k in range(1, days + 1):
        for i in range(per_day):
            store.record(page(words=600 + (i % 5) * 10, empty=i == 0, on=day(k)))
    for item in latest:
        store.record(item)
    return store.summary("news.example", days=days + 1)


def test_no_drift_on_a_steady_host() -> None:
    assert drift(history([page(words=600 + (i % 5) * 10, empty=i == 0) for i in range(50)])) == []


def test_drift_when_pages_turn_empty() -> None:
    reasons = drift(history([page(empty=i < 20) for i in range(50)]))
    assert reasons == [f"empty share 40% on {day(0)} vs 2% before"]


def test_drift_when_the_median_length_collapses() -> None:
    reasons = drift(history([page(words=35) for _ in range(50)]))
    assert reasons == [f"median length fell from 620 to 35 words on {day(0)}"]


def test_drift_when_dates_vanish_and_teasers_leak() -> None:
    reasons = drift(history([page(dated=False, cue=i % 2 == 0) for i in range(40)]))
    assert any(r.startswith("missing-date share 100%") for r in reasons), reasons
    assert any(r.startswith("leak suspicion 50%") for r in reasons), reasons


def test_drift_when_boilerplate_doubles_the_length() -> None:
    reasons = drift(history([page(words=2000) for _ in range(30)]))
    assert reasons == [f"median length rose from 620 to 2000 words on {day(0)}"]


def test_no_drift_judged_on_too_few_pages() -> None:
    broken_but_few = [page(empty=True) for _ in range(MIN_PAGES - 1)]
    assert drift(history(broken_but_few)) == [], "a day with fewer pages than MIN_PAGES is not judged"
    assert drift(history([page(empty=True) for _ in range(50)], days=1, per_day=MIN_PAGES - 1)) == [], \
        "nor against a history with fewer pages"
    assert drift(history([page(empty=True) for _ in range(50)], days=1, per_day=MIN_PAGES)) != []


# --- ingest status -------------------------------------------------------------------------------


def ops_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ingest")
    add_ops_parsers(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def _fill_queues(url: str) -> None:
    """Through Dramatiq itself: 4 fetch messages sent, 1 taken and dead-lettered, 1 taken and
    still in flight; 1 delayed extract message."""
    broker = RedisBroker(url=url, namespace="ingest")
    try:
        broker.declare_queue("fetch")
        broker.declare_queue("extract")
        for i in range(4):
            broker.enqueue(dramatiq.Message(queue_name="fetch", actor_name="fetch", args=({"n": i},), kwargs={},
                                            options={}))
        broker.enqueue(dramatiq.Message(queue_name="extract", actor_name="extract", args=({},), kwargs={},
                                        options={}), delay=600_000)
        consumer = broker.consume("fetch", prefetch=1, timeout=1000)
        first = next(consumer)
        assert first is not None
        consumer.nack(first)
        assert next(consumer) is not None  # taken, never acknowledged
    finally:
        broker.close()


def _fill_health(client: Any) -> None:
    store = RedisHealthStore(client, "ingest")
    for k in range(1, 4):
        for _ in range(30):
            store.record(page("broken.example", words=620, on=day(k)))
            store.record(page("fine.example", words=400, on=day(k)))
    for i in range(30):
        store.record(page("broken.example", empty=i < 15, words=620, on=day(0)))
    for _ in range(40):
        store.record(page("fine.example", words=410, on=day(0)))


def test_status_shows_queues_hosts_and_drift(redis_server: RedisServer) -> None:
    _fill_queues(redis_server.url)
    _fill_health(redis_server.client())
    settings = Settings.from_env({}, broker_url=redis_server.url)
    out = io.StringIO()
    assert run_ops(ops_args("status"), settings, out=out) == 0
    lines = out.getvalue().splitlines()
    fetch = next(line for line in lines if line.startswith("fetch "))
    assert fetch.split()[:5] == ["fetch", "2", "1", "0", "1"], "ready, in flight, delayed, dead"
    assert next(line for line in lines if line.startswith("extract ")).split()[:5] == ["extract", "0", "0", "1", "0"]
    hosts = [line.split()[0] for line in lines if line.startswith(("broken.", "fine."))]
    assert hosts == ["broken.example", "fine.example"], "the drifting host comes first"
    broken = lines.index(next(line for line in lines if line.startswith("broken.example")))
    assert lines[broken].split()[1:3] == ["120", "12%"]
    assert lines[broken + 1].strip() == f"DRIFT empty share 50% on {day(0)} vs 0% before"
    assert not any("DRIFT" in line and "fine" in line for line in lines)
    assert sum("DRIFT" in line for line in lines) == 1


def test_status_json_and_one_host_day_by_day(redis_server: RedisServer) -> None:
    _fill_queues(redis_server.url)
    _fill_health(redis_server.client())
    settings = Settings.from_env({}, broker_url=redis_server.url)
    out = io.StringIO()
    assert run_ops(ops_args("status", "--json", "--days", "2"), settings, out=out) == 0
    doc = orjson.loads(out.getvalue())
    fetch = doc["queues"]["fetch"]
    wanted = {"ready": 2, "in_flight": 1, "delayed": 0, "dead": 1}
    assert {k: fetch[k] for k in wanted} == wanted
    assert [h["host"] for h in doc["hosts"]] == ["broken.example", "fine.example"]
    assert doc["hosts"][0]["overall"]["pages"] == 60 and len(doc["hosts"][0]["drift"]) == 1
    out = io.StringIO()
    assert run_ops(ops_args("status", "--host", "fine.example"), settings, out=out) == 0
    text = out.getvalue()
    assert "broken.example" not in text
    assert [line.split()[0] for line in text.splitlines() if line.startswith("  20")] == [day(k) for k in (3, 2, 1, 0)]


def test_status_needs_redis(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_ops(ops_args("status"), Settings.from_env({})) == 2
    err = capsys.readouterr().err
    assert "INGEST_BROKER_URL=redis://" in err and len(err.strip().splitlines()) == 1
    unreachable = Settings.from_env({}, broker_url=f"redis://:secret@127.0.0.1:{free_port()}/0")
    assert run_ops(ops_args("status"), unreachable) == 2
    err = capsys.readouterr().err
    assert err.startswith("ingest status: cannot read redis://") and "secret" not in err
    assert len(err.strip().splitlines()) == 1


def test_status_days_are_bounded_by_what_is_kept() -> None:
    with pytest.raises(SystemExit) as exc:
        ops_args("status", "--days", "31")
    assert exc.value.code == 2
