"""Feeds: RSS 0.91/1.0/2.0, Atom and JSON Feed as the real web writes them, sniffing, autodiscovery, dates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.site import Site, serve_site
from workers.discover.feeds import FeedEntry, date_bounds, find_feeds, looks_like_feed, normalize_date, parse_feed

BASE = "https://news.example.com"
FEED_URL = BASE + "/feeds/all.xml"


def urls(entries: list[FeedEntry]) -> list[str]:
    return [e.url for e in entries]


# --- RSS ----------------------------------------------------------------------------------

RSS20 = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel>
  <title>News Example</title><link>https://news.example.com/</link><description>All the news</description>
  <item>
    <title>Floods &amp; storms: what we know</title>
    <link>https://news.example.com/world/2025/01/21/floods-storms.html</link>
    <pubDate>Tue, 21 Jan 2025 08:30:00 -0500</pubDate>
    <guid isPermaLink="false">news-4711</guid>
    <content:encoded><![CDATA[<p>Body <a href="/elsewhere">link</a></p>]]></content:encoded>
  </item>
  <item>
    <title><![CDATA[Markets <rally> again]]></title>
    <link>/business/2025/01/20/markets-rally.html</link>
    <pubDate>Mon, 20 Jan 2025 17:00:00 GMT</pubDate>
  </item>
  <item>
    <title>Permalink guid only</title>
    <guid>https://news.example.com/science/2025/01/19/comet-returns.html</guid>
    <dc:date>2025-01-19T10:00:00+01:00</dc:date>
  </item>
  <item><title>No link at all</title><guid isPermaLink="false">urn:uuid:1234</guid></item>
  <item><title>Mail link</title><link>mailto:editor@news.example.com</link></item>
  <item><title>Script link</title><link>javascript:alert(1)</link></item>
</channel>
</rss>
"""


def test_rss20_items_links_dates_and_titles() -> None:
    entries = parse_feed(RSS20, FEED_URL)
    assert entries == [
        FeedEntry(
            BASE + "/world/2025/01/21/floods-storms.html", "2025-01-21T13:30:00Z", "Floods & storms: what we know"
        ),
        FeedEntry(BASE + "/business/2025/01/20/markets-rally.html", "2025-01-20T17:00:00Z", "Markets <rally> again"),
        FeedEntry(BASE + "/science/2025/01/19/comet-returns.html", "2025-01-19T09:00:00Z", "Permalink guid only"),
    ]


RSS091 = b"""<?xml version="1.0" encoding="ISO-8859-1"?>
<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"
  "http://my.netscape.com/publish/formats/rss-0.91.dtd">
<rss version="0.91">
<channel>
<title>Old school</title><link>http://oldschool.example.org/</link><description>d</description><language>en</language>
<item><title>First story</title><link>http://oldschool.example.org/stories/first-story.html</link>
<description>Teaser</description></item>
<item><title>Second story</title><link>http://oldschool.example.org/stories/second-story.html</link></item>
</channel>
</rss>
"""


def test_rss091_with_netscape_doctype() -> None:
    entries = parse_feed(RSS091, "http://oldschool.example.org/rss.xml")
    assert urls(entries) == [
        "http://oldschool.example.org/stories/first-story.html",
        "http://oldschool.example.org/stories/second-story.html",
    ]
    assert [e.title for e in entries] == ["First story", "Second story"]
    assert all(e.published is None for e in entries)


RSS10 = b"""<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
         xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://blog.example.net/index.rdf">
    <title>RDF blog</title><link>https://blog.example.net/</link><description>d</description>
    <items><rdf:Seq>
      <rdf:li rdf:resource="https://blog.example.net/2025/01/rdf-lives-on.html"/>
      <rdf:li rdf:resource="https://blog.example.net/2025/01/second-post.html"/>
    </rdf:Seq></items>
  </channel>
  <item rdf:about="https://blog.example.net/2025/01/rdf-lives-on.html">
    <title>RDF lives on</title><link>https://blog.example.net/2025/01/rdf-lives-on.html</link>
    <dc:date>2025-01-18T21:15:00+09:00</dc:date>
  </item>
  <item rdf:about="https://blog.example.net/2025/01/second-post.html">
    <title>Second post</title><link>https://blog.example.net/2025/01/second-post.html</link>
    <dc:date>2025-01-17</dc:date>
  </item>
</rdf:RDF>
"""


