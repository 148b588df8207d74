"""Structured logging: one structlog pipeline per process, JSON off a terminal, console on one.

Every outcome of every stage is one event named ``stage.outcome`` with the same field names
(``url``, ``url_id``, ``crawl_id``, ``host``, ``status``, ``ms``, ``bytes``), so ``jq`` can
follow one URL's journey across workers.  Dramatiq's and httpx's stdlib loggers are routed
through the same renderer so nothing bypasses the format.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import orjson
import structlog

from workers.core.settings import Settings

__all__ = ["configure_logging", "get_logger", "redact_secrets"]

_SECRET_FIELDS = ("password", "secret", "token", "authorization", "cookie", "aws_secret_access_key")
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def redact_secrets(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Processor: mask values of fields whose names say they hold a secret."""
    for key in list(event_dict):
        if any(s in key.lower() for s in _SECRET_FIELDS):
            event_dict[key] = "***"
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
        redact_secrets,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
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
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Library chatter (one line per HTTP request, per dramatiq retry) stays at warning: the
    # stage outcome lines already say what happened, once.
    root.setLevel(max(level, logging.WARNING))


def get_logger(name: str = "ingest") -> Any:
    """The structlog logger every stage uses."""
    return structlog.get_logger(name)
