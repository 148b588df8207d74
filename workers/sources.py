"""The sources file: which sites to crawl, where to start, which URLs are articles, how often to poll.

Operators declare sites in TOML (see ``examples/sources.toml``) and never write code per site.
:func:`parse_sources` checks the whole file and reports every problem at once, each with its line,
so one edit fixes them all.  tomllib gives no positions for values, so lines come from a light
scan of the text: each ``[[source]]`` block runs from its header to the next header, and a key's
line is where ``key =`` starts inside it (strings and multi-line arrays are skipped properly).
"""

from __future__ import annotations

import datetime
import difflib
import ipaddress
import json
import math
import re
import tomllib
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from workers.urls import InvalidURL, host_of, normalize_url

__all__ = [
    "KINDS",
    "Source",
    "SourceProblem",
    "SourcesError",
    "classify_with",
    "default_source",
    "format_sources",
    "load_sources",
    "parse_sources",
]

KINDS: Final = ("listing", "feed", "sitemap", "home")
DEFAULT_INTERVAL_S: Final = 900.0
MIN_INTERVAL_S: Final = 60.0
DEFAULT_MAX_DEPTH: Final = 50
DEFAULT_MAX_PAGES: Final = 10_000

_NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9_-]*")
_DURATION_RE: Final = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])", re.IGNORECASE)
_UNIT_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_HOST_RE: Final = re.compile(r"(?:\*\.)?[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*")
_PREFIX_RE: Final = re.compile(r"[A-Za-z0-9._~-]+(?:/[A-Za-z0-9._~-]+)*/?")
_FEED_NAMES: Final = frozenset(("feed", "rss", "atom", "feed.xml", "rss.xml", "atom.xml", "index.xml"))

_SCALAR_KEYS: Final = ("interval", "max_depth", "max_pages", "host_rate", "refresh", "since")
_SOURCE_KEYS: Final = ("name", "start", "articles", "listings", "exclude", "hosts", "storage_prefix", *_SCALAR_KEYS)
_START_KEYS: Final = ("url", "kind")
# Names an operator might reach for first (the Python field names among them).
_ALIASES: Final = {
    "sources": "source", "default": "defaults", "url": "start", "urls": "start", "start_urls": "start",
    "article_patterns": "articles", "listing_patterns": "listings", "exclude_patterns": "exclude",
    "allowed_hosts": "hosts", "domains": "hosts", "interval_s": "interval", "every": "interval",
    "rss": "feed", "atom": "feed", "xml": "sitemap", "page": "listing", "section": "listing",
}  # fmt: skip


@dataclass(frozen=True)
class Source:
    """One site to crawl, as the sources file declares it, every default filled in."""

    name: str
    start_urls: tuple[str, ...]
    kinds: tuple[str, ...]
    article_patterns: tuple[str, ...] = ()
    listing_patterns: tuple[str, ...] = ()
    exclude_patterns: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    interval_s: float = DEFAULT_INTERVAL_S
    max_depth: int = DEFAULT_MAX_DEPTH
    max_pages: int = DEFAULT_MAX_PAGES
    host_rate: float | None = None
    storage_prefix: str | None = None
    refresh: bool = False
    since: str | None = None


@dataclass(frozen=True)
class SourceProblem:
    """One thing wrong with a sources file, at a line (0 when no line applies)."""

    line: int
    message: str

    def format(self, filename: str) -> str:
        """``FILE:LINE: message``, the shape editors and CI annotations understand."""
        return f"{filename}:{self.line}: {self.message}" if self.line else f"{filename}: {self.message}"


class SourcesError(ValueError):
    """A sources file that cannot be used; ``problems`` lists everything wrong, in line order."""

    def __init__(self, problems: Sequence[SourceProblem], filename: str = "<sources>") -> None:
        self.problems = sorted(problems, key=lambda p: p.line)  # stable: same-line problems keep their order
        self.filename = filename
        super().__init__("\n".join(p.format(filename) for p in self.problems))