def test_rss10_rdf() -> None:
    entries = parse_feed(RSS10, "https://blog.example.net/index.rdf")
    assert entries == [
        FeedEntry("https://blog.example.net/2025/01/rdf-lives-on.html", "2025-01-18T12:15:00Z", "RDF lives on"),
        FeedEntry("https://blog.example.net/2025/01/second-post.html", "2025-01-17", "Second post"),
    ]


def test_tracking_duplicates_collapse_to_one_entry_with_the_newest_date() -> None:
    feed = b"""<rss version="2.0"><channel><title>t</title>
    <item><title>Story</title><link>https://news.example.com/a/story-one-here.html?utm_source=rss&amp;utm_medium=feed</link>
      <pubDate>Mon, 20 Jan 2025 08:00:00 +0000</pubDate></item>
    <item><title>Other</title><link>https://news.example.com/a/story-two-here.html</link></item>
    <item><title>Story again</title><link>https://news.example.com/a/story-one-here.html#comments</link>
      <pubDate>Tue, 21 Jan 2025 08:00:00 +0000</pubDate></item>
    </channel></rss>"""
    entries = parse_feed(feed, FEED_URL)
    assert entries == [
        FeedEntry(BASE + "/a/story-one-here.html", "2025-01-21T08:00:00Z", "Story"),
        FeedEntry(BASE + "/a/story-two-here.html", None, "Other"),
    ]


def test_windows_1252_feed() -> None:
    feed = (
        '<?xml version="1.0" encoding="windows-1252"?>\n<rss version="2.0"><channel><title>Caf\xe9</title>'
        "<item><title>“Quoted” caf\xe9 – news</title><link>http://cp.example.org/caf\xe9-story.html</link>"
        "<pubDate>Sat, 18 Jan 2025 12:00:00 CET</pubDate></item></channel></rss>"
    ).encode("cp1252")
    [entry] = parse_feed(feed, "http://cp.example.org/rss")
    assert entry.title == "“Quoted” café – news"
    assert entry.url == "http://cp.example.org/caf%C3%A9-story.html"
    assert entry.published == "2025-01-18T11:00:00Z"


def test_byte_order_mark_and_leading_whitespace() -> None:
    feed = b"\xef\xbb\xbf\n\n  " + RSS20
    assert urls(parse_feed(feed, FEED_URL)) == urls(parse_feed(RSS20, FEED_URL))


def test_utf16_feed() -> None:
    feed = RSS091.decode("latin-1").replace("ISO-8859-1", "UTF-16").encode("utf-16")
    assert len(parse_feed(feed, "http://oldschool.example.org/rss.xml")) == 2


def test_feed_behind_stray_php_output_is_still_read() -> None:
    feed = b"<br />\n<b>Warning</b>: Cannot modify header information in /var/www/feed.php<br />\n" + RSS20
    assert len(parse_feed(feed, FEED_URL)) == 3


def test_truncated_feed_gives_the_items_before_the_cut() -> None:
    cut = RSS20[: RSS20.index(b"<item>\n    <title>Permalink")]
    assert urls(parse_feed(cut, FEED_URL)) == urls(parse_feed(RSS20, FEED_URL))[:2]


