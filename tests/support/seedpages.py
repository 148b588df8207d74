"""Seed-shaped HTML pages: one article followed by a list of teasers for other articles.

The shape comes from the page that started the project (``/work/shared/seed/naenara-page-as-text.txt``,
a text dump of an article page on naenara.com.kp as re-published by an aggregator): an article
(headline, date line, body ending with a "KCNA" source line), then "More From Naenara (En)" and
teasers, each the first ~20 words of another article cut mid-sentence, a date, and the same words
again.  The seed's article and some of its teaser openings are reused below as test data; the
other articles and openings were written for these tests.

:func:`seed_pages` renders each article in several markup styles, from easy (teasers in an
``<aside>``) to hard (teasers as plain ``<p>`` siblings of the body paragraphs, as in the seed).
"""

from __future__ import annotations

import html
import random
import unicodedata
from dataclasses import dataclass

__all__ = ["STYLES", "SeedPage", "seed_pages"]

#: semantic: <article> + <aside> teaser list; divsoup: body div + sibling div of link cards;
#: flat: teasers as <p> siblings after a "More From …" line; flat_nocue: the same without that
#: line; flat_br: the teaser lines in one <p>, separated by <br> as in the seed's dump; table: a
#: layout table with the teasers in a nested table below the body.
STYLES = ("semantic", "divsoup", "flat", "flat_nocue", "flat_br", "table")


@dataclass(frozen=True)
class SeedPage:
    """One generated page and what an extractor must (``paragraphs``) and must not (``teasers``) keep."""

    style: str
    title: str
    html: str
    paragraphs: tuple[str, ...]
    teasers: tuple[str, ...]
    path: str


@dataclass(frozen=True)
class _Article:
    title: str
    section: str
    site: str
    lang: str
    cue: str
    paragraphs: tuple[str, ...]


