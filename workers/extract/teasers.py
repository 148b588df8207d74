"""Removing teaser lists that trafilatura keeps as if they were part of the article.

News pages follow the article with lists of other articles: "More from …", "Related", "Lesen Sie
auch", or no heading at all, each item the first words of another article (cut mid-sentence),
often with a date, sometimes twice.  When such a list sits in the same container as the body,
as plain paragraphs, trafilatura cannot tell it apart.  This module can, from the shape of the
extracted blocks alone (no rule for any one site):

* **cue lines**: a block such as "Read more: <headline>" or "Lea también: <headline>";
* **cue sections**: a heading such as "More from X" or "Mehr zum Thema" and the teaser-shaped
  blocks that follow it;
* **teaser runs**: date-only lines alternating with headline-like lines (no closing punctuation,
  or repeated verbatim, or a link's text) — at the end of the text, or long enough anywhere.

Blocks that read as prose (a sentence closed by punctuation, not repeated, not a link) stop
every rule, so article paragraphs survive.  :func:`drop_teasers` is the entry point.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from workers.extract.datelines import is_date_line, split_date, word_set

__all__ = [
    "Block",
    "Shape",
    "drop_teasers",
    "is_cue_heading",
    "is_cue_line",
    "is_date_line",
    "shape_blocks",
    "split_date",
    "teaser_indices",
]


@dataclass(frozen=True)
class Block:
    """One paragraph-like unit of extracted text.

    ``tag`` is trafilatura's element name (p, head, item, row, …); blocks of one list or table
    share a non-zero ``group``; ``linked`` says the whole text is the text of a link on the page.
    """

    text: str
    tag: str = "p"
    group: int = 0
    linked: bool = False


@dataclass(frozen=True)
class Shape:
    """What the teaser rules need to know about one block."""

    words: int
    date: bool  # nothing but a date (and perhaps a time or a label such as "Updated")
    dated: bool  # a headline-like text with a date beside it ("Headline | 17.03.2026")
    open: bool  # does not end like a sentence: a headline or a cut-off excerpt
    repeated: bool  # the same text (without its date) occurs in another block
    cue: bool  # a heading that announces a teaser list
    cue_line: bool  # a cue and a headline in one block ("Read more: …")
    linked: bool

    @property
    def headline(self) -> bool:
        """Short text that could be a teaser's headline or first words."""
        return 3 <= self.words <= 30 and (self.open or self.linked or self.repeated)

    @property
    def teaserish(self) -> bool:
        """Could belong to a teaser list."""
        return self.date or self.dated or self.cue or self.cue_line or self.headline


# --- cues ----------------------------------------------------------------------------------------


# Phrases that announce a list of other articles, many languages.  "+" marks phrases that may be
# followed by a name ("More from Naenara (En)", "Mehr aus Politik"); the others allow only a
# short tail ("Related articles", "Recommended for you").
_CUES = """
more from+|more in+|more on+|more ~ news|more ~ stories|more ~ articles|more ~ headlines|more like this|more to read
related|related articles|related stories|related posts|related content|related news|related coverage
related topics|related reading|related links|related videos|related items|related reads|related
read more|read also|also read|read next|what to read next|keep reading|continue reading|further reading
next article|next post|nächster artikel|nächster beitrag|vorschau auf den nächsten artikel
see also|you may also like|you might also like|you may like|you may be interested in|you might be interested in
also on+|recommended|recommended for you|recommended articles|recommended stories|editor's picks|editors' picks
most read|most popular|most viewed|most shared|most commented|popular posts|popular articles|popular stories
latest news|latest stories|latest articles|latest posts|top stories|trending|trending now|don't miss
other articles|similar articles|similar posts|in other news|other news|in case you missed it
weiterlesen|weiterführende links|lesen sie auch|lesen sie hier|lesen sie mehr|lies auch|mehr zum thema|mehr lesen
mehr aus+|mehr von+|mehr zu+
auch interessant|auch lesenswert|das könnte sie auch interessieren|das könnte dich auch interessieren
das könnte sie interessieren|dazu passend|passend dazu|passend zum thema|zum weiterlesen
ähnliche artikel|ähnliche beiträge|verwandte artikel|verwandte themen|weitere ~ artikel|weitere ~ beiträge
weitere ~ themen|weitere ~ nachrichten|weitere ~ meldungen|weitere news|empfohlene beiträge|empfohlene artikel
meistgelesen|meist gelesen|meistgelesene artikel|meistkommentiert|kommentierte artikel|beliebte beiträge
beliebte artikel|neueste beiträge|neueste artikel|aktuelle beiträge|letzte beiträge|top-artikel|empfehlungen
siehe auch|auch auf+|das interessiert andere leser
notas relacionadas|noticias relacionadas|artículos relacionados|relacionado|relacionados|relacionadas
te puede interesar|le puede interesar|también te puede interesar|te recomendamos|quizás te interese
puede interesarte|leer más|lee también|lea también|lea más|ver también|vea también|mira también
más ~ noticias|más leídas|lo más leído|lo más visto|otras ~ noticias|también en+
à lire aussi|a lire aussi|lire aussi|à lire également|lire la suite|sur le même sujet|voir aussi
articles similaires|articles liés|les plus lus|vous aimerez aussi|plus d'articles|à découvrir aussi
dans la même rubrique|nos dernières actualités|à voir aussi
czytaj też|czytaj także|czytaj również|czytaj więcej|zobacz też|zobacz także|zobacz również|polecamy
przeczytaj też|przeczytaj także|przeczytaj również|najczęściej czytane|podobne artykuły
powiązane artykuły|dowiedz się więcej|więcej z+|czytasz właśnie
leggi anche|leggi pure|leggi altro|potrebbe interessarti|ti potrebbe interessare|articoli correlati
notizie correlate|correlati|più letti|vedi anche|altre ~ notizie
leia também|leia mais|veja também|notícias relacionadas|artigos relacionados|saiba mais|mais lidas
você também pode gostar|lees ook|lees meer|meer over+|gerelateerde artikelen|meest gelezen|bekijk ook
läs också|läs mer|læs også|les også|les mer|čtěte také|související články|ilgili haberler
читайте также|по теме|похожие статьи
"""
_PHRASES = [c.strip() for line in _CUES.strip().splitlines() for c in line.split("|") if c.strip()]


