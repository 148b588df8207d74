"""The extract stage's newer rules: lead recovery, named widgets, tell-tale lines, parsing and microdata dates."""

from __future__ import annotations

from typing import Any

import pytest

from workers.extract.article import extract_article
from workers.extract.boilerplate import boilerplate_indices, prune_widgets, widget_kind
from workers.extract.fields import page_fields
from workers.extract.lead import find_lead, is_lead_name
from workers.extract.metadata import decode_html, page_metadata, parse_html
from workers.extract.teasers import Block

URL = "https://news.example.org/local/2024/night-ferries.html"
TITLE = "Night ferries for the islands"
LEAD = (
    "The harbour authority will run two night ferries to the islands from May, mainly for shift workers "
    "at the container terminal who now wait hours for the first boat."
)
BODY = (
    "The authority's director announced the crossings on Tuesday after months of talks with the unions.",
    "Boats will leave the old pier at a quarter past ten and twenty to midnight on every day of the week.",
    "Fares stay the same, and residents of the islands keep their discount on the monthly pass.",
    "The extra service costs about 1.2 million euros a year, which the port will pay from its reserves.",
    "A first review of the timetable is planned for the autumn, when the winter schedule is drawn up.",
)
ARTICLE = (
    "The council approved the new budget on Tuesday after a debate that lasted more than five hours.",
    "Opposition members argued that the plan cuts too deeply into library funding and road repairs.",
    "The mayor said the savings were needed to balance the accounts before the next election.",
)


def _news_page(before: str = "", after: str = "", *, heading: bool = True) -> str:
    """A news article; ``before`` goes between the headline and the body, ``after`` after the article."""
    h1 = f"<h1>{TITLE}</h1>" if heading else ""
    paragraphs = "".join(f"<p>{p}</p>" for p in BODY)
    return (
        f"<!DOCTYPE html><html lang='en'><head><title>{TITLE}</title></head><body>"
        f"<header><nav><a href='/'>Home</a> <a href='/local/'>Local</a></nav></header>"
        f"<main><article>{h1}{before}{paragraphs}</article>{after}</main>"
        "</body></html>"
    )


def _text(html: str) -> str:
    return str(extract_article(html, URL)["text"])


def _paragraphs(html: str) -> list[str]:
    return _text(html).split("\n\n")


def _blocks(*texts: str) -> list[Block]:
    return [Block(text) for text in texts]


# --- lead recovery (workers.extract.lead, extract_article) -----------------------------------------------


@pytest.mark.parametrize(
    "element",
    [
        f'<div class="teaser-text">{LEAD}</div>',
        f'<p class="teaserText">{LEAD}</p>',
        f'<div class="article-teaser">{LEAD}</div>',
    ],
    ids=["teaser-text", "teaserText", "article-teaser"],
)
def test_lead_dropped_by_trafilatura_is_put_back_after_the_headline(element: str) -> None:
    paragraphs = _paragraphs(_news_page(element))
    assert paragraphs[:3] == [TITLE, LEAD, BODY[0]]
    assert paragraphs[-1] == BODY[-1] and paragraphs.count(LEAD) == 1


def test_a_recovered_lead_is_cleaned_like_the_rest_of_the_text() -> None:
    soft = LEAD.replace("authority", "autho\u00adrity", 1)
    text = _text(_news_page(f'<div class="teaser-text">{soft}</div>'))
    assert LEAD in text and "\u00ad" not in text


SHORT_LEAD = "Two night ferries will link the islands from May."


@pytest.mark.parametrize("tag", ["p", "div"])
def test_a_lead_trafilatura_keeps_is_not_added_twice(tag: str) -> None:
    # Under ten words the lead is not taken for the first paragraph, so only the duplicate check stops it.
    text = _text(_news_page(f'<{tag} class="article-lead">{SHORT_LEAD}</{tag}>'))
    assert text.split("\n\n")[:3] == [TITLE, SHORT_LEAD, BODY[0]]
    assert text.count(SHORT_LEAD) == 1


