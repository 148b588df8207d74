"""The fetch stage in the running pipeline against a hostile server: one outcome per page, nothing lost."""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict
from typing import Any

import orjson
import structlog

from tests.support.hostile_server import HostileServer
from tests.support.site import Site, serve_site
from workers.core.settings import Settings
from workers.core.storage import open_storage
from workers.core.urls import normalize_url
from workers.pipeline.crawl import run_embedded

#: Outcome events that end a page's journey (fetch.retry is an attempt, not an outcome).
TERMINAL = {"fetch.not_html", "fetch.too_large", "fetch.http_error", "fetch.refused", "fetch.redirect_loop",
            "fetch.invalid_url", "fetch.not_modified", "fetch.dead", "extract.empty", "sink.stored", "sink.exists"}

CASES = {
    "/html": "sink.stored",
    "/flaky/recovers": "sink.stored",  # 500, then 200 on the retry: stored once the server recovers
    "/reset": "fetch.dead",  # connection reset every time: retried, then dead-lettered with the reason
    "/stall": "fetch.dead",
    "/retry-seconds": "fetch.dead",  # 429 with Retry-After: 7, every time
    "/loop-a": "fetch.redirect_loop",
    "/to-metadata": "fetch.refused",
    "/big?length=1": "fetch.too_large",
    "/bomb": "fetch.too_large",
    "/file.html": "fetch.not_html",
    "/status/404": "fetch.http_error",
    "/status/410": "fetch.http_error",
}


def _settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = dict(storage_url=f"memory://{uuid.uuid4().hex}", allow_private=True, host_rate=0.0,
                                  read_timeout=1.0, request_timeout=3.0, max_bytes=2_000_000, fetch_retries=1)
    values.update(overrides)
    return Settings.from_env({}, **values)


def test_every_hostile_case_ends_in_exactly_one_outcome_and_no_page_is_lost() -> None:
    settings = _settings()
    with HostileServer() as server, structlog.testing.capture_logs() as logs:
        urls = [server.url(path) for path in CASES]
        summary = run_embedded(urls, settings, kind="article", processes=1, threads=8)
    by_url: dict[str, list[str]] = defaultdict(list)
    for event in logs:
        if event["event"] in TERMINAL:
            by_url[event["url"]].append(event["event"])
    for path, expected in CASES.items():
        url = normalize_url(server.url(path))
        assert by_url[url] == [expected], f"{path}: {by_url[url]}"
    retries = [e for e in logs if e["event"] == "fetch.retry"]
    assert {e["url"] for e in retries} == {normalize_url(server.url(p)) for p in
                                           ("/flaky/recovers", "/reset", "/stall", "/retry-seconds")}
    dead = [e for e in logs if e["event"] == "fetch.dead"]
    assert dead and all("gave up after 2 attempts" in e["error"] and e["reason"] == "retries_exhausted" for e in dead)
    assert not summary.interrupted and summary.stored == 2
    storage = open_storage(settings.storage_url)
    letters = [orjson.loads(storage.get(k)) for k in storage.keys("deadletters/fetch/")]
    # Every page that ended without success is a dead letter, by its reason: the retried ones
    # that ran out of attempts and the permanent failures (no retry, but an operator can retry them).
    by_path = {x["url"].removeprefix(server.url("")).rstrip("/") or "/": x["reason"] for x in letters}
    wanted = {normalize_url(server.url(p)).removeprefix(server.url("")).rstrip("/") or "/":
                ("retries_exhausted" if outcome == "fetch.dead" else outcome.removeprefix("fetch."))
                for p, outcome in CASES.items() if outcome.startswith("fetch.")}
    assert by_path == wanted, "each dead letter kept with its reason"


_CYRILLIC = "Новости дня: в порту снова ходят паромы, а рыбаки возвращаются к причалам после шторма. "
_JAPANESE = "今日のニュース：港の営業が再開され、フェリーは正午から運航を再開しました。漁師たちも港に戻っています。"
_FRENCH = "Café du port : la façade rénovée accueille déjà les habitués, et le marché de Noël ouvre ce week-end. "


