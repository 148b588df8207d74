"""The second candidate: readability's text where trafilatura's is short, combined without comments,
inside the per-page time limit (workers.extract.readable, workers.extract.combine, extract_article)."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import lxml.html
import pytest

import workers.extract.article as article
from workers.core.bounded import BoundedPool, PageTimeout
from workers.extract.article import extract_article
from workers.extract.combine import agreement, combine, prose_share, unsure
from workers.extract.readable import drop_comment_areas, html_blocks, readability_blocks
from workers.extract.teasers import Block
from workers.pipeline.runtime import POOL_PRELOAD, _extract_inline

DRAGNET = Path("/work/shared/corpus/dragnet-dev")
URL = "https://travel.example/blog/glacier"

# A blog post (dragnet-dev page R82): its body is a run of <div> lines, which trafilatura passes over
# for the page's tour-date list; readability finds the body.
_BODY_START = "People ask us every day what our favorite place we've visited is."
_BODY_END = "Check out the video and photos below- and tell us where your favorite place in the world is!"
_TOUR_LINE = "October 20: Washington DC"

_COMMENTS = (
    "What a beautiful trip this must have been, we went to Glacier ourselves two summers ago and loved it.",
    "I have always wanted to see the park in the autumn, thank you for sharing all of these lovely photos.",
    "Our family camped at the lake for a week and the kids still talk about the mountain goats every day.",
)


def _blog_page() -> bytes:
    return gzip.decompress((DRAGNET / "html" / "R82.html.gz").read_bytes())


def _with_comment_thread(page: bytes) -> bytes:
    """The blog post with a reader comment thread right after the body, inside the same container.

    The thread is marked as comments by schema.org microdata only: readability already passes over
    elements whose class or id says "comment", not over these.
    """
    item = "<div itemprop='comment' itemscope itemtype='https://schema.org/Comment'><div>{}</div></div>"
    thread = "".join(item.format(c) for c in _COMMENTS)
    marker = _BODY_END.encode()
    at = page.index(marker) + len(marker)
    at = page.index(b"</div>", at) + len(b"</div>")
    return page[:at] + f"<div>{thread}</div>".encode() + page[at:]


def _blocks(*texts: str) -> list[Block]:
    return [Block(text) for text in texts]


def _sentence(i: int, words: int = 14) -> str:
    return " ".join(f"word{i}x{j}" for j in range(words)) + "."


# --- the real page: readability's candidate wins where trafilatura misses the body ------------------------


@pytest.mark.skipif(not DRAGNET.exists(), reason="needs the shared dragnet-dev corpus")
def test_the_body_trafilatura_misses_comes_from_readability() -> None:
    tree = lxml.html.fromstring(_blog_page())
    ours, theirs = article._candidates(tree, URL, always=True)
    assert _BODY_START not in article._render(ours)  # the premise: trafilatura kept the tour list
    assert theirs and _BODY_START in article._render(theirs)
    text = extract_article(_blog_page(), URL)["text"]
    assert _BODY_START in text and _BODY_END in text
    assert _TOUR_LINE not in text


@pytest.mark.skipif(not DRAGNET.exists(), reason="needs the shared dragnet-dev corpus")
def test_comments_stay_out_when_readability_takes_over() -> None:
    page = _with_comment_thread(_blog_page())
    text = extract_article(page, URL)["text"]
    assert _BODY_START in text  # readability's candidate, the only one with the body
    assert not [c for c in _COMMENTS if c[:40] in text]


@pytest.mark.skipif(not DRAGNET.exists(), reason="needs the shared dragnet-dev corpus")
def test_readability_alone_would_keep_that_comment_thread() -> None:
    """The premise of the test above: without the comment filter, readability keeps the thread."""
    tree = lxml.html.fromstring(_with_comment_thread(_blog_page()))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("workers.extract.readable.drop_comment_areas", lambda tree: None)
        unfiltered = "\n".join(readability_blocks(tree))
    assert any(c[:40] in unfiltered for c in _COMMENTS)
    assert not any(c[:40] in "\n".join(readability_blocks(tree)) for c in _COMMENTS)


def test_comment_areas_go_and_the_text_after_them_stays() -> None:
    tree = lxml.html.fromstring(
        "<html><body><article><p>Body paragraph.</p>"
        "<ol class='commentlist'><li>A reader's comment.</li></ol>"
        "<section id='comments'><p>Another comment.</p></section>tail text"
        "<div itemprop='comment'><p>Marked-up comment.</p></div>"
        "<p>Closing paragraph.</p></article></body></html>"
    )
    drop_comment_areas(tree)
    text = " ".join(html_blocks(tree))
    assert "Body paragraph." in text and "Closing paragraph." in text and "tail text" in text
    assert "comment." not in text.lower()


def test_summary_blocks_keep_paragraphs_and_line_breaks_apart() -> None:
    fragment = lxml.html.fromstring("<div><p>One <b>bold</b> line.</p>two<br>three<ul><li>a</li><li>b</li></ul></div>")
    assert html_blocks(fragment) == ["One bold line.", "two", "three", "a", "b"]


# --- when readability is asked, and that it runs inside the time limit ------------------------------------


def _article_page(paragraphs: int) -> str:
    body = "".join(
        f"<p>{_sentence(i)} This paragraph of the report is written in plain words.</p>" for i in range(paragraphs)
    )
    return f"<html><head><title>Report</title></head><body><article><h1>Report</h1>{body}</article></body></html>"


def test_readability_runs_only_when_trafilatura_is_unsure(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def spy(tree: object) -> list[str]:
        calls.append(1)
        return []

    monkeypatch.setattr(article, "readability_blocks", spy)
    extract_article(_article_page(30), URL)
    assert calls == []  # a long article: trafilatura's text stands, no second candidate
    extract_article(_article_page(2), URL)
    assert calls == [1]


def _slow_readability_extract(html: bytes, url: str) -> dict[str, object]:
    """The extract stage's pool function, with a readability that takes ten seconds (in the child)."""

    def slow(tree: object) -> list[str]:
        time.sleep(10)
        return []

    setattr(article, "readability_blocks", slow)  # noqa: B010  # in a child of its own, thrown away
    return _extract_inline(html, url, None)


