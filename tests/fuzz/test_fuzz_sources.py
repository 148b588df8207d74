"""The sources file: any text gives sources or a SourcesError with lines, never another exception."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.hostile import FUZZ, TOKENS, texts, timed_or_error
from workers.core.urls import normalize_url
from workers.sources.checks import KINDS
from workers.sources.sourcefile import Source, SourcesError, parse_sources

EXAMPLE = (Path(__file__).resolve().parents[2] / "examples" / "sources.toml").read_text(encoding="utf-8")
KEYS = (
    "name",
    "start",
    "articles",
    "listings",
    "exclude",
    "hosts",
    "storage_prefix",
    "interval",
    "max_depth",
    "max_pages",
    "host_rate",
    "refresh",
    "since",
    "kind",
    "url",
    "nmae",
)
TOML_TOKENS = (
    "[[source]]",
    "[defaults]",
    "[source]",
    "[[defaults]]",
    "\n",
    " = ",
    "=",
    '"',
    "'",
    "'''",
    '"""',
    "[",
    "]",
    "{",
    "}",
    ",",
    ".",
    "#",
    "\\",
    "name",
    "start",
    "https://a.example/",
    "15m",
    "1h30m",
    "once",
    "true",
    "1e999",
    "-1",
    "2025-01-01",
    "(",
    "*",
    "a{99999999999}",
    "\x00",
    "\t",
    "\r\n",
)


def _toml(value: Any) -> str:
    """A TOML spelling of a generated value (json.dumps writes valid TOML basic strings and numbers)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


VALUES: st.SearchStrategy[Any] = st.recursive(
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(("https://news.example.com/", "https://news.example.com/feed/", "15m", "0", "(a+)+$", "[", "")),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    max_leaves=12,
)
TABLES = st.lists(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6), min_size=1, max_size=3).map(
    lambda tables: "\n".join("[[source]]\n" + "\n".join(f"{k} = {_toml(v)}" for k, v in t.items()) for t in tables)
)


def _cut(text: str, at: int) -> str:
    return text[: at % (len(text) + 1)]


def _mutate(text: str, at: int, insert: str, drop: int) -> str:
    at %= len(text) + 1
    return text[:at] + insert + text[at + drop :]


SOURCE_TEXTS = st.one_of(
    texts(),
    st.lists(st.sampled_from(TOML_TOKENS + TOKENS), max_size=80).map("".join),
    TABLES,
    st.builds(_cut, st.just(EXAMPLE), st.integers(min_value=0)),
    st.builds(_mutate, st.just(EXAMPLE), st.integers(min_value=0), st.sampled_from(TOML_TOKENS), st.integers(0, 30)),
    st.builds(
        lambda opener, depth: f"[[source]]\nname = 'a'\nstart = {opener * depth}",
        st.sampled_from(("[", "{a = ")),
        st.integers(1, 5000),
    ),
)


def _check(source: Source) -> None:
    assert source.start_urls and len(source.start_urls) == len(source.kinds)
    assert all(normalize_url(url) == url for url in source.start_urls)
    assert all(kind in KINDS for kind in source.kinds)
    for pattern in (*source.article_patterns, *source.listing_patterns, *source.exclude_patterns):
        assert isinstance(re.compile(pattern), re.Pattern)
    assert source.interval_s >= 0 and source.max_depth >= 0 and source.max_pages >= 1


@FUZZ
@given(SOURCE_TEXTS)
def test_parse_sources_gives_sources_or_every_problem(text: str) -> None:
    result = timed_or_error(SourcesError, parse_sources, text)
    if isinstance(result, SourcesError):
        assert result.problems, "a SourcesError lists at least one problem"
        assert all(p.line >= 0 and p.message for p in result.problems)
        return
    assert isinstance(result, list) and result
    for source in result:
        _check(source)
