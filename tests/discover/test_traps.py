"""Crawler traps: URLs that multiply without end are refused, real article URLs never are."""

from __future__ import annotations

import contextlib
import datetime
import json
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.site import corpus_dir
from workers.core.urls import InvalidURL, normalize_url
from workers.discover.traps import query_variant_key, strip_session_params, trap_reason

YEAR = 2025  # trap_reason(current_year=YEAR) makes date rules independent of the day tests run


def _corpus_urls() -> list[str]:
    pages = json.loads((corpus_dir() / "annotations.json").read_text("utf-8"))["pages"]
    return [page["url"] for page in pages]


def test_no_url_of_the_annotated_corpus_is_a_trap() -> None:
    """300 real article URLs (dated paths, ids, ;jsessionid=, typo3 queries): none is flagged,
    neither as written nor normalised nor with session ids stripped."""
    urls = _corpus_urls()
    assert len(urls) == 300
    checked = 0
    for raw in urls:
        variants = [raw, strip_session_params(raw)]
        # A few annotations are not URLs ("hard::..."): they are checked as written.
        with contextlib.suppress(InvalidURL):
            variants.append(normalize_url(raw))
        for url in variants:
            assert trap_reason(url) is None, url
            assert trap_reason(url, current_year=2022) is None, url
            checked += 1
    assert checked > 800


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        # Calendars and archives out of range, and calendar date pages.
        ("https://ex.com/calendar/1850/01/", "year 1850"),
        ("https://ex.com/calendar/2031/05/", "year 2031"),
        ("https://ex.com/archive/1975/06/", "year 1975"),
        ("https://ex.com/archiv/2099/", "year 2099"),
        ("https://ex.com/archive/2025/13/", "no month 13"),
        ("https://ex.com/archives/202712/", "year 2027"),
        ("https://ex.com/events/2025/03/04/", "calendar date page"),
        ("https://ex.com/kalender/2025-03-04", "calendar date page"),
        ("https://ex.com/veranstaltungen/20250304/", "calendar date page"),
        ("https://ex.com/events/?month=3&year=2025", "calendar page with date parameters"),
        ("https://ex.com/calendar/?tribe-bar-date=2025-03", "calendar page with date parameters"),
        ("https://ex.com/index.php?view=calendar&month=4", "calendar page with date parameters"),
        ("https://ex.com/news?year=1899", "year 1899"),
        ("https://ex.com/news?year=2027", "year 2027"),
        ("https://ex.com/page?date=2077-01-01", "year 2077"),
        ("https://ex.com/page?datum=19800101", "year 1980"),
        ("https://ex.com/news/?month=14", "no such month"),
        ("https://ex.com/2035/01/", "future"),
        ("https://ex.com/news/2031/12/some-story", "future"),
        # Repeated segments.
        ("https://ex.com/a/b/a/b/a/b/", "repeats 'a/b' 3 times"),
        ("https://ex.com/x/x/x", "repeats 'x' 3 times"),
        ("https://ex.com/news/world/europe/news/world/europe/", "repeats 'news/world/europe' 2 times"),
        ("https://ex.com/a/1/a/2/a/3/a/4", "'a' appears 4 times"),
        ("https://ex.com/en/en/en/en/story", "repeats 'en' 4 times"),
        # Depth and queries.
        ("https://ex.com/" + "/".join(f"s{i}" for i in range(13)), "13 segments"),
        ("https://ex.com/p?" + "&".join(f"f{i}={i}" for i in range(20)), "20 query parameters"),
        ("https://ex.com/p?q=" + "x" * 500, "502 characters"),
        ("https://ex.com/p?c=1&c=2&c=3&c=4&c=5", "'c' repeated 5 times"),
        # Session ids that cannot simply be dropped.
        ("https://ex.com/(S(lit3py55t21z5v55vlm25s55))/default.aspx", "session id"),
        ("https://ex.com/sid/a81b2c3d4e5f60718293a4b5c6d7e8f9/news/", "session id"),
        ("https://ex.com/shop/sessionid=abc123def456ghi789/x", "session id"),
    ],
)
def test_traps_are_named_with_a_reason(url: str, reason: str) -> None:
    found = trap_reason(url, current_year=YEAR)
    assert found is not None and reason in found, found


