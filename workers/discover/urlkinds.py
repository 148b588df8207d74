"""What a URL alone says about its page: an article, a listing, the next page of one, junk, or nothing.

The **shape of the URL** (:func:`classify_url`): a date in the path, a long numeric id or a slug
of several hyphenated words says "article"; a short path of one- or two-word segments says
"section"; ``?page=3`` or ``/page/3/`` says "next page of this listing"; login, search, share,
tag, author, feed and legal pages and static files are junk.  :mod:`workers.discover.links` adds
the anchor's context; what neither can tell is a probe (:mod:`workers.discover.classify`).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = [
    "ARTICLE", "ID_QUERY_KEYS", "JUNK", "LISTING", "PAGINATION", "UNKNOWN", "classify_url", "id_only",
    "last_segment_words", "url_kind",
]

ARTICLE: Final = "article"
LISTING: Final = "listing"
#: What :func:`url_kind` says besides article and listing.
JUNK: Final = "junk"
UNKNOWN: Final = "unknown"
PAGINATION: Final = "pagination"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STATIC_EXT = _words(
    "jpg jpeg png gif webp avif svg ico bmp tif tiff css js mjs map json xml rss atom rdf pdf zip gz tgz "
    "rar 7z mp3 mp4 m4a m4v ogg oga webm wav mov avi mkv woff woff2 ttf otf eot doc docx xls xlsx ppt "
    "pptx odt ods txt csv ics vcf apk exe dmg epub"
)
_PAGE_EXT = _words("html htm shtml xhtml php php3 phtml asp aspx jsp cms ece cfm")
_INDEX_STEMS = frozenset({"index", "default", "home", "start", "main", "homepage"})

# Path segments that mark a page which is neither an article nor a listing worth walking:
# account and commerce pages, search, sharing, printing, comments, tag clouds, author pages,
# feeds and the legal/corporate footer pages every site has.
_JUNK_SEGMENTS = _words(
    """
    login logout log-in log-out signin sign-in signout sign-out signup sign-up register registration
    account my-account accounts profile subscribe subscription subscriptions unsubscribe newsletter
    newsletters abo abonnement abonnieren premium paywall cart basket checkout shop donate spenden
    search suche recherche buscar busca szukaj wyszukiwarka cerca zoeken
    share sharer sharing teilen print drucken imprimer email mail
    comments commentaires respond replytocom trackback
    tag tags tagged tagcloud tag-cloud schlagwort schlagworte stichwort stichworte etiqueta etiquetas
    tagi etichette mots-cles
    author authors autor autoren auteur auteurs
    feed feeds rss atom
    about about-us aboutus ueber-uns uber-uns contact contact-us contacts kontakt impressum imprint
    privacy privacy-policy privacy-notice datenschutz datenschutzerklaerung terms terms-of-use
    terms-of-service terms-and-conditions tos legal cookies cookie-policy cookie-settings agb
    disclaimer careers jobs karriere advertise advertising werbung mediadaten help hilfe aide ayuda
    faq sitemap contacto privacidad mentions-legales aviso-legal polityka-prywatnosci regulamin
    wp-admin wp-login.php wp-json xmlrpc.php cdn-cgi amp-iframe
    """
)
_JUNK_QUERY_KEYS = _words(
    "share print replytocom action login logout redirect redirect_to returnurl return_to q s query "
    "search searchterm keyword keywords output"
)
_PAGE_QUERY_KEYS = _words("page paged pg pagenum page_num pageno seite pagina strona start offset")
ID_QUERY_KEYS = _words(
    "id p article articleid article_id aid story storyid story_id newsid news_id nid post postid "
    "post_id contentid content_id itemid item_id docid"
)
_PAGE_WORDS = _words("page pages p seite seiten strona pagina página side sivu")
_CATEGORY_PREFIXES = _words(
    """
    category categories cat section sections rubrik rubriken ressort ressorts kategorie kategorien
    categorie categoria categorias kategoria kategorii dzial topic topics thema themen tema temat
    """
)

_PAGE_SEGMENT_RE = re.compile(r"(?:page|seite|strona|pagina|p)[-_]?\d{1,4}|index[-_]?\d{1,4}")
_TOKEN_SPLIT_RE = re.compile(r"[-_+~.,]+")
_ARTICLE_PREFIXES = _words("article articles artikel story stories post posts blog beitrag beitraege")
# Joining words do not make a section name a headline: "food-and-drink" is two words.
_CONNECTORS = _words("and und et y i e n or oder ou o")
_HEX_ID_RE = re.compile(r"[0-9a-f]{12,}")
_LONG_NUMBER_RE = re.compile(r"\d{5,}")
_ISO_DATE_RE = re.compile(r"((?:19|20)\d\d)-?(0[1-9]|1[0-2])-?(0[1-9]|[12]\d|3[01])")

def classify_url(url: str) -> str | None:
    """``"article"``, ``"listing"`` or ``None`` (not worth following / undecided), from the URL alone."""
    shape = url_kind(url)
    if shape == ARTICLE:
        return ARTICLE
    if shape in (LISTING, PAGINATION):
        return LISTING
    return None


def id_only(url: str) -> bool:
    """Whether an article-shaped URL says so by a bare id alone (``/c/12345``, ``/story.php?id=9``):
    sections are numbered that way too, so the URL alone cannot tell them from articles."""
    segments = [unquote(s).lower() for s in urlsplit(url).path.split("/") if s]
    if not segments or _date_end(segments) is not None:
        return False
    stem = _split_ext(segments[-1])[0]
    words = [t for t in _TOKEN_SPLIT_RE.split(stem) if t.isalpha() and t not in _ARTICLE_PREFIXES]
    return len(words) < 2


def last_segment_words(url: str) -> int:
    """Tokens of the last path segment (``north-and-south``: 3): how many words a name has."""
    segments = [s for s in urlsplit(url).path.split("/") if s]
    return len([t for t in _TOKEN_SPLIT_RE.split(segments[-1]) if t]) if segments else 0


@lru_cache(maxsize=65536)
def url_kind(url: str) -> str:
    """article / listing / pagination / unknown / junk from the URL alone (cached: listings repeat)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return JUNK
    if parts.scheme not in ("http", "https"):
        return JUNK
    segments = [unquote(s).lower() for s in parts.path.split("/") if s]
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(s in _JUNK_SEGMENTS for s in segments) or any(k.lower() in _JUNK_QUERY_KEYS for k, _ in query):
        return JUNK
    if segments and segments[0].startswith("wp-"):
        return JUNK
    stem, ext = _split_ext(segments[-1]) if segments else ("", "")
    if ext in _STATIC_EXT:
        return JUNK
    if segments and (
        (segments[:-1] and ext == "" and _is_page_number_segment(segments)) or _PAGE_SEGMENT_RE.fullmatch(stem)
    ):
        # /world/page/2 pages a listing; /2019/10/some-story/seite-2 pages an article: skip those.
        rest = [s for s in segments[:-1] if s not in _PAGE_WORDS]
        rest_stem = rest[-1] if rest else ""
        return JUNK if _path_shape(rest, rest_stem, "") == ARTICLE else PAGINATION
    paginated_query = any(k.lower() in _PAGE_QUERY_KEYS and v.isdigit() for k, v in query)
    if stem in _INDEX_STEMS:
        # .../index.html names the folder's page: judge the folder.
        segments = segments[:-1]
        stem, ext = (segments[-1], "") if segments else ("", "")
    path_shape = _path_shape(segments, stem, ext)
    if paginated_query:
        # Page 2 of a multi-page article or of its comments: not a listing, not a new article.
        return JUNK if path_shape == ARTICLE else PAGINATION
    if path_shape == ARTICLE:
        return ARTICLE
    if any(k.lower() in ID_QUERY_KEYS and v.isdigit() for k, v in query):
        return ARTICLE
    return path_shape