def _phrase_pattern(phrase: str) -> str:
    # "~" stands for up to two words: "weitere ~ themen" also matches "weitere aktuelle Themen".
    parts = [r"(?:\S+\s+){0,2}" if word == "~" else re.escape(word) + r"\s+" for word in phrase.split()]
    return "".join(parts).removesuffix(r"\s+")


def _alternation(phrases: list[str]) -> re.Pattern[str]:
    patterns = sorted((_phrase_pattern(p) for p in phrases), key=len, reverse=True)
    return re.compile(rf"^(?:{'|'.join(patterns)})(?!\w)")


_PLAIN = _alternation([p for p in _PHRASES if not p.endswith("+")])
_NAMED = _alternation([p[:-1] for p in _PHRASES if p.endswith("+")])
_LIST_WORDS = word_set(
    """articles stories posts news content coverage topics reading reads links videos items pages for you
    this now on to read beiträge artikel themen nachrichten meldungen noticias artículos notas articoli
    notizie artykuły artigos notícias artikelen"""
)
_HEADING_TRIM = " \t:>»›→|–—-•·*…."
# Short imperative cues that only count with a colon: "Lea: …", "MIRA: …", "READ: …".
_COLON_CUES = word_set("lea mira vea ver read see lesen siehe watch escucha")


def _cue_match(low: str) -> tuple[str, list[str], bool] | None:
    """(cue phrase, words after it, whether a name may follow) for lower-case text starting with a cue."""
    for pattern, named in ((_PLAIN, False), (_NAMED, True)):
        found = pattern.match(low)
        if found:
            return found[0], low[found.end() :].split(), named
    return None


def is_cue_heading(text: str) -> bool:
    """True for a short heading that announces teasers: "More From Naenara (En)", "Related", "Lesen Sie auch:"."""
    low = text.strip(_HEADING_TRIM).lower()
    if not low or len(low.split()) > 8 or (text.rstrip().endswith((".", "!", "?")) and not text.endswith("...")):
        return False
    found = _cue_match(low)
    if found is None:
        return False
    phrase, extra, named = found
    if named:
        return len(extra) <= 5
    if " " not in phrase:
        # A lone word ("Related", "Recommended") is a cue only when what follows names a list.
        return all(word in _LIST_WORDS for word in extra)
    return len(extra) <= 3


def is_cue_line(text: str) -> bool:
    """True for a cue and a headline in one block: "Read more: Looted colonial art", "LEA: …"."""
    head, sep, tail = text.partition(":")
    if not sep or not tail.strip() or len(text.split()) > 30:
        return False
    low = head.strip(_HEADING_TRIM).lower()
    if low in _COLON_CUES:
        # "Lea:" or "Mira:" may also be a speaker in an interview, whose answers end with a full stop.
        return not tail.rstrip().endswith(".")
    found = _cue_match(low)
    return (found is not None and not found[1]) or is_cue_heading(head)


# --- shapes and rules ----------------------------------------------------------------------------

# A teaser's repeated first words (title, then excerpt) sit within a few blocks of each other;
# text repeated from far away is more often a pull quote or a recurring step in a how-to.
_NEAR = 3
# Blocks of this many words and more are prose to every rule here (headlines and cues are shorter).
_PROSE = 40
_CLOSING = (".", "!", "?", "…", ":", ";", '"', "”", "“", "»", "«", "'", "’", ")", "]")


