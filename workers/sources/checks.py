"""The value checks of a sources file: each key's raw TOML value to the typed value a Source holds.

Each converter either returns the value or raises :class:`Invalid`; a converter of a list reports
every bad element through its ``report`` callback instead, so one pass finds them all, each pointing
at the element's own line.
"""

from __future__ import annotations

import datetime
import difflib
import ipaddress
import math
import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

from workers.core.urls import InvalidURL, normalize_url

__all__ = [
    "CONVERTERS",
    "KINDS",
    "MIN_INTERVAL_S",
    "Invalid",
    "compile_pattern",
    "guess_kind",
    "is_ip",
    "suggest",
    "unknown",
]

KINDS: Final = ("listing", "feed", "sitemap", "home")
MIN_INTERVAL_S: Final = 60.0

_NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9_-]*")
# (?<!\d): a try from inside a run of digits fails wherever the try from its first digit did, and
# without it "1" * 16,000 took ten seconds to refuse.
_DURATION_RE: Final = re.compile(r"(?<!\d)(\d+(?:\.\d+)?)\s*([smhd])", re.IGNORECASE)
_UNIT_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_HOST_RE: Final = re.compile(r"(?:\*\.)?[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*")
_PREFIX_RE: Final = re.compile(r"[A-Za-z0-9._~-]+(?:/[A-Za-z0-9._~-]+)*/?")
_FEED_NAMES: Final = frozenset(("feed", "rss", "atom", "feed.xml", "rss.xml", "atom.xml", "index.xml"))
_START_KEYS: Final = ("url", "kind")
# Names an operator might reach for first (the Python field names among them).
_ALIASES: Final = {
    "sources": "source", "default": "defaults", "url": "start", "urls": "start", "start_urls": "start",
    "article_patterns": "articles", "listing_patterns": "listings", "exclude_patterns": "exclude",
    "allowed_hosts": "hosts", "domains": "hosts", "interval_s": "interval", "every": "interval",
    "rss": "feed", "atom": "feed", "xml": "sitemap", "page": "listing", "section": "listing",
}  # fmt: skip


class Invalid(ValueError):
    """A value that cannot be used; carries the element to point at when the value is a list."""

    def __init__(self, message: str, at: object = None) -> None:
        super().__init__(message)
        self.at = at


def _name(value: object, _: Callable[[Invalid], None]) -> str:
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise Invalid(f"{value!r} is not a name: use lower-case letters, digits, '-' and '_'")
    return value


def _start(value: object, report: Callable[[Invalid], None]) -> tuple[tuple[str, str], ...]:
    items = [value] if isinstance(value, (str, dict)) else value
    if not isinstance(items, list):
        raise Invalid(f"expected a URL or a list of URLs, got {_type(value)}")
    if not items:
        raise Invalid("empty: give at least one start URL")
    out: dict[str, str] = {}
    for item in items:
        try:
            url, kind = _start_item(item)
        except Invalid as exc:
            report(exc)
            continue
        if url in out:
            report(Invalid(f"{url} listed twice", item))
        out.setdefault(url, kind)
    return tuple(out.items())


def _start_item(item: object) -> tuple[str, str]:
    table = item if isinstance(item, dict) else {"url": item}
    for key in table:
        if key not in _START_KEYS:
            raise Invalid(unknown("key", key, _START_KEYS) + " in a start table", key)
    raw = table.get("url")
    if raw is None:
        raise Invalid('a start table needs url = "https://…"')
    if not isinstance(raw, str):
        raise Invalid(f"url: expected a string, got {_type(raw)}")
    try:
        url = normalize_url(raw)
    except InvalidURL as exc:
        raise Invalid(f"{raw!r}: {exc}", raw) from None
    kind = table.get("kind", guess_kind(url))
    if kind not in KINDS:
        raise Invalid(f"{unknown('kind', str(kind), KINDS)}; kinds are {', '.join(KINDS)}", raw)
    return url, kind


def _patterns(value: object, report: Callable[[Invalid], None]) -> tuple[str, ...]:
    for pattern in (items := _str_list(value, "regular expressions")):
        if not pattern:
            report(Invalid("an empty pattern matches every URL", pattern))
            continue
        try:
            compile_pattern(pattern)
        except re.error as exc:
            report(Invalid(f"bad regular expression {pattern!r}: {exc}", pattern))
    return items


def _hosts(value: object, report: Callable[[Invalid], None]) -> tuple[str, ...]:
    hosts: dict[str, None] = {}
    for raw in _str_list(value, "host names"):
        host = raw.strip().lower().rstrip(".")
        if "/" in host or (":" in host and not is_ip(host)):
            report(Invalid(f"{raw!r} is not a host name (write just the host: example.com)", raw))
        elif not (_HOST_RE.fullmatch(host) or is_ip(host)):
            report(Invalid(f"{raw!r} is not a host name", raw))
        hosts[host] = None
    if not hosts:
        raise Invalid("empty: leave hosts out to allow the start URLs' hosts")
    return tuple(hosts)


