"""Charset sniffing and HTML parsing: any bytes, any declared charset, give text and a tree or None."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from tests.fuzz.hostile import BASE, FUZZ, html_documents, texts, timed
from workers.core import htmlparse
from workers.extract import metadata

LABELS = st.one_of(
    st.none(),
    st.sampled_from(
        (
            "utf-8",
            "UTF-8",
            "latin-1",
            "iso-8859-1",
            "windows-1252",
            "shift_jis",
            "gb2312",
            "euc-kr",
            "utf-16",
            "utf-16-le",
            "utf-32",
            "utf-7",
            "base64",
            "rot13",
            "zlib",
            "idna",
            "punycode",
            "unicode-escape",
            "mbcs",
            "x-unknown",
            "",
            '"utf-8"',
            "utf-8\x00",
            "  koi8-r ",
            "big5",
            "hz",
            "undefined",
        )
    ),
    st.text(max_size=20),
)


@FUZZ
@given(html_documents(), LABELS)
def test_decode_html_always_gives_text(raw: bytes, label: str | None) -> None:
    text = timed(metadata.decode_html, raw, label)
    assert isinstance(text, str)
    # Valid UTF-8 is read as UTF-8 whatever is declared (unless UTF-16/32 is): the documented rule.
    if label is None and not raw.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        try:
            expected = raw.decode("utf-8")
        except UnicodeDecodeError:
            return
        declared = metadata._declared_charset(raw[:8192])
        if declared is None or not declared.lower().startswith((b"utf-16", b"utf-32", b"utf16", b"utf32")):
            assert text == expected


@FUZZ
@given(st.one_of(html_documents().map(lambda raw: metadata.decode_html(raw)), texts()))
def test_extract_parse_html_gives_a_tree_or_none(text: str) -> None:
    tree = timed(metadata.parse_html, text)
    assert tree is None or isinstance(tree, etree._Element)
    if tree is not None:
        microdata = timed(metadata.microdata_names, tree)
        assert all(isinstance(name, str) for name in microdata)
        meta = timed(metadata.page_metadata, tree, BASE, microdata)
        assert set(meta) == {"title", "authors", "published", "language", "sitename", "description", "canonical_url"}
        assert isinstance(meta["authors"], list) and all(isinstance(a, str) for a in meta["authors"])
        for key in ("title", "published", "language", "sitename", "description", "canonical_url"):
            assert meta[key] is None or isinstance(meta[key], str)


@FUZZ
@given(st.one_of(html_documents(), texts()))
def test_discover_parse_html_gives_a_tree_or_none(html: bytes | str) -> None:
    tree = timed(htmlparse.parse_html, html)
    assert tree is None or isinstance(tree, etree._Element)
    assert htmlparse.parse_html(tree) is tree if tree is not None else True
