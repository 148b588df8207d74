"""Link discovery on listing pages: which links lead to articles, which to more listings.

A pure function over one page: HTML and the page's URL in, an ordered list of :class:`Link` out.
The rules are general (no site names) and work on two kinds of evidence:

* the **shape of the URL** (:func:`classify_url`): a date in the path, a long numeric id or a
  slug of several hyphenated words says "article"; a short path of one- or two-word segments
  says "section"; ``?page=3`` or ``/page/3/`` says "next page of this listing";
* the **context of the anchor**: ``rel=next``, "Next ›" or a bare number inside a pagination
  container marks a listing page; a headline (``<h2>``/``<h3>``), an ``<article>`` or a teaser
  card turns a link whose URL shape alone is undecided into an article.

Links to other hosts, static files, feeds, login/search/share/print/comment links and tag pages
are dropped: they are neither articles nor listings this crawler should walk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final
from urllib.parse import parse_qsl, unquote, urljoin, urlsplit

from lxml import etree

from workers.core.htmlparse import parse_html
from workers.core.urls import InvalidURL, host_allowed, host_of, normalize_url

__all__ = [
    "ARTICLE", "ID_QUERY_KEYS", "LISTING", "PROBE", "Link", "classify_url", "discover_links", "id_only", "link_kind",
]

ARTICLE: Final = "article"
LISTING: Final = "listing"
#: A link whose URL shape and context say too little: fetched, then judged by its content.
PROBE: Final = "probe"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Internal URL shapes; classify_url folds them into article / listing / None.
_JUNK, _UNKNOWN, _PAGINATION = "junk", "unknown", "pagination"

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

# Anchor texts that mean "another page of this listing" (compared casefolded, arrows removed).
_PAGINATION_WORDS = frozenset(
    w.strip()
    for w in """
    next|next page|older|older posts|older entries|older articles|older stories|newer|newer posts|
    newer entries|previous|previous page|prev|more articles|more stories|load more|show more|
    weiter|nächste|nächste seite|vorherige|vorherige seite|ältere beiträge|neuere beiträge|
    suivant|suivante|page suivante|précédent|précédente|page précédente|siguiente|página siguiente|
    anterior|página anterior|następna|następna strona|poprzednia|poprzednia strona|dalej|
    successiva|successivo|pagina successiva|precedente|volgende|vorige|próxima|próxima página|seguinte
    """.replace("\n", "|").split("|")
    if w.strip()
)
_ARROW_CHARS = "«»‹›<>→←⟩⟨❯❮▶◀▸◂…·|-–—:"
_PAGINATION_CONTAINER_RE = re.compile(
    r"pagination|pager|paging|page-?numbers|page-?nav|pagenav|nav-links|wp-pagenavi|seitennavigation"
)
_TEASER_RE = re.compile(
    r"(?:^|[\s_-])(?:teaser|teasers|card|cards|story|stories|article|articles|headline|entry|post|"
    r"news-item|lead|tile|item-title)(?:$|[\s_-])"
)
_NAV_RE = re.compile(r"(?:^|[\s_-])(?:nav|navbar|navigation|menu|breadcrumbs?|footer-links)(?:$|[\s_-])")
_HEADLINE_TAGS = frozenset({"h1", "h2", "h3", "h4", "article"})
_SKIP_SCHEMES = ("mailto:", "javascript:", "tel:", "sms:", "data:", "callto:", "whatsapp:", "ftp:", "file:")


@dataclass(frozen=True, slots=True)
class Link:
    """One link worth following, found on a listing page."""

    url: str  #: normalised with :func:`workers.core.urls.normalize_url`
    kind: str  #: ``"article"`` or ``"listing"``
    text: str  #: anchor text, whitespace collapsed ("" for ``<link rel=next>``)


def classify_url(url: str) -> str | None:
    """``"article"``, ``"listing"`` or ``None`` (not worth following / undecided), from the URL alone."""
    shape = _shape(url)
    if shape == ARTICLE:
        return ARTICLE
    if shape in (LISTING, _PAGINATION):
        return LISTING
    return None


def discover_links(
    html: str | bytes | etree._Element, base_url: str, *, allowed_hosts: frozenset[str], probes: bool = False
) -> list[Link]:
    """Articles and listing pages linked from one page, each URL once, in document order.

    ``base_url`` is the URL the page was fetched from; ``<base href>`` is respected. Links to hosts
    outside ``allowed_hosts``, junk links and the page itself are dropped. Garbage input gives ``[]``.
    With ``probes``, links whose shape and context say too little (menus, section lists, ids
    without words) come back as ``"probe"`` instead of being dropped or guessed, so that their
    page decides; a later anchor with clear evidence for the same URL turns a probe into its kind.
    """
    root = parse_html(html)
    if root is None:
        return []
    try:
        page_url = normalize_url(base_url)
    except InvalidURL:
        return []
    base = _effective_base(root, base_url)
    hosts = frozenset(h.lower() for h in allowed_hosts)
    found: dict[str, list[str]] = {}  # url -> [kind, text]; dicts keep first-seen order
    ranks: dict[str, int] = {}  # url -> strength of the evidence for its kind (see _decide)
    resolved: dict[str, str | None] = {}
    for el in root.iter("a", "link"):
        href = el.get("href")
        if not href:
            continue
        rel = (el.get("rel") or "").lower().split()
        rel_pagination = "next" in rel or "prev" in rel or "previous" in rel
        if el.tag == "link" and not rel_pagination:
            continue
        if href not in resolved:
            resolved[href] = _resolve(href, base, hosts)
        url = resolved[href]
        if url is None or url == page_url:
            continue
        text = _anchor_text(el) if el.tag == "a" else ""
        entry = found.get(url)
        if entry is not None and not probes:
            if not entry[1]:
                entry[1] = text
            continue
        kind, rank = _decide(url, el, text, rel_pagination, probes)
        if entry is not None:
            # With probes the clearest evidence for a URL wins (a headline over an image link).
            if kind is not None and rank > ranks[url]:
                entry[0], ranks[url] = kind, rank
            entry[1] = entry[1] or text
        elif kind is not None:
            found[url] = [kind, text]
            ranks[url] = rank
    return [Link(url, kind, text) for url, (kind, text) in found.items()]


def link_kind(url: str, text: str, *, in_nav: bool = False) -> str | None:
    """The kind of a link found outside an anchor (a ``<select>`` menu, a JSON answer), as a probe rule.

    Section shapes are listings, "more"/"next" labels listings, clear article shapes articles
    (unless in a menu or without words), the rest probes; junk is None.
    """
    shape = _shape(url)
    if shape == _JUNK:
        return None
    if shape == _PAGINATION or _is_pagination_text(text):
        return LISTING
    if shape == ARTICLE:
        return PROBE if in_nav or (id_only(url) and len(text.split()) < 3) else ARTICLE
    if shape == LISTING:
        headline = not in_nav and len(text.split()) >= 2 and _last_segment_words(url) >= 2
        return PROBE if headline else LISTING
    return ARTICLE if len(text.split()) >= 4 and not in_nav else PROBE


def id_only(url: str) -> bool:
    """Whether an article-shaped URL says so by a bare id alone (``/c/12345``, ``/story.php?id=9``):
    sections are numbered that way too, so the URL alone cannot tell them from articles."""
    segments = [unquote(s).lower() for s in urlsplit(url).path.split("/") if s]
    if not segments or _date_end(segments) is not None:
        return False
    stem = _split_ext(segments[-1])[0]
    words = [t for t in _TOKEN_SPLIT_RE.split(stem) if t.isalpha() and t not in _ARTICLE_PREFIXES]
    return len(words) < 2


def _decide(
    url: str, el: etree._Element, text: str, rel_pagination: bool, probes: bool = False
) -> tuple[str | None, int]:
    """The kind of one anchor from its URL's shape and where it sits on the page, and how sure:
    2 for clear evidence (pagination, an article shape or headline), 1 for a probe, 0 for a
    listing by its URL shape alone."""
    shape = _shape(url)
    if shape == _JUNK:
        return None, 0
    if rel_pagination or shape == _PAGINATION:
        return LISTING, 2
    in_pagination, in_headline = _context(el)
    words = len(text.split())
    if shape == ARTICLE:
        if probes and (_in_menu(el) or (id_only(url) and words < 3)):
            return PROBE, 1
        return ARTICLE, 2
    if in_pagination or _is_pagination_text(text):
        return LISTING, 2
    if shape == LISTING:
        # "/fische-schmerzen/" is a section by shape, yet under a headline of five or more words it
        # is a story; one-word sections ("/world/") and short labels stay listings.
        if in_headline and words >= 5 and _last_segment_words(url) >= 2:
            return ARTICLE, 2
        if probes and in_headline and words >= 2 and _last_segment_words(url) >= 2:
            return PROBE, 1  # "/north-and-south" under a headline: its page decides
        return LISTING, 0
    if probes:
        # A headline of a few words is a story; a one- or two-word label ("World") may be a section.
        return (ARTICLE, 2) if in_headline and words >= 4 else (PROBE, 1)
    return (ARTICLE, 2) if in_headline else (None, 0)


def _in_menu(el: etree._Element) -> bool:
    """Inside a navigation menu, the page header or its footer (nearest decisive ancestor), not a teaser."""
    for anc in el.iterancestors():
        tag = anc.tag
        if tag in ("body", "html"):
            return False
        if tag in _HEADLINE_TAGS:
            return False
        attrs = " ".join(v for v in (anc.get("class"), anc.get("id"), anc.get("role")) if v).lower()
        if tag in ("nav", "header", "footer") or (attrs and _NAV_RE.search(attrs)):
            return True
        if attrs and _TEASER_RE.search(attrs):
            return False
    return False


def _last_segment_words(url: str) -> int:
    segments = [s for s in urlsplit(url).path.split("/") if s]
    return len([t for t in _TOKEN_SPLIT_RE.split(segments[-1]) if t]) if segments else 0


def _context(el: etree._Element) -> tuple[bool, bool]:
    """(inside a pagination container, inside a headline/article/teaser) for an anchor."""
    in_headline: bool | None = None
    for anc in el.iterancestors():
        tag = anc.tag
        if tag in ("body", "html"):
            break
        attrs = " ".join(
            v for v in (anc.get("class"), anc.get("id"), anc.get("aria-label"), anc.get("role")) if v
        ).lower()
        if attrs and _PAGINATION_CONTAINER_RE.search(attrs):
            return True, False
        if in_headline is None:
            # The nearest decisive ancestor wins: a menu inside an article is still a menu.
            if tag in _HEADLINE_TAGS or (attrs and _TEASER_RE.search(attrs)):
                in_headline = True
            elif tag == "nav" or (attrs and _NAV_RE.search(attrs)):
                in_headline = False
    return False, bool(in_headline)


def _is_pagination_text(text: str) -> bool:
    if not text or len(text) > 40:
        return False
    bare = text.casefold().strip(_ARROW_CHARS + " ").strip()
    if not bare:
        return any(ch in text for ch in "»›→❯▶▸«‹←❮◀◂")
    return bare in _PAGINATION_WORDS


def _anchor_text(el: etree._Element) -> str:
    text = " ".join("".join(el.itertext()).split())
    if text:
        return text
    for attr in ("title", "aria-label"):
        value = el.get(attr)
        if value and value.strip():
            return " ".join(value.split())
    for img in el.iter("img"):
        alt = img.get("alt")
        if alt and alt.strip():
            return " ".join(alt.split())
    return ""


def _resolve(href: str, base: str, hosts: frozenset[str]) -> str | None:
    """The normalised absolute URL of ``href`` if it is on an allowed host, else None."""
    href = href.strip()
    if not href or href.startswith("#") or href.lower().startswith(_SKIP_SCHEMES):
        return None
    # Browsers drop tabs and newlines inside URLs and escape spaces; do the same.
    href = href.replace("\t", "").replace("\n", "").replace("\r", "").replace(" ", "%20")
    try:
        absolute = urljoin(base, href)
        # Refuse other hosts before the costlier normalisation.
        if not host_allowed((urlsplit(absolute).hostname or "").lower(), hosts):
            return None
        url = normalize_url(absolute)
    except (InvalidURL, ValueError):
        return None
    return url if host_allowed(host_of(url), hosts) else None


def _effective_base(root: etree._Element, base_url: str) -> str:
    for el in root.iter("base"):
        href = (el.get("href") or "").strip()
        if href:
            try:
                joined = urljoin(base_url, href)
            except ValueError:
                return base_url
            return joined if urlsplit(joined).scheme in ("http", "https") else base_url
    return base_url


@lru_cache(maxsize=65536)
def _shape(url: str) -> str:
    """article / listing / pagination / unknown / junk from the URL alone (cached: listings repeat)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _JUNK
    if parts.scheme not in ("http", "https"):
        return _JUNK
    segments = [unquote(s).lower() for s in parts.path.split("/") if s]
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(s in _JUNK_SEGMENTS for s in segments) or any(k.lower() in _JUNK_QUERY_KEYS for k, _ in query):
        return _JUNK
    if segments and segments[0].startswith("wp-"):
        return _JUNK
    stem, ext = _split_ext(segments[-1]) if segments else ("", "")
    if ext in _STATIC_EXT:
        return _JUNK
    if segments and (
        (segments[:-1] and ext == "" and _is_page_number_segment(segments)) or _PAGE_SEGMENT_RE.fullmatch(stem)
    ):
        # /world/page/2 pages a listing; /2019/10/some-story/seite-2 pages an article: skip those.
        rest = [s for s in segments[:-1] if s not in _PAGE_WORDS]
        rest_stem = rest[-1] if rest else ""
        return _JUNK if _path_shape(rest, rest_stem, "") == ARTICLE else _PAGINATION
    paginated_query = any(k.lower() in _PAGE_QUERY_KEYS and v.isdigit() for k, v in query)
    if stem in _INDEX_STEMS:
        # .../index.html names the folder's page: judge the folder.
        segments = segments[:-1]
        stem, ext = (segments[-1], "") if segments else ("", "")
    path_shape = _path_shape(segments, stem, ext)
    if paginated_query:
        # Page 2 of a multi-page article or of its comments: not a listing, not a new article.
        return _JUNK if path_shape == ARTICLE else _PAGINATION
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
    return _UNKNOWN


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