def test_lead_opens_the_text_when_there_is_no_headline() -> None:
    paragraphs = _paragraphs(_news_page(f'<div class="teaser-text">{LEAD}</div>', heading=False))
    assert paragraphs[:2] == [LEAD, BODY[0]]


def test_a_repeated_lead_class_is_a_teaser_list_not_a_lead() -> None:
    teasers = [
        "Island school gets a new gym after years of waiting, the council confirmed at its meeting on Monday evening.",
        "Fishermen protest against the new quota rules in front of the harbour office for the third day in a row.",
        "The lighthouse on the northern cape reopens for visitors this summer after a long and costly restoration.",
    ]
    boxes = "".join(f'<div class="teaser-text">{t}</div>' for t in teasers)
    text = _text(_news_page(f"<section>{boxes}</section>"))
    assert BODY[0] in text
    assert not [t for t in teasers if t[:40] in text]


def test_a_lead_named_element_after_the_body_is_not_a_lead() -> None:
    promo = (
        "Read our full series on the islands: how the ferries, the schools and the harbour have changed "
        "since the bridge plan was dropped ten years ago."
    )
    text = _text(_news_page(after=f'<div class="teaser-text">{promo}</div>'))
    assert text.startswith(TITLE) and BODY[-1] in text
    assert promo[:40] not in text


def test_without_a_first_paragraph_there_is_no_lead() -> None:
    # trafilatura found no article (a gallery, an index): nothing for a lead to stand before.
    tree = parse_html(f'<html><body><main><div class="teaser-text">{LEAD}</div><p>{BODY[0]}</p></main></body></html>')
    assert tree is not None
    named = [e for e in tree.iter("div") if is_lead_name(e.get("class") or "")]
    assert find_lead(named, BODY[0][:30]) == LEAD
    assert find_lead(named, "") is None


@pytest.mark.parametrize(
    "wrap",
    [
        "<aside>{}</aside>",
        "<nav>{}</nav>",
        '<a href="/local/2024/ferry-timetable.html">{}</a>',
    ],
    ids=["aside", "nav", "link"],
)
def test_a_lead_candidate_inside_an_aside_nav_or_link_is_not_a_lead(wrap: str) -> None:
    text = _text(_news_page(wrap.format(f'<div class="teaser-text">{LEAD}</div>')))
    assert BODY[0] in text and LEAD[:40] not in text


def test_a_lead_candidate_that_is_mostly_link_text_is_not_a_lead() -> None:
    linked = (
        'More on this: <a href="/local/ferries.html">the complete timetable of the island ferries '
        "and the night crossings from the old pier</a> here."
    )
    text = _text(_news_page(f'<div class="teaser-text">{linked}</div>'))
    assert BODY[0] in text and "complete timetable" not in text


def test_a_lead_candidate_with_a_copyright_sign_is_a_caption_not_a_lead() -> None:
    caption = "The first night ferry leaves the old pier on Tuesday, watched by a few dozen residents. © Jane Doe"
    text = _text(_news_page(f'<div class="teaser-text">{caption}</div>'))
    assert BODY[0] in text and "first night ferry" not in text


@pytest.mark.parametrize(
    "names", ["article-lead", "teaserText", "ts-intro", "entry-summary", "teaser-text", "articleLead", "tsIntro"]
)
def test_lead_names(names: str) -> None:
    assert is_lead_name(names)


@pytest.mark.parametrize(
    "names",
    ["author-description", "author-summary", "leader-board", "leaderboard", "video-teaser", "article-body"],
)
def test_names_that_are_not_leads(names: str) -> None:
    # "leader" is its own word, not "lead"; an author's or a video's summary names something else.
    assert not is_lead_name(names)


# --- named widgets (prune_widgets, widget_kind) --------------------------------------------------


