"""Crawler traps: URL shapes that multiply without end, and session ids that disguise one page as many.

Pure functions of one URL.  The counters that need shared state (how many distinct queries one
path has produced) live with the caller; this module only says which key to count under
(:func:`query_variant_key`).

The rules are deliberately conservative: a false positive loses a real article for good, a false
negative costs a bounded number of fetches (``max_pages`` and the query-variant cap stop the rest).
Dated article URLs (``/2025/01/21/slug.html``), archive listings in a plausible date range and
servlet URLs carrying ``;jsessionid=`` (stripped, not refused) are never traps.
"""

from __future__ import annotations

import datetime
import itertools
import re
from collections import Counter
from typing import Final
from urllib.parse import parse_qsl, unquote, unquote_plus, urlsplit

from workers.discover.urlkinds import ID_QUERY_KEYS, classify_url

__all__ = [
    "MAX_QUERY_LENGTH",
    "MAX_QUERY_PARAMS",
    "MAX_SEGMENTS",
    "MIN_YEAR",
    "article_id_query",
    "query_variant_key",
    "strip_session_params",
    "trap_reason",
]

MAX_SEGMENTS: Final = 12
MAX_QUERY_LENGTH: Final = 400
MAX_QUERY_PARAMS: Final = 16
#: Earliest year a calendar or archive page may name; web news archives do not go further back.
MIN_YEAR: Final = 1990
_MAX_KEY_REPEATS = 4  # ?a=1&a=2&a=3&a=4 is a filter; five of one key is a generator gone wild


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Query keys that carry nothing but a session, whatever their value.
_SESSION_KEYS: Final = _words(
    "jsessionid phpsessid sessionid session_id session-id sessid sess_id sesskey cfid cftoken zenid oscsid "
    "bv_sessionid bv_engineid ps_session"
)
_SESSION_KEY_PREFIXES: Final = ("aspsessionid",)
# ``sid`` is a story id on PHP-Nuke style sites (``?sid=1234``) and ``s`` is a search term on
# WordPress: both are dropped only when the value looks like a session token.
_SID_TOKEN_RE: Final = re.compile(r"(?=[a-z0-9]*\d)(?=[a-z0-9]*[a-z])[a-z0-9]{16,64}", re.IGNORECASE)
_HEX32_RE: Final = re.compile(r"[0-9a-f]{32}", re.IGNORECASE)
# Servlet-style session ids inside the path: "/page.html;jsessionid=ABC.node1" (also with the
# semicolon percent-encoded, as normalize_url spells it).
_PATH_SESSION_RE: Final = re.compile(
    r"(?:;|%3b)(?:jsessionid|phpsessid|sessionid|sessid|sid)=(?:(?!%3b)[^/;?#])*", re.IGNORECASE
)

_PATH_SESSION_WORDS: Final = _words("sid sessionid session_id session-id sessid jsessionid phpsessid")
_ASPNET_COOKIELESS_RE: Final = re.compile(r"\([a-z]\([a-z0-9]{16,}\)\)", re.IGNORECASE)
_SEGMENT_SESSION_RE: Final = re.compile(
    r"(?:sid|sessionid|session_id|sessid|jsessionid|phpsessid)=[a-z0-9]{16,}", re.IGNORECASE
)

_CALENDAR_WORDS: Final = _words(
    "calendar calendars cal kalender calendrier calendario kalendarz agenda events event veranstaltungen "
    "termine terminkalender evenements eventos eventi wydarzenia ical"
)
_ARCHIVE_WORDS: Final = _words("archive archives archiv archivio archivo archiwum archief arquivo")
# Query keys of a calendar widget; with a calendar word in the path they mark a date page.
_DATE_QUERY_KEYS: Final = _words(
    "date day month year week yr jahr monat woche datum fecha mes ano anno giorno mois jour annee caldate "
    "cal_date calendar_date eventdate event_date start_date end_date tribe-bar-date"
)
_YEAR_QUERY_KEYS: Final = _words("year yr jahr ano anno annee")
_MONTH_QUERY_KEYS: Final = _words("month monat mes mois")
_FULL_DATE_QUERY_KEYS: Final = _words(
    "date datum fecha caldate cal_date calendar_date eventdate event_date start_date end_date tribe-bar-date"
)
_DATE_VALUE_RE: Final = re.compile(r"(\d{4})(?:[-/.]?(\d{2})(?:[-/.]?(\d{2}))?)?")
_DATE_SEGMENT_RE: Final = re.compile(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?|(\d{2})(\d{2})?)?")
# Numbers outside this window are ids, not years.  Calendars step a month or a year at a time,
# so a runaway one crosses MIN_YEAR or next year long before it leaves the window.
_YEAR_WINDOW: Final = range(1900, 2200)


