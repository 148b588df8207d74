"""The sources file: operators declare sites in TOML; every mistake is reported at once, at its line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.core.urls import InvalidURL, normalize_url
from workers.sources.sourcefile import (
    KINDS,
    Source,
    SourceProblem,
    SourcesError,
    classify_with,
    default_source,
    format_sources,
    load_sources,
    parse_sources,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sources.toml"
MARK = "# !"  # a line where a test expects a problem


def problems_of(text: str) -> list[SourceProblem]:
    with pytest.raises(SourcesError) as info:
        parse_sources(text, "s.toml")
    return info.value.problems


def marked_lines(text: str) -> list[int]:
    return [n for n, line in enumerate(text.splitlines(), 1) if line.rstrip().endswith(MARK)]


# --- what a good file means ------------------------------------------------------------------


def test_example_file_parses_to_the_documented_sources() -> None:
    sources = load_sources(EXAMPLE)
    assert [s.name for s in sources] == ["kcna", "example-news", "example-wire", "example-archive"]
    kcna = sources[0]
    assert kcna == Source(
        name="kcna",
        start_urls=("https://kcnawatch.org/", "https://kcnawatch.org/feed/", "https://kcnawatch.org/newstream/"),
        kinds=("home", "feed", "listing"),
        article_patterns=(r"^https://kcnawatch\.org/newstream/\d+/",),
        listing_patterns=(r"/page/\d+/$",),
        exclude_patterns=("/tag/", r"\?s="),
        allowed_hosts=("kcnawatch.org", "www.kcnawatch.org"),
        interval_s=600.0,
        max_depth=5,
        max_pages=2000,
        host_rate=0.5,
        storage_prefix="kcna/",
        refresh=False,
        since="2025-01-01",
    )
    news, wire, archive = sources[1:]
    # [defaults] fill what a source leaves out.
    assert (news.interval_s, news.host_rate, news.max_depth, news.max_pages) == (900.0, 1.0, 50, 10_000)
    assert news.kinds == ("home",) and news.allowed_hosts == ("www.example.com", "example.com")
    assert wire.kinds == ("sitemap", "feed", "listing") and wire.allowed_hosts == ("*.example.org",)
    assert wire.interval_s == 3600.0 and wire.exclude_patterns == ("/live/", "/video/")
    assert archive.interval_s == 0.0 and archive.max_pages == 50_000


def test_a_minimal_source_gets_every_built_in_default() -> None:
    [source] = parse_sources('[[source]]\nname = "x"\nstart = "HTTPS://News.Example.com/World/?utm_source=a"\n')
    assert source == Source(
        name="x",
        start_urls=("https://news.example.com/World/",),
        kinds=("listing",),
        allowed_hosts=("news.example.com", "www.news.example.com"),
    )
    assert (source.interval_s, source.max_depth, source.max_pages) == (900.0, 50, 10_000)
    assert source.host_rate is None and source.storage_prefix is None and source.since is None
    assert source.refresh is False and source.article_patterns == ()


def test_defaults_apply_to_every_source_and_a_source_overrides_them() -> None:
    text = """
[defaults]
interval = "1h"
max_pages = 50
refresh = true
since = 2024-06-01

[[source]]
name = "a"
start = ["http://127.0.0.1:8080/"]

