"""``ingest dlq``: the dead letters, for an operator to read, retry or purge.

Every message that ended without success is kept (``workers.core.deadletters``): in Redis for the
workers, in storage (``deadletters/``) for an embedded crawl.  Nothing leaves until ``purge`` or a
successful ``retry`` (which puts the message back on its queue with a fresh attempt count).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

import orjson

from workers.core.settings import Settings

__all__ = ["add_dlq_parser", "parse_age", "run_dlq"]

_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_age(value: str) -> float:
    """``90s``, ``30m``, ``12h``, ``7d`` in seconds (an argparse type)."""
    match = _AGE.match(value.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a number and a unit (s, m, h, d), as in 7d, got {value!r}")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def add_dlq_parser(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``ingest dlq list|show|retry|purge`` to the ``ingest`` subparsers ``sub``."""
    dlq = sub.add_parser(
        "dlq",
        help="dead letters: list, show, retry or purge the messages that ended without success",
        description="Every message that ended without success (a permanent failure such as a 404, poison, a "
        "timeout, retries spent) is a dead letter: reason, stage, attempts, first and last error with "
        "traceback, the original message. They are kept in Redis (INGEST_BROKER_URL=redis://…) with no "
        "expiry, or in storage's deadletters/ after an embedded crawl, until purged or retried.",
    )
    actions = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="one line per dead letter, oldest first")
    listing.add_argument("--stage", choices=("discover", "fetch", "extract", "sink"))
    listing.add_argument("--reason", help="only this reason (http_error, timeout, poison, retries_exhausted, …)")
    listing.add_argument("--json", action="store_true", help="the letters as JSON, one per line")
    show = actions.add_parser("show", help="one dead letter in full")
    show.add_argument("id")
    retry = actions.add_parser("retry", help="put dead letters back on their queue with a fresh attempt count")
    retry.add_argument("ids", nargs="*", metavar="ID")
    retry.add_argument("--all", action="store_true", help="every dead letter (of --stage/--reason, if given)")
    retry.add_argument("--stage", choices=("discover", "fetch", "extract", "sink"))
    retry.add_argument("--reason")
    purge = actions.add_parser("purge", help="drop dead letters for good")
    purge.add_argument("--older-than", type=parse_age, metavar="AGE", help="only letters older than AGE (7d, 12h)")
    purge.add_argument("--stage", choices=("discover", "fetch", "extract", "sink"))
    purge.add_argument("--reason")


class _StorageLetters:
    """The dead letters an embedded crawl left in storage, read like the Redis store."""

    def __init__(self, settings: Settings) -> None:
        from workers.core.storage import open_storage

        self.storage = open_storage(settings.storage_url, s3_endpoint=settings.s3_endpoint)

    def list(self, *, stage: str | None = None, reason: str | None = None,
             older_than_s: float | None = None) -> list[dict[str, Any]]:
        from workers.core.deadletters import matches

        now = time.time()
        letters = [orjson.loads(self.storage.get(k)) for k in self.storage.keys("deadletters/")]
        letters = [x for x in letters if isinstance(x, dict) and "id" in x]
        return sorted((x for x in letters if matches(x, stage, reason, older_than_s, now)), key=lambda x: x["at"])

    def get(self, letter_id: str) -> dict[str, Any] | None:
        return next((x for x in self.list() if x["id"] == letter_id), None)

    def remove(self, ids: Iterable[str]) -> int:
        from workers.core.storage import deadletter_key

        wanted, gone = set(ids), 0
        for letter in self.list():
            if letter["id"] in wanted:
                self.storage.delete(deadletter_key(letter["stage"], letter["id"]))
                gone += 1
        return gone


def _line(letter: dict[str, Any], now: float) -> str:
    age = now - float(letter.get("at", now))
    shown_age = f"{age / 86400:.1f}d" if age >= 86400 else f"{age / 3600:.1f}h" if age >= 3600 else f"{age:.0f}s"
    error = str(letter.get("last_error", {}).get("error", ""))
    return (f"{letter['id']}  {letter['stage']:<8} {letter['reason']:<18} attempts={letter.get('attempts', 0):<2} "
            f"age={shown_age:<6} {letter.get('url') or '-'}  {error[:100]}")


def run_dlq(args: argparse.Namespace, settings: Settings, *, out: TextIO | None = None) -> int:
    """Run one ``ingest dlq`` action; returns the exit code."""
    out = out or sys.stdout
    client: Any = None
    store: Any
    if settings.embedded:
        store = _StorageLetters(settings)
    else:

        from workers.core.deadletters import RedisDeadLetters
        from workers.core.redisclient import redis_client
        client = redis_client(settings.broker_url, socket_connect_timeout=5, socket_timeout=10)
        store = RedisDeadLetters(client, settings.namespace)
    action = args.dlq_command
    if action == "list":
        letters = store.list(stage=args.stage, reason=args.reason)
        now = time.time()
        for letter in letters:
            print(orjson.dumps(letter).decode() if args.json else _line(letter, now), file=out)
        if not args.json:
            print(f"{len(letters)} dead letter{'s' if len(letters) != 1 else ''}", file=out)
        return 0
    if action == "show":
        letter = store.get(args.id)
        if letter is None:
            print(f"ingest dlq show: no dead letter {args.id!r} (see `ingest dlq list`)", file=sys.stderr)
            return 1
        out.write(orjson.dumps(letter, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    if action == "purge":
        letters = store.list(stage=args.stage, reason=args.reason, older_than_s=args.older_than)
        gone = store.remove([x["id"] for x in letters])
        print(f"purged {gone} dead letter{'s' if gone != 1 else ''}", file=out)
        return 0
    return _retry(args, settings, store, client, out)


def _retry(args: argparse.Namespace, settings: Settings, store: Any, client: Any, out: TextIO) -> int:
    if client is None:
        print("ingest dlq retry: needs the workers' Redis: set INGEST_BROKER_URL=redis://host:6379/0 "
              "(an embedded crawl's letters are retried by crawling their URLs again)", file=sys.stderr)
        return 2
    if bool(args.ids) == bool(args.all):
        print("ingest dlq retry: give letter IDs or --all, not both and not neither", file=sys.stderr)
        return 2
    if args.all:
        letters = store.list(stage=args.stage, reason=args.reason)
    else:
        letters = [store.get(i) for i in args.ids]
        missing = [i for i, x in zip(args.ids, letters, strict=True) if x is None]
        if missing:
            print(f"ingest dlq retry: no dead letter {', '.join(missing)} (see `ingest dlq list`)", file=sys.stderr)
            return 1
    from dramatiq.message import Message

    from workers.core.broker import QUEUES, make_broker

    broker = make_broker(settings, redis_client=client)
    sent, skipped = 0, 0
    try:
        for letter in letters:
            original = letter.get("message") or {}
            stage = letter["stage"]
            if stage not in QUEUES or original.get("actor_name") != stage or not original.get("args"):
                skipped += 1  # poison: its bytes or envelope were never a message of a stage
                print(f"skipped {letter['id']}: {letter['reason']} letter without a stage message", file=out)
                continue
            broker.enqueue(Message(queue_name=stage, actor_name=stage, args=tuple(original["args"]),
                                   kwargs=original.get("kwargs") or {}, options={}))
            store.remove([letter["id"]])
            sent += 1
    finally:
        broker.close()
    print(f"retried {sent}, skipped {skipped}", file=out)
    return 0