def trap_reason(url: str, *, current_year: int | None = None) -> str | None:
    """Why ``url`` looks like a crawler trap, in a few words, or None when it looks like a page.

    Calls :func:`strip_session_params` first, so servlet session ids are not held against a URL.
    ``current_year`` defaults to this year (UTC); tests pin it.  Never raises.
    """
    try:
        parts = urlsplit(strip_session_params(url))
    except ValueError:
        return None
    year_now = current_year if current_year is not None else datetime.datetime.now(datetime.UTC).year
    segments = [unquote(s) for s in parts.path.split("/") if s]
    return (
        _depth_reason(segments)
        or _repetition_reason(segments)
        or _path_session_reason(segments)
        or _query_reason(parts.query)
        or _calendar_reason(segments, parts.query, year_now)
    )


def strip_session_params(url: str) -> str:
    """``url`` without session-id query parameters and ``;jsessionid=``-style path parameters.

    Everything else is left exactly as it was (order, spelling, fragment), so the result is
    stable: ``strip_session_params(strip_session_params(u)) == strip_session_params(u)``.
    """
    rest, hash_mark, fragment = url.partition("#")
    before_query, question_mark, query = rest.partition("?")
    scheme_end = before_query.find("//")
    path_start = before_query.find("/", scheme_end + 2) if scheme_end >= 0 else 0
    if path_start >= 0:
        head, path = before_query[:path_start], before_query[path_start:]
        # Removing one parameter can never form another, but a loop makes the fixed point explicit.
        while (stripped := _PATH_SESSION_RE.sub("", path)) != path:
            path = stripped
        before_query = head + path
    if question_mark:
        kept = [piece for piece in query.split("&") if not _is_session_param(piece)]
        query = "&".join(kept)
        question_mark = "?" if query else ""
    return before_query + question_mark + query + hash_mark + fragment


def article_id_query(url: str) -> bool:
    """Whether the query is one article id and nothing else, on a path that is no article by
    itself (``/story.php?id=9``, ``/?p=123``): how many CMSs name their articles, one page per
    value, so the per-path variant budget must not cut a site's archive at its 50th story.  An
    article path with an id (``/2025/01/21/story.html?id=7``) is one page's variants: budgeted."""
    try:
        parts = urlsplit(url)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return False
    if not (len(pairs) == 1 and pairs[0][0].lower() in ID_QUERY_KEYS and pairs[0][1].isdigit()):
        return False
    return classify_url(parts._replace(query="").geturl()) != "article"


def query_variant_key(url: str) -> str:
    """Scheme, host and path of ``url`` (session ids, query and fragment dropped): the key under
    which a caller counts distinct queries, so one path cannot fan out into endless variants."""
    stripped = strip_session_params(url)
    try:
        parts = urlsplit(stripped)
    except ValueError:
        return stripped.split("#", 1)[0].split("?", 1)[0]
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path or '/'}"


def _is_session_param(piece: str) -> bool:
    raw_key, _, raw_value = piece.partition("=")
    key = unquote_plus(raw_key).strip().lower()
    if key in _SESSION_KEYS or key.startswith(_SESSION_KEY_PREFIXES):
        return True
    value = unquote_plus(raw_value)
    if key == "sid":
        return bool(_SID_TOKEN_RE.fullmatch(value) or _HEX32_RE.fullmatch(value))
    if key == "s":
        return bool(_HEX32_RE.fullmatch(value))
    return False


def _depth_reason(segments: list[str]) -> str | None:
    if len(segments) > MAX_SEGMENTS:
        return f"path has {len(segments)} segments (more than {MAX_SEGMENTS})"
    return None