[[source]]
name = "b"
start = ["https://b.example/"]
interval = 120
refresh = false
"""
    a, b = parse_sources(text)
    assert (a.interval_s, a.max_pages, a.refresh, a.since) == (3600.0, 50, True, "2024-06-01")
    assert a.allowed_hosts == ("127.0.0.1",) and a.kinds == ("home",)
    assert (b.interval_s, b.max_pages, b.refresh, b.since) == (120.0, 50, False, "2024-06-01")


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://x.example/", "home"),
        ("https://x.example", "home"),
        ("https://x.example/?lang=en", "listing"),
        ("https://x.example/world/", "listing"),
        ("https://x.example/sitemap.xml", "sitemap"),
        ("https://x.example/sitemaps/sitemap-news-2025.xml.gz", "sitemap"),
        ("https://x.example/feed/", "feed"),
        ("https://x.example/world/rss.xml", "feed"),
        ("https://x.example/news.rss", "feed"),
        ("https://x.example/feeds/world", "listing"),
    ],
)
def test_kind_of_a_bare_start_url(url: str, kind: str) -> None:
    [source] = parse_sources(f'[[source]]\nname = "x"\nstart = ["{url}"]\n')
    assert source.kinds == (kind,)
    assert default_source(url).kinds == (kind,)


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [('"90s"', 90), ('"15m"', 900), ('"2h"', 7200), ('"1d"', 86400), ('"1h30m"', 5400), ('"1h 30m"', 5400),
     ('"2.5m"', 150), ("600", 600), ("61.5", 61.5), ('"600"', 600), ("0", 0), ('"once"', 0), ('"0s"', 0)],
)  # fmt: skip
def test_durations(raw: str, seconds: float) -> None:
    [source] = parse_sources(f'[[source]]\nname = "x"\nstart = "https://x.example/"\ninterval = {raw}\n')
    assert source.interval_s == seconds


def test_explicit_kinds_hosts_and_prefix() -> None:
    text = """
[[source]]
name = "w"
start = [
  { url = "https://w.example/a", kind = "feed" },
  { url = "https://w.example/", kind = "listing" },
  { url = "https://w.example/map", kind = "sitemap" },
]
hosts = ["W.Example", "*.cdn.example", "w.example"]
storage_prefix = "archive/w"
"""
    [source] = parse_sources(text)
    assert source.kinds == ("feed", "listing", "sitemap")
    assert source.allowed_hosts == ("w.example", "*.cdn.example")
    assert source.storage_prefix == "archive/w/"


# --- every mistake at its line ---------------------------------------------------------------

# Each case is the body of one [[source]] (name and start are added unless the case sets them);
# the line ending in "# !" is where the problem must be reported.
ERROR_CASES = [
    ('intervall = "5m"  # !', "unknown key 'intervall' (did you mean \"interval\"?)"),
    ("start_urls = []  # !", 'did you mean "start"?'),
    ('max_depth = "3"  # !', "max_depth: expected a whole number, got the string '3'"),
    ("max_depth = 2.5  # !", "expected a whole number, got 2.5"),
    ('refresh = "yes"  # !', "refresh: expected true or false"),
    ("articles = 5  # !", "articles: expected a list of regular expressions"),
    ('host_rate = "fast"  # !', "host_rate: expected requests per second"),
    ('start = ["ftp://x.example/"]  # !', "scheme 'ftp' is not http or https"),
    ('start = ["https://user:pw@x.example/"]  # !', "user-info"),
    ('start = "not a url"  # !', "'not a url'"),
    ("start = []  # !", "start: empty: give at least one start URL"),
    ("start = 7  # !", "start: expected a URL or a list of URLs, got 7"),
    ('start = [{ url = "https://x.example/", kind = "rss" }]  # !', "unknown kind 'rss' (did you mean \"feed\"?)"),
    ('start = [{ url = "https://x.example/", knd = "feed" }]  # !', "unknown key 'knd' (did you mean \"kind\"?)"),
    ('start = [{ kind = "feed" }]  # !', "a start table needs url"),
    ('start = ["https://x.example/a", "https://X.example/a#top"]  # !', "listed twice"),
    ("articles = ['(']  # !", "bad regular expression '(': missing ), unterminated subpattern"),
    ("listings = ['[a-']  # !", "listings: bad regular expression"),
    ("exclude = ['']  # !", "an empty pattern matches every URL"),
    ('interval = "5 minutes"  # !', "is not a duration"),
    ('interval = "30s"  # !', "shorter than the 60 s minimum"),
    ("interval = -5  # !", "-5 is negative"),
    ("interval = true  # !", "expected a duration, got true"),
    ("max_depth = -1  # !", "max_depth: -1 is negative"),
    ("max_pages = 0  # !", "max_pages: 0 is below the minimum 1"),
    ("host_rate = -0.5  # !", "host_rate: -0.5 is negative"),
    ("host_rate = nan  # !", "not a finite rate"),
    ('name = "Bad Name"  # !', "'Bad Name' is not a name"),
    ('storage_prefix = "/abs"  # !', "no leading '/'"),
    ('storage_prefix = "a/../b"  # !', "no '..'"),
    ('since = "yesterday"  # !', "'yesterday' is not an ISO date"),
    ("since = 10:30:00  # !", "expected an ISO date, got a time"),
    ('hosts = ["https://x.example/"]  # !', "is not a host name (write just the host"),
    ('hosts = ["bad_host!"]  # !', "'bad_host!' is not a host name"),
    ("hosts = []  # !", "hosts: empty"),
    ('"max_depth" = -2  # !', "-2 is negative"),
]


def _source_block(body: str, name: str) -> str:
    lines = ["[[source]]"]
    if "name =" not in body:
        lines.append(f'name = "{name}"')
    if "start =" not in body and "start_urls" not in body:
        lines.append('start = ["https://x.example/"]')
    return "\n".join([*lines, body, ""])


@pytest.mark.parametrize(("body", "message"), ERROR_CASES)
def test_each_problem_is_reported_at_its_line(body: str, message: str) -> None:
    text = "# a comment\n\n" + _source_block(body, "s")
    [problem] = [p for p in problems_of(text) if "missing required key" not in p.message]
    assert problem.line == marked_lines(text)[0]
    assert message in problem.message


def test_all_problems_of_a_file_are_reported_at_once() -> None:
    text = "\n".join(_source_block(body, f"s{i}") for i, (body, _) in enumerate(ERROR_CASES))
    found = [p for p in problems_of(text) if "missing required key" not in p.message]
    expected_lines = marked_lines(text)
    assert len(expected_lines) == len(ERROR_CASES)
    assert sorted({p.line for p in found}) == expected_lines
    for line, (_, message) in zip(expected_lines, ERROR_CASES, strict=True):
        assert any(message in p.message for p in found if p.line == line), (line, message)


def test_elements_of_multi_line_lists_are_found_on_their_own_lines() -> None:
    text = r"""[[source]]