def _page(title: str, text: str, codec: str, meta: str | None) -> bytes:
    head = f'<meta charset="{meta}">' if meta else ""
    body = "".join(f"<p>{text} {i}</p>" for i in range(6))
    return f"<html><head>{head}<title>{title}</title></head><body><article><h1>{title}</h1>{body}</article>" \
           f"</body></html>".encode(codec)


def test_pages_in_legacy_charsets_end_up_as_correct_text() -> None:
    cases = {
        # path: (bytes, Content-Type header, expected text)
        "/ru/header.html": (_page("Порт", _CYRILLIC, "cp1251", None), "text/html; charset=windows-1251", _CYRILLIC),
        "/ru/meta.html": (_page("Порт", _CYRILLIC, "cp1251", "windows-1251"), "text/html", _CYRILLIC),
        "/ja/meta.html": (_page("港", _JAPANESE, "shift_jis", "Shift_JIS"), "text/html", _JAPANESE),
        "/ja/header.html": (_page("港", _JAPANESE, "shift_jis", None), "text/html; charset=Shift_JIS", _JAPANESE),
        "/fr/meta.html": (_page("Café", _FRENCH, "latin-1", "iso-8859-1"), "text/html", _FRENCH),
    }
    site = Site(pages={p: (body, ctype) for p, (body, ctype, _) in cases.items()}, articles=[], listing_paths=[])
    settings = _settings()
    with serve_site(site) as server:
        summary = run_embedded([server.base_url + p for p in cases], settings, kind="article", processes=1)
    assert summary.stored == len(cases)
    storage = open_storage(settings.storage_url)
    import orjson

    records = {r["url"]: r for r in (orjson.loads(storage.get(k)) for k in storage.keys("articles/"))}
    for path, (_, _, text) in cases.items():
        record = records[normalize_url(server.base_url + path)]
        assert text.strip()[:30] in record["text"], f"{path}: {record['text'][:80]!r}"


def test_robots_txt_disallows_are_recorded_and_its_crawl_delay_spaces_requests() -> None:
    from tests.support.pipeline import mixed_site

    site = mixed_site(corpus=3, seed_per_style=1)
    site.pages["/robots.txt"] = (b"User-agent: *\nDisallow: /culture/\nCrawl-delay: 0.5\n", "text/plain")
    settings = _settings(host_rate=0.0)
    with serve_site(site) as server, structlog.testing.capture_logs() as logs:
        summary = run_embedded([server.base_url + "/"], settings, processes=1, threads=4)
        requests = list(server.requests)
    paths = [p for p, _ in requests]
    assert paths.count("/robots.txt") == 1, "robots.txt asked for once, for rules and sitemaps alike"
    assert not [p for p in paths if p.startswith("/culture/")], "nothing disallowed was requested"
    disallowed = [e for e in logs if e["event"] == "fetch.disallowed"]
    assert disallowed and all("/culture/" in e["url"] and "Disallow: /culture/" in e["reason"] for e in disallowed)
    assert summary.outcomes["fetch.disallowed"] == len(disallowed)
    times = sorted(t for _, t in requests)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.5 - 0.03, "Crawl-delay: 0.5 holds between every two requests"
    allowed_articles = [a for a in site.articles if not a.path.startswith("/culture/")]
    assert summary.stored == len(allowed_articles)


def test_a_crawl_delay_of_a_day_is_capped_and_the_site_is_still_crawled() -> None:
    from tests.support.pipeline import mixed_site

    site = mixed_site(corpus=2, seed_per_style=0)
    site.pages["/robots.txt"] = (b"User-agent: *\nCrawl-delay: 86400\n", "text/plain")
    settings = _settings(host_rate=0.0, max_crawl_delay=0.3)
    with serve_site(site) as server:
        summary = run_embedded([server.base_url + "/"], settings, processes=1, threads=4)
        times = sorted(t for _, t in server.requests)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert summary.stored == len(site.articles), "every article stored, not held for a day each"
    assert min(gaps) >= 0.3 - 0.03, "the capped delay still spaces the requests"