def _repetition_reason(segments: list[str]) -> str | None:
    """A block of segments repeated back to back: the signature of relative links resolved
    against the wrong base (``/a/b/`` linking ``a/b/`` links ``a/b/a/b/`` ...)."""
    n = len(segments)
    for size in range(1, min(4, n // 2) + 1):
        for start in range(n - 2 * size + 1):
            block = segments[start : start + size]
            repeats = 1
            while segments[start + repeats * size : start + (repeats + 1) * size] == block:
                repeats += 1
            # Three in a row always; twice only for a block of three or more words, which a
            # real URL hardly ever spells out twice ("/de/news/de/news" stays allowed).
            if repeats >= 3 or (repeats == 2 and size >= 3 and not all(s.isdigit() for s in block)):
                return f"path repeats {'/'.join(block)!r} {repeats} times"
    counts = Counter(s.lower() for s in segments if not s.isdigit())
    word, count = counts.most_common(1)[0] if counts else ("", 0)
    if count >= 4:
        return f"path segment {word!r} appears {count} times"
    return None


def _path_session_reason(segments: list[str]) -> str | None:
    for i, seg in enumerate(segments):
        if _ASPNET_COOKIELESS_RE.fullmatch(seg) or _SEGMENT_SESSION_RE.fullmatch(seg):
            return f"session id in the path ({seg[:24]!r})"
        if seg.lower() in _PATH_SESSION_WORDS and i + 1 < len(segments):
            token = segments[i + 1]
            if _SID_TOKEN_RE.fullmatch(token) or _HEX32_RE.fullmatch(token):
                return f"session id in the path ('{seg}/{token[:16]}…')"
    return None


def _query_pairs(query: str) -> list[tuple[str, str]]:
    pairs = []
    for piece in query.split("&"):
        if piece:
            key, _, value = piece.partition("=")
            pairs.append((unquote_plus(key).strip().lower(), unquote_plus(value).strip()))
    return pairs


def _query_reason(query: str) -> str | None:
    if len(query) > MAX_QUERY_LENGTH:
        return f"query string of {len(query)} characters (more than {MAX_QUERY_LENGTH})"
    pairs = _query_pairs(query)
    if len(pairs) > MAX_QUERY_PARAMS:
        return f"{len(pairs)} query parameters (more than {MAX_QUERY_PARAMS})"
    key, count = Counter(k for k, _ in pairs).most_common(1)[0] if pairs else ("", 0)
    if count > _MAX_KEY_REPEATS:
        return f"query parameter {key!r} repeated {count} times"
    return None


def _calendar_reason(segments: list[str], query: str, year_now: int) -> str | None:
    """Calendars link to the next month for ever; archives in a plausible range are listings."""
    pairs = _query_pairs(query)
    for key, value in pairs:
        reason = _query_date_reason(key, value, year_now)
        if reason:
            return f"{key}={value[:16]}: {reason}"

    lowered = [s.lower() for s in segments]
    calendar_at = next((i for i, s in enumerate(lowered) if s in _CALENDAR_WORDS), None)
    archive_at = next((i for i, s in enumerate(lowered) if s in _ARCHIVE_WORDS), None)
    context_at = min((i for i in (calendar_at, archive_at) if i is not None), default=None)
    if context_at is not None:
        tail = segments[context_at + 1 :]
        for i, seg in enumerate(tail):
            month_next = i + 1 < len(tail) and tail[i + 1].isdigit() and len(tail[i + 1]) <= 2
            # "/calendar/1850/01/" is a year whatever its value; a lone number must look like one.
            date = (
                (int(seg), int(tail[i + 1])) if month_next and len(seg) == 4 and seg.isdigit() else _date_segment(seg)
            )
            if date is None:
                continue
            year, month = date
            reason = _date_out_of_range(year, month, year_now)
            if reason:
                return f"{segments[context_at]!r} page dated {'/'.join(tail[i : i + 3])}: {reason}"
    if calendar_at is None and any(v.lower() in _CALENDAR_WORDS for _, v in pairs):
        calendar_at = len(segments)  # ?view=calendar&month=3: the calendar lives in the query
    if calendar_at is not None:
        # A calendar's day or month page (nothing after the date) is one of endless siblings.
        cal_tail = segments[calendar_at + 1 :]
        if (
            cal_tail
            and _date_segment(cal_tail[0]) is not None
            and all(s.isdigit() and len(s) <= 2 for s in cal_tail[1:])
        ):
            return f"calendar date page ({'/'.join(cal_tail)})"
        if any(k in _DATE_QUERY_KEYS for k, _ in pairs):
            return "calendar page with date parameters"

    # A dated path in the future (/2031/05/) is a calendar widget's "next month", not an archive.
    for seg, nxt in itertools.pairwise(segments):
        future = len(seg) == 4 and seg.isdigit() and int(seg) in _YEAR_WINDOW and int(seg) > year_now + 1
        if future and nxt.isdigit() and len(nxt) == 2 and 1 <= int(nxt) <= 12:
            return f"dated path in the future ({seg}/{nxt})"
    return None


def _query_date_reason(key: str, value: str, year_now: int) -> str | None:
    if key in _MONTH_QUERY_KEYS and value.isdigit() and int(value) > 12:
        return "no such month"
    if key in _YEAR_QUERY_KEYS and len(value) == 4 and value.isdigit():
        return _date_out_of_range(int(value), None, year_now)
    if key in _FULL_DATE_QUERY_KEYS or key in _MONTH_QUERY_KEYS:
        match = _DATE_VALUE_RE.fullmatch(value)
        if match and int(match.group(1)) in _YEAR_WINDOW and (match.group(2) or key in _MONTH_QUERY_KEYS):
            return _date_out_of_range(int(match.group(1)), int(match.group(2) or 1), year_now)
    return None


def _date_segment(segment: str) -> tuple[int, int | None] | None:
    """(year, month or None) when a path segment spells a date: 2025, 2025-01, 2025-01-21, 202501, 20250121."""
    match = _DATE_SEGMENT_RE.fullmatch(segment)
    if match is None or int(match.group(1)) not in _YEAR_WINDOW:
        return None
    if match.group(2) is not None:
        return int(match.group(1)), int(match.group(2))
    if match.group(4) is not None:
        month = int(match.group(4))
        # 6 or 8 digits are a compact date only when the month is real; else an id.
        return (int(match.group(1)), month) if 1 <= month <= 12 else None
    return int(match.group(1)), None


def _date_out_of_range(year: int, month: int | None, year_now: int) -> str | None:
    if not MIN_YEAR <= year <= year_now + 1:
        return f"year {year} outside {MIN_YEAR}-{year_now + 1}"
    if month is not None and not 1 <= month <= 12:
        return f"no month {month}"
    return None