def parse_sources(text: str, filename: str = "<sources>") -> list[Source]:
    """Every source a sources file declares; raises :class:`SourcesError` listing all problems."""
    problems: list[SourceProblem] = []
    blocks = _split_blocks(text.splitlines())
    defaults: dict[str, Any] = {}
    tables: list[tuple[dict[str, Any], _Block]] = []
    defaults_line = 0
    for block in blocks:
        body = _parse_block(block, problems)
        if body is None:
            continue
        if block.path == ():
            for key, value in body.items():  # top-level keys before any header
                if key == "defaults" and isinstance(value, dict):
                    defaults_line, defaults = block.line_of(key), value
                elif key == "source" and isinstance(value, list) and all(isinstance(v, dict) for v in value):
                    tables.extend((v, block) for v in value)
                else:
                    hint = " (put it under [defaults] or in a [[source]])" if key in _SOURCE_KEYS else ""
                    problems.append(SourceProblem(block.line_of(key), _unknown("top-level key", key, _TOP) + hint))
        elif block.path == ("source",) and block.is_array:
            tables.append((body, block))
        elif block.path == ("defaults",) and not block.is_array:
            if defaults_line:
                msg = f"[defaults] declared twice (first at line {defaults_line})"
                problems.append(SourceProblem(block.header_line, msg))
            defaults_line, defaults = block.header_line, body
        else:
            problems.append(SourceProblem(block.header_line, _unknown_table(block)))
    if not problems:
        try:  # what no single block shows: a table declared twice, a key both dotted and not
            tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            problems.append(_syntax_problem(exc, 0, len(text.splitlines())))
    defaults_block = next((b for b in blocks if b.path == ("defaults",)), blocks[0])
    base = _check_table(defaults, defaults_block, "[defaults]", _SCALAR_KEYS, problems, {})
    sources: list[Source] = []
    first_line: dict[str, int] = {}
    for table, block in tables:
        name = table.get("name")
        if isinstance(name, str) and name in first_line:
            msg = f'duplicate source name "{name}" (first at line {first_line[name]})'
            problems.append(SourceProblem(block.line_of("name"), msg))
        elif isinstance(name, str):
            first_line[name] = block.line_of("name")
        source = _check_source(table, block, base, problems)
        if source is not None:
            sources.append(source)
    if not tables and not problems:
        problems.append(SourceProblem(1, "no [[source]] tables: declare at least one site"))
    if problems:
        raise SourcesError(problems, filename)
    return sources


