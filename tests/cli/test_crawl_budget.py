"""``ingest crawl``'s page budget (and ``workers.crawl``'s): the operator sets it, and a crawl it cut short says so.

A one-shot crawl has no next poll for the links its budget defers, so they are not fetched; the
summary must say how many and how to raise the budget, instead of reporting a smaller site.
Real parts: the fixture site over HTTP on 127.0.0.1 and the ``ingest`` command in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.pipeline import ROOT
from tests.support.site import build_site, corpus_articles, serve_site
from workers import crawl
from workers.sources.sourcefile import DEFAULT_MAX_PAGES

ARTICLES = 12


def _crawl(start: str, out: Path, *args: str, json: bool = True) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", "crawl", start, "--out", str(out), "--allow-private",
         "--host-rate", "0", "--processes", "1", *(["--json"] if json else []), *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def _summary(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr[-2000:]
    summary: dict[str, Any] = orjson.loads(done.stdout)
    return summary


def test_a_crawl_cut_by_its_page_budget_says_how_many_links_it_left_and_how_to_raise_it(tmp_path: Path) -> None:
    site = build_site(corpus_articles(ARTICLES), sections=("world",), per_page=ARTICLES)
    with serve_site(site) as server:
        cut = _summary(_crawl(server.base_url + "/world/", tmp_path / "cut", "--max-pages", "5"))
        text = _crawl(server.base_url + "/world/", tmp_path / "text", "--max-pages", "5", json=False)
        whole = _summary(_crawl(server.base_url + "/world/", tmp_path / "whole", "--max-pages", "100"))
        default = _crawl(server.base_url + "/world/", tmp_path / "default", json=False)
    assert 0 < cut["articles_stored"] < ARTICLES
    assert cut["page_budget"] == 5
    assert cut["over_budget"] >= ARTICLES - cut["articles_stored"], "every link left out is counted"
    assert text.returncode == 0
    assert "page budget of 5 pages reached" in text.stdout and "--max-pages" in text.stdout, text.stdout
    assert whole["articles_stored"] == ARTICLES
    assert whole["page_budget"] == 100 and whole["over_budget"] == 0
    assert default.returncode == 0 and "page budget" not in default.stdout, "a crawl within its budget says nothing"


def test_max_pages_overrides_a_sources_files_budget(tmp_path: Path) -> None:
    site = build_site(corpus_articles(ARTICLES), sections=("world",), per_page=ARTICLES)
    with serve_site(site) as server:
        sources = tmp_path / "sources.toml"
        sources.write_text(f'[[source]]\nname = "fixture"\nstart = ["{server.base_url}/world/"]\n'
                           'interval = "once"\nmax_pages = 100\n')
        own = _summary(_crawl(f"--sources={sources}", tmp_path / "own"))
        cut = _summary(_crawl(f"--sources={sources}", tmp_path / "cut", "--max-pages", "5"))
    assert (own["page_budget"], own["over_budget"], own["articles_stored"]) == (100, 0, ARTICLES)
    assert cut["page_budget"] == 5 and 0 < cut["articles_stored"] < ARTICLES
    assert cut["over_budget"] >= ARTICLES - cut["articles_stored"]


def test_the_page_budget_must_be_a_positive_number_and_its_default_is_in_the_help(tmp_path: Path) -> None:
    refused = _crawl("http://127.0.0.1:9/", tmp_path / "o", "--max-pages", "0")
    assert refused.returncode == 2 and "--max-pages" in refused.stderr
    shown = subprocess.run([sys.executable, "-m", "workers.cli", "crawl", "--help"], cwd=ROOT, capture_output=True,
                           text=True, timeout=60)  # fmt: skip
    assert "--max-pages" in shown.stdout and f"{DEFAULT_MAX_PAGES}" in shown.stdout


def test_the_python_api_takes_the_page_budget_too(tmp_path: Path) -> None:
    site = build_site(corpus_articles(ARTICLES), sections=("world",), per_page=ARTICLES)
    with serve_site(site) as server:
        summary = crawl([server.base_url + "/world/"], out=str(tmp_path / "o"), max_pages=4, processes=1,
                        host_rate=0.0, allow_private=True)
    assert 0 < summary.stored < ARTICLES and summary.page_budget == 4
    assert summary.over_budget >= ARTICLES - summary.stored
    assert summary.budget_note() is not None and "--max-pages" in summary.render()
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="max_pages"):
            crawl(["https://news.example/"], out=str(tmp_path / "x"), max_pages=bad)  # type: ignore[arg-type]
