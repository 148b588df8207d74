"""Writing a record: once per URL id, and a new version when a refreshed article has changed.

Only create-if-absent writes decide anything, so this is safe on every store obstore speaks
to (a local folder has no compare-and-swap on overwrite, S3 only with extra configuration):

- version 1 is the record itself, created at ``articles/…`` (:func:`~workers.core.storage.record_key`);
- version ``n >= 2`` is created at ``versions/…/<n>.json`` (:func:`~workers.core.storage.version_key`)
  and only then copied over ``articles/…``; before version 2 is created, version 1 is copied to
  ``versions/…/000001.json``, so a record that ever changed has its whole history there.

Whoever creates ``versions/…/<n>.json`` has made version ``n``; a writer that finds it taken reads
again and decides again.  A version is made only when its text differs from the latest and its
fetch is newer (``fetched_at``), so the chain's fetch times only grow: a late, older fetch is
``stale`` and writes nothing.  ``articles/…`` may lag the chain for a moment (two writers copying
at once, or a writer dying between its version and the copy); every writer copies the latest
version found there when the copy it made or found is behind, so it ends at the newest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from workers.core.storage import Storage, record_key, version_key

__all__ = ["Written", "write_record"]

Outcome = Literal["stored", "exists", "updated", "stale"]

#: Rounds of "someone else made that version first: read again".  Each lost round means another
#: writer made progress, so only that many writers racing on one URL could exhaust it.
_MAX_ROUNDS = 64


@dataclass(frozen=True)
class Written:
    """What :func:`write_record` did: ``stored`` (the first record), ``updated`` (a new version),
    ``exists`` (the same text is stored) or ``stale`` (a newer version is stored); ``version``
    is the latest version (None when a create-only write found a record and did not read it),
    ``bytes`` the size of the record as written, or as it would have been."""

    outcome: Outcome
    version: int | None
    bytes: int
    #: ``exists`` because this very record is stored (byte for byte): an earlier delivery of the
    #: same message wrote it, and may have died before anyone counted it.
    again: bool = False


def write_record(
    storage: Storage,
    record: dict[str, Any],
    url_id: str,
    *,
    prefix: str = "",
    versioned: bool = False,
    clock: Callable[[], datetime] | None = None,
) -> Written:
    """Store ``record`` for ``url_id`` under ``prefix``: created once, and with ``versioned`` a new
    version whenever its text changed and its fetch is newer than the stored one's."""
    host = record["host"]
    key = prefix + record_key(host, url_id)

    def history(version: int) -> str:
        return prefix + version_key(host, url_id, version)

    first = orjson.dumps({**record, "version": 1, "first_seen": record["fetched_at"]})
    size = len(first)
    for _ in range(_MAX_ROUNDS):
        if storage.put_new(key, first):
            return Written("stored", 1, size)
        try:
            stored = storage.get(key)
        except KeyError:  # deleted since: create it again
            continue
        if stored == first:
            return Written("exists", 1, size, again=True)
        if not versioned:
            return Written("exists", None, size)
        latest, body = _latest(storage, history, orjson.loads(stored), stored)
        if body != stored:
            storage.put(key, body)  # behind the chain: a copy overtaken, or its writer died
        if latest.get("content_sha256") == record["content_sha256"]:
            return Written("exists", _version(latest), size)
        if _instant(record["fetched_at"]) <= _instant(latest.get("fetched_at")):
            return Written("stale", _version(latest), size)
        version = _version(latest)
        if version == 1:
            # Version 1 lives only at articles/ so far: keep it before it is replaced.
            storage.put_new(history(1), body)
        updated_at = (clock or _now)().isoformat(timespec="milliseconds").replace("+00:00", "Z")
        first_seen = latest.get("first_seen") or latest.get("fetched_at") or record["fetched_at"]
        new = {**record, "version": version + 1, "first_seen": first_seen, "updated_at": updated_at}
        new_body = orjson.dumps(new)
        if not storage.put_new(history(version + 1), new_body):
            continue  # another writer made that version first: decide again against it
        storage.put(key, new_body)
        _catch_up(storage, key, history, version + 1)
        return Written("updated", version + 1, len(new_body))
    raise RuntimeError(f"{key}: gave up after {_MAX_ROUNDS} rounds of concurrent versions")


def _latest(
    storage: Storage, history: Callable[[int], str], record: dict[str, Any], body: bytes
) -> tuple[dict[str, Any], bytes]:
    """The newest version: ``record`` or a later one already in the history."""
    version = _version(record)
    while True:
        try:
            newer = storage.get(history(version + 1))
        except KeyError:
            return record, body
        record, body, version = orjson.loads(newer), newer, version + 1


def _catch_up(storage: Storage, key: str, history: Callable[[int], str], version: int) -> None:
    """After copying ``version`` to ``key``: if a newer version was made meanwhile, its writer's
    copy may have landed before ours, so copy the newest again (until none is newer)."""
    while True:
        try:
            newer = storage.get(history(version + 1))
        except KeyError:
            return
        version += 1
        storage.put(key, newer)


def _version(record: dict[str, Any]) -> int:
    # Records written before versions existed are version 1.
    version = record.get("version")
    return version if isinstance(version, int) and version >= 1 else 1


def _instant(value: Any) -> datetime:
    """A fetch time as an aware datetime (the oldest possible when missing or unreadable)."""
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)
