"""Dates as teaser lists show them: a line that is only a date, and a date set beside a headline.

Teasers of other articles come with their date ("17.03.2026", "Monday, 2 March 2026, 14:05",
"Headline | 17.03.2026"); an article's sentences mention dates too, but inside prose.  Months and
weekdays are known in the languages of the pages we see most.
"""

from __future__ import annotations

import re

__all__ = ["is_date_line", "split_date", "word_set"]


def word_set(text: str) -> frozenset[str]:
    """The whitespace-separated words of ``text``: word lists written as one string."""
    return frozenset(text.split())


_MONTHS = word_set(
    """
    january february march april may june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec
    januar februar märz mai juni juli oktober dezember jän mrz okt dez
    janvier février mars avril juin juillet août septembre octobre novembre décembre
    janv févr avr juil déc
    enero febrero marzo abril mayo junio julio agosto septiembre setiembre octubre noviembre diciembre
    ene abr ago dic
    gennaio febbraio aprile maggio giugno luglio settembre ottobre dicembre gen mag giu lug ott
    janeiro fevereiro março maio junho julho setembro outubro novembro dezembro fev
    stycznia lutego marca kwietnia maja czerwca lipca sierpnia września października listopada grudnia
    styczeń luty marzec kwiecień czerwiec lipiec sierpień wrzesień październik listopad grudzień
    januari februari maart mei augustus
    января февраля марта апреля мая июня июля августа сентября октября ноября декабря
    """
)
_WEEKDAYS = word_set(
    """
    monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs fri sat sun
    montag dienstag mittwoch donnerstag freitag samstag sonntag mo di mi do fr sa so
    lundi mardi mercredi jeudi vendredi samedi dimanche
    lunes martes miércoles jueves viernes sábado domingo
    lunedì martedì mercoledì giovedì venerdì sabato domenica
    poniedziałek wtorek środa czwartek piątek sobota niedziela
    """
)
# Words allowed around a date in a date-only line: labels, prepositions, "Uhr", am/pm.
_DATE_FILLER = word_set(
    """
    am pm uhr h um at on the of de del le el il den der vom by
    date datum fecha data published updated posted veröffentlicht aktualisiert publié publicado
    pubblicato opublikowano stand
    """
)
_NUMERIC_DATE = re.compile(r"\b(?:\d{1,2}[./-]\d{1,2}[./-](?:\d{4}|\d{2})|\d{4}[./-]\d{1,2}[./-]\d{1,2})\b")
_YEAR = re.compile(r"^(?:19|20)\d\d$")
_TOKEN = re.compile(r"[^\W\d_]+|\d+", re.UNICODE)
_TIME = re.compile(r"\b\d{1,2}[:.h]\d{2}(?::\d{2})?\b")
_DATE_SEPARATORS = re.compile(r"\s+[|•·–—-]\s+|\n|\s+\(|\)\s*$")


def is_date_line(text: str) -> bool:
    """True when ``text`` is a date (with perhaps a weekday, a time, a label) and nothing else."""
    if len(text) > 60 or not any(ch.isdigit() for ch in text):
        return False
    rest = _TIME.sub(" ", _NUMERIC_DATE.sub(" NUMDATE ", text))
    has_date = "NUMDATE" in rest
    month = year = False
    for token in _TOKEN.findall(rest):
        low = token.lower()
        if token == "NUMDATE":
            continue
        if token.isdigit():
            if _YEAR.match(token):
                year = True
            elif len(token) > 2:
                return False
        elif low in _MONTHS:
            month = True
        elif low not in _WEEKDAYS and low not in _DATE_FILLER:
            return False
    return has_date or (month and year)


def split_date(text: str) -> tuple[str, bool]:
    """``text`` without a date at its start or end set off by a separator, and whether there was one.

    "Headline | 17.03.2026" gives ("Headline", True); a sentence that merely mentions a date
    keeps it ("It opens on 1 May 2026." gives the sentence and False).
    """
    parts = [p.strip() for p in _DATE_SEPARATORS.split(text) if p and p.strip()]
    if len(parts) < 2:
        return text, False
    if is_date_line(parts[-1]):
        return " ".join(parts[:-1]), True
    if is_date_line(parts[0]):
        return " ".join(parts[1:]), True
    return text, False