_ARTICLES = (
    _Article(
        title="Japan’s Move to Establish Independent Mission in NATO Is Dangerous Act of Adding New "
        "Instability to Regional Situation",
        section="politics",
        site="Naenara (En)",
        lang="en",
        cue="More From Naenara (En)",
        paragraphs=(
            "Kim Ryo Won, an international security analyst of the DPRK, issued the following article "
            "“Japan’s move to establish an independent mission in NATO is a dangerous act of adding new "
            "instability to the regional situation”:",
            "Shortly ago, Japan officially opened its independent full-time mission in NATO under the "
            "pretext of “strengthening security cooperation with NATO and promoting strategic solidarity "
            "between the Indo-Pacific region and the European and Atlantic regions.”",
            "It set up its independent mission in NATO at a time when the security environment in the "
            "Asia-Pacific region is more seriously threatened due to the US provocative military "
            "hegemony-seeking acts. This is a dangerous act of adding a new factor for instability to the "
            "regional situation.",
            "It is extremely escalating the military tension in the region while tightening military "
            "confab and tie-up with NATO outside the region, pursuant to the US strategy for world "
            "domination to expand NATO's sphere of influence into the Asia-Pacific region.",
            "This is proved by the fact that Japan has regularly participated in the conspiracy sponsored "
            "by NATO since 2022, including the NATO summit. In particular, it conducted bilateral and "
            "multilateral military drills in succession last year on various pretexts in the Japanese "
            "Archipelago and its surrounding waters and the Pacific with US-led NATO member nations.",
            "Japan is getting frantic with the massive purchase of long-range strike means including "
            "US-made air-to-air missiles and Tomahawk cruise missiles by legalizing the possession of "
            "capability for making a preemptive attack and redoubling military spending. It is also "
            "getting hell-bent on securing the war camp by drawing NATO into the Asia-Pacific region. This "
            "is a dangerous development of the situation.",
            "All facts clearly prove once again that Japan, a war criminal state, is an anti-peace force "
            "threatening the Asia-Pacific region and the rest of the world through its entry to aggressive "
            "military blocs, undisguised arms buildup and ceaseless war drills.",
            "The tightened nexus between Japan, the source of calamity in the region which is sharpening a "
            "sword for revenge, while totally denying the past history of aggression crimes till now, 80 "
            "years after its defeat, and NATO, which is triggering off war and armed conflicts in different "
            "parts of the world under a reckless expansionist policy, is a serious threat to international "
            "peace and security.",
            "Japan should bear in mind that as long as it brings the war cloud of reinvasion to the "
            "Asia-Pacific region in collusion with NATO, it will face strong counteraction and strategic "
            "isolation from neighbouring countries.",
            "KCNA",
        ),
    ),
    _Article(
        title="Harbour Authority Adds Night Ferries to the Island Route",
        section="local",
        site="Harbour Gazette",
        lang="en",
        cue="More from Harbour Gazette",
        paragraphs=(
            "The harbour authority will run two additional ferries every night between the old pier and "
            "the northern islands from the first of May, its director told councillors on Tuesday.",
            "The crossings, which leave at 22:15 and 23:40, are meant for shift workers at the container "
            "terminal who until now had to wait for the first morning boat or pay for a water taxi.",
            "“We counted more than four hundred people a week who were stranded,” the director said. "
            "“That is not a service, that is a gap.”",
            "Fares stay the same. The authority expects the night boats to cost about 1.2 million a year "
            "to operate and hopes that a third of that will come back through ticket sales.",
            "Residents of the islands welcomed the plan but asked for the last bus from the ferry landing "
            "to be moved to match the new timetable.",
            "(Staff reporter)",
        ),
    ),
    _Article(
        title="Stadtrat beschließt durchgehenden Radweg entlang des Flusses",
        section="stadt",
        site="Stadtanzeiger",
        lang="de",
        cue="Mehr zum Thema",
        paragraphs=(
            "Der Stadtrat hat am Donnerstagabend mit großer Mehrheit beschlossen, die Lücken im Radweg "
            "entlang des Flusses bis zum Ende des kommenden Jahres zu schließen.",
            "Bisher endet der Weg zweimal abrupt an einer Treppe, Radfahrerinnen und Radfahrer müssen auf "
            "die stark befahrene Uferstraße ausweichen. Dort kam es im vergangenen Jahr zu elf Unfällen.",
            "Die Kosten werden auf 3,4 Millionen Euro geschätzt. Etwa die Hälfte soll aus einem "
            "Förderprogramm des Landes kommen, den Rest trägt die Stadt.",
            "Kritik kam von Anwohnern, die den Verlust von Parkplätzen befürchten. Die Verwaltung sagte "
            "zu, Ersatzflächen in der Nähe des Bahnhofs zu prüfen.",
            "Die Bauarbeiten sollen im Frühjahr beginnen und abschnittsweise erfolgen, damit der Weg "
            "während der Sommermonate weitgehend befahrbar bleibt.",
        ),
    ),
    _Article(
        title="Glacier Survey Finds Meltwater Lakes Forming Earlier Each Spring",
        section="science",
        site="Northern Science Daily",
        lang="en",
        cue="Related articles",
        paragraphs=(
            "Meltwater lakes on the surface of the valley glacier now appear almost three weeks earlier "
            "than they did twenty years ago, according to a survey published this week.",
            "The team combined satellite images taken since 2004 with measurements from a weather station "
            "they maintain on the glacier’s lower tongue.",
            "The lakes matter because the water can drain suddenly through cracks, lubricating the base "
            "of the ice and speeding up its flow towards the valley.",
            "“Every spring we arrive and the surface already looks like July,” said the survey’s lead "
            "author, who has worked on the glacier since she was a student.",
            "The researchers plan to install pressure sensors in three of the lakes next season to record "
            "exactly when and how fast they empty.",
            "The study was funded by the regional research council.",
        ),
    ),
    _Article(
        title="City Library Finishes Scanning Its Collection of Old Newspapers",
        section="culture",
        site="Riverside Courier",
        lang="en",
        cue="You may also like",
        paragraphs=(
            "After six years of work, the city library has finished scanning its collection of local "
            "newspapers, which runs from 1861 to 1990 and fills more than nine hundred bound volumes.",
            "The scans can be searched by word from the library’s reading room and, for issues older than "
            "a hundred years, from home.",
            "Volunteers did much of the work, turning pages for the overhead scanner two mornings a week.",
            "“Families come in looking for one wedding notice and stay for the whole afternoon,” a librarian said.",
            "The library now wants to add the smaller parish newsletters, most of which survive only as "
            "single copies in private hands.",
            "Reporting by the culture desk",
        ),
    ),
    _Article(
        title="Students Build a Wind Turbine From Recycled Parts",
        section="education",
        site="Valley Tribune",
        lang="en",
        cue="Read more",
        paragraphs=(
            "A group of students at the technical college has built a small wind turbine almost entirely "
            "from parts that were headed for the scrap yard.",
            "The blades were cut from old drainage pipes, the generator came out of a broken washing machine "
            "and the mast is a former street lamp donated by the council.",
            "On a windy afternoon the turbine produces enough electricity to charge a dozen phones, which the "
            "students proudly demonstrate to every visitor.",
            "Their teacher says the project taught them more about electricity than a term of lectures.",
            "The turbine will stay on the roof of the engineering building until the end of the year.",
        ),
    ),
)

