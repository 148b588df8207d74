"""The sources file: which sites to crawl, where to start, which URLs are articles, how often to poll.

Operators declare sites in TOML (see ``examples/sources.toml``) and never write code per site.
:func:`parse_sources` checks the whole file and reports every problem at once, each with its line,
so one edit fixes them all.  tomllib gives no positions for values, so :mod:`workers.sources.tomlspans`
finds each key's line; :mod:`workers.sources.checks` converts and checks each value.  This module
checks the file's shape (which tables, which keys) and builds the :class:`Source` objects.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from workers.core.urls import host_allowed, host_of, normalize_url
from workers.sources.checks import CONVERTERS, KINDS, Invalid, compile_pattern, guess_kind, is_ip, suggest, unknown
from workers.sources.checks import MIN_INTERVAL_S as MIN_INTERVAL_S  # still importable from here
from workers.sources.tomlspans import Block, TOMLSyntaxError, loads, parse_block, split_blocks

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

DEFAULT_INTERVAL_S: Final = 900.0
DEFAULT_MAX_DEPTH: Final = 50
DEFAULT_MAX_PAGES: Final = 10_000

_SCALAR_KEYS: Final = ("interval", "max_depth", "max_pages", "host_rate", "refresh", "since")
_SOURCE_KEYS: Final = ("name", "start", "articles", "listings", "exclude", "hosts", "storage_prefix", *_SCALAR_KEYS)
_TOP: Final = ("defaults", "source")


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
    blocks = split_blocks(text.splitlines())
    defaults: dict[str, Any] = {}
    tables: list[tuple[dict[str, Any], Block]] = []
    defaults_line = 0
    for block in blocks:
        try:
            body = parse_block(block)
        except TOMLSyntaxError as exc:
            problems.append(SourceProblem(exc.line, str(exc)))
            continue
        if block.path == ():
            for key, value in body.items():  # top-level keys before any header
                if key == "defaults" and isinstance(value, dict):
                    defaults_line, defaults = block.line_of(key), value
                elif key == "source" and isinstance(value, list) and all(isinstance(v, dict) for v in value):
                    tables.extend((v, block) for v in value)
                else:
                    hint = " (put it under [defaults] or in a [[source]])" if key in _SOURCE_KEYS else ""
                    problems.append(SourceProblem(block.line_of(key), unknown("top-level key", key, _TOP) + hint))
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
            loads(text, 0, len(text.splitlines()))
        except TOMLSyntaxError as exc:
            problems.append(SourceProblem(exc.line, str(exc)))
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

    Raises :class:`workers.core.urls.InvalidURL` for a URL that cannot be crawled.
    """
    start = normalize_url(url)
    host = host_of(start)
    name = re.sub(r"[^a-z0-9]+", "-", host.removeprefix("www.")).strip("-") or "site"
    return Source(name=name, start_urls=(start,), kinds=(guess_kind(start),), allowed_hosts=_twins(host))


def classify_with(source: Source, url: str, default: str | None) -> str | None:
    """``"article"``, ``"listing"`` or None for a normalised ``url`` under ``source``'s rules.

    None when the host is not allowed or an exclude pattern matches; then the source's article and
    listing patterns decide; else ``default`` (what the URL's shape or the link's context said).
    """
    if not host_allowed(host_of(url), source.allowed_hosts):
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
        starts = [_toml_str(u) if k == guess_kind(u) else f"{{ url = {_toml_str(u)}, kind = {_toml_str(k)} }}"
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


# --- checking the file's shape -------------------------------------------------------------


def _check_source(
    table: dict[str, Any], block: Block, base: dict[str, Any], problems: list[SourceProblem]
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
    table: dict[str, Any], block: Block, label: str, known: Sequence[str], problems: list[SourceProblem],
    base: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """The table's values converted, on top of ``base``; each problem recorded with its line."""
    values = dict(base)
    for key, raw in table.items():
        if key not in known:
            hint = " (set it in each [[source]], not in [defaults])" if key in _SOURCE_KEYS else ""
            problems.append(SourceProblem(block.line_of(key), f"{label}: {unknown('key', key, known)}{hint}"))
            continue
        found: list[Invalid] = []
        try:
            values[key] = CONVERTERS[key](raw, found.append)
        except Invalid as exc:
            found.append(exc)
        problems += (SourceProblem(block.line_of(key, bad.at), f"{label}: {key}: {bad}") for bad in found)
        if found:
            values.pop(key, None)
    return values


def _unknown_table(block: Block) -> str:
    def header(path: Sequence[str], array: bool) -> str:
        return ("[[{}]]" if array else "[{}]").format(".".join(path))

    written = header(block.path, block.is_array)
    if block.path == ("source",):
        return f"{written} should be [[source]]: each source is one entry of an array of tables"
    if block.path == ("defaults",):
        return f"{written} should be [defaults]: there is one table of defaults"
    if block.path[0] in _TOP:
        return f"unknown table {written}: [[source]] and [defaults] take keys, not sub-tables"
    close = suggest(block.path[0], _TOP)
    hint = f" (did you mean {header([close], close == 'source')}?)" if close else ""
    return f"unknown table {written}{hint}"


# --- small rules -----------------------------------------------------------------------------


def _twins(host: str) -> tuple[str, ...]:
    """``host`` and its www./bare twin: sites serve and link both."""
    if is_ip(host) or "." not in host:
        return (host,)
    return (host, host.removeprefix("www.")) if host.startswith("www.") else (host, "www." + host)


@lru_cache(maxsize=1024)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(compile_pattern(p) for p in patterns)


def _matches(patterns: tuple[str, ...], url: str) -> bool:
    return any(p.search(url) for p in _compiled(patterns))


def _toml_str(value: str) -> str:
    if "'" not in value and "\n" not in value and value.isprintable():
        return f"'{value}'"  # literal string: regexes stay readable, backslashes as written
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
