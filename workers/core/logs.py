"""Structured logging: one structlog pipeline per process, JSON off a terminal, console on one.

Every outcome of every stage is one event named ``stage.outcome`` with the same field names
(``url``, ``url_id``, ``crawl_id``, ``host``, ``status``, ``ms``, ``bytes``), so ``jq`` can
follow one URL's journey across workers.  Dramatiq's and httpx's stdlib loggers are routed
through the same renderer so nothing bypasses the format, nor the masking of credentials: every
URL in every value (exception text included) loses its password and secret query parameters.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import orjson
import structlog

from workers.core.settings import Settings, redact_url

__all__ = [
    "OUTCOME_FIELDS",
    "configure_logging",
    "get_logger",
    "outcome_fields",
    "redact_credentials",
    "redact_secrets",
    "redact_text",
]

_SECRET_FIELDS = ("password", "secret", "token", "authorization", "cookie", "aws_secret_access_key")
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def redact_secrets(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Processor: mask values of fields whose names say they hold a secret."""
    for key in list(event_dict):
        if any(s in key.lower() for s in _SECRET_FIELDS):
            event_dict[key] = "***"
    return event_dict


#: A URL-ish run of text: a scheme, "://", then everything up to whitespace.  Quotes and brackets
#: stay in (a password may hold them) and are trimmed from the end only.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")
_TRAILING = "'\"`.,;:!)]}>"
_PLAIN = (str, int, float, bool, type(None))
#: ProcessorFormatter's bookkeeping (the LogRecord itself), removed before rendering.
_META_KEYS = frozenset({"_record", "_from_structlog"})


def _redact_match(match: re.Match[str]) -> str:
    found = match.group(0)
    url = found.rstrip(_TRAILING)
    return redact_url(url) + found[len(url) :]


def redact_text(text: str) -> str:
    """``text`` with the credentials of every URL in it masked (see :func:`redact_url`)."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(_redact_match, text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, dict):
        return {_redact_value(k): _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        masked = [_redact_value(v) for v in value]
        return tuple(masked) if isinstance(value, tuple) else masked
    # Anything else is rendered through str() (JSON) or repr() (console): an exception or an
    # httpx.URL may carry a credentialed URL, so such a value is replaced by its masked text.
    try:
        text, shown = str(value), repr(value)
    except Exception:
        return value
    if redact_text(text) != text or redact_text(shown) != shown:
        return redact_text(text)
    return value


def redact_credentials(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Processor: mask credentials in every URL in every value, the event and exception text included."""
    for key, value in event_dict.items():
        if key not in _META_KEYS:
            event_dict[key] = _redact_value(value)
    return event_dict


#: The fields of every ``stage.outcome`` line, null where they do not apply, so one log query
#: (``status >= 500``, ``attempt > 1``) reads every stage alike.
OUTCOME_FIELDS = ("url", "url_id", "crawl_id", "source", "host", "status", "ms", "bytes", "attempt", "error")
_STAGES = frozenset({"fetch", "discover", "extract", "sink"})


def outcome_fields(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Give each stage outcome line every field of :data:`OUTCOME_FIELDS` (null where it does not apply)."""
    event = event_dict.get("event")
    if isinstance(event, str) and event.partition(".")[0] in _STAGES and "." in event:
        for name in OUTCOME_FIELDS:
            event_dict.setdefault(name, None)
    return event_dict


def _orjson_dumps(obj: Any, default: Any = None) -> str:
    return orjson.dumps(obj, default=default or str).decode("utf-8")


def configure_logging(settings: Settings, *, stream: TextIO | None = None, quiet: bool = False) -> None:
    """Configure structlog (and the stdlib loggers of our libraries) once per process.

    ``quiet`` raises the threshold to warnings: the embedded crawl shows a progress line on a
    terminal instead of one line per page.
    """
    stream = stream or sys.stderr
    use_json = settings.log_format == "json" or (settings.log_format == "auto" and not stream.isatty())
    level = _LEVELS[settings.log_level.lower()]
    if quiet:
        level = max(level, logging.WARNING)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        *([outcome_fields] if use_json else []),  # a terminal's reader skips no null padding
        redact_secrets,
    ]
    # Masking runs after the traceback is formatted, so exception text is masked too.
    last: list[Any] = [structlog.processors.format_exc_info, redact_credentials]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[*shared, *last, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # One write per line: several worker processes share one stdout, and a line written in two
        # pieces (text, then newline) can be split by another process's line.
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=renderer,
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), *last],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Library chatter (one line per HTTP request, per dramatiq retry) stays at warning: the
    # stage outcome lines already say what happened, once.
    root.setLevel(max(level, logging.WARNING))
    # A worker process is forked from `ingest worker`, which lets Dramatiq's own info lines through;
    # here they go back to the root's threshold.
    logging.getLogger("dramatiq").setLevel(logging.NOTSET)


def get_logger(name: str = "ingest") -> Any:
    """The structlog logger every stage uses."""
    return structlog.get_logger(name)