def _interval(value: object, _: Callable[[Invalid], None]) -> float:
    seconds = _duration(value)
    if 0 < seconds < MIN_INTERVAL_S:
        raise Invalid(f'{value!r} is shorter than the {MIN_INTERVAL_S:.0f} s minimum (0 or "once" polls once)')
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
            raise Invalid(f'{value!r} is not a duration: write "90s", "15m", "2h", "1d" or seconds')
        else:
            seconds = sum(float(n) * _UNIT_S[u.lower()] for n, u in parts)
    else:
        raise Invalid(f"expected a duration, got {_type(value)}")
    if not math.isfinite(seconds) or seconds < 0:
        raise Invalid(f"{value!r} is negative" if seconds < 0 else f"{value!r} is not a finite duration")
    return seconds


def _count(minimum: int) -> Callable[[object, Callable[[Invalid], None]], int]:
    def convert(value: object, _: Callable[[Invalid], None]) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise Invalid(f"expected a whole number, got {_type(value)}")
        if value < minimum:
            raise Invalid(f"{value} is negative" if value < 0 else f"{value} is below the minimum {minimum}")
        return value

    return convert


def _rate(value: object, _: Callable[[Invalid], None]) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise Invalid(f"expected requests per second (a number), got {_type(value)}")
    if not math.isfinite(value) or value < 0:
        raise Invalid(f"{value!r} is negative" if value < 0 else f"{value!r} is not a finite rate")
    return float(value)


def _bool(value: object, _: Callable[[Invalid], None]) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"expected true or false, got {_type(value)}")
    return value


def _since(value: object, _: Callable[[Invalid], None]) -> str:
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, str):
        for parse in (datetime.date.fromisoformat, datetime.datetime.fromisoformat):
            try:
                return parse(value.strip()).isoformat()
            except ValueError:
                pass
        raise Invalid(f"{value!r} is not an ISO date (YYYY-MM-DD)")
    raise Invalid(f"expected an ISO date, got {_type(value)}")


def _prefix(value: object, _: Callable[[Invalid], None]) -> str:
    if not isinstance(value, str):
        raise Invalid(f"expected a string, got {_type(value)}")
    if value.startswith("/") or ".." in value.split("/") or "." in value.split("/") or not _PREFIX_RE.fullmatch(value):
        raise Invalid(f"{value!r}: use letters, digits, '._~-' and '/' between parts; no leading '/', no '..'")
    return value if value.endswith("/") else value + "/"


# Key -> converter; the sources file's key names, [defaults] and [[source]] alike.
CONVERTERS: Final[dict[str, Callable[[Any, Callable[[Invalid], None]], Any]]] = {
    "name": _name, "start": _start, "articles": _patterns, "listings": _patterns, "exclude": _patterns,
    "hosts": _hosts, "interval": _interval, "max_depth": _count(0), "max_pages": _count(1), "host_rate": _rate,
    "storage_prefix": _prefix, "refresh": _bool, "since": _since,
}  # fmt: skip


def _str_list(value: object, what: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise Invalid(f"expected a list of {what} (strings), got {_type(value)}")
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


def suggest(key: str, known: Sequence[str]) -> str | None:
    """The name in ``known`` that ``key`` was probably meant to be: a known alias, else a close spelling."""
    guess = _ALIASES.get(key.lower())
    close = [guess] if guess in known else difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return close[0] if close else None


def unknown(what: str, key: str, known: Sequence[str]) -> str:
    """``unknown WHAT 'key'``, with a did-you-mean when :func:`suggest` has one."""
    close = suggest(key, known)
    return f"unknown {what} {key!r}" + (f' (did you mean "{close}"?)' if close else "")


def guess_kind(url: str) -> str:
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


def is_ip(host: str) -> bool:
    """Whether ``host`` is an IPv4 or IPv6 address (brackets allowed), which has no www. twin."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """``re.compile`` of an operator's pattern; raises ``re.error`` for a bad one."""
    # A FutureWarning ("possible nested set") is advice about a valid pattern, not an error;
    # under warnings-as-errors it would reject a working file.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        try:
            return re.compile(pattern)
        except OverflowError as exc:  # "a{99999999999}": a bad pattern like any other
            raise re.error(str(exc)) from None
        except RecursionError:  # the parser recurses once per group: "(((…)))" a thousand deep
            raise re.error("groups nested too deeply") from None
