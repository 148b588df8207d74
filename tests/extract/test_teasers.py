"""The teaser and boilerplate filters on small block lists and pages: what they remove, and what they leave alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.seedpages import seed_pages
from workers.extract.boilerplate import (
    boilerplate_indices,
    is_agency_line,
    is_credit_line,
    is_label_line,
    is_promo_line,
    is_rights_line,
    prune_widgets,
    widget_kind,
)
from workers.extract.metadata import parse_html
from workers.extract.teasers import (
    Block,
    drop_teasers,
    is_cue_heading,
    is_cue_line,
    is_date_line,
    shape_blocks,
    split_date,
    teaser_indices,
)

SEED_DUMP = Path("/work/shared/seed/naenara-page-as-text.txt")


def _blocks(*texts: str) -> list[Block]:
    return [Block(text) for text in texts]


def _texts(blocks: list[Block]) -> list[str]:
    return [b.text for b in blocks]


ARTICLE = (
    "The council approved the new budget on Tuesday after a debate that lasted more than five hours.",
    "Opposition members argued that the plan cuts too deeply into library funding and road repairs.",
    "The mayor said the savings were needed to balance the accounts before the next election.",
)


@pytest.mark.parametrize(
    "text",
    [
        "March 17, 2026",
        "17.03.2026",
        "2026-03-17",
        "17 March 2026",
        "21/01/2025",
        "Mo, 17.03.2026, 14:32 Uhr",
        "Monday, March 17, 2026",
        "17. März 2026",
        "5 de marzo de 2024",
        "12 stycznia 2023",
        "Updated: 17.03.2026",
        "Mar 17, 2026 at 9:15 am",
    ],
)
def test_date_lines_are_recognised_in_many_formats(text: str) -> None:
    assert is_date_line(text)


@pytest.mark.parametrize(
    "text",
    [
        "KCNA",
        "The law takes effect on 1 January 2026.",
        "March",
        "2026",
        "Chapter 12",
        "Downloads: 22.273",
        "Call 0171 2345678 for tickets",
        "In 2025 the team won 3 of 4 games",
    ],
)
def test_text_with_numbers_is_not_a_date_line(text: str) -> None:
    assert not is_date_line(text)


def test_split_date_separates_a_date_set_off_from_a_headline() -> None:
    assert split_date("Harbour gets night ferries | 17.03.2026") == ("Harbour gets night ferries", True)
    assert split_date("March 17, 2026 – Harbour gets night ferries") == ("Harbour gets night ferries", True)
    sentence = "The new timetable starts on 1 May 2026 - earlier than planned."
    assert split_date(sentence) == (sentence, False)


@pytest.mark.parametrize(
    "text",
    [
        "More From Naenara (En)",
        "Related",
        "Related articles",
        "Read more",
        "Read also:",
        "See also",
        "You may also like",
        "Recommended for you",
        "Most read",
        "Weiterlesen",
        "Lesen Sie auch",
        "Mehr zum Thema",
        "Das könnte Sie auch interessieren",
        "Notas relacionadas",
        "Leer más",
        "À lire aussi",
        "Sur le même sujet",
        "Czytaj też",
        "Leggi anche",
        "Weitere aktuelle Themen aus der Arbeitswelt",
        "More top stories »",
        "Lesen Sie auch die folgenden Beiträge:",
        "Leia também",
        "Lees ook",
    ],
)
def test_cue_headings_in_many_languages(text: str) -> None:
    assert is_cue_heading(text)


@pytest.mark.parametrize(
    "text",
    [
        "More than a game",
        "Related party transactions",
        "Reading between the lines",
        "Read more about it in our report on page 4.",
        "Weitere Informationen",
        "Recommended daily intake",
        "Das Wetter am Wochenende",
        "The election results",
    ],
)
def test_ordinary_headings_are_not_cues(text: str) -> None:
    assert not is_cue_heading(text)


def test_cue_lines_combine_a_cue_and_a_headline() -> None:
    assert is_cue_line("Read more: Looted colonial art: Germany to set up new contact office")
    assert is_cue_line("Lea también: Impiden ingreso a Nicaragua a reportero y camarógrafo")
    assert is_cue_line("MIRA: Madre se acerca a conocer los motivos de captura de su hijo")
    # A speaker in an interview is not a cue, even with the name "Lea" or "Mira".
    assert not is_cue_line("Lea: Ja, das stimmt, wir haben lange darüber gesprochen.")
    assert not is_cue_line("Note: the figures for March are provisional.")


def test_seed_dump_keeps_the_whole_article_and_drops_every_teaser() -> None:
    lines = [line.strip() for line in SEED_DUMP.read_text(encoding="utf-8").splitlines() if line.strip()]
    end = lines.index("KCNA")
    kept = _texts(drop_teasers(_blocks(*lines)))
    assert kept == lines[: end + 1]


def test_seed_dump_without_the_more_from_heading_still_loses_its_teasers() -> None:
    lines = [line.strip() for line in SEED_DUMP.read_text(encoding="utf-8").splitlines() if line.strip()]
    lines.remove("More From Naenara (En)")
    end = lines.index("KCNA")
    assert _texts(drop_teasers(_blocks(*lines))) == lines[: end + 1]


def test_article_closing_with_short_lines_keeps_them() -> None:
    teasers = (
        "A new bakery opened on the corner of Mill Street on Saturday morning, and by ten o’clock",
        "Council workers began repairing the footbridge over the canal after inspectors found",
    )
    blocks = _blocks(
        *ARTICLE,
        "Reporting by the culture desk",
        "(Staff reporter)",
        teasers[0],
        "March 3, 2026",
        teasers[0],
        teasers[1],
        "March 2, 2026",
        teasers[1],
    )
    assert _texts(drop_teasers(blocks)) == [*ARTICLE, "Reporting by the culture desk", "(Staff reporter)"]


def test_date_first_teasers_leave_the_open_closing_line_alone() -> None:
    heads = [
        "Harbour gets two more night ferries",
        "Library finishes scanning old newspapers",
        "Glacier lakes form earlier each spring",
    ]
    teasers = [b for n, h in enumerate(heads) for b in (Block(f"{n + 1} March 2026"), Block(h, linked=True))]
    blocks = [*_blocks(*ARTICLE, "Reporting by the culture desk"), *teasers]
    assert _texts(drop_teasers(blocks)) == [*ARTICLE, "Reporting by the culture desk"]


def test_byline_and_one_date_at_the_end_stay() -> None:
    blocks = _blocks(*ARTICLE, "By Jane Doe and John Roe", "17.03.2026")
    assert drop_teasers(blocks) == blocks


def test_timeline_of_dated_sentences_stays() -> None:
    blocks = _blocks(
        *ARTICLE,
        "12 March 2020",
        "The first lockdown begins across the country.",
        "4 May 2020",
        "Shops reopen under strict rules.",
        "1 July 2020",
        "Schools return.",
    )
    assert drop_teasers(blocks) == blocks


def test_schedule_of_dates_and_plain_lines_at_the_end_stays() -> None:
    """Dates beside open-ended lines are a TV schedule or a timeline unless links or repeats say otherwise."""
    schedule = ["Golf live on TV this weekend"]
    for n, day in enumerate(("Thursday, 3 February 2022", "Friday, 4 February 2022", "Saturday, 5 February 2022")):
        schedule += [
            day,
            f"Desert Championship, round {n + 1}, 11:30 on Sport 1 HD",
            f"Pro-Am, day {n + 1}, 21:00 on Sport 2",
        ]
    blocks = _blocks(*ARTICLE, *schedule)
    assert drop_teasers(blocks) == blocks
    linked = [Block(b.text, linked=not is_date_line(b.text)) for b in blocks[len(ARTICLE) + 1 :]]
    assert _texts(drop_teasers([*blocks[: len(ARTICLE) + 1], *linked])) == [*ARTICLE, schedule[0]]


def test_cue_line_in_the_middle_goes_but_the_next_subheading_stays() -> None:
    blocks = _blocks(
        ARTICLE[0],
        "Read more: Recognizing Germany colonial crimes: Work in progress",
        "Freedom fighters replace colonial leaders",
        ARTICLE[1],
        ARTICLE[2],
    )
    assert _texts(drop_teasers(blocks)) == [ARTICLE[0], "Freedom fighters replace colonial leaders", *ARTICLE[1:]]


def test_cue_heading_takes_the_list_after_it_and_stops_at_prose() -> None:
    bio = "Dr. Arne Example is a people scientist who has written about work and organisations for years."
    blocks = [
        *_blocks(*ARTICLE),
        Block("Lesen Sie auch die folgenden Beiträge:"),
        Block("Warum Sie diese drei HR-Prozesse digitalisieren sollten", "item", 1),
        Block("Der Jobmarkt bleibt vital", "item", 1),
        Block("Recruiting updaten: so geht es.", "item", 1),
        Block(bio),
    ]
    assert _texts(drop_teasers(blocks)) == [*ARTICLE, bio]


def test_cue_heading_does_not_take_a_lone_linked_headline_followed_by_prose() -> None:
    blocks = [
        Block("Weitere Artikel zum Thema", "item", 1),
        Block("Kommentierte Artikel", "item", 1),
        Block("Harbour gets night ferries", "head", 2, linked=True),
        *_blocks(*ARTICLE),
    ]
    assert _texts(drop_teasers(blocks)) == ["Harbour gets night ferries", *ARTICLE]


def test_links_closing_the_text_are_a_teaser_list() -> None:
    links = [
        Block("There is an entire mod dedicated to making you feel bad about it", linked=True),
        Block("Game finally beaten as fanatical player does everything that can be done", linked=True),
    ]
    assert _texts(drop_teasers([*_blocks(*ARTICLE), *links])) == list(ARTICLE)
    # One linked line alone is not enough evidence.
    assert _texts(drop_teasers([*_blocks(*ARTICLE), links[0]])) == [*ARTICLE, links[0].text]


def test_repeats_far_apart_are_not_teasers() -> None:
    step = "the dancer turns to the right and takes the partner's hand"
    blocks = _blocks(step, *ARTICLE, step, ARTICLE[0] + " Again.", step)
    assert drop_teasers(blocks) == blocks


def test_shapes_describe_the_seed_teaser_unit() -> None:
    teaser = "The election of deputies to the 15th Supreme People’s Assembly took place in the DPRK. All the"
    shapes = shape_blocks(_blocks("KCNA", teaser, "March 17, 2026", teaser))
    assert not shapes[0].teaserish
    assert shapes[1].open and shapes[1].repeated and shapes[1].headline
    assert shapes[2].date and not shapes[2].headline
    assert teaser_indices(_blocks(*ARTICLE, "KCNA", teaser, "March 17, 2026", teaser)) == set()


def test_seed_pages_paragraphs_survive_the_filter_alone() -> None:
    """Recall guard: no article paragraph of any generated page is ever treated as a teaser."""
    for page in seed_pages(count_per_style=5):
        blocks = _blocks(page.title, *page.paragraphs)
        assert drop_teasers(blocks) == blocks, page.style


def test_new_cues_lesen_sie_hier_and_next_article() -> None:
    assert is_cue_line("Lesen Sie hier: Spielabbruch in der Kreisliga nach Streit")
    assert is_cue_heading("Vorschau auf den nächsten Artikel") and is_cue_heading("Next article")
    assert not is_cue_line("Lesen Sie selbst: der Bericht ist öffentlich.")


# --- boilerplate lines and widgets (workers.extract.boilerplate) -----------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Foto: Christof Stache",
        "(Credit: Clayton Aldern / Grist)",
        "Titelbild: Geyres Christophe/ABACA/picture-alliance",
        "Photo Source: Markus Spiske from Pexels.",
        "© Bundesrat | Frank Bräuer",
    ],
)
def test_credit_lines(text: str) -> None:
    assert is_credit_line(text)


@pytest.mark.parametrize(
    "text",
    [
        "The photo was taken on the first day of the trial, the court said.",
        "Bild und Ton fielen am Abend für zwei Stunden aus, wie der Sender mitteilte.",
        "© is the sign that the law uses for copyright, " + "and it has a long history in the courts " * 3,
    ],
)
def test_prose_is_not_a_credit_line(text: str) -> None:
    assert not is_credit_line(text)


def test_rights_label_and_agency_lines() -> None:
    assert is_rights_line("© 2020 ®/TM General Mills All Rights Reserved")
    assert is_rights_line("Alle Rechte vorbehalten.")
    assert not is_rights_line("The court ruled that all rights reserved by the author " + "remain valid " * 20)
    assert is_label_line("Kategorie: News") and is_label_line("Tags: climate, energy")
    assert not is_label_line("Themen wie Klima und Energie beherrschten den Wahlkampf.")
    assert is_agency_line("aja/PAP") and is_agency_line("(dpa/AFP)")
    assert not is_agency_line("Read more") and not is_agency_line("24/7")


@pytest.mark.parametrize(
    "text",
    [
        "Sign up to get the best content of the week, and great gaming deals, as picked by the editors.",
        "Follow The Gleaner on Twitter and Instagram @JamaicaGleaner and on Facebook @GleanerJamaica.",
        "¡Mira lo que tiene nuestro canal de YouTube!",
        "Sie sind aktuell nicht eingeloggt.",
        "This post contains references to products from one or more of our advertisers.",
        "For the latest stories download the Example apps for iOS and Android.",
    ],
)
def test_promo_lines(text: str) -> None:
    assert is_promo_line(text)


def test_long_prose_about_newsletters_is_kept() -> None:
    text = "The newsletter, founded in 1998, " + "grew into the region's most read publication over the years, " * 6
    assert not is_promo_line(text)


def test_boilerplate_indices_keep_the_article_and_find_a_signature_before_a_source_line() -> None:
    blocks = _blocks(*ARTICLE, "Foto: dpa", *ARTICLE, "aja/PAP", "Publikacja dostępna na stronie: https://x.example/a")
    assert boilerplate_indices(blocks) == {len(ARTICLE), 2 * len(ARTICLE) + 1}
    # A signature-shaped first line is not a signature.
    assert boilerplate_indices(_blocks("EU/UK", *ARTICLE)) == set()


def test_widget_names() -> None:
    assert widget_kind("newsletter-form__wrapper newsletter-form") == "newsletter"
    assert widget_kind("TestReport__AuthorBox") == "author"
    assert widget_kind("about-author clearfix") == "author"
    assert widget_kind("sharedaddy sd-sharing-enabled") == "sharedaddy"
    assert widget_kind("breadcrumb-navigation-wrapper") == "breadcrumb"
    assert widget_kind("author-name byline") is None  # the byline is not an author box
    assert widget_kind("post-content entry-content") is None


def test_prune_widgets_removes_small_named_boxes_and_short_captions_only() -> None:
    prose = "<p>" + "Der Gemeinderat hat den Haushalt nach langer Debatte beschlossen. " * 20 + "</p>"
    long_caption = "Mit Hut und Perücke wird daraus ein Kostüm, das jeder in einer Stunde nähen kann " * 3
    html = f"""<html><body><article class="post tag-social tag-newsletter">{prose}
    <figure><img src="a.jpg"><figcaption>Foto des Rathauses am Abend</figcaption></figure>
    <figure><img src="b.jpg"><figcaption>{long_caption}</figcaption></figure>
    <div class="newsletter-box">Jetzt abonnieren</div> nach dem Kasten
    <div class="author-bio">Die Autorin schreibt seit 1999 über Kommunalpolitik.</div></article></body></html>"""
    tree = parse_html(html)
    assert tree is not None
    assert prune_widgets(tree) == 3
    text = " ".join(tree.text_content().split())
    assert "Der Gemeinderat" in text and long_caption.split()[0] in text and "nach dem Kasten" in text
    assert "Rathauses" not in text and "abonnieren" not in text and "Autorin" not in text
