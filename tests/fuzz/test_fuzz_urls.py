"""URL parsing and normalisation: any string gives a canonical URL or InvalidURL, quickly."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.hostile import FUZZ, timed, timed_or_error, urls
from workers.core.urls import MAX_URL_LENGTH, InvalidURL, host_allowed, host_of, normalize_url, url_id, validate_url


@FUZZ
@given(urls())
def test_validate_url_accepts_or_says_why(raw: str) -> None:
    result = timed_or_error(InvalidURL, validate_url, raw)
    if isinstance(result, InvalidURL):
        assert str(result), "an InvalidURL must say why"
        return
    assert isinstance(result, str)
    assert result == raw.strip()
    assert result.lower().startswith(("http://", "https://"))
    assert len(result) <= MAX_URL_LENGTH


@FUZZ
@given(urls())
def test_normalize_url_is_canonical_or_invalid(raw: str) -> None:
    result = timed_or_error(InvalidURL, normalize_url, raw)
    if isinstance(result, InvalidURL):
        return
    assert isinstance(result, str)
    assert result.startswith(("http://", "https://"))
    assert "#" not in result
    # Documented as idempotent: every stage keys its effects by this spelling.
    assert timed(normalize_url, result) == result
    assert re.fullmatch(r"[0-9a-f]{32}", url_id(result))
    assert host_of(result) == host_of(result).lower()


@FUZZ
@given(urls())
def test_host_of_is_total(raw: str) -> None:
    host = timed(host_of, raw)
    assert isinstance(host, str)
    assert host == host.lower()


@FUZZ
@given(st.text(max_size=80), st.lists(st.text(max_size=30), max_size=5))
def test_host_allowed_is_a_plain_answer(host: str, allowed: list[str]) -> None:
    answer = timed(host_allowed, host, allowed)
    assert isinstance(answer, bool)
    assert answer or host not in allowed