@pytest.mark.parametrize(
    ("names", "kind"),
    [
        ("relatedPosts", "related"),
        ("jp-relatedposts", "relatedposts"),
        ("yarpp-related", "yarpp"),
        ("twitter-tweet", "tweet"),
        ("inline-teaser", "inline"),
        ("image-box", "image"),
        ("bildunterschrift", "bildunterschrift"),
    ],
)
def test_widget_names(names: str, kind: str) -> None:
    assert widget_kind(names) == kind


@pytest.mark.parametrize("names", ["article-body", "content", "imageGallery", "image-gallery", "inline-image"])
def test_names_that_are_not_widgets(names: str) -> None:
    assert widget_kind(names) is None


_PROSE = "<p>Der Gemeinderat hat den Haushalt nach einer langen Debatte mit großer Mehrheit beschlossen.</p>" * 15


def _pruned(body: str) -> tuple[int, str]:
    tree = parse_html(f"<html><head><title>t</title></head><body>{body}</body></html>")
    assert tree is not None
    removed = prune_widgets(tree)
    return removed, " ".join(tree.text_content().split())


def test_a_short_image_box_goes_and_a_long_one_is_kept() -> None:
    gallery = " ".join(["Die Werft baute das Schiff in nur elf Monaten, schneller als jede andere Werft."] * 3)
    assert len(gallery.split()) > 30
    removed, text = _pruned(
        f'<article>{_PROSE}<div class="image-box">Das Rathaus am Abend. Foto: Stadt</div>'
        f'<div class="image-box">{gallery}</div></article>'
    )
    assert removed == 1
    assert "Rathaus am Abend" not in text and "Die Werft baute" in text


def test_a_related_box_holding_most_of_the_page_is_the_article() -> None:
    removed, text = _pruned(
        f'<p>Vorspann.</p><div class="relatedPosts">{_PROSE}</div>'
        '<div class="jp-relatedposts">Mehr aus dem Rathaus</div>'
    )
    assert removed == 1
    assert "Der Gemeinderat" in text and "Mehr aus dem Rathaus" not in text


# --- tell-tale lines (boilerplate_indices) -------------------------------------------------------


def test_site_licence_line_is_dropped() -> None:
    licence = "Sofern nicht anders ausgewiesen, stehen Inhalte dieser Website unter CC-BY 4.0"
    assert boilerplate_indices(_blocks(*ARTICLE[:2], licence, ARTICLE[2])) == {2}


def test_caption_ending_in_a_credit_is_dropped_but_a_sentence_with_a_copyright_sign_is_kept() -> None:
    sentence = "Die Marke © Verlag gehört seit 1990 dem Konzern, der sie nun verkaufen will."
    blocks = _blocks(ARTICLE[0], "Logo des Preises | © Verlag", ARTICLE[1], sentence, ARTICLE[2])
    assert boilerplate_indices(blocks) == {1}


def test_closing_link_lines_are_dropped_but_a_link_in_the_middle_is_kept() -> None:
    links = [Block("Hier geht es zur neuen Vorstandsstruktur", linked=True), Block("Alle Termine", linked=True)]
    assert boilerplate_indices([*_blocks(*ARTICLE), *links]) == {3, 4}
    assert boilerplate_indices([Block(ARTICLE[0]), links[0], *_blocks(*ARTICLE[1:])]) == set()


@pytest.mark.parametrize(
    "appeal",
    ["Wesprzyj nas darowizną lub przekaż nam 1% podatku.", "Support us with a donation today"],
)
def test_money_appeal_is_dropped(appeal: str) -> None:
    assert boilerplate_indices(_blocks(ARTICLE[0], appeal, *ARTICLE[1:])) == {1}


@pytest.mark.parametrize(
    "sentence",
    [
        "Bitte unterstützen Sie uns dabei, unsere Produkte zu verbessern, und nehmen Sie an der Umfrage teil.",
        # Support and giving told about somebody else, not asked of the reader.
        "His contribution helped the team win the final on Sunday.",
        "Dieser Beitrag wurde von der Stiftung unterstützt.",
        "La donación apoyó a las familias de la región.",
    ],
)
def test_sentences_about_support_or_gifts_are_kept(sentence: str) -> None:
    assert boilerplate_indices(_blocks(ARTICLE[0], sentence, *ARTICLE[1:])) == set()