def test_bad_dates_are_none_not_guesses() -> None:
    feed = b"""<rss version="2.0"><channel><title>t</title>
    <item><link>http://d.example.org/a-b-c</link><pubDate>yesterday-ish</pubDate></item>
    <item><link>http://d.example.org/d-e-f</link><pubDate>Tue, 32 Jan 2025 08:00:00 GMT</pubDate></item>
    <item><link>http://d.example.org/g-h-i</link><pubDate>2025/01/21 08:00:00</pubDate></item>
    <item><link>http://d.example.org/j-k-l</link><pubDate>0000-00-00 00:00:00</pubDate></item>
    <item><link>http://d.example.org/m-n-o</link><pubDate>2025-02-30</pubDate></item>
    </channel></rss>"""
    assert [e.published for e in parse_feed(feed, "http://d.example.org/rss")] == [
        None,
        None,
        "2025-01-21T08:00:00",  # a time without a zone stays as written
        None,
        None,
    ]


# --- Atom ---------------------------------------------------------------------------------

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://atom.example.com/blog/">
  <title>Atom blog</title>
  <link rel="self" href="https://atom.example.com/blog/atom.xml"/>
  <updated>2025-01-21T10:00:00Z</updated>
  <entry>
    <title type="html">&lt;em&gt;Relative&lt;/em&gt; link &amp;amp; xml:base</title>
    <link rel="alternate" type="text/html" href="posts/relative-link-story.html"/>
    <link rel="replies" type="text/html" href="posts/relative-link-story.html#comments"/>
    <link rel="enclosure" href="media/podcast.mp3"/>
    <id>tag:atom.example.com,2025:1</id>
    <published>2025-01-20T09:00:00+01:00</published>
    <updated>2025-01-21T09:00:00+01:00</updated>
  </entry>
  <entry xml:base="/archive/">
    <title>Entry with its own base</title>
    <link href="2025/01/entry-own-base.html"/>
    <id>tag:atom.example.com,2025:2</id>
    <updated>2025-01-19</updated>
  </entry>
  <entry>
    <title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">Only <b>self</b> and enclosure</div></title>
    <link rel="self" href="entries/3.xml"/><link rel="enclosure" href="media/3.mp3"/>
    <id>tag:atom.example.com,2025:3</id>
  </entry>
  <entry>
    <title>Absolute elsewhere</title>
    <link href="https://other.example.org/2025/01/guest-post-here"/>
    <id>tag:atom.example.com,2025:4</id><published>2025-01-18T00:00:00-08:00</published>
  </entry>
</feed>
"""


def test_atom_xml_base_relative_links_and_newest_of_published_updated() -> None:
    entries = parse_feed(ATOM, "https://atom.example.com/blog/atom.xml")
    assert entries == [
        FeedEntry(
            "https://atom.example.com/blog/posts/relative-link-story.html",
            "2025-01-21T08:00:00Z",
            "Relative link & xml:base",
        ),
        FeedEntry(
            "https://atom.example.com/archive/2025/01/entry-own-base.html", "2025-01-19", "Entry with its own base"
        ),
        FeedEntry("https://other.example.org/2025/01/guest-post-here", "2025-01-18T08:00:00Z", "Absolute elsewhere"),
    ]


def test_atom_without_xml_base_resolves_against_the_feed_url() -> None:
    feed = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
      <entry><title>x</title><link href="../2025/01/up-one-level.html"/><id>1</id></entry></feed>"""
    assert urls(parse_feed(feed, "https://rel.example.com/feeds/atom.xml")) == [
        "https://rel.example.com/2025/01/up-one-level.html"
    ]


# --- JSON Feed ----------------------------------------------------------------------------


def jsonfeed(items: list[object], version: str = "https://jsonfeed.org/version/1.1") -> bytes:
    return json.dumps({"version": version, "title": "JSON news", "items": items}).encode()