def load_sources(path: Path) -> list[Source]:
    """:func:`parse_sources` of a file; unreadable files raise :class:`SourcesError` too."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SourcesError([SourceProblem(0, f"cannot read: {exc.strerror or exc}")], str(path)) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SourcesError([SourceProblem(line, "not UTF-8 text")], str(path)) from None
    return parse_sources(text, str(path))


def default_source(url: str) -> Source:
    """The one-site source of ``ingest crawl URL`` without a file: defaults everywhere.

    Raises :class:`workers.urls.InvalidURL` for a URL that cannot be crawled.
    """
    start = normalize_url(url)
    host = host_of(start)
    name = re.sub(r"[^a-z0-9]+", "-", host.removeprefix("www.")).strip("-") or "site"
    return Source(name=name, start_urls=(start,), kinds=(_guess_kind(start),), allowed_hosts=_twins(host))


def classify_with(source: Source, url: str, default: str | None) -> str | None:
    """``"article"``, ``"listing"`` or None for a normalised ``url`` under ``source``'s rules.

    None when the host is not allowed or an exclude pattern matches; then the source's article and
    listing patterns decide; else ``default`` (what the URL's shape or the link's context said).
    """
    if not _host_allowed(source.allowed_hosts, host_of(url)):
        return None
    if _matches(source.exclude_patterns, url):
        return None
    if _matches(source.article_patterns, url):
        return "article"
    if _matches(source.listing_patterns, url):
        return "listing"
    return default


def format_sources(sources: Iterable[Source]) -> str:
    """A sources file declaring ``sources`` with every value explicit; parses back to equal sources."""
    out: list[str] = []
    for s in sources:
        starts = [_toml_str(u) if k == _guess_kind(u) else f"{{ url = {_toml_str(u)}, kind = {_toml_str(k)} }}"
                  for u, k in zip(s.start_urls, s.kinds, strict=True)]  # fmt: skip
        out += ["[[source]]", f"name = {_toml_str(s.name)}", f"start = [{', '.join(starts)}]"]
        for key, values in (("articles", s.article_patterns), ("listings", s.listing_patterns),
                            ("exclude", s.exclude_patterns), ("hosts", s.allowed_hosts)):  # fmt: skip
            if values or key != "hosts":  # no hosts: let the parser derive them from the start URLs
                out.append(f"{key} = [{', '.join(_toml_str(v) for v in values)}]")
        interval = int(s.interval_s) if s.interval_s.is_integer() else s.interval_s
        out += [f"interval = {interval}", f"max_depth = {s.max_depth}", f"max_pages = {s.max_pages}"]
        out.append(f"refresh = {'true' if s.refresh else 'false'}")
        for key, value in (("host_rate", s.host_rate), ("storage_prefix", s.storage_prefix), ("since", s.since)):
            if value is not None:
                out.append(f"{key} = {value!r}" if isinstance(value, float) else f"{key} = {_toml_str(value)}")
        out.append("")
    return "\n".join(out)


# --- checking values -------------------------------------------------------------------------

_TOP: Final = ("defaults", "source")


class _Invalid(ValueError):
    """A value that cannot be used; carries the element to point at when the value is a list."""

    def __init__(self, message: str, at: object = None) -> None:
        super().__init__(message)
        self.at = at


def _check_source(
    table: dict[str, Any], block: _Block, base: dict[str, Any], problems: list[SourceProblem]
) -> Source | None:
    """The :class:`Source` a ``[[source]]`` table declares, or None after recording its problems."""
    name = table.get("name")
    label = f'source "{name}"' if isinstance(name, str) and name else "[[source]]"
    before = len(problems)
    values = _check_table(table, block, label, _SOURCE_KEYS, problems, base)
    for key in ("name", "start"):
        if key not in table:
            problems.append(SourceProblem(block.header_line or 1, f"{label}: missing required key {key!r}"))
    if len(problems) > before:
        return None
    starts: list[tuple[str, str]] = values["start"]
    hosts = values.get("hosts") or tuple(dict.fromkeys(h for u, _ in starts for h in _twins(host_of(u))))
    return Source(
        name=values["name"], start_urls=tuple(u for u, _ in starts), kinds=tuple(k for _, k in starts),
        article_patterns=values.get("articles", ()), listing_patterns=values.get("listings", ()),
        exclude_patterns=values.get("exclude", ()), allowed_hosts=hosts,
        interval_s=values.get("interval", DEFAULT_INTERVAL_S), max_depth=values.get("max_depth", DEFAULT_MAX_DEPTH),
        max_pages=values.get("max_pages", DEFAULT_MAX_PAGES), host_rate=values.get("host_rate"),
        storage_prefix=values.get("storage_prefix"), refresh=values.get("refresh", False), since=values.get("since"),
    )  # fmt: skip


def _check_table(
    table: dict[str, Any], block: _Block, label: str, known: Sequence[str], problems: list[SourceProblem],
    base: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """The table's values converted, on top of ``base``; each problem recorded with its line."""
    values = dict(base)
    for key, raw in table.items():
        if key not in known:
            hint = " (set it in each [[source]], not in [defaults])" if key in _SOURCE_KEYS else ""
            problems.append(SourceProblem(block.line_of(key), f"{label}: {_unknown('key', key, known)}{hint}"))
            continue
        found: list[_Invalid] = []
        try:
            values[key] = _CONVERTERS[key](raw, found.append)
        except _Invalid as exc:
            found.append(exc)
        problems += (SourceProblem(block.line_of(key, bad.at), f"{label}: {key}: {bad}") for bad in found)
        if found:
            values.pop(key, None)
    return values


def _name(value: object, _: Callable[[_Invalid], None]) -> str:
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise _Invalid(f"{value!r} is not a name: use lower-case letters, digits, '-' and '_'")
    return value


def _start(value: object, report: Callable[[_Invalid], None]) -> tuple[tuple[str, str], ...]:
    items = [value] if isinstance(value, (str, dict)) else value
    if not isinstance(items, list):
        raise _Invalid(f"expected a URL or a list of URLs, got {_type(value)}")
    if not items:
        raise _Invalid("empty: give at least one start URL")
    out: dict[str, str] = {}
    for item in items:
        try:
            url, kind = _start_item(item)
        except _Invalid as exc:
            report(exc)
            continue
        if url in out:
            report(_Invalid(f"{url} listed twice", item))
        out.setdefault(url, kind)
    return tuple(out.items())


