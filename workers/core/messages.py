"""The messages between stages and the article record: built here, validated against ``schemas/``.

Messages are plain JSON dicts (no classes on the wire), so any producer that follows the
schemas (a script, another language) can feed the pipeline.  Each actor validates what it
receives; a message that does not validate is poison and goes to the dead letters.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

__all__ = [
    "DISCOVERY_KINDS",
    "SCHEMA_VERSION",
    "InvalidMessage",
    "fetch_task",
    "page_task",
    "schema",
    "sink_task",
    "validate",
]

SCHEMA_VERSION = 1
KINDS = ("fetch", "page", "sink", "article")
#: Kinds of page the discover stage reads (everything but articles); fetch needs them too, to know
#: which pages it may revisit and which need not be HTML, so they live here and not in discover.
DISCOVERY_KINDS = ("listing", "home", "feed", "sitemap", "robots")


class InvalidMessage(ValueError):
    """A message or record that does not match its schema; the text says where and why."""


def _schema_dir() -> Path:
    # Installed wheels carry the schemas inside the package; a source checkout keeps them at
    # the top level, where the design puts the contract for everyone to read.
    packaged = resources.files("workers") / "schemas"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "schemas"


@functools.cache
def schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of a message kind (``fetch``, ``page``, ``sink``) or of ``article``."""
    if kind not in KINDS:
        raise KeyError(f"no schema named {kind!r}; known: {', '.join(KINDS)}")
    loaded: dict[str, Any] = orjson.loads((_schema_dir() / f"{kind}.schema.json").read_bytes())
    return loaded


@functools.cache
def _fast_validator(kind: str) -> jsonschema_rs.Draft202012Validator:
    # Compiled (Rust) validation costs about 1 us a message where jsonschema's costs 80-350 us,
    # which was a tenth of a crawl's main-process CPU; jsonschema still words the errors.
    registry = jsonschema_rs.Registry([(schema(k)["$id"], schema(k)) for k in KINDS])
    return jsonschema_rs.Draft202012Validator(schema(kind), registry=registry, validate_formats=True)


@functools.cache
def _validator(kind: str) -> Draft202012Validator:
    registry: Registry[Any] = Registry().with_resources(
        (schema(k)["$id"], Resource.from_contents(schema(k))) for k in KINDS
    )
    return Draft202012Validator(schema(kind), registry=registry, format_checker=FormatChecker())


def validate(kind: str, message: Any) -> dict[str, Any]:
    """Return ``message`` if it is valid for ``kind``, else raise :class:`InvalidMessage`.

    The compiled validator answers for the valid messages (nearly all of them); anything it
    rejects is judged again by jsonschema, whose verdict stands and whose error says where.
    """
    try:
        fast = _fast_validator(kind).is_valid(message)
    except ValueError:  # not JSON-shaped (a non-string key): jsonschema says what is wrong
        fast = False
    errors = [] if fast else sorted(_validator(kind).iter_errors(message), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top)"
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InvalidMessage(f"{kind} message invalid at {where}: {first.message[:200]}{more}")
    assert isinstance(message, dict)
    return message


def fetch_task(
    *,
    crawl_id: str,
    url: str,
    url_id: str,
    kind: str,
    depth: int = 0,
    max_depth: int | None = None,
    max_pages: int | None = None,
    allowed_hosts: list[str] | None = None,
    slot_at: float | None = None,
    source: str | None = None,
    poll_id: str | None = None,
    found: dict[str, Any] | None = None,
    probe: bool = False,
) -> dict[str, Any]:
    """A fetch request for one normalised URL (``probe``: its page decides whether it is an article;
    ``max_pages``: the page budget of a crawl that has no source to set one)."""
    task: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "crawl_id": crawl_id,
        "url": url,
        "url_id": url_id,
        "kind": kind,
        "depth": depth,
    }
    if max_depth is not None:
        task["max_depth"] = max_depth
    if max_pages is not None:
        task["max_pages"] = max_pages
    if allowed_hosts:
        task["allowed_hosts"] = allowed_hosts
    if slot_at is not None:
        task["slot_at"] = slot_at
    optional = {"source": source, "poll_id": poll_id, "found": found}
    task.update({k: v for k, v in optional.items() if v is not None})
    if probe:
        task["probe"] = True
    return task


def page_task(
    fetch: dict[str, Any],
    *,
    final_url: str,
    status: int,
    fetched_at: str,
    raw_key: str,
    content_type: str | None,
    encoding: str | None,
    size: int,
) -> dict[str, Any]:
    """The claim check for a stored page, carrying the fetch request's trace and crawl scope."""
    task = {k: v for k, v in fetch.items() if k != "slot_at"}
    task.update(
        final_url=final_url,
        status=status,
        fetched_at=fetched_at,
        raw_key=raw_key,
        content_type=content_type,
        encoding=encoding,
        bytes=size,
    )
    return task


def sink_task(*, crawl_id: str, url_id: str, record: dict[str, Any]) -> dict[str, Any]:
    """A finished article record on its way to storage."""
    return {"schema_version": SCHEMA_VERSION, "crawl_id": crawl_id, "url_id": url_id, "record": record}
