"""Dead letters: every message that ended without success, kept until an operator acts.

A dead letter says why (``reason``, a short code such as ``http_error``, ``poison``, ``timeout``,
``retries_exhausted``), where (``stage``), how often it was tried (``attempts``), the first and last
error with its traceback, and the original message, so ``ingest dlq retry`` can send it again.

They live in Redis with no expiry (Dramatiq's own dead-letter queue expires after a week, and an
object store may be the very thing that is down); a copy also goes to storage when it is up.  The
embedded run keeps them in memory and in storage.  Keyed by message id: a message dead-lettered
again (a redelivery) updates its letter instead of adding a second one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

__all__ = ["DeadLetterStore", "MemoryDeadLetters", "RedisDeadLetters", "make_letter", "matches"]


def make_letter(
    *,
    letter_id: str,
    stage: str,
    reason: str,
    error: str,
    message: dict[str, Any],
    attempts: int,
    traceback: str | None = None,
    fields: dict[str, Any] | None = None,
    at: float | None = None,
) -> dict[str, Any]:
    """A dead letter as stored: plain JSON-able values only."""
    now = time.time() if at is None else at
    err = {"error": error[:2000], "traceback": (traceback or "")[-8000:], "at": now}
    return {
        "id": letter_id,
        "stage": stage,
        "reason": reason,
        "attempts": attempts,
        "first_error": err,
        "last_error": err,
        "first_at": now,
        "at": now,
        "message": message,
        **(fields or {}),
    }


def _merged(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """A repeat of a letter keeps its first error and first time, and counts every attempt."""
    if old is None:
        return new
    merged = dict(new)
    merged["first_error"] = old.get("first_error", new["first_error"])
    merged["first_at"] = old.get("first_at", new["first_at"])
    merged["attempts"] = max(int(old.get("attempts", 0)), int(new.get("attempts", 0)))
    return merged


def matches(letter: dict[str, Any], stage: str | None, reason: str | None, older_than_s: float | None,
            now: float) -> bool:
    """True when a letter passes the list/purge filters."""
    if stage is not None and letter.get("stage") != stage:
        return False
    if reason is not None and letter.get("reason") != reason:
        return False
    return older_than_s is None or float(letter.get("at", now)) <= now - older_than_s


class DeadLetterStore(Protocol):
    """Where dead letters are kept: add, look up, list, and remove once an operator acted."""

    def add(self, letter: dict[str, Any]) -> None:
        """Keep a letter (a repeat of the same id updates it)."""

    def get(self, letter_id: str) -> dict[str, Any] | None:
        """One letter, or None."""

    def list(self, *, stage: str | None = None, reason: str | None = None,
             older_than_s: float | None = None) -> list[dict[str, Any]]:
        """Letters, oldest first, filtered."""

    def remove(self, ids: Iterable[str]) -> int:
        """Drop letters by id; how many were there."""

    def count(self) -> int:
        """How many letters are kept."""


@dataclass
class MemoryDeadLetters:
    """Dead letters of the embedded run (also written to storage by the runtime)."""

    _letters: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, letter: dict[str, Any]) -> None:
        """Keep a letter (a repeat of the same id updates it)."""
        with self._lock:
            self._letters[letter["id"]] = _merged(self._letters.get(letter["id"]), letter)

    def get(self, letter_id: str) -> dict[str, Any] | None:
        """One letter, or None."""
        with self._lock:
            return self._letters.get(letter_id)

    def list(self, *, stage: str | None = None, reason: str | None = None,
             older_than_s: float | None = None) -> list[dict[str, Any]]:
        """Letters, oldest first, filtered."""
        now = time.time()
        with self._lock:
            letters = list(self._letters.values())
        return sorted((x for x in letters if matches(x, stage, reason, older_than_s, now)), key=lambda x: x["at"])

    def remove(self, ids: Iterable[str]) -> int:
        """Drop letters by id; how many were there."""
        with self._lock:
            return sum(1 for i in list(ids) if self._letters.pop(i, None) is not None)

    def count(self) -> int:
        """How many letters are kept."""
        with self._lock:
            return len(self._letters)


class RedisDeadLetters:
    """Dead letters in Redis: a hash of letters and a sorted index by time, neither ever expiring."""

    def __init__(self, client: Any, namespace: str) -> None:
        self.client = client
        self.letters_key = f"{namespace}:dlq:letters"
        self.index_key = f"{namespace}:dlq:index"
        #: Letters kept per stage, for metrics that must not read every letter on each scrape.
        self.counts_key = f"{namespace}:dlq:counts"

    def add(self, letter: dict[str, Any]) -> None:
        """Keep a letter (a repeat of the same id updates it)."""
        old_raw = self.client.hget(self.letters_key, letter["id"])
        merged = _merged(orjson.loads(old_raw) if old_raw else None, letter)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self.letters_key, letter["id"], orjson.dumps(merged, default=str))
        pipe.zadd(self.index_key, {letter["id"]: float(merged["at"])})
        if old_raw is None:
            pipe.hincrby(self.counts_key, str(letter["stage"]), 1)
        pipe.execute()

    def get(self, letter_id: str) -> dict[str, Any] | None:
        """One letter, or None."""
        raw = self.client.hget(self.letters_key, letter_id)
        return orjson.loads(raw) if raw else None

    def list(self, *, stage: str | None = None, reason: str | None = None,
             older_than_s: float | None = None) -> list[dict[str, Any]]:
        """Letters, oldest first, filtered (read in pages, so a large queue does not block Redis)."""
        now = time.time()
        out: list[dict[str, Any]] = []
        top = "+inf" if older_than_s is None else str(now - older_than_s)
        start = 0
        while True:
            ids = self.client.zrangebyscore(self.index_key, "-inf", top, start=start, num=500)
            if not ids:
                return out
            for raw in self.client.hmget(self.letters_key, ids):
                if raw:
                    letter = orjson.loads(raw)
                    if matches(letter, stage, reason, None, now):
                        out.append(letter)
            start += len(ids)

    def remove(self, ids: Iterable[str]) -> int:
        """Drop letters by id; how many were there."""
        ids = list(ids)
        if not ids:
            return 0
        stages = [orjson.loads(raw)["stage"] if raw else None for raw in self.client.hmget(self.letters_key, ids)]
        pipe = self.client.pipeline(transaction=True)
        for i in range(0, len(ids), 500):
            pipe.hdel(self.letters_key, *ids[i : i + 500])
            pipe.zrem(self.index_key, *ids[i : i + 500])
        for stage in stages:
            if stage is not None:
                pipe.hincrby(self.counts_key, str(stage), -1)
        results = pipe.execute()
        chunks = (len(ids) + 499) // 500
        return int(sum(results[0 : 2 * chunks : 2]))

    def count(self) -> int:
        """How many letters are kept."""
        return int(self.client.hlen(self.letters_key))