def test_advertising_disclosure_longer_than_a_call_to_action_is_dropped() -> None:
    disclosure = (
        "This post contains references to products from one or more of our advertisers. Clicking on the links "
        "to those products may pay this site. For an explanation of our advertising policy, visit this page. "
        "The offers shown here do not include every company or product that is available today."
    )
    assert 40 < len(disclosure.split()) <= 60  # past the call-to-action length, within the disclosure one
    assert boilerplate_indices(_blocks(disclosure, *ARTICLE)) == {0}


CONTACT = ("Stadtwerke Musterstadt, Anna Beispiel", "Telefon 0123 456789", "presse@stadtwerke.example")


@pytest.mark.parametrize(
    "heading", ["Pressekontakt", "Pressekontakt:", "Originalpublikation", "Weitere Informationen:"]
)
def test_end_matter_heading_in_the_second_half_drops_it_and_what_follows(heading: str) -> None:
    blocks = [*_blocks(*ARTICLE, *ARTICLE), Block(heading, "head"), *_blocks(*CONTACT)]
    assert boilerplate_indices(blocks) == set(range(6, 10))


def test_end_matter_heading_followed_by_a_long_text_is_kept() -> None:
    more = ARTICLE * 4
    blocks = [*_blocks(*ARTICLE * 5), Block("Weitere Informationen:", "head"), *_blocks(*more)]
    assert sum(len(t.split()) for t in more) > 150
    assert boilerplate_indices(blocks) == set()


def test_end_matter_heading_in_the_first_half_is_kept() -> None:
    blocks = [Block(ARTICLE[0]), Block("Pressekontakt", "head"), *_blocks(*CONTACT[:2], *ARTICLE, ARTICLE[0])]
    assert sum(len(b.text.split()) for b in blocks[2:]) <= 150  # only the position protects it
    assert boilerplate_indices(blocks) == set()


_PITCH = "Wir schreiben unabhängig und ohne Werbung, für unsere Leserinnen und Leser in der ganzen Region."
_CALL = "Unterstütze uns mit einer Spende."


def test_promotion_paragraph_of_br_lines_goes_whole() -> None:
    box = [Block(line, "p", 1) for line in ("Gefällt dir unser Magazin?", _PITCH, _CALL)]
    assert boilerplate_indices([*_blocks(*ARTICLE[:2]), *box, Block(ARTICLE[2])]) == {2, 3, 4}


def test_a_long_paragraph_with_a_call_to_action_keeps_its_other_lines() -> None:
    box = [Block(line, "p", 1) for line in (ARTICLE[0] * 4, ARTICLE[1] * 4, _CALL)]
    assert sum(len(b.text.split()) for b in box) > 120
    assert boilerplate_indices([*_blocks(*ARTICLE), *box, Block(ARTICLE[2])]) == {5}


def test_a_paragraph_of_br_lines_with_a_picture_credit_loses_only_the_credit() -> None:
    # A short article set as one <p> with <br> lines: only a call to action takes its paragraph along.
    story = [Block(line, "p", 1) for line in (ARTICLE[0], ARTICLE[1], "Foto: dpa")]
    assert boilerplate_indices([*story, Block(ARTICLE[2])]) == {2}


@pytest.mark.parametrize(
    "note",
    [
        "Candice Sealey is the Founder & Principal Consultant at Ignite, a marketing consultancy.",
        "Max Mustermann ist freier Journalist in Berlin.",
    ],
)
def test_author_note_closing_the_text_is_dropped_but_not_elsewhere(note: str) -> None:
    assert boilerplate_indices(_blocks(*ARTICLE, note)) == {3}
    assert boilerplate_indices(_blocks(ARTICLE[0], note, *ARTICLE[1:])) == set()


