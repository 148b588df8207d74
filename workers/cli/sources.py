"""``ingest sources validate|load|list``: the sources file meets the running system."""

from __future__ import annotations

import argparse
import sys
import time

from workers.core.settings import Settings
from workers.sources.sourcefile import SourcesError, load_sources

__all__ = ["run_sources"]


def run_sources(args: argparse.Namespace, settings: Settings) -> int:
    """Run a ``sources`` action; returns the exit code (1 when the file has errors)."""
    if args.sources_command in {"validate", "load"}:
        try:
            sources = load_sources(args.file)
        except SourcesError as exc:
            print(str(exc), file=sys.stderr)
            print(f"{args.file}: {len(exc.problems)} problem(s)", file=sys.stderr)
            return 1
        if args.sources_command == "validate":
            print(f"{args.file}: {len(sources)} source(s), no problems")
            return 0
    if settings.embedded:
        print("ingest sources: needs a shared broker: set INGEST_BROKER_URL=redis://host:6379/0", file=sys.stderr)
        return 2

    from workers.core.redisclient import redis_client
    from workers.discover.schedule import RedisSchedule
    from workers.sources.registry import RedisRegistry
    client = redis_client(settings.broker_url)
    registry = RedisRegistry(client, settings.namespace)
    schedule = RedisSchedule(client, settings.namespace)
    if args.sources_command == "list":
        entries = schedule.entries()
        for source in registry.all():
            due, interval = entries.get(source.name, (None, source.interval_s))
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(due)) if due else "not scheduled"
            print(f"{source.name:<24} {len(source.start_urls):>3} start URL(s)  every {interval:>6.0f}s  next {when}")
        return 0
    now = time.time()
    entries = schedule.entries()
    loaded = {s.name for s in sources}
    for source in sources:
        previous = registry.get(source.name)
        registry.put(source)
        due = entries.get(source.name, (now, 0.0))[0]
        # A new source, or one whose start pages or interval changed, is polled now; others keep
        # their cadence, so reloading an unchanged file does not trigger a crawl of everything.
        changed = previous is None or (previous.start_urls, previous.interval_s) != (
            source.start_urls,
            source.interval_s,
        )
        schedule.set(source.name, source.interval_s, now if changed else due)
    removed = 0
    if args.replace:
        for old in registry.all():
            if old.name not in loaded:
                registry.remove(old.name)
                schedule.remove(old.name)
                removed += 1
    print(f"{args.file}: loaded {len(sources)} source(s)" + (f", removed {removed}" if args.replace else ""))
    return 0