#: Openings of "other articles" that teasers are cut from: some from the seed's teaser list, the
#: rest written for these tests.
_OPENINGS = (
    "The election of deputies to the 15th Supreme People’s Assembly took place in the DPRK. All the "
    "people and service personnel of the country took part in it.",
    "The common spruce forest is located 700 metres above sea level, which is three kilometres "
    "southwest of the seat of Chonjang-ri, and covers a large area.",
    "The site of Koguryo’s wooden bridge over the Taedong River is the remains of a big wooden bridge "
    "built in front of the Anhak Palace in the 5th century.",
    "Samgori zelkova grows in Kaesong Municipality. Known to be planted around 1590, the tree is 17.5 "
    "metres tall, 7.5 metres round at the base of its trunk.",
    "Working people’s organizations conducted tree planting on the occasion of the Tree-planting "
    "Day.Officials of the Central Committee joined them.",
    "A new bakery opened on the corner of Mill Street on Saturday morning, and by ten o’clock the queue "
    "reached all the way back to the post office.",
    "Council workers began repairing the footbridge over the canal after inspectors found that two of "
    "its supporting beams had rusted through.",
    "The regional orchestra announced its programme for the autumn season, which opens with a symphony "
    "that has not been performed in the city since 1972.",
    "Police are asking drivers to avoid the ring road on Sunday while a cycling race passes through "
    "the eastern districts between eight and noon.",
    "Students at the technical college built a small wind turbine from recycled parts and will test it "
    "on the roof of the engineering building.",
    "Die Feuerwehr musste in der Nacht zu Sonntag zu einem Brand in einer Lagerhalle im Gewerbegebiet "
    "ausrücken, verletzt wurde niemand.",
    "Im Rathaus beginnt am Montag die Auslegung der Pläne für das neue Wohngebiet am Nordhang, Bürger "
    "können bis Ende des Monats Einwände erheben.",
    "The fishing cooperative reported its best herring catch in a decade, but prices at the auction "
    "hall fell by almost a quarter.",
    "A retired teacher has walked the entire coastal path in stages over eleven summers and is now "
    "writing a guide for families with small children.",
    "The hospital will open a second entrance on the west side of the building to relieve the "
    "congestion at the main car park.",
    "Volunteers counted more than three thousand migrating toads crossing the lake road during the "
    "first warm nights of March.",
)

_DATE_FORMATS = (
    "{month} {day}, {year}",
    "{day:02d}.{mon:02d}.{year}",
    "{year}-{mon:02d}-{day:02d}",
    "{day} {month} {year}",
    "{day:02d}/{mon:02d}/{year}",
)
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