def test_json_feed_items() -> None:
    data = jsonfeed(
        [
            {"id": "1", "url": "https://j.example.com/2025/01/21/json-one.html", "title": " One\n story ",
             "date_published": "2025-01-21T08:00:00+02:00"},
            {"id": "2", "url": "/2025/01/20/json-relative.html", "date_published": "2025-01-20T08:00:00Z",
             "date_modified": "2025-01-22T08:00:00Z"},
            {"id": "https://j.example.com/2025/01/19/id-is-the-permalink.html", "title": "Id as URL"},
            {"id": "urn:4", "external_url": "https://elsewhere.example.org/linked", "title": "Link post"},
            {"id": "5", "url": "ftp://j.example.com/file"},
            "not an item",
            {"id": "6", "url": 42},
        ]
    )
    assert parse_feed(data, "https://j.example.com/feed.json") == [
        FeedEntry("https://j.example.com/2025/01/21/json-one.html", "2025-01-21T06:00:00Z", "One story"),
        FeedEntry("https://j.example.com/2025/01/20/json-relative.html", "2025-01-22T08:00:00Z", None),
        FeedEntry("https://j.example.com/2025/01/19/id-is-the-permalink.html", None, "Id as URL"),
    ]


def test_json_feed_version_1_and_bom() -> None:
    data = b"\xef\xbb\xbf" + jsonfeed([{"id": "a", "url": "https://j.example.com/a-b-c"}], "https://jsonfeed.org/version/1")
    assert urls(parse_feed(data, "https://j.example.com/feed.json")) == ["https://j.example.com/a-b-c"]


@pytest.mark.parametrize(
    "data",
    [
        b'{"items": [{"url": "https://j.example.com/x"}]}',  # plain JSON, not a JSON Feed
        b'{"version": "https://jsonfeed.org/version/1.1", "items": {"url": "x"}}',
        b'{"version": "https://jsonfeed.org/version/1.1", "items": [',
        b"[1, 2, 3]",
        b'{"version": "https://jsonfeed.org/version/1.1"' + b', "x": [' * 5000 + b"]" * 5000 + b"}",
    ],
)
def test_json_that_is_not_a_usable_feed(data: bytes) -> None:
    assert parse_feed(data, "https://j.example.com/feed.json") == []


# --- not feeds ----------------------------------------------------------------------------

HTML_PAGE = b"""<!DOCTYPE html><html><head><title>News</title>
<link rel="alternate" type="application/rss+xml" href="/feed/"></head>
<body><article><h2><a href="/world/2025/01/21/story.html">Story</a></h2></article></body></html>"""


@pytest.mark.parametrize(
    "data",
    [HTML_PAGE, b"", b"   ", b"\x00\x01\x02garbage\xff\xfe\xfd", b"<urlset><url><loc>http://x.example/a</loc></url></urlset>",
     b"just some text", b"<rss", b"<?xml version='1.0'?>"],
)
def test_things_that_are_not_feeds_give_nothing(data: bytes) -> None:
    assert parse_feed(data, FEED_URL) == []


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from([b"", b"<rss version='2.0'><channel><item><link>", b"<feed>", b"{"]))
def test_parse_feed_never_raises(data: bytes, prefix: bytes) -> None:
    entries = parse_feed(prefix + data, FEED_URL)
    assert all(e.url.startswith(("http://", "https://")) for e in entries)