def test_the_per_page_time_limit_covers_readability() -> None:
    pool = BoundedPool(1, time_limit_s=3.0, preload=POOL_PRELOAD)  # the stage's pool, a short limit
    try:
        short = _article_page(2).encode()
        assert pool.run(_extract_inline, short, URL, None)["text"]  # the real pool function is fine
        started = time.monotonic()
        with pytest.raises(PageTimeout):
            pool.run(_slow_readability_extract, short, URL)
        assert time.monotonic() - started < 8
        long = _article_page(30).encode()  # no second candidate: the slow readability is never asked
        assert pool.run(_slow_readability_extract, long, URL)["text"]
    finally:
        pool.close()


# --- the combination rules ---------------------------------------------------------------------------------


def test_unsure_means_short_or_hardly_prose() -> None:
    assert unsure(_blocks(_sentence(1)))
    assert not unsure(_blocks(*(_sentence(i) for i in range(20))))
    dates = _blocks(*(f"October {i}: concert in the city hall of a town with a long name" for i in range(40)))
    assert unsure(dates)  # 480 tokens, none in sentences: a date list, not an article


def test_paragraphs_missing_inside_the_article_are_merged_in_place() -> None:
    ours = _blocks(_sentence(1), _sentence(3))
    theirs = _blocks(_sentence(1), _sentence(2, 40), _sentence(3))
    assert [b.text for b in combine(ours, theirs)] == [_sentence(1), _sentence(2, 40), _sentence(3)]


def test_paragraphs_outside_the_shared_ones_join_only_a_fragment() -> None:
    ours = _blocks(*(_sentence(i) for i in range(5)))  # 75 tokens
    teaser = _sentence(90, 40)
    theirs = [*ours, Block(teaser)]
    assert teaser not in [b.text for b in combine(ours, theirs)]  # after the article's end: left out
    fragment = ours[:1]
    assert [b.text for b in combine(fragment, theirs)] == [b.text for b in theirs]  # a fragment: completed


def test_a_line_or_two_more_is_not_merged() -> None:
    ours = _blocks(_sentence(1), _sentence(3))
    theirs = _blocks(_sentence(1), "Date: 01/07/2024 | Source: Daily", _sentence(3))
    assert combine(ours, theirs) == ours


def test_when_they_disagree_the_candidate_that_reads_as_prose_wins() -> None:
    headlines = _blocks(*(f"Headline number {i} of the list" for i in range(8)))
    prose = _blocks(*(_sentence(i) for i in range(4)))
    assert prose_share(prose) == 1.0 and prose_share(headlines) == 0.0
    assert combine(headlines, prose) == prose
    assert combine(prose, headlines) == prose  # the other way round, trafilatura's prose stands


def test_agreeing_candidates_keep_trafilaturas() -> None:
    ours = _blocks(*(_sentence(i) for i in range(3)))
    theirs = _blocks(*(_sentence(i) for i in range(3)), "Share this")
    assert agreement(ours, theirs).covered == 1.0
    assert combine(ours, theirs) == ours
    assert combine(ours, []) == ours and combine([], theirs) == theirs