_COOKIE = (
    "This website uses cookies to improve your experience. By continuing to browse the site you "
    "agree to our use of cookies."
)
_NAV = ("Home", "Politics", "Economy", "Culture", "Science", "Sports", "Contact")


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _date(rng: random.Random, fmt: str) -> str:
    mon, day = rng.randint(1, 12), rng.randint(1, 28)
    return fmt.format(month=_MONTHS[mon - 1], mon=mon, day=day, year=rng.choice((2024, 2025, 2026)))


def _teaser(opening: str, rng: random.Random) -> str:
    # Cut at a character count like the seed's source does, which often ends mid-word.
    cut = opening[: rng.randint(105, 130)].rstrip()
    return cut.rstrip(".,;:")


def _slug(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title.lower().replace("ß", "ss")).encode("ascii", "ignore").decode()
    words = "".join(ch if ch.isalnum() else " " for ch in ascii_title).split()
    return "-".join(words[:5])


def _head(art: _Article, title: str, desc: str, path: str) -> str:
    url = f"https://news.example.org{path}"
    return (
        f'<head><meta charset="utf-8"><title>{_e(title)} | {_e(art.site)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="description" content="{_e(desc)}">'
        f'<meta property="og:title" content="{_e(title)}">'
        f'<meta property="og:site_name" content="{_e(art.site)}">'
        f'<link rel="canonical" href="{_e(url)}"><link rel="stylesheet" href="/static/site.css">'
        "<script>window.dataLayer=window.dataLayer||[];</script></head>"
    )


def _chrome_top(art: _Article) -> str:
    nav = "".join(f'<li><a href="/{n.lower()}/">{n}</a></li>' for n in _NAV)
    return (
        f'<div id="cookie-bar"><p>{_COOKIE} <a href="/privacy">Accept</a></p></div>'
        f'<header class="site-header"><a class="logo" href="/">{_e(art.site)}</a>'
        f'<nav class="main-nav"><ul>{nav}</ul></nav>'
        '<form action="/search"><input name="q" placeholder="Search"></form></header>'
        f'<div class="breadcrumbs"><a href="/">Home</a> › <a href="/{art.section}/">'
        f"{art.section.title()}</a></div>"
    )


def _chrome_bottom(art: _Article) -> str:
    return (
        '<footer class="site-footer"><ul><li><a href="/about">About us</a></li>'
        '<li><a href="/contact">Contact</a></li><li><a href="/privacy">Privacy policy</a></li></ul>'
        f"<p>© 2026 {_e(art.site)}. All rights reserved.</p></footer>"
    )


def _paras(paragraphs: tuple[str, ...], tag: str = "p") -> str:
    return "".join(f"<{tag}>{_e(p)}</{tag}>" for p in paragraphs)


def _semantic(
    art: _Article, title: str, dateline: str, paras: tuple[str, ...], items: list[tuple[str, str, str]]
) -> str:
    lis = "".join(
        f'<li><a href="{href}"><h3>{_e(t)}</h3></a><time>{_e(d)}</time><p>{_e(t)}</p></li>' for t, d, href in items
    )
    return (
        f'<main><article><header><h1>{_e(title)}</h1><p class="byline">{_e(dateline)}</p></header>'
        f"{_paras(paras)}</article>"
        f'<aside class="related"><h2>{_e(art.cue)}</h2><ul>{lis}</ul></aside></main>'
    )


def _divsoup(
    art: _Article, title: str, dateline: str, paras: tuple[str, ...], items: list[tuple[str, str, str]]
) -> str:
    cards = "".join(
        f'<div class="card"><a href="{href}"><span class="t">{_e(t)}</span></a>'
        f'<div class="d">{_e(d)}</div><div class="ex">{_e(t)}</div></div>'
        for t, d, href in items
    )
    return (
        f'<div id="wrap"><div class="col-main"><div class="ttl">{_e(title)}</div>'
        f'<div class="info">{_e(dateline)}</div><div class="story-body">{_paras(paras)}</div></div>'
        f'<div class="col-more"><div class="hdr">{_e(art.cue)}</div>{cards}</div></div>'
    )


