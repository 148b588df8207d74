"""Site memory and duplicates in a crawl: what a site repeats on every page leaves the records."""

from __future__ import annotations

import uuid

import orjson

from tests.support.seedpages import seed_pages
from tests.support.site import ArticleSpec, build_site, serve_site
from workers.core.settings import Settings
from workers.core.storage import open_storage
from workers.core.urls import normalize_url
from workers.pipeline.crawl import run_embedded

#: A note every article of the site carries inside its body, as a plain paragraph: no cue heading,
#: no links, no newsletter words, so no per-page rule can tell it from the article.
BOX = ("This report is part of our regional coverage from the harbour district, produced together "
       "with the coastal reporting network and its partner newsrooms.")


def _with_box(html: str, paragraph: str) -> bytes:
    """The page with the box right after ``paragraph`` of the article, inside its body."""
    end = html.index("</p>", html.index(paragraph[:40])) + len("</p>")
    return (html[:end] + f"<p>{BOX}</p>" + html[end:]).encode("utf-8")


def test_a_block_every_page_repeats_is_learned_and_stripped_and_wire_copies_are_marked() -> None:
    pages = seed_pages(count_per_style=2)
    specs = [ArticleSpec(path=p.path, html=_with_box(p.html, p.paragraphs[1]), title=p.title, must_have=p.paragraphs,
                         must_not=p.teasers) for p in pages]
    site = build_site(specs, per_page=20)
    settings = Settings.from_env({}, storage_url=f"memory://{uuid.uuid4().hex}", allow_private=True,
                                 host_rate=0.0)
    with serve_site(site) as server:
        # One thread: pages are extracted in order, so the learning curve is deterministic.
        summary = run_embedded([server.base_url + "/"], settings, processes=1, threads=1)
    storage = open_storage(settings.storage_url)
    records = {r["url"]: r for r in (orjson.loads(storage.get(k)) for k in storage.keys("articles/"))}
    assert summary.stored == len(specs) == len(records)
    with_box = [u for u, r in records.items() if BOX in r["text"]]
    assert 1 <= len(with_box) <= 3, "the first pages of a host keep it (cold start), the rest lose it"
    for spec in specs:
        record = records[normalize_url(server.base_url + spec.path)]
        for para in spec.must_have:
            assert " ".join(para.split()) in " ".join(record["text"].split()), "site memory cost article text"
    # The same seed article appears in several markup styles: copies of one text under other URLs.
    marked = [r for r in records.values() if r["duplicate_of"]]
    assert marked and all(r["duplicate_kind"] in {"exact", "near"} for r in marked)
    originals = {r["id"] for r in records.values() if not r["duplicate_of"]}
    assert all(r["duplicate_of"] in originals for r in marked), "duplicates point at a stored original"