def test_external_entities_are_not_resolved(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    with serve_site(Site(pages={}, articles=[], listing_paths=[])) as server:
        feed = f"""<?xml version="1.0"?>
<!DOCTYPE rss [
  <!ENTITY file SYSTEM "file://{secret}">
  <!ENTITY net SYSTEM "{server.url('/xxe')}">
  <!ENTITY % remote SYSTEM "{server.url('/dtd')}"> %remote;
]>
<rss version="2.0"><channel><title>t</title>
<item><title>a &file; b &net; c</title><link>http://x.example.org/xxe-story-here</link></item>
</channel></rss>""".encode()
        entries = parse_feed(feed, "http://x.example.org/rss")
        assert server.request_paths() == []
    assert "TOP-SECRET" not in repr(entries)
    assert urls(entries) == ["http://x.example.org/xxe-story-here"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
@pytest.mark.parametrize("separator", ["", "\n"])
def test_entity_expansion_bomb_is_not_expanded(encoding: str, separator: str) -> None:
    # Eleven levels of ten: 10**11 "lol"s if anything expanded it. On one line, feedparser's own
    # DOCTYPE filter misses the definitions and expat expands about 8 MB before it gives up.
    defs = separator.join(
        ['<!ENTITY l0 "lol">'] + [f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 12)]
    )
    feed = f"""<?xml version="1.0" encoding="{encoding}"?><!DOCTYPE rss [{separator}{defs}{separator}]>
<rss version="2.0"><channel><title>t</title><item><title>&l11;</title><link>http://x.example.org/bomb-story-here</link>
</item></channel></rss>""".encode(encoding)
    entries = parse_feed(feed, "http://x.example.org/rss")
    assert len(repr(entries)) < 1000
    assert urls(entries) == ["http://x.example.org/bomb-story-here"]


# --- looks_like_feed ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "content_type", "expected"),
    [
        (RSS20, "application/rss+xml", True),
        (RSS20, "text/html; charset=utf-8", True),  # mislabelled by the server: the body wins
        (RSS10, "application/xml", True),
        (ATOM, None, True),
        (RSS091, "text/xml", True),
        (jsonfeed([]), "application/json", True),
        (b'{"version": "1", "items": []}', "application/feed+json", False),
        (HTML_PAGE, "application/rss+xml", False),  # a feed URL that now serves a page
        (HTML_PAGE, "text/html", False),
        (b"<urlset/>", "application/xml", False),
        (b"", "application/atom+xml", True),  # nothing to sniff: the header decides
        (b"\x00\x01", "application/rss+xml; charset=utf-8", True),
        (b"\x00\x01", "application/octet-stream", False),
        (b"", None, False),
    ],
)
def test_looks_like_feed(data: bytes, content_type: str | None, expected: bool) -> None:
    assert looks_like_feed(data, content_type) is expected


# --- find_feeds ---------------------------------------------------------------------------


def test_find_feeds_in_document_order_absolute_and_unique() -> None:
    page = """<!DOCTYPE html><html><head>
    <link rel="stylesheet" href="/site.css">
    <link rel="alternate" type="application/rss+xml" title="All" href="/feed/">
    <link rel="alternate" type="application/atom+xml" href="https://news.example.com/atom.xml?utm_source=x">
    <link rel="ALTERNATE" type="Application/RSS+XML; charset=UTF-8" href="feeds/world.rss">
    <link rel="alternate" type="application/feed+json" href="/feed.json">
    <link rel="alternate" type="application/rdf+xml" href="/index.rdf">
    <link rel="alternate" type="application/rss+xml" href="/feed">
    <link rel="alternate" hreflang="de" type="text/html" href="/de/">
    <link rel="alternate stylesheet" type="text/css" href="/dark.css">
    <link rel="alternate" type="application/rss+xml" href="javascript:void(0)">
    <link rel="alternate" type="application/rss+xml" href="">
    <link rel="alternate" type="application/json" href="/wp-json/wp/v2/posts">
    <link rel="feed" type="application/rss+xml" href="/not-alternate.xml">
    </head><body><a rel="alternate" type="application/rss+xml" href="/body-anchor.xml">RSS</a></body></html>"""
    assert find_feeds(page, BASE + "/world/") == [
        BASE + "/feed/",
        BASE + "/atom.xml",
        BASE + "/world/feeds/world.rss",
        BASE + "/feed.json",
        BASE + "/index.rdf",
        BASE + "/feed",
    ]


def test_find_feeds_skips_comment_feeds() -> None:
    page = """<html><head>
    <link rel="alternate" type="application/rss+xml" title="Example News &raquo; Feed" href="/feed/">
    <link rel="alternate" type="application/rss+xml" title="Example News &raquo; Comments Feed" href="/comments/feed/">
    <link rel="alternate" type="application/rss+xml" title="Ferries &raquo; Kommentar-Feed" href="/ferries/feed/">
    <link rel="alternate" type="application/rss+xml" title="Kommentare zu Ferries" href="/ferries/?feed=rss2">
    <link rel="alternate" type="application/rss+xml" href="/?feed=comments-rss2">
    <link rel="alternate" type="application/rss+xml" title="Comment is free" href="/commentisfree/rss">
    </head><body></body></html>"""
    assert find_feeds(page, BASE + "/ferries/") == [BASE + "/feed/", BASE + "/commentisfree/rss"]


