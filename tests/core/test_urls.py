"""URL normalisation: the rules that decide when two URLs are the same page."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.core.urls import InvalidURL, host_of, normalize_url, url_id, validate_url


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HTTP://Example.COM:80/a/b?utm_source=x&b=2&a=1#frag", "http://example.com/a/b?a=1&b=2"),
        ("https://example.com:443/A?fbclid=abc&id=3", "https://example.com/A?id=3"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/news/story.html#comments", "https://example.com/news/story.html"),
        ("  https://example.com/x  ", "https://example.com/x"),
        ("https://example.com:8080/x", "https://example.com:8080/x"),
    ],
)
def test_normalize_url_canonical_forms(raw: str, expected: str) -> None:
    assert normalize_url(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("ftp://example.com/x", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("https://user:pw@example.com/", "user-info"),
        ("https:///nohost", "no host"),
        ("https://example.com/a b", "whitespace"),
        ("https://example.com/" + "a" * 3000, "longer"),
        ("https://example.com:99999/", "(?i)port"),
    ],
)
def test_invalid_urls_are_refused_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidURL, match=reason):
        validate_url(raw)


def test_url_id_is_stable_and_short() -> None:
    a = url_id(normalize_url("https://Example.com/a?utm_medium=1"))
    b = url_id(normalize_url("https://example.com/a"))
    assert a == b and len(a) == 32 and int(a, 16) >= 0
    assert url_id("https://example.com/b") != a


def test_host_of() -> None:
    assert host_of("https://WWW.Example.com:8443/x") == "www.example.com"


_segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~", min_size=1, max_size=12)
_param = st.tuples(
    st.sampled_from(["id", "page", "q", "utm_source", "utm_campaign", "fbclid", "gclid", "ref", "lang"]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8),
)


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "Https"]))
    host = draw(st.sampled_from(["example.com", "News.Example.org", "sub.site.co.uk", "EXAMPLE.COM"]))
    port = draw(st.sampled_from(["", ":80", ":443", ":8080"]))
    path = "/".join(draw(st.lists(_segment, max_size=4)))
    params = draw(st.lists(_param, max_size=4, unique_by=lambda p: p[0]))
    query = "&".join(f"{k}={v}" for k, v in params)
    frag = draw(st.sampled_from(["", "#top", "#comments"]))
    return f"{scheme}://{host}{port}/{path}" + (f"?{query}" if query else "") + frag


@settings(max_examples=300, deadline=None)
@given(urls())
def test_normalisation_is_idempotent_and_drops_noise(raw: str) -> None:
    once = normalize_url(raw)
    assert normalize_url(once) == once
    assert "#" not in once
    assert "utm_" not in once and "fbclid" not in once and "gclid" not in once
    assert once.split("://", 1)[1].split("/", 1)[0] == once.split("://", 1)[1].split("/", 1)[0].lower()
    assert ":80/" not in once or once.startswith("https")
    assert ":443/" not in once or once.startswith("http:")


@settings(max_examples=200, deadline=None)
@given(urls(), st.randoms())
def test_query_order_does_not_change_identity(raw: str, rnd: object) -> None:
    base, _, query = raw.partition("?")
    query, _, frag = query.partition("#")
    if not query:
        return
    params = query.split("&")
    shuffled = sorted(params, reverse=True)
    other = base + "?" + "&".join(shuffled) + (f"#{frag}" if frag else "")
    assert url_id(normalize_url(raw)) == url_id(normalize_url(other))
