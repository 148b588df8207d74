"""Link discovery and crawler traps: any page and any URL give links or verdicts, quickly."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.hostile import BASE, FUZZ, HOST, html_documents, texts, timed, urls
from workers.core.messages import DISCOVERY_KINDS
from workers.core.urls import host_allowed, host_of, normalize_url
from workers.discover.links import ARTICLE, LISTING, Link, classify_url, discover_links
from workers.discover.pages import Found, admissible, found_on_page, sniff_kind
from workers.discover.traps import query_variant_key, strip_session_params, trap_reason

HOSTS = frozenset({HOST, "*.example.org"})
CONTENT_TYPES = st.sampled_from(
    (None, "", "text/html", "text/html; charset=utf-8", "application/rss+xml", "application/xml", "text/plain", ";;")
)


@FUZZ
@given(html_documents(), st.sampled_from((BASE, "https://news.example.com", "not a url", "https://other.test/x")))
def test_discover_links_gives_normalised_links_on_allowed_hosts(body: bytes, base: str) -> None:
    links = timed(discover_links, body, base, allowed_hosts=HOSTS)
    assert isinstance(links, list)
    assert len({link.url for link in links}) == len(links)
    for link in links:
        assert isinstance(link, Link)
        assert link.kind in (ARTICLE, LISTING)
        assert isinstance(link.text, str)
        assert normalize_url(link.url) == link.url
        assert host_allowed(host_of(link.url), HOSTS)


@FUZZ
@given(urls())
def test_classify_url_is_total(url: str) -> None:
    assert timed(classify_url, url) in (ARTICLE, LISTING, None)


@FUZZ
@given(st.sampled_from(DISCOVERY_KINDS), html_documents(), CONTENT_TYPES, st.sampled_from((None, "2025-01-01")))
def test_found_on_page_for_every_declared_kind(
    declared: str, body: bytes, content_type: str | None, since: str | None
) -> None:
    kind = timed(sniff_kind, declared, body, content_type)
    assert kind in DISCOVERY_KINDS
    found = timed(found_on_page, declared, body, BASE, content_type, allowed_hosts=HOSTS, since=since)
    assert isinstance(found, list)
    for item in found:
        assert isinstance(item, Found)
        assert item.kind in ("article", "listing", "probe", "feed", "sitemap", "robots")
        assert item.via in DISCOVERY_KINDS
        assert item.url.startswith(("http://", "https://"))
        assert item.published is None or isinstance(item.published, str)
    admitted = timed(admissible, found, allowed_hosts=HOSTS, source=None)
    for item in admitted:
        assert normalize_url(item.url) == item.url
        assert host_allowed(host_of(item.url), HOSTS)
        assert trap_reason(item.url) is None


@FUZZ
@given(st.one_of(urls(), texts()))
def test_traps_never_raise(url: str) -> None:
    reason = timed(trap_reason, url, current_year=2025)
    assert reason is None or (isinstance(reason, str) and reason)
    stripped = timed(strip_session_params, url)
    # Documented as stable: stripping twice changes nothing more.
    assert timed(strip_session_params, stripped) == stripped
    assert isinstance(timed(query_variant_key, url), str)
