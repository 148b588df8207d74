"""Boilerplate that trafilatura keeps: widgets named for what they are, and tell-tale lines.

Two kinds of evidence, neither tied to a site:

* **Named widgets** (:func:`prune_widgets`, on the page tree before extraction): content
  management systems name their boxes for what they hold, whatever the page's language:
  newsletter forms, share bars, author boxes, breadcrumbs, copyright notes, figure captions.
  Such an element goes, unless it holds a large share of the page's text (then the name is a
  theme's flag on the whole article, such as WordPress's ``tag-…`` classes on ``<article>``).
* **Tell-tale lines** (:func:`boilerplate_indices`, on the extracted blocks): picture credits
  ("Foto: …", "(Credit: …)", "© …"), rights notices, filing labels ("Kategorie: News"), calls
  to subscribe or follow, login prompts, affiliate disclosures, and a news agency's signature
  ("aja/PAP") closing the text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from lxml.etree import _Element

from workers.extract.lead import LEAD_TAGS, is_lead_name
from workers.extract.teasers import Block

__all__ = [
    "boilerplate_indices",
    "is_agency_line",
    "is_credit_line",
    "is_label_line",
    "is_promo_line",
    "is_rights_line",
    "prune_widgets",
    "widget_kind",
]

# Class or id words that name a widget (after splitting on separators and camelCase).
_WIDGET_WORDS = frozenset(
    {
        *("newsletter", "newsletters", "sharedaddy", "sharing", "sharebar", "sharebuttons", "socialshare", "social"),
        *("breadcrumb", "breadcrumbs", "copyright", "figcaption", "caption", "credits", "bildunterschrift"),
        *("related", "relatedposts", "yarpp", "tweet"),
    }
)
# Pairs of words that name a widget only together ("author box", "share buttons").
_WIDGET_PAIRS = (
    ("author", ("box", "bio", "about", "biography", "description", "profile")),
    ("share", ("buttons", "bar", "links", "tools", "box", "icons", "post", "this")),
    ("inline", ("teaser", "teasers", "promo", "related")),
    # A box around a picture holds the picture's caption and credit.
    ("image", ("box", "text", "subline", "legend", "source")),
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT = re.compile(r"[^a-z0-9]+")
# A caption says who or what a picture shows in a line or two; longer "captions" are the text of
# a slide show or gallery, which is the article.
_CAPTIONS = frozenset({"figcaption", "caption", "credits", "bildunterschrift", "image"})
_CAPTION_WORDS = 30
# An element holding more of the page's text than this is the article, whatever it is called.
_MAX_SHARE = 0.25


# Every widget word and every first word of a pair contains one of these: one search in C rules
# out most names before they are split into words.
_WIDGET_HINT = re.compile(
    "newsletter|shar|social|breadcrumb|copyright|caption|credits|bildunterschrift|related|yarpp|tweet|author|inline"
    "|image"
)


# Names longer than this are answered without the cache: one hostile page after another, each
# with its own megabyte class attribute, kept gigabytes of attribute text alive as cache keys.
_CACHED_NAMES_CHARS = 256


def widget_kind(names: str) -> str | None:
    """The widget word that ``names`` (class and id values) contains, or None."""
    if len(names) > _CACHED_NAMES_CHARS:
        return _widget_kind(names)
    return _cached_widget_kind(names)


def _widget_kind(names: str) -> str | None:
    if not _WIDGET_HINT.search(names.lower()):
        return None
    words = [w for w in _SPLIT.split(_CAMEL.sub("-", names).lower()) if w]
    for word in words:
        if word in _WIDGET_WORDS:
            return word
    joined = set(words)
    for first, seconds in _WIDGET_PAIRS:
        if first in joined and any(second in joined for second in seconds):
            return first
    return None


# Pages and sites repeat their class names: most answers are found here.
_cached_widget_kind = lru_cache(maxsize=4096)(_widget_kind)


_WIDGET_TAGS = frozenset(
    {"figcaption", "div", "section", "aside", "p", "span", "ul", "ol", "blockquote", "nav", "em", "a"}
)


def prune_widgets(tree: _Element, leads: list[_Element] | None = None) -> int:
    """Remove named widgets (see the module doc) from ``tree`` in place; the number removed.

    With ``leads``, the elements named like an article's lead (:func:`workers.extract.lead.is_lead_name`)
    are collected into it on the way: walking the page's elements is the costly part, so both
    questions share one walk.
    """
    body = tree.find(".//body")
    # Shares are measured in characters with whitespace: cheap, and close enough for a threshold.
    total = len((body if body is not None else tree).text_content()) or 1
    doomed: list[_Element] = []
    tags = _WIDGET_TAGS if leads is None else _WIDGET_TAGS | LEAD_TAGS
    for elem in tree.iter(*tags):
        kind: str | None = "figcaption"
        if elem.tag != "figcaption":
            cls, ident = elem.get("class"), elem.get("id")
            if not cls and not ident:
                continue
            kind = widget_kind(f"{cls or ''} {ident or ''}") if elem.tag in _WIDGET_TAGS else None
            if kind is None:
                if leads is not None and cls and elem.tag in LEAD_TAGS and is_lead_name(cls):
                    leads.append(elem)
                continue
        text = elem.text_content()
        if len(text) > _MAX_SHARE * total or (kind in _CAPTIONS and len(text.split()) > _CAPTION_WORDS):
            continue
        doomed.append(elem)
    removed = 0
    for elem in doomed:
        parent = elem.getparent()
        if parent is None:
            continue
        # Keep the text that follows the element: it belongs to the parent.
        if elem.tail and elem.tail.strip():
            previous = elem.getprevious()
            if previous is not None:
                previous.tail = (previous.tail or "") + elem.tail
            else:
                parent.text = (parent.text or "") + elem.tail
        parent.remove(elem)
        removed += 1
    return removed


# --- lines ---------------------------------------------------------------------------------------
# Patterns are lower case and match lower-cased text: three times faster than re.IGNORECASE.

_CREDIT = re.compile(
    r"^\(?\s*(?:foto|fotos|photo|photos|photograph|bild|bilder|titelbild|beitragsbild|image|images|picture|credit|credits"
    r"|photo credit|image credit|photo source|image source|bildquelle|fotoquelle|bildnachweis|fotonachweis"
    r"|crédit|crédits|crédito|créditos|zdjęcie|fot|foto di|illustration|grafik)\s*:",
)
_RIGHTS = re.compile(
    r"all rights reserved|alle rechte vorbehalten|todos los derechos reservados|tous droits réservés"
    r"|tutti i diritti riservati|wszelkie prawa zastrzeżone|todos os direitos reservados|alle rechten voorbehouden"
    # A statement about the whole site's content (its licence, its terms) is not the article's.
    r"|(?:inhalte|texte|content|contents|contenidos|contenus) (?:dieser|auf dieser|of this|on this|de este|de ce) "
    r"(?:website|webseite|internetseite|seite|site|sitio|web)",
)
_PROMO = re.compile(
    r"\b(?:sign up|subscribe|subscribers?|newsletter|follow us|follow \S+(?: \S+)? on (?:twitter|facebook|instagram)"
    r"|abonnieren|abonniere|abonnez|suscr[íi]bete|suscribirse|zapisz się|iscriviti|assine|download (?:the|our) \S+ app"
    r"|(?:unser|unseren|unsere|our|nuestro|nuestra) (?:youtube|newsletter|podcast|telegram|whatsapp)"
    r"|youtube[- ]kanal|canal de youtube|whatsapp[- ]kanal|apps? for ios and android|app store|google play"
    # Login prompts of comment forms and paywalls.
    r"|not logged in|nicht eingeloggt|nicht angemeldet|must be logged in|log in to|logged in to"
    r")\b",
)
# Appeals for money: a plea to support "us" or "our" work and the means of giving, in one line
# ("Wesprzyj nas darowizną"); a sentence about somebody's contribution or support is not one.
_APPEAL = re.compile(
    r"\b(?:support us|support our|help us|unterstütze uns|unterstützt uns|unterstützen sie uns|unterstütze unser"
    r"|unterstützt unser|unterstützen sie unser|wesprzyj nas|wspieraj nas|wspomóż nas|apóyanos|apoya nuestro"
    r"|soutenez-nous|soutenez notre|sostienici|sostieni il nostro)\b"
)
_GIFT = re.compile(r"\b(?:donat|spende|spenden|darowizn|donaci|don |donazion|contribution|beitrag)")
# Affiliate and advertising disclosures: a few sentences of legal wording, longer than a call to act.
_DISCLOSURE = re.compile(
    r"\b(?:affiliate[- ]links?|(?:we|wir) (?:may )?(?:receive|earn|get|erhalten) (?:a )?(?:small )?"
    r"(?:compensation|commission|provision)|of our advertisers)\b",
)
_DISCLOSURE_WORDS = 60
# "Kategorie: News", "Tags: …": a page's filing labels, not its text.
_LABEL = re.compile(
    r"^(?:categor(?:y|ies)|kategorien?|rubrik|tags?|schlagw(?:ö|oe)rter|stichw(?:ö|oe)rter|themen|topics|filed under"
    r"|catégories?|categoría|categorías|etiquetas|kategorie|tagi|kategoria)\s*:",
)
_TRAILING_CREDIT = re.compile(r"(?:^|\s)[|/–—-]?\s*©\s*[^.!?©]{1,60}$")
# Lines that are only one of these are advertising labels or buttons, never the article's words.
_INTERFACE_WORDS = frozenset(
    {
        *("advertisement", "advertising", "ad", "ads", "sponsored", "promoted", "anzeige", "werbung", "gesponsert"),
        *("publicidad", "publicité", "pubblicità", "publicidade", "reklama", "advertentie", "reklame"),
        *("share", "share this", "share this article", "tweet", "print", "email", "e-mail", "copy link"),
        *("teilen", "drucken", "link kopieren", "artikel teilen", "compartir", "imprimir", "partager", "imprimer"),
        *("condividi", "stampa", "udostępnij", "drukuj", "delen", "listen", "anhören", "vorlesen"),
    }
)
_LABEL_TRIM = " \t:.|·•-–—()[]"
_AGENCY = re.compile(r"^\(?[^\W\d_]{1,6}(?:\s*/\s*[^\W\d_]{1,6}){1,3}\)?$")
# Lines of up to this many words can be credits, notices or calls to action; longer ones are prose.
_SHORT = 40


def is_credit_line(text: str) -> bool:
    """A picture credit: "Foto: dpa", "(Credit: Jane Doe / Agency)", "© Bundesrat | Frank Bräuer".

    Also a caption that ends with its credit ("Logo of the award | © Publisher"): text does not.
    """
    words = len(text.split())
    if words > 25:
        return False
    stripped = text.lstrip(" (")
    if _CREDIT.match(text.lower()) or (stripped.startswith(("©", "(c)", "(C)")) and words <= 15):
        return True
    return bool(_TRAILING_CREDIT.search(text))


def is_rights_line(text: str) -> bool:
    """A short rights notice: "© 2020 Example Inc. All Rights Reserved"."""
    return len(text.split()) <= 25 and bool(_RIGHTS.search(text.lower()))


def is_promo_line(text: str) -> bool:
    """A short call to subscribe, sign up or follow ("Sign up to our newsletter", "Follow X on Twitter")."""
    words = len(text.split())
    low = text.lower()
    if words <= _SHORT and (_PROMO.search(low) or (_APPEAL.search(low) and _GIFT.search(low))):
        return True
    return words <= _DISCLOSURE_WORDS and bool(_DISCLOSURE.search(low))


def is_label_line(text: str) -> bool:
    """A filing label ("Kategorie: News", "Tags: climate, energy") or a lone interface word
    ("Advertisement", "Anzeige", "Share", "Drucken") that a page sets between paragraphs."""
    if len(text.split()) > 12:
        return False
    low = text.lower()
    return bool(_LABEL.match(low)) or low.strip(_LABEL_TRIM) in _INTERFACE_WORDS


def is_bio_line(text: str) -> bool:
    """A note on who wrote the piece: "Jane Doe is a freelance writer …", "Max Muster ist Redakteur …"."""
    if len(text.split()) > _BIO_WORDS:
        return False
    found = _BIO.match(text)
    return found is not None and bool(_BIO_ROLE.search(text[found.end() :].lower()))


def is_agency_line(text: str) -> bool:
    """A news agency's or editors' signature: "aja/PAP", "(dpa/AFP)", "red/kna"."""
    return bool(_AGENCY.match(text.strip()))


# A closing line that is all link and this short is a pointer to another page, not a sentence.
_LINK_WORDS = 15
# A full name (two to four capitalised words) and a verb of being, as author notes open.
_BIO = re.compile(r"^[A-ZÀ-Þ][\w'’.-]+(?: [A-ZÀ-Þ][\w'’.-]+){1,3},? (?:is|was|ist|war|est|es|jest|è) ")
_BIO_ROLE = re.compile(
    r"\b(?:founder|co-founder|writer|author|journalist|editor|consultant|reporter|correspondent|freelance|blogger"
    r"|photographer|columnist|gründer(?:in)?|autor(?:in)?|journalist(?:in)?|redakteur(?:in)?|fotograf(?:in)?"
    r"|experte|expertin|periodista|escritor(?:a)?|journaliste|rédacteur|rédactrice|dziennikar\w*)"
)
_BIO_WORDS = 80
# An agency signature closes the article; a source link or a date may still follow it.
_SIGNATURE_TAIL = 3


# Headings of what follows a press release or an article: who to call, who wrote it.
_END_MATTER = re.compile(
    r"^(?:press(?:e)?[- ]?(?:kontakt|contact|contacts|ansprechpartner(?:in)?)"
    r"|media (?:contact|contacts|enquiries|inquiries)|medienkontakt|kontakt für (?:medien|journalisten)"
    r"|contacto de prensa|contacto para prensa|contact presse|contacts presse|kontakt dla mediów"
    r"|contatti stampa|ufficio stampa|contacto para imprensa|assessoria de imprensa|perscontact"
    r"|about the author|über den autor|über die autorin|zum autor|zur autorin|sobre el autor|sobre la autora"
    r"|à propos de l'auteur|o autorze|sull'autore|sobre o autor|over de auteur"
    # The source a science news item retells: a citation, not the article.
    r"|originalpublikation|originalveröffentlichung|original publication|originalarbeit|fachartikel"
    r"|publicación original|publication originale|pubblicazione originale|oryginalna publikacja"
    r"|zusatzinformationen|weitere informationen|further information|more information|más información"
    r"|plus d'informations|maggiori informazioni|mais informações|meer informatie|więcej informacji)\s*:?$",
)
# A contact or author box is short; a long text after such a heading is more article.
_END_MATTER_WORDS = 150


def _end_matter(blocks: Sequence[Block]) -> range:
    """The blocks from an end-matter heading ("Pressekontakt", "About the author") to the end."""
    for i in range(len(blocks) // 2, len(blocks)):
        if _END_MATTER.match(blocks[i].text.strip().lower()):
            if sum(len(b.text.split()) for b in blocks[i + 1 :]) <= _END_MATTER_WORDS:
                return range(i, len(blocks))
            break
    return range(0)


# A paragraph of this many words or fewer can be a promotion box set with line breaks.
_PROMO_BOX_WORDS = 120


def _promo_paragraphs(blocks: Sequence[Block], promos: set[int]) -> set[int]:
    """The other lines of a short paragraph (lines split by ``<br>``) that holds a call to action.

    A promotion box is often one paragraph: a question, a pitch, then the call ("Gefällt dir unser
    Magazin? … Unterstütze uns mit einem Beitrag."); only the call matches a rule.
    """
    groups: dict[int, list[int]] = {}
    for i, b in enumerate(blocks):
        if b.group and b.tag == "p":
            groups.setdefault(b.group, []).append(i)
    drop: set[int] = set()
    for members in groups.values():
        called = any(i in promos for i in members) and not all(i in promos for i in members)
        if called and sum(len(blocks[i].text.split()) for i in members) <= _PROMO_BOX_WORDS:
            drop.update(members)
    return drop


def boilerplate_indices(blocks: Sequence[Block]) -> set[int]:
    """Indices of credit, rights, label and promotion lines, and of an agency signature near the end."""
    # Every rule is about short lines; counting spaces is much cheaper than asking them all.
    short = [i for i, b in enumerate(blocks) if b.text.count(" ") < _DISCLOSURE_WORDS]
    promos = {i for i in short if is_promo_line(blocks[i].text)}
    drop = promos | {
        i
        for i in short
        if is_credit_line(blocks[i].text) or is_rights_line(blocks[i].text) or is_label_line(blocks[i].text)
    }
    drop.update(_promo_paragraphs(blocks, promos))
    tail = range(max(1, len(blocks) - _SIGNATURE_TAIL), len(blocks))
    drop.update(i for i in tail if is_agency_line(blocks[i].text))
    drop.update(_end_matter(blocks))
    last = len(blocks) - 1
    if last > 0 and is_bio_line(blocks[last].text):
        drop.add(last)
    # Links closing the text ("Hier geht es zur neuen Vorstandsstruktur") lead elsewhere: the
    # article ended before them.
    end = len(blocks) - 1
    while end > 0 and (end in drop or (blocks[end].linked and len(blocks[end].text.split()) <= _LINK_WORDS)):
        drop.add(end)
        end -= 1
    return drop
