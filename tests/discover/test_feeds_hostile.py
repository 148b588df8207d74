"""Hostile prologs: no document start may make the sniffers or parsers run away.

A page of ``<!DOCTYPE `` and a few dozen ``[]`` once took the prolog regex exponential time while
holding the GIL: heartbeats stopped and every worker that got the message froze.  Each call here
runs in a forked child that is killed after a few seconds, so a regression fails instead of hanging.
"""

from __future__ import annotations

import codecs
import gzip
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.bounded import run_bounded
from workers.discover.feeds import _prolog_item, parse_feed, sniff_root
from workers.discover.feeds import looks_like_feed as _looks_like_feed
from workers.discover.pages import found_on_page, sniff_kind
from workers.discover.sitemaps import looks_like_sitemap as _looks_like_sitemap
from workers.discover.sitemaps import parse_sitemap

BASE = "https://news.example.com/feed.xml"
#: Per call; the old regex took ~10 s for 26 ``[]`` and doubled with each one more.
LIMIT_S = 0.5
#: Parsing hands the document to feedparser or lxml after the prolog; they get more room.
PARSE_LIMIT_S = 2.0

HOSTILE: dict[str, bytes] = {
    "doctype-brackets": b"<!DOCTYPE " + b"[]" * 40,
    "doctype-brackets-then-feed": b"<!DOCTYPE rss " + b"[]" * 40 + b"<rss><channel></channel></rss>",
    "doctype-brackets-closed-late": b"<!DOCTYPE " + b"[]" * 40 + b"x" * 100 + b"]",
    "doctype-nested-open": b"<!DOCTYPE " + b"[" * 50_000,
    "doctype-nested": b"<!DOCTYPE " + b"[" * 5_000 + b"]" * 5_000,
    "doctype-bracket-runs": b"<!DOCTYPE " + b"[x]" * 20_000,
    "doctype-lowercase": b"<!doctype " + b"[]" * 40,
    "doctype-unterminated": b"<!DOCTYPE html " + b"a" * 1_000_000,
    "comment-run-unterminated": b"<!--" * 50_000,
    "comment-dashes": b"<!--" + b"-" * 1_000_000,
    "comments-closed": b"<!-- -->" * 50_000 + b"<rss></rss>",
    "pi-run": b"<?" * 100_000,
    "xml-decl-run": b"<?xml " * 50_000,
    "xml-huge-attribute": b"<?xml version='1.0' a='" + b"x" * 1_000_000 + b"'",
    "xml-huge-attribute-closed": b"<?xml version='1.0' a='" + b"x" * 1_000_000 + b"'?><urlset></urlset>",
    "whitespace": b" \t\r\n" * 250_000,
    "mixed": (b"<!-- a --><?pi x?>" + b"<!DOCTYPE [" + b"[]" * 30) * 200,
    "utf16-doctype-brackets": codecs.BOM_UTF16_LE + ("<!DOCTYPE " + "[]" * 40).encode("utf-16-le"),
    "utf16-xml-decl-run": codecs.BOM_UTF16_LE + ("<?xml " * 50_000).encode("utf-16-le"),
    "gzip-doctype-brackets": gzip.compress(b"<!DOCTYPE " + b"[]" * 40),
}


def looks_like_feed(data: bytes) -> bool:
    return _looks_like_feed(data, None)


def looks_like_sitemap(data: bytes) -> bool:
    return _looks_like_sitemap(data, None)


def sniff_listing(data: bytes) -> str:
    return sniff_kind("listing", data, "text/html")


def sniff_feed(data: bytes) -> str:
    return sniff_kind("feed", data, "application/rss+xml")


SNIFFERS: dict[str, Callable[[bytes], Any]] = {
    "sniff_root": sniff_root,
    "looks_like_feed": looks_like_feed,
    "looks_like_sitemap": looks_like_sitemap,
    "sniff_kind-listing": sniff_listing,
    "sniff_kind-feed": sniff_feed,
}


def _parse_feed(data: bytes) -> list[Any]:
    return parse_feed(data, BASE)


def _parse_sitemap(data: bytes) -> list[Any]:
    return parse_sitemap(data, BASE).entries


def _found(data: bytes) -> list[Any]:
    return found_on_page("home", data, BASE, None, allowed_hosts=frozenset({"news.example.com"}))


PARSERS: dict[str, Callable[[bytes], list[Any]]] = {
    "parse_feed": _parse_feed,
    "parse_sitemap": _parse_sitemap,
    "found_on_page": _found,
}


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize("name", SNIFFERS)
def test_sniffers_return_in_bounded_time(name: str, body: bytes) -> None:
    outcome = run_bounded(SNIFFERS[name], body, timeout=5.0)
    assert outcome.error is None, outcome.error
    assert outcome.seconds < LIMIT_S, f"{name} took {outcome.seconds:.2f} s"
    assert outcome.value is None or isinstance(outcome.value, str | bool)


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize("name", PARSERS)
def test_parsers_return_in_bounded_time(name: str, body: bytes) -> None:
    outcome = run_bounded(PARSERS[name], body, timeout=10.0)
    assert outcome.error is None, outcome.error
    assert outcome.seconds < PARSE_LIMIT_S, f"{name} took {outcome.seconds:.2f} s"
    assert isinstance(outcome.value, list)


PROLOGS: dict[bytes, str | None] = {
    b"<?xml version='1.0'?><!-- " + b"-" * 10 + b" --><!DOCTYPE rss [" + b"[]" * 40 + b"]><rss/>": "rss",
    b"<!DOCTYPE " + b"[]" * 40: None,
    b"<!DOCTYPE x [ <!ENTITY a '>'> ]><feed/>": "feed",
    b"<!DOCTYPE x [ a ] b [ c ]><urlset/>": "urlset",
    b"<!doctype html><html></html>": "html",
    b"<!--> --><rdf:RDF/>": "rdf",
    b"<?> ?><sitemapindex/>": "sitemapindex",
    b"<!-- unterminated <rss>": None,
}


@pytest.mark.parametrize(("body", "root"), PROLOGS.items())
def test_a_hostile_prolog_does_not_hide_what_follows_it(body: bytes, root: str | None) -> None:
    # The scanner must read the prolog the regex did: a closed DOCTYPE with an internal subset,
    # comments and PIs before the root are skipped, whatever their size; an open one hides the rest.
    outcome = run_bounded(sniff_root, body, timeout=5.0)
    assert outcome.error is None, outcome.error
    assert outcome.value == root


# The regex the scanner replaced: the oracle on inputs too short for its backtracking to matter.
_OLD_PROLOG = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE(?:[^\[>]|\[.*?\])*>)", re.DOTALL | re.IGNORECASE)
_PIECES = [
    b"<!DOCTYPE",
    b"<!doctype",
    b"<!--",
    b"-->",
    b"<?",
    b"?>",
    b"[",
    b"]",
    b">",
    b"<",
    b"-",
    b"?",
    b" ",
    b"\n",
    b"x",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=14), st.integers(min_value=0, max_value=3))
def test_the_prolog_scanner_reads_what_the_regex_read(pieces: list[bytes], position: int) -> None:
    data = b"".join(pieces)
    old = _OLD_PROLOG.match(data, position)
    expected = None if old is None else (old.start() + len(old.group()) - len(old.group().lstrip()), old.end())
    assert _prolog_item(data, position) == expected