@pytest.mark.parametrize(
    "url",
    [
        "https://ex.com/",
        "https://ex.com/2025/01/21/slug.html",
        "https://ex.com/2026/01/preview-of-next-year",  # next year is plausible
        "https://ex.com/1985/03/12/world/old-archive-story.html",  # old dated article, no archive word
        "https://ex.com/archive/2025/01/",
        "https://ex.com/archive/1995/",
        "https://ex.com/archiv/4711",  # an id, not a year
        "https://ex.com/archive/123456",  # not a compact date (no month 56)
        "https://ex.com/events/",
        "https://ex.com/calendar/",
        "https://ex.com/events/2025/03/04/big-concert-review",  # a story about an event
        "https://ex.com/events/12345-city-marathon",
        "https://ex.com/de/news/de/news/",  # a two-word block twice is allowed
        "https://ex.com/ethik/ethik/398805-von-sprachregeln.html",
        "https://ex.com/news?page=3&year=2024",
        "https://ex.com/news?month=0",  # zero-based month widgets exist; not proof of a trap
        "https://ex.com/modules.php?name=News&file=article&sid=1234",
        "https://ex.com/?s=climate",
        "https://ex.com/page.html;jsessionid=ABC123.node1",  # stripped, not refused
        "https://ex.com/" + "/".join(f"s{i}" for i in range(12)),
        "https://ex.com/p?" + "&".join(f"f{i}={i}" for i in range(16)),
        "https://ex.com/p?q=" + "x" * 398,
        "https://ex.com/p?tag=a&tag=b&tag=c&tag=d",
        "https://ex.com/news/2024-05-06-a-dated-slug",
        "not a url at all",
        "",
    ],
)
def test_ordinary_urls_are_not_traps(url: str) -> None:
    assert trap_reason(url, current_year=YEAR) is None


def test_current_year_defaults_to_this_year() -> None:
    this_year = datetime.datetime.now(datetime.UTC).year
    assert trap_reason(f"https://ex.com/calendar/{this_year + 1}/01/") is not None  # a calendar page anyway
    assert trap_reason(f"https://ex.com/archive/{this_year + 1}/01/") is None
    assert trap_reason(f"https://ex.com/archive/{this_year + 2}/01/") is not None
    assert trap_reason(f"https://ex.com/{this_year}/01/15/story.html") is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://ex.com/a;jsessionid=X.1?PHPSESSID=abc&b=2#f", "https://ex.com/a?b=2#f"),
        ("https://ex.com/a%3Bjsessionid=X.1%3Bfoo=2/b", "https://ex.com/a%3Bfoo=2/b"),
        ("https://ex.com/a.html%3bJSESSIONID=FD52.1_cid382", "https://ex.com/a.html"),
        ("https://ex.com/x?ASPSESSIONIDQQGGQGPC=KJDF&id=7", "https://ex.com/x?id=7"),
        ("https://ex.com/x?id=7&sessionid=1&session_id=2&CFID=3&CFTOKEN=4", "https://ex.com/x?id=7"),
        ("https://ex.com/t?f=4&t=167&sid=58428beaa14598c2e02d93ad5c773e4d", "https://ex.com/t?f=4&t=167"),
        ("https://ex.com/?s=0123456789abcdef0123456789ABCDEF", "https://ex.com/"),
        ("https://ex.com/x?zenid=q&osCsid=r&b=1", "https://ex.com/x?b=1"),
        # Values that are not session tokens stay: a story id, a search word.
        ("https://ex.com/modules.php?name=News&sid=1234", "https://ex.com/modules.php?name=News&sid=1234"),
        ("https://ex.com/?s=climate+change", "https://ex.com/?s=climate+change"),
        ("https://ex.com/?sid=abcdefghijklmnopqrst", "https://ex.com/?sid=abcdefghijklmnopqrst"),
        # Nothing to strip: the URL is returned exactly as given.
        ("https://ex.com/a?b=2&a=1&&c#frag", "https://ex.com/a?b=2&a=1&&c#frag"),
        ("https://ex.com/session/2/agenda?session=3", "https://ex.com/session/2/agenda?session=3"),
    ],
)
def test_strip_session_params(url: str, expected: str) -> None:
    assert strip_session_params(url) == expected