def test_a_closing_sentence_about_a_person_without_a_role_is_kept() -> None:
    assert boilerplate_indices(_blocks(*ARTICLE, "John Smith is due to appear in court on Monday.")) == set()


# --- parsing (parse_html, decode_html) -----------------------------------------------------------

SENTENCE = "The harbour authority will run two additional ferries every night between the old pier and the islands."


def _body_text(html: str) -> str:
    tree = parse_html(html)
    assert tree is not None
    return " ".join(tree.text_content().split())


def test_xhtml_doctype_page_keeps_its_body() -> None:
    html = (
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
        '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
        f'<html xmlns="http://www.w3.org/1999/xhtml"><head><title>t</title></head><body><p>{SENTENCE}</p></body></html>'
    )
    assert SENTENCE in _body_text(html)


def test_self_closed_html_element_still_gives_the_body() -> None:
    second = "The crossings are meant for shift workers at the container terminal."
    tree = parse_html(f'<html lang="de"/><head><title>t</title></head><body><p>{SENTENCE}</p><p>{second}</p></body>')
    assert tree is not None
    assert [" ".join(p.text_content().split()) for p in tree.iter("p")] == [SENTENCE, second]


def test_latin1_page_is_decoded_by_its_meta_charset() -> None:
    raw = (
        '<html><head><meta charset="iso-8859-1"><title>Post</title></head>'
        "<body><p>Viele Grüße aus dem Rathaus, schrieb der Bürgermeister.</p></body></html>"
    ).encode("latin-1")
    assert "Viele Grüße aus dem Rathaus" in _body_text(decode_html(raw))


def test_json_is_not_html() -> None:
    assert parse_html('{"a": 1}') is None


def test_control_characters_and_non_characters_are_removed() -> None:
    text = _body_text("<html><body><p>Null\x00byte and a non\ufffecharacter in one paragraph.</p></body></html>")
    assert text == "Nullbyte and a noncharacter in one paragraph."


# --- publication and modification times from microdata -------------------------------------------


def _microdata_page(head: str = "", stamp: str = "") -> str:
    paragraphs = "".join(f"<p>{p}</p>" for p in BODY)
    return (
        f"<html><head><title>{TITLE}</title>{head}</head><body><article><h1>{TITLE}</h1>"
        f"<p>By Jane Doe, {stamp}</p>{paragraphs}</article></body></html>"
    )


def test_published_timestamp_from_a_microdata_time_element() -> None:
    stamp = '<time itemprop="datePublished" datetime="2024-03-05T10:20:00+01:00">5 March 2024</time>'
    tree = parse_html(_microdata_page(stamp=stamp))
    assert tree is not None
    assert page_metadata(tree, URL)["published"] == "2024-03-05T10:20:00+01:00"


@pytest.mark.parametrize(
    ("head", "stamp", "updated"),
    [
        ('<meta itemprop="dateModified" content="2024-03-06T08:00:00Z">', "", "2024-03-06T08:00:00+00:00"),
        ("", '<span itemprop="dateModified" datetime="2024-03-06">6 March</span>', "2024-03-06"),
    ],
    ids=["meta", "span"],
)
def test_updated_from_microdata(head: str, stamp: str, updated: str) -> None:
    tree = parse_html(_microdata_page(head, stamp))
    assert tree is not None
    # A bare date stays a date: no midnight the page never stated.
    assert page_fields(tree, URL)["updated"] == updated


def _metadata(head: str, heading: str = "Ferries", url: str = URL) -> dict[str, Any]:
    """page_metadata of a one-paragraph article whose <head> holds ``head``."""
    page = f"<html><head>{head}</head><body><article><h1>{heading}</h1><p>{BODY[0]}</p></article></body></html>"
    tree = parse_html(page)
    assert tree is not None
    return page_metadata(tree, url)


def test_a_social_profile_url_is_not_a_site_name() -> None:
    head = '<meta property="og:site_name" content="https://www.facebook.com/examplenews"><title>Ferries</title>'
    assert _metadata(head, url="https://www.examplenews.org/local/ferries.html")["sitename"] == "examplenews.org"