def _is_page_number_segment(segments: list[str]) -> bool:
    """``/page/3``, ``/p/3``, ``/seite/3`` or a small number after section names (``/world/2/``)."""
    last = segments[-1]
    if not last.isdigit() or len(last) > 4:
        return False
    if segments[-2] in _PAGE_WORDS:
        return True
    return len(last) <= 3 and all(_is_section_word(s) for s in segments[:-1])


def _path_shape(segments: list[str], stem: str, ext: str) -> str:
    if not segments:
        return LISTING
    date_end = _date_end(segments)
    if date_end is not None:
        # /2025/01/21/slug is an article; /2025/01/ alone is an archive listing.
        rest = segments[date_end:]
        return LISTING if all(seg.isdigit() and len(seg) <= 3 for seg in rest) else ARTICLE
    if any(_has_id(seg) for seg in segments):
        return ARTICLE
    words = [t for t in _TOKEN_SPLIT_RE.split(stem) if t and t not in _CONNECTORS and any(ch.isalpha() for ch in t)]
    if segments[0] in _CATEGORY_PREFIXES and len(segments) <= 2:
        return LISTING  # /category/food-and-drink: a name, however many words it has
    if len(words) >= 3 or (ext and len(words) >= 2):
        return ARTICLE
    if len(segments) >= 2 and segments[-2] in _ARTICLE_PREFIXES and (len(words) >= 2 or stem.isdigit()):
        return ARTICLE  # /articles/pipenv-docker
    if len(segments) <= 3 and not ext and all(_is_section_word(s) for s in segments):
        return LISTING
    return UNKNOWN


def _has_id(segment: str) -> bool:
    """A long number, a hex id or a leading ISO date (``2020-10-18-some-title``) in a segment."""
    if _LONG_NUMBER_RE.search(segment):
        return True
    date = _ISO_DATE_RE.match(segment)
    if date and date.end() < len(segment):
        return True
    return any(
        _HEX_ID_RE.fullmatch(tok) and not tok.isdigit() and not tok.isalpha() for tok in _TOKEN_SPLIT_RE.split(segment)
    )


def _date_end(segments: list[str]) -> int | None:
    """Index just after a date in the path (``2025/01/21``, ``2025/01``, ``2025-01-21``), else None."""
    for i, seg in enumerate(segments):
        if len(seg) == 4 and seg.isdigit() and 1990 <= int(seg) <= 2099:
            end = i + 1
            if end < len(segments) and segments[end].isdigit() and 1 <= int(segments[end]) <= 12:
                end += 1
                if end < len(segments) and segments[end].isdigit() and 1 <= int(segments[end]) <= 31:
                    end += 1
            return end
        if _ISO_DATE_RE.fullmatch(seg):
            return i + 1
    return None


def _is_section_word(segment: str) -> bool:
    """A segment that reads like a section name: letters, at most two hyphenated words."""
    if not segment or len(segment) > 30:
        return False
    tokens = [t for t in _TOKEN_SPLIT_RE.split(segment) if t and t not in _CONNECTORS]
    return 0 < len(tokens) <= 2 and all(t.isalpha() for t in tokens)


def _split_ext(segment: str) -> tuple[str, str]:
    """(stem, extension) when the extension is a known page or static-file one, else (segment, "")."""
    stem, dot, ext = segment.rpartition(".")
    if dot and stem and (ext in _PAGE_EXT or ext in _STATIC_EXT):
        return stem, ext
    return segment, ""