def _start_item(item: object) -> tuple[str, str]:
    table = item if isinstance(item, dict) else {"url": item}
    for key in table:
        if key not in _START_KEYS:
            raise _Invalid(_unknown("key", key, _START_KEYS) + " in a start table", key)
    raw = table.get("url")
    if raw is None:
        raise _Invalid('a start table needs url = "https://…"')
    if not isinstance(raw, str):
        raise _Invalid(f"url: expected a string, got {_type(raw)}")
    try:
        url = normalize_url(raw)
    except InvalidURL as exc:
        raise _Invalid(f"{raw!r}: {exc}", raw) from None
    kind = table.get("kind", _guess_kind(url))
    if kind not in KINDS:
        raise _Invalid(f"{_unknown('kind', str(kind), KINDS)}; kinds are {', '.join(KINDS)}", raw)
    return url, kind


def _patterns(value: object, report: Callable[[_Invalid], None]) -> tuple[str, ...]:
    for pattern in (items := _str_list(value, "regular expressions")):
        if not pattern:
            report(_Invalid("an empty pattern matches every URL", pattern))
            continue
        try:
            _compile(pattern)
        except re.error as exc:
            report(_Invalid(f"bad regular expression {pattern!r}: {exc}", pattern))
    return items


def _hosts(value: object, report: Callable[[_Invalid], None]) -> tuple[str, ...]:
    hosts: dict[str, None] = {}
    for raw in _str_list(value, "host names"):
        host = raw.strip().lower().rstrip(".")
        if "/" in host or (":" in host and not _is_ip(host)):
            report(_Invalid(f"{raw!r} is not a host name (write just the host: example.com)", raw))
        elif not (_HOST_RE.fullmatch(host) or _is_ip(host)):
            report(_Invalid(f"{raw!r} is not a host name", raw))
        hosts[host] = None
    if not hosts:
        raise _Invalid("empty: leave hosts out to allow the start URLs' hosts")
    return tuple(hosts)


def _interval(value: object, _: Callable[[_Invalid], None]) -> float:
    seconds = _duration(value)
    if 0 < seconds < MIN_INTERVAL_S:
        raise _Invalid(f'{value!r} is shorter than the {MIN_INTERVAL_S:.0f} s minimum (0 or "once" polls once)')
    return seconds


def _duration(value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if text == "once":
            return 0.0
        parts = _DURATION_RE.findall(text)
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        elif not parts or _DURATION_RE.sub("", text).strip():
            raise _Invalid(f'{value!r} is not a duration: write "90s", "15m", "2h", "1d" or seconds')
        else:
            seconds = sum(float(n) * _UNIT_S[u.lower()] for n, u in parts)
    else:
        raise _Invalid(f"expected a duration, got {_type(value)}")
    if not math.isfinite(seconds) or seconds < 0:
        raise _Invalid(f"{value!r} is negative" if seconds < 0 else f"{value!r} is not a finite duration")
    return seconds


def _count(minimum: int) -> Callable[[object, Callable[[_Invalid], None]], int]:
    def convert(value: object, _: Callable[[_Invalid], None]) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _Invalid(f"expected a whole number, got {_type(value)}")
        if value < minimum:
            raise _Invalid(f"{value} is negative" if value < 0 else f"{value} is below the minimum {minimum}")
        return value

    return convert


def _rate(value: object, _: Callable[[_Invalid], None]) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise _Invalid(f"expected requests per second (a number), got {_type(value)}")
    if not math.isfinite(value) or value < 0:
        raise _Invalid(f"{value!r} is negative" if value < 0 else f"{value!r} is not a finite rate")
    return float(value)


def _bool(value: object, _: Callable[[_Invalid], None]) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"expected true or false, got {_type(value)}")
    return value


def _since(value: object, _: Callable[[_Invalid], None]) -> str:
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, str):
        for parse in (datetime.date.fromisoformat, datetime.datetime.fromisoformat):
            try:
                return parse(value.strip()).isoformat()
            except ValueError:
                pass
        raise _Invalid(f"{value!r} is not an ISO date (YYYY-MM-DD)")
    raise _Invalid(f"expected an ISO date, got {_type(value)}")


def _prefix(value: object, _: Callable[[_Invalid], None]) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"expected a string, got {_type(value)}")
    if value.startswith("/") or ".." in value.split("/") or "." in value.split("/") or not _PREFIX_RE.fullmatch(value):
        raise _Invalid(f"{value!r}: use letters, digits, '._~-' and '/' between parts; no leading '/', no '..'")
    return value if value.endswith("/") else value + "/"