def test_stripping_makes_session_variants_one_url() -> None:
    variants = [
        "https://ex.com/news/a.html",
        "https://ex.com/news/a.html;jsessionid=AAAA1111.node1",
        "https://ex.com/news/a.html;jsessionid=BBBB2222.node2",
        "https://ex.com/news/a.html?PHPSESSID=1d2e3f",
    ]
    assert {strip_session_params(u) for u in variants} == {"https://ex.com/news/a.html"}
    assert {normalize_url(strip_session_params(normalize_url(u))) for u in variants} == {"https://ex.com/news/a.html"}


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://ex.com/list?page=2", "https://ex.com/list?page=3&sort=new"),
        ("https://EX.com/list", "https://ex.com/list?x=1#top"),
        ("https://ex.com/list;jsessionid=ABC?x=1", "https://ex.com/list?y=2"),
    ],
)
def test_query_variants_of_one_path_share_a_key(a: str, b: str) -> None:
    assert query_variant_key(a) == query_variant_key(b) == "https://ex.com/list"


def test_query_variant_key_separates_paths_hosts_and_schemes() -> None:
    keys = {
        query_variant_key(u)
        for u in ("https://ex.com/a?x=1", "https://ex.com/b?x=1", "https://www.ex.com/a", "http://ex.com/a")
    }
    assert len(keys) == 4
    assert query_variant_key("https://ex.com") == "https://ex.com/"
    assert query_variant_key("https://[::1/x?y") == "https://[::1/x"  # malformed: still a key, no exception


_SESSION_PIECES = st.sampled_from(
    [
        "PHPSESSID=1a2b",
        "jsessionid=XYZ",
        "sid=58428beaa14598c2e02d93ad5c773e4d",
        "s=0123456789abcdef0123456789abcdef",
        "ASPSESSIONIDAB=CD",
        "sessionid=",
        "sid=12",
        "s=word",
    ]
)
_PLAIN_PIECES = st.builds("{}={}".format, st.text("abcdefgh", min_size=1, max_size=6), st.text("abc0129%+", max_size=8))
_PATH = st.lists(
    st.one_of(
        st.text("abcz019._-", min_size=1, max_size=10),
        st.sampled_from(["a;jsessionid=AB.1", "b%3Bjsessionid=CD", "c;x=1", "%3B", ";", "d;sid=ee;f=1"]),
    ),
    max_size=5,
)


@st.composite
def _session_urls(draw: st.DrawFn) -> str:
    path = "/".join(draw(_PATH))
    pieces = draw(st.lists(st.one_of(_SESSION_PIECES, _PLAIN_PIECES, st.just("")), max_size=6))
    query = "?" + "&".join(pieces) if draw(st.booleans()) else ""
    fragment = draw(st.sampled_from(["", "#top", "#a?b=1&PHPSESSID=2"]))
    return f"https://ex.com/{path}{query}{fragment}"


@settings(max_examples=300, deadline=None)
@given(st.one_of(_session_urls(), st.text(max_size=80)))
def test_strip_session_params_is_idempotent(url: str) -> None:
    once = strip_session_params(url)
    assert strip_session_params(once) == once
    assert len(once) <= len(url)


@settings(max_examples=200, deadline=None)
@given(_session_urls())
def test_stripping_keeps_every_other_parameter_in_order(url: str) -> None:
    stripped = strip_session_params(url)
    query = urlsplit(url).query
    kept = [p for p in query.split("&") if p and not p.lower().startswith(("phpsessid", "jsessionid", "aspsession"))]
    kept = [p for p in kept if p not in ("sid=58428beaa14598c2e02d93ad5c773e4d", "s=0123456789abcdef0123456789abcdef")]
    kept = [p for p in kept if not p.startswith("sessionid")]
    assert [p for p in urlsplit(stripped).query.split("&") if p] == kept
    assert "jsessionid" not in urlsplit(stripped).path.lower()
    assert stripped.partition("#")[2] == url.partition("#")[2]


@settings(max_examples=200, deadline=None)
@given(st.one_of(_session_urls(), st.text(max_size=120)))
def test_trap_rules_never_raise(url: str) -> None:
    reason = trap_reason(url, current_year=YEAR)
    assert reason is None or (isinstance(reason, str) and reason)
    assert isinstance(query_variant_key(url), str)