def shape_blocks(blocks: Sequence[Block]) -> list[Shape]:
    """The :class:`Shape` of every block."""
    cores = [(b.text, False) if b.text.count(" ") >= _PROSE else split_date(b.text) for b in blocks]
    shapes = []
    for index, (block, (core, dated)) in enumerate(zip(blocks, cores, strict=True)):
        if block.text.count(" ") >= _PROSE:
            # Too long for a headline, a date or a cue: only its length matters to the rules.
            shapes.append(Shape(len(core.split()), False, False, False, False, False, False, block.linked))
            continue
        date = is_date_line(block.text)
        words = len(core.split())
        shapes.append(
            Shape(
                words=0 if date else words,
                date=date,
                dated=dated and not date and 3 <= words <= 30,
                open=not core.rstrip().endswith(_CLOSING),
                repeated=words >= 3
                and any(
                    cores[k][0] == core
                    for k in range(max(0, index - _NEAR), index + _NEAR + 1)
                    if k != index and k < len(cores)
                ),
                cue=is_cue_heading(block.text),
                cue_line=is_cue_line(block.text),
                linked=block.linked,
            )
        )
    return shapes


def _run_end(shapes: Sequence[Shape], start: int) -> int:
    """End (exclusive) of the run of teaser-shaped blocks starting at ``start``."""
    end = start
    while end < len(shapes) and shapes[end].teaserish:
        end += 1
    return end


def _trim_front(shapes: Sequence[Shape], start: int, end: int) -> int:
    """Skip leading blocks of a run that are only headline-like, not tied to a date or a repeat.

    A byline or a short closing line of the article ("Reporting by the culture desk") is
    open-ended too.  It joins a teaser run only as the headline of a date right after it, and
    only when the run's items are headline-then-date (the run ends with a date); when they are
    date-then-headline, the line before the first date belongs to what came before.
    """
    headline_first = shapes[end - 1].date or shapes[end - 1].dated
    while start < end:
        s = shapes[start]
        tied = s.date or s.dated or s.repeated or s.linked or s.cue or s.cue_line
        nxt = shapes[start + 1] if start + 1 < end else None
        if tied or (headline_first and nxt is not None and (nxt.date or nxt.dated)):
            return start
        start += 1
    return start


def _strong(shapes: Sequence[Shape], at_end: bool) -> bool:
    """Enough evidence that a run of blocks is a teaser list.

    Dates beside open-ended lines alone are not enough: a TV schedule or a timeline has that
    shape too.  Teasers are also links to the other articles, or repeat their first words.
    """
    dates = sum(s.date or s.dated for s in shapes)
    texts = sum((s.headline or s.dated) and not (s.cue or s.cue_line) for s in shapes)
    repeats = sum(s.repeated for s in shapes)
    links = sum(s.linked and s.headline for s in shapes)
    if at_end:
        led_by_cue = shapes[0].cue or shapes[0].cue_line
        # Headlines that are links, and nothing else, closing the text: a list of other articles.
        only_links = links >= 2 and links == texts
        dated_teasers = dates >= 2 and texts >= 2 and links + repeats >= 2
        return dated_teasers or repeats >= 4 or (led_by_cue and texts >= 1) or only_links
    return dates >= 3 and texts >= 3 and links + repeats >= 3


def _runs(shapes: Sequence[Shape]) -> set[int]:
    """Blocks in runs of teaser-shaped blocks that carry enough evidence."""
    drop: set[int] = set()
    i = 0
    while i < len(shapes):
        if not shapes[i].teaserish:
            i += 1
            continue
        end = _run_end(shapes, i)
        start = _trim_front(shapes, i, end)
        if start < end and _strong(shapes[start:end], at_end=end == len(shapes)):
            drop.update(range(start, end))
        i = end
    return drop


def _cue_sections(blocks: Sequence[Block], shapes: Sequence[Shape]) -> set[int]:
    """Cue headings and cue lines, with the list or the teaser-shaped blocks right after a heading."""
    drop: set[int] = set()
    for i, s in enumerate(shapes):
        if s.cue_line:
            drop.add(i)
        if not s.cue:
            continue
        drop.add(i)
        j = i + 1
        # A list of short items right after a heading is the teaser list, whatever the items look like.
        group = blocks[j].group if j < len(blocks) and not blocks[i].group else 0
        members = [k for k in range(j, len(blocks)) if blocks[k].group == group] if group else []
        if members and all(shapes[k].words <= 30 for k in members) and members == list(range(j, j + len(members))):
            drop.update(members)
            continue
        while j < len(shapes):
            t = shapes[j]
            nxt = shapes[j + 1] if j + 1 < len(shapes) else None
            dated_next = nxt is not None and (nxt.date or nxt.dated)
            # A lone link right after a heading may be the article's own linked headline; links
            # count when they come in a list.
            in_links = t.linked and ((nxt is not None and nxt.linked) or shapes[j - 1].linked)
            tied = t.date or t.dated or t.repeated or t.cue or t.cue_line or in_links
            if not (tied or (t.headline and dated_next)):
                break
            drop.add(j)
            j += 1
    return drop


def teaser_indices(blocks: Sequence[Block]) -> set[int]:
    """Indices of the blocks that belong to teaser lists."""
    shapes = shape_blocks(blocks)
    return _cue_sections(blocks, shapes) | _runs(shapes)


def drop_teasers(blocks: Sequence[Block]) -> list[Block]:
    """``blocks`` without teaser lists, in their order."""
    drop = teaser_indices(blocks)
    return [b for i, b in enumerate(blocks) if i not in drop]
