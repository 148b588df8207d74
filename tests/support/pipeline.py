"""Helpers for the end-to-end tests: the fixture site with seed-shaped pages, records, workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import orjson

from tests.support.seedpages import seed_pages
from tests.support.site import ArticleSpec, Site, build_site, corpus_articles
from workers.core.messages import validate
from workers.core.storage import Storage
from workers.core.urls import normalize_url

ROOT = Path(__file__).resolve().parents[2]


def seed_articles(count_per_style: int = 2) -> list[ArticleSpec]:
    """Seed-shaped article pages (article + "More From …" teasers) as fixture-site articles."""
    specs = [
        ArticleSpec(path=p.path, html=p.html.encode("utf-8"), title=p.title, must_have=p.paragraphs,
                    must_not=p.teasers)
        for p in seed_pages(count_per_style=count_per_style)
    ]
    _SEED_PATHS.update(s.path for s in specs)
    return specs


def mixed_site(corpus: int = 12, seed_per_style: int = 2) -> Site:
    """A news site of real corpus pages and seed-shaped pages, with sections and pagination."""
    return build_site([*corpus_articles(corpus), *seed_articles(seed_per_style)], per_page=5)


def load_records(storage: Storage) -> list[dict[str, Any]]:
    """Every article record in storage, each validated against the schema."""
    return [validate("article", orjson.loads(storage.get(key))) for key in storage.keys("articles/")]


def assert_site_stored(site: Site, base_url: str, records: list[dict[str, Any]]) -> None:
    """Every article exactly once; seed-shaped pages whole, ending with their last paragraph, no teasers."""
    urls = [r["url"] for r in records]
    assert len(urls) == len(set(urls)), "an article was stored twice"
    expected = {normalize_url(base_url + a.path) for a in site.articles}
    missing, extra = sorted(expected - set(urls)), sorted(set(urls) - expected)
    assert not missing and not extra, f"missing {missing[:3]}, extra {extra[:3]}"
    by_url = {r["url"]: r for r in records}
    all_teasers = [" ".join(t.split()) for a in site.articles if is_seed(a) for t in a.must_not]
    for article in site.articles:
        record = by_url[normalize_url(base_url + article.path)]
        text = " ".join(record["text"].split())
        assert record["raw_key"].startswith("raw/") and len(record["content_sha256"]) == 64
        assert not [t for t in all_teasers if t in text], f"{article.path}: teaser text leaked"
        if is_seed(article):
            for para in article.must_have:
                assert " ".join(para.split()) in text, f"{article.path}: paragraph missing: {para[:60]}"
            assert text.endswith(" ".join(article.must_have[-1].split())), f"{article.path}: text runs past the end"


def is_seed(article: ArticleSpec) -> bool:
    """Whether a fixture article is one of the seed-shaped pages (its teasers are known exactly)."""
    return article.path in _SEED_PATHS


_SEED_PATHS: set[str] = set()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> float:
    """Poll ``predicate`` until true; return the seconds it took, or fail naming ``what``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class WorkerProcess:
    """An ``ingest worker`` subprocess in its own process group, its JSON log lines in a file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "worker", *args],
            env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
        )

    def events(self) -> list[dict[str, Any]]:
        """The structured log lines written so far."""
        out = []
        for line in self.log_path.read_bytes().splitlines():
            if line.startswith(b"{"):
                try:
                    out.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    continue
        return out

    def kill(self) -> None:
        """SIGKILL the whole worker (parent and its worker processes): a host dying."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def stop(self) -> int:
        """Graceful stop (SIGTERM to the parent, as an orchestrator does); returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


@contextmanager
def workers(*specs: tuple[list[str], Path], env: dict[str, str]) -> Iterator[list[WorkerProcess]]:
    """Start several worker subprocesses and always stop them."""
    procs = [WorkerProcess(args, env, log) for args, log in specs]
    try:
        yield procs
    finally:
        for p in procs:
            if p.proc.poll() is None:
                p.stop()


def worker_env(**extra: str) -> dict[str, str]:
    """The environment for worker subprocesses: this interpreter's, JSON logs, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_") or k == "INGEST_CORPUS_DIR"}
    env.update(INGEST_LOG_FORMAT="json", PYTHONUNBUFFERED="1", **extra)
    return env


def events_named(procs: list[WorkerProcess], name: str) -> list[dict[str, Any]]:
    """All log events called ``name`` across worker processes."""
    return [e for p in procs for e in p.events() if e.get("event") == name]