def _flat(
    art: _Article,
    title: str,
    dateline: str,
    paras: tuple[str, ...],
    items: list[tuple[str, str, str]],
    rng: random.Random,
    cue: bool,
    br: bool = False,
) -> str:
    as_links = rng.random() < 0.5
    parts = [f"<h1>{_e(title)}</h1>", f'<p class="meta">{_e(dateline)}</p>', _paras(paras)]
    if cue:
        parts.append(f"<h3>{_e(art.cue)}</h3>" if rng.random() < 0.5 else f"<p><strong>{_e(art.cue)}</strong></p>")
    lines = []
    for t, d, href in items:
        first = f'<a href="{href}">{_e(t)}</a>' if as_links else _e(t)
        lines += [first, _e(d), _e(t)]
    parts.append(f"<p>{'<br>'.join(lines)}</p>" if br else "".join(f"<p>{line}</p>" for line in lines))
    parts.append('<p><a href="/articles/">More Articles</a></p>')
    return f'<div class="content">{"".join(parts)}</div>'


def _table(art: _Article, title: str, dateline: str, paras: tuple[str, ...], items: list[tuple[str, str, str]]) -> str:
    rows = "".join(
        f'<tr><td><a href="{href}">{_e(t)}</a></td><td>{_e(d)}</td></tr><tr><td colspan="2">{_e(t)}</td></tr>'
        for t, d, href in items
    )
    return (
        '<table width="100%" cellpadding="0"><tr><td width="160" valign="top">'
        '<a href="/">Front page</a><br><a href="/archive">Archive</a></td><td valign="top">'
        f'<font size="5"><b>{_e(title)}</b></font><br><font size="2">{_e(dateline)}</font>'
        f"{_paras(paras)}<p><b>{_e(art.cue)}</b></p><table>{rows}</table></td></tr></table>"
    )


def _render(style: str, art: _Article, index: int, number: int, marker: str) -> SeedPage:
    rng = random.Random(f"{style}/{index}/{marker}")
    title = f"{art.title} ({marker})" if marker else art.title
    paras = art.paragraphs
    if marker:
        paras = (f"({marker}) {paras[0]}", *paras[1:])
    date_fmt = rng.choice(_DATE_FORMATS)
    dateline = f"Date: {_date(rng, '{day:02d}/{mon:02d}/{year}')} | Source: {art.site} | Read original version"
    chosen = rng.sample(_OPENINGS, rng.randint(6, 14))
    teasers = tuple(_teaser(o, rng) for o in chosen)
    items = [(t, _date(rng, date_fmt), f"/{art.section}/item-{rng.randint(1000, 9999)}.html") for t in teasers]
    path = f"/{art.section}/2025/01/21/{_slug(art.title)}-{number}.html"
    if style == "semantic":
        body = _semantic(art, title, dateline, paras, items)
    elif style == "divsoup":
        body = _divsoup(art, title, dateline, paras, items)
    elif style in ("flat", "flat_nocue", "flat_br"):
        body = _flat(art, title, dateline, paras, items, rng, cue=style != "flat_nocue", br=style == "flat_br")
    elif style == "table":
        body = _table(art, title, dateline, paras, items)
    else:
        raise ValueError(f"unknown style {style!r}")
    document = (
        f'<!DOCTYPE html><html lang="{art.lang}">{_head(art, title, paras[0][:150], path)}'
        f"<body>{_chrome_top(art)}{body}{_chrome_bottom(art)}</body></html>"
    )
    return SeedPage(style=style, title=title, html=document, paragraphs=paras, teasers=teasers, path=path)


def seed_pages(marker: str = "", count_per_style: int = 1) -> list[SeedPage]:
    """``count_per_style`` pages in each of :data:`STYLES`, deterministic for a given ``marker``.

    Consecutive pages of one style carry different articles; ``marker`` (when given) goes into the
    title and the first paragraph so that copies of a page differ.
    """
    pages = []
    for index in range(count_per_style):
        for offset, style in enumerate(STYLES):
            article = _ARTICLES[(index + offset) % len(_ARTICLES)]
            pages.append(_render(style, article, index, index * len(STYLES) + offset, marker))
    return pages