name = "m"
start = [
    "https://m.example/",
    "ftp://m.example/old/",  # !
    { url = "https://m.example/feed", kind = "atom" },  # !
]
articles = [
    '^https://m\.example/\d+',
    "^https://m\\.example/(",  # !
]
max_depth = -1  # !
"""
    found = problems_of(text)
    assert [p.line for p in found] == marked_lines(text)
    assert "ftp" in found[0].message and "atom" in found[1].message and "unterminated" in found[2].message


def test_lines_stay_right_past_multi_line_strings_and_comments() -> None:
    text = '''# [[source]] in a comment is not a header
[[source]]
name = "a"
start = "https://a.example/"
exclude = """
[[source]]
name = 5
"""
max_depth = "deep"  # !

[[source]]  # a comment after a header
name = "b"
start = "https://b.example/"  # [not = a key]
max_pages = -3  # !
'''
    found = problems_of(text)
    assert [p.line for p in found] == marked_lines(text)
    assert "exclude" not in " ".join(p.message for p in found)


def test_syntax_errors_in_several_blocks_are_all_reported_with_the_rest() -> None:
    text = """[defaults]
interval = 15m  # !

[[source]]
name = "a"
start = ["https://a.example/"
articles = ['x']  # !

[[source]]
name = "b"
start = "https://b.example/"
maxdepth = 2  # !

[[source]]
name = "c"
start = "https://c.example/"
max_depth =   # !
"""
    found = problems_of(text)
    assert [p.line for p in found] == marked_lines(text)
    assert found[0].message.startswith("TOML syntax:") and found[1].message.startswith("TOML syntax:")
    assert "did you mean" in found[2].message and found[3].message.startswith("TOML syntax:")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[sources]]  # !\nname = "x"\n', "unknown table [[sources]] (did you mean [[source]]?)"),
        ('[source]  # !\nname = "x"\n', "[source] should be [[source]]"),
        ('[[defaults]]  # !\ninterval = "1h"\n', "[[defaults]] should be [defaults]"),
        ('[source.extra]  # !\nx = 1\n', "take keys, not sub-tables"),
        ('interval = "15m"  # !\n', "put it under [defaults] or in a [[source]]"),
        ("[defaults]\nname = 'x'  # !\n", "set it in each [[source]], not in [defaults]"),
        ("[defaults]\nmax_depht = 1  # !\n", 'did you mean "max_depth"?'),
        ("[defaults]\ninterval = '1x'  # !\n", "[defaults]: interval: '1x' is not a duration"),
        ("[defaults]\n[defaults]  # !\n", "[defaults] declared twice (first at line 1)"),
        ('[[source]]\nname = "d"\nstart = "https://d.example/"\n[[source]]\nname = "d"  # !\nstart = "https://e.example/"\n',
         'duplicate source name "d" (first at line 2)'),
        ("[[source]]  # !\nmax_depth = 1\n", "missing required key 'name'"),
        ('[[source]]  # !\nname = "n"\n', "missing required key 'start'"),
        ("# nothing here  # !\n", "no [[source]] tables"),
        ('[[source]]\nname = "a"\nname = "b"  # !\n', "TOML syntax: Cannot overwrite a value"),
    ],
)  # fmt: skip
def test_file_level_problems(text: str, message: str) -> None:
    found = problems_of(text)
    expected = marked_lines(text)
    assert any(p.line == expected[0] and message in p.message for p in found), found
    assert {p.line for p in found} <= set(expected)


def test_an_empty_file_declares_no_sources() -> None:
    assert problems_of("") == [SourceProblem(1, "no [[source]] tables: declare at least one site")]


def test_error_text_lists_every_problem_as_file_line_message() -> None:
    text = '[[source]]\nname = "x"\nstart = []\nmax_depth = -1\nrefresh = 1\n'
    with pytest.raises(SourcesError) as info:
        parse_sources(text, "conf/sources.toml")
    err = info.value
    assert isinstance(err, ValueError)
    lines = str(err).splitlines()
    assert len(lines) == len(err.problems) == 3
    assert [line.split(":", 2)[1] for line in lines] == ["3", "4", "5"]
    assert all(line.startswith("conf/sources.toml:") for line in lines)
    assert lines[0] == 'conf/sources.toml:3: source "x": start: empty: give at least one start URL'


def test_load_sources_reports_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(SourcesError, match=r"missing\.toml: cannot read"):
        load_sources(tmp_path / "missing.toml")
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b'[[source]]\nname = "caf\xe9"\n')
    with pytest.raises(SourcesError) as info:
        load_sources(latin1)
    assert info.value.problems == [SourceProblem(2, "not UTF-8 text")]
    good = tmp_path / "good.toml"
    good.write_bytes(b'\xef\xbb\xbf[[source]]\nname = "x"\nstart = "https://x.example/"\n')  # with a BOM
    assert [s.name for s in load_sources(good)] == ["x"]


# --- round trips -----------------------------------------------------------------------------


def test_example_file_round_trips_through_format_sources() -> None:
    sources = load_sources(EXAMPLE)
    assert parse_sources(format_sources(sources)) == sources


_NAME = st.builds("{}{}".format, st.sampled_from("abz09"), st.text("abcxyz019_-", max_size=10))
_HOST = st.sampled_from(["news.example.com", "www.example.org", "127.0.0.1", "x-y.example", "*.example.net"])
_PATTERN = st.sampled_from([r"^https://x\.example/\d+/", "it's", '"quoted"', r"\?page=\d+", "/tag/", "ü/ß", "a\tb"])
_URL = st.builds(
    "https://{}.example/{}".format, st.sampled_from(["a", "b", "www.c"]), st.text("abc/_-.019", max_size=12)
).map(normalize_url)


@st.composite
def _sources(draw: st.DrawFn) -> Source:
    urls = tuple(dict.fromkeys(draw(st.lists(_URL, min_size=1, max_size=4))))
    return Source(
        name=draw(_NAME),
        start_urls=urls,
        kinds=tuple(draw(st.sampled_from(KINDS)) for _ in urls),
        article_patterns=tuple(draw(st.lists(_PATTERN, max_size=3))),
        listing_patterns=tuple(draw(st.lists(_PATTERN, max_size=2))),
        exclude_patterns=tuple(draw(st.lists(_PATTERN, max_size=2))),
        allowed_hosts=tuple(draw(st.lists(_HOST, min_size=1, max_size=3, unique=True))),
        interval_s=draw(st.one_of(st.just(0.0), st.floats(60, 1e7), st.integers(60, 10**6).map(float))),
        max_depth=draw(st.integers(0, 50)),
        max_pages=draw(st.integers(1, 10**7)),
        host_rate=draw(st.one_of(st.none(), st.floats(0, 1000))),
        storage_prefix=draw(st.sampled_from([None, "kcna/", "a/b.c/", "x~y-z_/"])),
        refresh=draw(st.booleans()),
        since=draw(st.sampled_from([None, "2025-01-01", "1999-12-31T23:59:00+00:00"])),
    )


@settings(max_examples=150, deadline=None)
@given(st.lists(_sources(), min_size=1, max_size=3, unique_by=lambda s: s.name))
def test_any_sources_round_trip_through_format_sources(sources: list[Source]) -> None:
    assert parse_sources(format_sources(sources)) == sources


# --- using a source --------------------------------------------------------------------------

KCNA = parse_sources(r"""
[[source]]
name = "kcna"
start = "https://kcnawatch.org/"
articles = ['^https://kcnawatch\.org/newstream/\d+/']
listings = ['/page/\d+/$']
exclude = ['/tag/', '/newstream/\d+/print/']
""")[0]  # fmt: skip


@pytest.mark.parametrize(
    ("url", "default", "kind"),
    [
        ("https://kcnawatch.org/newstream/1737/slug/", None, "article"),
        ("https://www.kcnawatch.org/newstream/1737/slug/", "listing", "listing"),  # pattern says kcnawatch.org
        ("https://kcnawatch.org/newstream/page/2/", None, "listing"),
        ("https://kcnawatch.org/newstream/1737/print/", "article", None),  # exclude wins over articles
        ("https://kcnawatch.org/tag/party/", "listing", None),
        ("https://kcnawatch.org/about-us/", None, None),  # no rule: the default stands
        ("https://kcnawatch.org/world/", "listing", "listing"),
        ("https://other.example/newstream/1737/slug/", "article", None),  # host not allowed
    ],
)
def test_classify_with_source_rules(url: str, default: str | None, kind: str | None) -> None:
    assert classify_with(KCNA, url, default) == kind


def test_classify_with_wildcard_hosts() -> None:
    source = Source(name="w", start_urls=("https://example.org/",), kinds=("home",), allowed_hosts=("*.example.org",))
    assert classify_with(source, "https://example.org/a", "article") == "article"
    assert classify_with(source, "https://deep.news.example.org/a", "article") == "article"
    assert classify_with(source, "https://badexample.org/a", "article") is None
    assert classify_with(source, "https://example.org.evil.example/a", "article") is None


def test_default_source_for_a_command_line_url() -> None:
    home = default_source("https://WWW.Guardian.co.uk")
    assert home.name == "guardian-co-uk" and home.start_urls == ("https://www.guardian.co.uk/",)
    assert home.kinds == ("home",) and home.allowed_hosts == ("www.guardian.co.uk", "guardian.co.uk")
    assert (home.interval_s, home.max_depth, home.max_pages, home.host_rate) == (900.0, 50, 10_000, None)
    section = default_source("http://127.0.0.1:8765/world/")
    assert section.kinds == ("listing",) and section.allowed_hosts == ("127.0.0.1",) and section.name == "127-0-0-1"
    assert classify_with(section, "http://127.0.0.1:8765/world/page/2/", "listing") == "listing"
    with pytest.raises(InvalidURL):
        default_source("ftp://example.com/")
