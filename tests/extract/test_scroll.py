"""Pages that hold the next articles after the one asked for ("infinite scroll")."""

from __future__ import annotations

from workers.extract.article import extract_article
from workers.extract.metadata import parse_html
from workers.extract.scroll import cut_at_next_article, next_titles
from workers.extract.teasers import Block

_PROSE = (
    "The council met on Tuesday evening to discuss the new budget for the coming year, and members "
    "spoke at length about the costs of repairing the old bridge across the river."
)


def _article(title: str, paragraphs: int) -> str:
    body = "".join(f"<p>{_PROSE} Paragraph {i} of the story titled {title}.</p>" for i in range(paragraphs))
    return f"<article><header><h1>{title}</h1></header><div class='entry-content'>{body}</div></article>"


def _page(*articles: str) -> str:
    # As such sites do it: each story in its own <article>, all of them inside the page's main one.
    blocks = "".join(f"<div class='scrollblock'>{article}</div>" for article in articles)
    return f"<html><head><title>News</title></head><body><article class='post'>{blocks}</article></body></html>"


def test_next_titles_are_the_headings_of_the_following_articles() -> None:
    tree = parse_html(_page(_article("First story", 3), _article("Second story", 3), _article("Third story", 2)))
    assert tree is not None
    assert next_titles(tree) == frozenset({"Second story", "Third story"})


def test_a_page_with_one_article_has_no_next_titles_even_with_several_h1() -> None:
    # Some sites set subheadings as <h1> inside one article: those must not end the text.
    page = _page("<article><h1>Only story</h1><p>Intro.</p><h1>A subheading</h1><p>More.</p></article>")
    tree = parse_html(page)
    assert tree is not None
    assert next_titles(tree) == frozenset()


def test_cut_keeps_blocks_before_the_next_heading_and_never_the_first_block() -> None:
    blocks = [Block("Second story", "head"), Block("Text one."), Block("Second story", "head"), Block("Text two.")]
    # The first block may be the title itself (when trafilatura picked the second article): kept.
    assert cut_at_next_article(blocks, frozenset({"Second story"})) == blocks[:2]
    assert cut_at_next_article(blocks, frozenset()) == blocks


def test_record_of_an_infinite_scroll_page_holds_only_the_first_article() -> None:
    page = _page(_article("Bridge repairs approved", 4), _article("Flooding in the valley", 4))
    text = extract_article(page.encode(), "https://news.example.org/bridge")["text"]
    assert "story titled Bridge repairs approved" in text
    assert "Flooding in the valley" not in text
