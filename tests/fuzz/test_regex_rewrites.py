"""The linear rewrites of backtracking regexes read exactly what the regexes read.

Each regex below went quadratic or worse on hostile input and was replaced by a scanner or a
regex that tries fewer starts.  The old regex stays here as the oracle, on inputs short enough
for its backtracking not to matter, built from the characters it reacts to.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from workers.core import htmlparse
from workers.discover import feeds
from workers.extract import fields, metadata
from workers.sources import checks

ORACLE = settings(max_examples=300, deadline=None)


def soup(*pieces: str) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(pieces), max_size=14).map("".join)


def byte_soup(*pieces: bytes) -> st.SearchStrategy[bytes]:
    return st.lists(st.sampled_from(pieces), max_size=14).map(b"".join)


OLD_DECLARED_ENCODING = re.compile(r"""(?<=<\?xml)([^>]*?)encoding\s*=\s*["'][^"']*["']""")
OLD_TAG_SEPARATORS = re.compile(r"\s*[,;|]\s*")
OLD_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])", re.IGNORECASE)


@ORACLE
@given(soup("<?xml", "<?xm", "encoding", "encodin", "=", " ", "\u2003", '"', "'", ">", "x", "<", "?"))
def test_declare_utf8(text: str) -> None:
    assert feeds._declare_utf8(text) == OLD_DECLARED_ENCODING.sub(r'\1encoding="utf-8"', text, count=1)


@ORACLE
@given(soup("12:30", "1", ":", "00", " ", "CET", "cet", "KST", "MEST", "(", ")", "x", "GMT", "(CET", "\u0661\u0662"))
def test_named_zone(raw: str) -> None:
    text = " ".join(raw.split())  # as normalize_date hands it over
    old, new = feeds._NAMED_ZONE.search(text), feeds._named_zone(text)
    if old is None or new is None:
        assert old is None and new is None
    else:
        assert (old.span(), old.group(1)) == (new.span(), new.group(1))


@ORACLE
@given(soup("<", ">", "a", " ", "<b>", "</i>", "\n"))
def test_without_tags(text: str) -> None:
    assert feeds._without_tags(text) == feeds._TAG.sub(" ", text)


@ORACLE
@given(byte_soup(b"<meta", b"<META", b" ", b"charset", b"CHARSET", b"=", b"'", b'"', b">", b"utf-8", b"x", b"<"))
def test_discover_meta_charset(head: bytes) -> None:
    old = htmlparse._META_CHARSET_RE.search(head)
    assert htmlparse._declared_charset(head) == (old.group(1) if old else None)


@ORACLE
@given(
    byte_soup(
        b"<meta",
        b"<META",
        b"<metax",
        b"<?xml",
        b"<?XML",
        b" ",
        b"charset",
        b"encoding",
        b"=",
        b"'",
        b">",
        b"utf-8",
        b"x",
        b"<",
        b"-",
    )
)
def test_extract_meta_charset(head: bytes) -> None:
    old = metadata._META_CHARSET.search(head)
    assert metadata._declared_charset(head) == (old.group(1) if old else None)


@ORACLE
@given(soup(" ", "\t", "\n", ",", ";", "|", "a", "b c", "\u3000"))
def test_tag_separators(text: str) -> None:
    assert fields._TAG_SEPARATORS.split(text) == OLD_TAG_SEPARATORS.split(text)


@ORACLE
@given(soup("1", "2", ".", " ", "s", "M", "h", "d", "x", "\u0661", "5m"))
def test_duration(text: str) -> None:
    assert checks._DURATION_RE.findall(text) == OLD_DURATION.findall(text)
    assert checks._DURATION_RE.sub("", text) == OLD_DURATION.sub("", text)


TRAFILATURA_STRIP_TAGS = re.compile(r"(<!--.*?-->|<[^>]*>)")


@ORACLE
@given(soup("<", ">", "<!--", "-->", "--", "-", "\n", "a", " ", "<b>", "!"), st.sampled_from(("", " ", "X")))
def test_trafilatura_tag_stripper(text: str, repl: str) -> None:
    assert metadata._TagStripper(TRAFILATURA_STRIP_TAGS).sub(repl, text) == TRAFILATURA_STRIP_TAGS.sub(repl, text)


def test_trafilatura_uses_the_linear_tag_stripper() -> None:
    from trafilatura import json_metadata
    from trafilatura import metadata as trafilatura_metadata

    for module in (json_metadata, trafilatura_metadata):
        assert isinstance(module.HTML_STRIP_TAGS, metadata._TagStripper)
        assert module.HTML_STRIP_TAGS.sub("", "a<b>c<!-- d -->e") == "ace"