def test_find_feeds_honours_base_href_and_bytes_in_their_own_charset() -> None:
    page = (
        '<html><head><meta charset="windows-1252"><title>Caf\xe9</title><base href="https://cdn.example.net/x/">'
        '<link rel="alternate" type="application/atom+xml" href="atom.xml"></head></html>'
    ).encode("cp1252")
    assert find_feeds(page, BASE + "/") == ["https://cdn.example.net/x/atom.xml"]


@pytest.mark.parametrize("page", ["", b"", b"\x00\xff", "<html><head></head></html>", "plain text"])
def test_find_feeds_on_pages_without_feeds(page: str | bytes) -> None:
    assert find_feeds(page, BASE + "/") == []


# --- dates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("Tue, 21 Jan 2025 08:30:00 GMT", "2025-01-21T08:30:00Z"),
        ("Tue, 21 Jan 2025 08:30:00 +0000", "2025-01-21T08:30:00Z"),
        ("Tue, 21 Jan 2025 08:30:00 -0500", "2025-01-21T13:30:00Z"),
        ("21 Jan 2025 08:30 EST", "2025-01-21T13:30:00Z"),
        ("Tue, 21 Jan 2025 08:30:00 CEST", "2025-01-21T06:30:00Z"),
        ("Tue, 21 Jan 2025 08:30:00 +0100 (CET)", "2025-01-21T07:30:00Z"),
        ("Tue, 21 Jan 2025 08:30:00", "2025-01-21T08:30:00Z"),  # RFC 822 without a zone: GMT
        ("Tue, 21 Jan 25 08:30:00 GMT", "2025-01-21T08:30:00Z"),
        ("Wed, 01 Jan 2025 00:30:00 +0100", "2024-12-31T23:30:00Z"),
        ("2025-01-21T08:30:00Z", "2025-01-21T08:30:00Z"),
        ("2025-01-21T08:30:00.123456+01:00", "2025-01-21T07:30:00Z"),
        ("2025-01-21T08:30+05:30", "2025-01-21T03:00:00Z"),
        ("2025-01-21 08:30:00 +0100", "2025-01-21T07:30:00Z"),
        ("2025-01-21T08:30:00 UTC", "2025-01-21T08:30:00Z"),
        ("2025-01-21T08:30:00", "2025-01-21T08:30:00"),
        ("  2025-01-21 \n", "2025-01-21"),
        ("2025/01/21", "2025-01-21"),
        ("2025-01", None),
        ("2025", None),
        ("2025-13-01", None),
        ("2025-01-21T25:00:00Z", None),
        ("not a date", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_date(text: str | None, iso: str | None) -> None:
    assert normalize_date(text) == iso


def test_date_bounds() -> None:
    day = date_bounds("2025-01-21")
    assert day is not None
    assert (day[0].isoformat(), day[1].isoformat()) == ("2025-01-21T00:00:00+00:00", "2025-01-21T23:59:59.999999+00:00")
    moment = date_bounds("2025-01-21T08:30:00Z")
    assert moment is not None and moment[0] == moment[1] and moment[0].isoformat() == "2025-01-21T08:30:00+00:00"
    assert date_bounds("2025-01-21T08:30:00") == date_bounds("2025-01-21T08:30:00Z")
    assert date_bounds("nonsense") is None


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=500), st.sampled_from(["", '<link rel="alternate" type="application/rss+xml" href="']))
def test_find_feeds_never_raises(page: str, prefix: str) -> None:
    assert all(url.startswith(("http://", "https://")) for url in find_feeds(prefix + page, BASE + "/"))