@pytest.mark.parametrize(
    ("byline", "authors"),
    [
        ("Artikel von Jane Doe", ["Jane Doe"]),
        ("Par Attac France", ["Attac France"]),
        ("Interview: Julia Lauter", ["Julia Lauter"]),
        ("Name", []),
        ("Art Edwards says", []),
        ("Eine realistische Interpretation des neuen Keynes-Hicks-Multiplikators heute", []),
        ("Jane Doe; Byron Smith", ["Jane Doe", "Byron Smith"]),
    ],
)
def test_authors_lose_byline_labels_and_non_names(byline: str, authors: list[str]) -> None:
    head = f'<meta name="author" content="{byline}"><title>Ferries to the islands</title>'
    assert _metadata(head)["authors"] == authors


def test_inline_code_stays_inside_its_sentence_and_a_code_block_stands_alone() -> None:
    page = (
        "<html><head><title>Faster builds</title></head><body><article><h1>Faster builds</h1>"
        f"<p>{BODY[0]}</p>"
        "<p>Pin your dependencies with <code>pip-tools</code> and rebuild the image only when "
        "<code>requirements.txt</code> changes, which saves minutes on every single build.</p>"
        "<pre><code>FROM python:3.11\nCOPY requirements.txt .\nRUN pip install -r requirements.txt</code></pre>"
        f"<p>{BODY[1]}</p></article></body></html>"
    )
    paragraphs = _paragraphs(page)
    assert (
        "Pin your dependencies with pip-tools and rebuild the image only when requirements.txt changes, "
        "which saves minutes on every single build." in paragraphs
    )
    assert any(p.startswith("FROM python:3.11\nCOPY requirements.txt .") for p in paragraphs)


HEADLINE = "Ferries to the islands from May"


@pytest.mark.parametrize(
    "title",
    [
        "Ferries to the islands from May | Harbour News | Forum",
        "08.11.2021 | Ferries to the islands from May",
        "NWX Magazin | Ferries to the islands from May",
    ],
)
def test_the_title_part_that_is_the_pages_heading_is_the_title(title: str) -> None:
    head = f'<meta property="og:title" content="{title}"><title>{title}</title>'
    found = _metadata(head, HEADLINE, "https://www.harbour.example/ferries.html")
    assert found["title"] == HEADLINE


def test_a_title_that_only_names_the_site_gives_way_to_the_heading() -> None:
    head = (
        '<meta property="og:title" content="Harbour News">'
        '<meta property="og:site_name" content="Harbour News"><title>Harbour News</title>'
    )
    assert _metadata(head, HEADLINE, "https://www.harbour.example/ferries.html")["title"] == HEADLINE


@pytest.mark.parametrize("label", ["Advertisement", "ANZEIGE", "Reklama", "Share this article", "Drucken", "(Werbung)"])
def test_lone_advertising_labels_and_buttons_are_dropped(label: str) -> None:
    assert boilerplate_indices(_blocks(ARTICLE[0], label, *ARTICLE[1:])) == {1}


def test_a_sentence_about_advertising_is_kept() -> None:
    sentence = "Advertisement revenue fell by a third last year."
    assert boilerplate_indices(_blocks(ARTICLE[0], sentence, *ARTICLE[1:])) == set()


def test_a_caption_repeated_outside_its_figure_is_dropped_without_its_credit() -> None:
    caption = "The old pier at dawn, seen from the ferry."
    page = (
        "<html><head><title>Ferries</title></head><body><article><h1>Ferries</h1>"
        f'<figure><img src="/pier.jpg"><figcaption>{caption} © Jane Doe</figcaption></figure>'
        f'<div class="header-info"><p>{caption}</p></div>'
        f"<p>{BODY[0]}</p><p>{BODY[1]}</p></article></body></html>"
    )
    text = _text(page)
    assert BODY[0] in text and caption not in text
