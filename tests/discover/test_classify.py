"""The page classifier: articles by metadata and text, listings by teasers, the rest neither, with reasons."""

from __future__ import annotations

import json

from tests.support.layouts import LAYOUTS, build_layout_site
from workers.discover.classify import ARTICLE, LISTING, OTHER, classify_page

URL = "https://news.example/x"
TEXT = " ".join(["The council voted on Tuesday to close the old bridge to lorries for good."] * 6)


def _page(head: str = "", body: str = "") -> str:
    return f"<html><head><title>t</title>{head}</head><body>{body}</body></html>"


def _article_body(paragraphs: int = 3, signs: str = "") -> str:
    paras = "".join(f"<p>{TEXT}</p>" for _ in range(paragraphs))
    return f"<article><h1>Bridge closed to lorries</h1>{signs}<div>{paras}</div></article>"


def _teasers(n: int) -> str:
    return "".join(f'<div class="card"><h3><a href="/a/{10000 + i}">Story number {i} of the day</a></h3>'
                   f"<p>A short summary of story {i}.</p></div>" for i in range(n))


def test_og_type_article_with_a_text_is_an_article() -> None:
    verdict = classify_page(_page('<meta property="og:type" content="article">', _article_body(1)), URL)
    assert verdict.kind == ARTICLE
    assert "og:type article" in verdict.reasons


def test_json_ld_news_article_is_an_article_even_in_a_graph() -> None:
    ld = {"@context": "https://schema.org", "@graph": [{"@type": "WebPage"}, {"@type": ["NewsArticle"]}]}
    head = f'<script type="application/ld+json">{json.dumps(ld)}</script>'
    verdict = classify_page(_page(head, _article_body(1)), URL)
    assert verdict.kind == ARTICLE and any("newsarticle" in r for r in verdict.reasons)


def test_a_long_text_with_a_byline_and_a_date_is_an_article_without_metadata() -> None:
    signs = '<p class="byline">By A. Writer</p><time datetime="2024-05-01">1 May</time>'
    verdict = classify_page(_page(body=_article_body(4, signs) + _teasers(4)), URL)
    assert verdict.kind == ARTICLE
    assert {"a byline", "a date"} <= set(verdict.reasons)


def test_a_long_text_alone_is_not_an_article() -> None:
    """A policy or "about" page has a long text too; without a byline, a date or metadata it is no story."""
    assert classify_page(_page(body=_article_body(4)), URL).kind == OTHER


def test_many_teasers_of_one_shape_make_a_listing() -> None:
    verdict = classify_page(_page(body="<h1>World</h1><p>All the world news.</p>" + _teasers(8)), URL)
    assert verdict.kind == LISTING
    assert verdict.reasons[0] == "8 teaser links shaped /a/{id}"


def test_summaries_between_headlines_are_not_one_text() -> None:
    """Teaser summaries that share one parent with their headlines do not add up to an article text."""
    items = "".join(f'<h2><a href="/a/{20000 + i}">Headline number {i} here</a></h2><p>{TEXT[:300]}</p>'
                    for i in range(8))
    page = _page('<meta property="og:type" content="article">', f'<div class="list">{items}</div>')
    assert classify_page(page, URL).kind == LISTING


def test_collection_page_metadata_is_a_listing_and_garbage_is_other() -> None:
    head = '<script type="application/ld+json">{"@type": "CollectionPage"}</script>'
    assert classify_page(_page(head, "<h1>Sport</h1>"), URL).kind == LISTING
    assert classify_page(b"\x00\x01", URL).kind == OTHER
    assert classify_page(_page(), URL).kind == OTHER


def test_every_generated_article_is_an_article_and_no_listing_is() -> None:
    for layout in LAYOUTS:
        built = build_layout_site(layout, 12, 4)
        articles = set(built.article_paths)
        for path, (body, content_type) in built.site.pages.items():
            if "html" not in content_type:
                continue
            kind = classify_page(body, "http://127.0.0.1:1" + path).kind
            assert (kind == ARTICLE) == (path in articles), f"{layout.name} {path}: {kind}"