_CONVERTERS: Final[dict[str, Callable[[Any, Callable[[_Invalid], None]], Any]]] = {
    "name": _name, "start": _start, "articles": _patterns, "listings": _patterns, "exclude": _patterns,
    "hosts": _hosts, "interval": _interval, "max_depth": _count(0), "max_pages": _count(1), "host_rate": _rate,
    "storage_prefix": _prefix, "refresh": _bool, "since": _since,
}  # fmt: skip


def _str_list(value: object, what: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise _Invalid(f"expected a list of {what} (strings), got {_type(value)}")
    return tuple(items)


def _type(value: object) -> str:
    """How a value reads in the file, for "expected X, got Y"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return f"the string {value!r}"
    names = {list: "a list", dict: "a table", datetime.time: "a time", datetime.date: "a date"}
    return names.get(type(value), "a date and time" if isinstance(value, datetime.datetime) else type(value).__name__)


def _suggest(key: str, known: Sequence[str]) -> str | None:
    guess = _ALIASES.get(key.lower())
    close = [guess] if guess in known else difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return close[0] if close else None


def _unknown(what: str, key: str, known: Sequence[str]) -> str:
    close = _suggest(key, known)
    return f"unknown {what} {key!r}" + (f' (did you mean "{close}"?)' if close else "")


def _unknown_table(block: _Block) -> str:
    def header(path: Sequence[str], array: bool) -> str:
        return ("[[{}]]" if array else "[{}]").format(".".join(path))

    written = header(block.path, block.is_array)
    if block.path == ("source",):
        return f"{written} should be [[source]]: each source is one entry of an array of tables"
    if block.path == ("defaults",):
        return f"{written} should be [defaults]: there is one table of defaults"
    if block.path[0] in _TOP:
        return f"unknown table {written}: [[source]] and [defaults] take keys, not sub-tables"
    close = _suggest(block.path[0], _TOP)
    hint = f" (did you mean {header([close], close == 'source')}?)" if close else ""
    return f"unknown table {written}{hint}"


# --- finding lines in the text ---------------------------------------------------------------


@dataclass
class _Block:
    """A header and the lines up to the next header (the preamble has path ())."""

    lines: list[str]
    header_line: int  # 1-based; 0 for the preamble
    first: int  # 0-based index of the first body line
    end: int = 0
    path: tuple[str, ...] = ()
    is_array: bool = False
    keys: dict[str, tuple[int, int]] = field(default_factory=dict)  # key -> body line index span

    def line_of(self, key: str, at: object = None) -> int:
        """1-based line of ``key =`` (or of ``at``'s text inside its value); the header's if unknown."""
        if key not in self.keys:
            return self.header_line or 1
        start, stop = self.keys[key]
        if isinstance(at, str) and at:
            for needle in dict.fromkeys((at, json.dumps(at, ensure_ascii=False)[1:-1])):
                for i in range(start, stop):
                    if needle in self.lines[i]:
                        return i + 1
        return start + 1


_BARE_HEADER_RE: Final = re.compile(r"\s*\[\[?\s*[A-Za-z0-9_-]+(?:\s*\.\s*[A-Za-z0-9_-]+)*\s*\]\]?\s*(?:#.*)?$")
_KEY_RE: Final = re.compile(r"""\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*[=.]""")


def _split_blocks(lines: list[str]) -> list[_Block]:
    """The preamble and one block per header, with each top-level key's line span."""
    blocks = [_Block(lines, 0, 0)]
    open_string: str | None = None
    depth = 0
    last_key: str | None = None
    for i, line in enumerate(lines):
        block = blocks[-1]
        # A bare header also ends an array left open by mistake: as an element it would be invalid anyway.
        top = open_string is None and depth == 0
        header = open_string is None and ((top and line.lstrip().startswith("[")) or bool(_BARE_HEADER_RE.match(line)))
        at_top = top or header
        if header:
            depth = 0
            block.end = i
            if last_key:
                block.keys[last_key] = (block.keys[last_key][0], i)
            blocks.append(_Block(lines, i + 1, i + 1))
            last_key = None
        elif at_top and (match := _KEY_RE.match(line)):
            key = _unquote_key(match.group(1))
            if last_key:
                block.keys[last_key] = (block.keys[last_key][0], i)
            block.keys.setdefault(key, (i, len(lines)))
            last_key = key
        open_string, depth = _scan(line, open_string, depth)
    blocks[-1].end = len(lines)
    if last_key:
        blocks[-1].keys[last_key] = (blocks[-1].keys[last_key][0], len(lines))
    return blocks


def _unquote_key(key: str) -> str:
    if key.startswith('"'):
        try:
            return str(json.loads(key))
        except ValueError:
            return key[1:-1]
    return key.strip("'")


def _scan(line: str, open_string: str | None, depth: int) -> tuple[str | None, int]:
    """Lexer state after ``line``: an unclosed multi-line string's quotes and the bracket depth."""
    i, n = 0, len(line)
    while i < n:
        if open_string:
            j = line.find(open_string, i)
            if j < 0:
                return open_string, depth
            i, open_string = j + 3, None
            continue
        char = line[i]
        if char == "#":
            break
        if line.startswith(('"""', "'''"), i):
            open_string, i = line[i : i + 3], i + 3
        elif char == '"':
            i += 1
            while i < n and line[i] != '"':
                i += 2 if line[i] == "\\" else 1
            i += 1
        elif char == "'":
            close = line.find("'", i + 1)
            i = n if close < 0 else close + 1
        else:
            depth += (char in "[{") - (char in "]}")
            i += 1
    return open_string, max(depth, 0)


def _parse_block(block: _Block, problems: list[SourceProblem]) -> dict[str, Any] | None:
    """The block's table, parsed on its own so that a syntax error in one block hides no other."""
    if block.header_line:
        header = block.lines[block.header_line - 1]
        try:
            parsed: Any = tomllib.loads(header)
        except tomllib.TOMLDecodeError as exc:
            problems.append(_syntax_problem(exc, block.header_line - 1, block.header_line))
            return None
        while isinstance(parsed, dict) and len(parsed) == 1:
            key, parsed = next(iter(parsed.items()))
            block.path += (key,)
        block.is_array = isinstance(parsed, list)
    body = "\n".join(block.lines[block.first : block.end])
    try:
        return tomllib.loads(body)
    except tomllib.TOMLDecodeError as exc:
        problems.append(_syntax_problem(exc, block.first, max(block.end, block.first + 1)))
        return None


def _syntax_problem(exc: tomllib.TOMLDecodeError, offset: int, last_line: int) -> SourceProblem:
    message = str(exc)
    match = re.search(r" \(at line (\d+), column (\d+)\)$", message)
    if match:
        line, column = int(match.group(1)), match.group(2)
        return SourceProblem(offset + line, f"TOML syntax: {message[: match.start()]} (column {column})")
    return SourceProblem(max(last_line, 1), "TOML syntax: " + message.replace(" (at end of document)", " at the end"))


# --- small rules -----------------------------------------------------------------------------


def _guess_kind(url: str) -> str:
    """home for a site root; feed or sitemap when the path says so unmistakably; else listing."""
    parts = urlsplit(url)
    if parts.path in ("", "/") and not parts.query:
        return "home"
    last = parts.path.rstrip("/").rsplit("/", 1)[-1].lower()
    if "sitemap" in last and last.endswith((".xml", ".xml.gz")):
        return "sitemap"
    if last in _FEED_NAMES or last.endswith((".rss", ".atom")):
        return "feed"
    return "listing"


def _twins(host: str) -> tuple[str, ...]:
    """``host`` and its www./bare twin: sites serve and link both."""
    if _is_ip(host) or "." not in host:
        return (host,)
    return (host, host.removeprefix("www.")) if host.startswith("www.") else (host, "www." + host)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _host_allowed(allowed: tuple[str, ...], host: str) -> bool:
    for entry in allowed:
        if entry == host or (entry.startswith("*.") and (host == entry[2:] or host.endswith(entry[1:]))):
            return True
    return False


def _compile(pattern: str) -> re.Pattern[str]:
    # A FutureWarning ("possible nested set") is advice about a valid pattern, not an error;
    # under warnings-as-errors it would reject a working file.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return re.compile(pattern)


@lru_cache(maxsize=1024)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(_compile(p) for p in patterns)


def _matches(patterns: tuple[str, ...], url: str) -> bool:
    return any(p.search(url) for p in _compiled(patterns))


def _toml_str(value: str) -> str:
    if "'" not in value and "\n" not in value and value.isprintable():
        return f"'{value}'"  # literal string: regexes stay readable, backslashes as written
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
