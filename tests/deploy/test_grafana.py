"""deploy/grafana/ingest.json: a valid dashboard whose every query names only series the workers
export, aggregated the way those series need."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator
from typing import Any

from tests.deploy.support import DEPLOY, ROOT
from workers.cli.main import STAGES

DASHBOARD = DEPLOY / "grafana" / "ingest.json"

#: The series the workers export (workers/core/metrics.py) and Dramatiq's Prometheus middleware's.
COUNTERS = {
    "ingest_outcomes", "ingest_pages_fetched", "ingest_fetch_bytes", "ingest_waits", "ingest_records_written",
    "ingest_dead_letters", "ingest_discovered_urls", "ingest_claimed_urls",
    "dramatiq_messages", "dramatiq_message_errors", "dramatiq_message_retries",
}
HISTOGRAMS = {"ingest_stage_seconds", "dramatiq_message_duration_milliseconds"}
#: Read from Redis at scrape time by every worker: the same figure from each, so never summed.
REDIS_GAUGES = {
    "ingest_queue_depth", "ingest_queue_delayed", "ingest_queue_in_flight", "ingest_queue_oldest_age_seconds",
    "ingest_dead_letters_kept", "ingest_frontier_urls",
}
GAUGES = REDIS_GAUGES | {"dramatiq_messages_inprogress"}
SERIES = (
    {f"{c}_total" for c in COUNTERS}
    | {f"{h}_{suffix}" for h in HISTOGRAMS for suffix in ("bucket", "sum", "count")}
    | GAUGES
)

#: PromQL's functions, aggregations and keywords: every other identifier in an expression is a series.
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "topk", "bottomk", "quantile", "rate", "irate", "increase", "delta",
    "histogram_quantile", "clamp_min", "clamp_max", "abs", "vector", "scalar", "time", "by", "without", "on",
    "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
}


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def _panels() -> Iterator[dict[str, Any]]:
    for panel in _dashboard()["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row keeps its panels inside


def _exprs() -> list[str]:
    return [t["expr"] for p in _panels() for t in p.get("targets", [])]


def series_in(expr: str) -> set[str]:
    """The series names an expression reads: identifiers left once strings, label matchers,
    ranges, grouping clauses and PromQL's own words are taken out."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    words = set(re.findall(r"(?<![\w.])[A-Za-z_:][\w:]*", text))
    return words - PROMQL_WORDS


def test_dashboard_is_valid_json_with_a_prometheus_datasource_variable() -> None:
    dash = _dashboard()
    assert dash["title"] and dash["uid"] and isinstance(dash["schemaVersion"], int)
    (var,) = [v for v in dash["templating"]["list"] if v["type"] == "datasource"]
    assert var["query"] == "prometheus"
    ids = [p["id"] for p in _panels()]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in _panels():
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": f"${{{var['name']}}}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"] and target["expr"].strip(), panel["title"]


def test_panels_do_not_overlap() -> None:
    boxes = [(p["title"], p["gridPos"]) for p in _panels()]
    for i, (a, pa) in enumerate(boxes):
        assert pa["x"] >= 0 and pa["x"] + pa["w"] <= 24, a
        for b, pb in boxes[i + 1 :]:
            apart = (pa["x"] + pa["w"] <= pb["x"] or pb["x"] + pb["w"] <= pa["x"]
                     or pa["y"] + pa["h"] <= pb["y"] or pb["y"] + pb["h"] <= pa["y"])
            assert apart, f"{a!r} overlaps {b!r}"


def test_every_query_reads_only_exported_series() -> None:
    exprs = _exprs()
    assert len(exprs) >= 20
    used: set[str] = set()
    for expr in exprs:
        names = series_in(expr)
        assert names, f"no series in {expr!r}"
        assert names <= SERIES, f"{expr!r} reads {sorted(names - SERIES)}, which nothing exports"
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), expr
        used |= names
    # The panels: throughput, errors and dead letters, latency, queues, fetch status mix.
    for needed in ("ingest_outcomes_total", "ingest_dead_letters_total", "ingest_stage_seconds_bucket",
                   "ingest_queue_depth", "ingest_queue_oldest_age_seconds", "ingest_pages_fetched_total"):
        assert needed in used, needed


def test_the_extractor_sees_through_promql() -> None:
    expr = 'histogram_quantile(0.9, sum by (stage, le) (rate(ingest_stage_seconds_bucket{stage="fetch"}[5m])))'
    assert series_in(expr) == {"ingest_stage_seconds_bucket"}
    assert series_in("sum(rate(ingest_nosuch_total[1m])) / max(up)") == {"ingest_nosuch_total", "up"}


def test_every_series_is_one_the_code_registers() -> None:
    from dramatiq.middleware import prometheus

    ours = (ROOT / "workers" / "core" / "metrics.py").read_text()
    dramatiq = inspect.getsource(prometheus)
    for name in COUNTERS | HISTOGRAMS | GAUGES:
        if name.startswith("dramatiq_"):  # Dramatiq names its counters with the _total suffix
            exported, source, where = (name + "_total" if name in COUNTERS else name), dramatiq, "dramatiq"
        else:  # prometheus_client adds _total to ours
            exported, source, where = name, ours, "workers/core/metrics.py"
        assert f'"{exported}"' in source, f"{exported} is not registered in {where}"


def test_every_stage_appears() -> None:
    exprs = " ".join(_exprs())
    titles = " ".join(p["title"] for p in _panels())
    for stage in STAGES:
        assert f'stage="{stage}"' in exprs and f'queue="{stage}"' in exprs, stage
        assert stage in titles, stage
    # The per-stage panels break down by stage.
    assert "sum by (stage) (rate(ingest_outcomes_total" in exprs


def test_latency_percentiles_keep_le_and_redis_gauges_are_never_summed() -> None:
    for expr in _exprs():
        for m in re.finditer(r"histogram_quantile\(\s*[\d.]+\s*,\s*sum by \(([^)]*)\)", expr):
            assert "le" in {g.strip() for g in m[1].split(",")}, expr
        if "histogram_quantile" in expr:
            assert "_bucket" in expr and "rate(" in expr, expr
        for gauge in REDIS_GAUGES & series_in(expr):
            # Every worker exports the same Redis figure: max over them, not a sum.
            assert re.search(rf"max(?: by \([^)]*\) )?\({gauge}\b", expr), expr
        for counter in COUNTERS:
            if f"{counter}_total" in expr:
                assert re.search(rf"(rate|increase)\({counter}_total", expr), f"a raw counter in {expr!r}"
    quantiles = set()
    for expr in _exprs():
        found = re.search(r"histogram_quantile\(([\d.]+), sum by \([^)]*\) \(rate\(ingest_stage_seconds_bucket", expr)
        if found:
            quantiles.add(found[1])
    assert quantiles >= {"0.5", "0.9", "0.99"}, quantiles
