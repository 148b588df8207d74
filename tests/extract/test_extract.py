"""extract_article: the record's shape, seed-shaped pages, metadata, charsets, hostile input, real pages."""

from __future__ import annotations

import codecs
import gzip
import hashlib
import json
import random
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import trafilatura
from hypothesis import given, settings
from hypothesis import strategies as st
from trafilatura.metadata import extract_author

from tests.support.seedpages import STYLES, SeedPage, seed_pages
from workers.core.urls import InvalidURL, normalize_url, url_id
from workers.extract.article import EXTRACTOR, extract_article
from workers.extract.byline import byline
from workers.extract.metadata import decode_html, parse_html

CORPUS = Path("/work/shared/corpus/trafilatura-eval")
RECORD_KEYS = {
    "id",
    "url",
    "canonical_url",
    "host",
    "title",
    "authors",
    "published",
    "updated",
    "language",
    "sitename",
    "description",
    "image",
    "tags",
    "text",
    "word_count",
    "content_sha256",
    "extractor",
}
PAGES = seed_pages(count_per_style=2)


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _extract(page: SeedPage) -> dict[str, Any]:
    return extract_article(page.html.encode("utf-8"), f"https://news.example.org{page.path}")


# --- seed-shaped pages ---------------------------------------------------------------------------


def test_generator_covers_every_style_with_distinct_pages() -> None:
    assert {p.style for p in PAGES} == set(STYLES) and len(STYLES) >= 3
    assert len({p.html for p in PAGES}) == len(PAGES)
    marked = seed_pages(marker="copy-7")
    assert all("copy-7" in p.title and "copy-7" in p.paragraphs[0] for p in marked)
    for page in PAGES:
        assert page.path.startswith("/") and page.path.endswith(".html")
        assert len(page.teasers) >= 6 and all(t not in p for t in page.teasers for p in page.paragraphs)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: f"{p.style}-{p.title[:12]}")
def test_seed_page_text_is_the_whole_article_and_no_teaser(page: SeedPage) -> None:
    text = _extract(page)["text"]
    paragraphs = text.split("\n\n")
    positions = [paragraphs.index(p) for p in page.paragraphs]  # each one a paragraph of its own
    assert positions == sorted(positions)
    assert text.endswith(page.paragraphs[-1])
    flat = _collapse(text)
    assert not [t for t in page.teasers if _collapse(t) in flat]
    assert "More From" not in text and "More Articles" not in text


def test_plain_trafilatura_leaks_teasers_on_flat_pages() -> None:
    """The fixture is hard: trafilatura alone keeps the teasers when they are sibling paragraphs."""
    for page in (p for p in PAGES if p.style.startswith("flat")):
        plain = _collapse(trafilatura.extract(page.html.encode("utf-8")) or "")
        leaked = [t for t in page.teasers if _collapse(t) in plain]
        assert len(leaked) >= len(page.teasers) // 2, page.style


# --- the record ----------------------------------------------------------------------------------


def test_record_has_exactly_the_contract_fields() -> None:
    page = next(p for p in PAGES if p.style == "flat")
    raw_url = f"HTTPS://News.Example.org{page.path}?utm_source=feed#comments"
    record = extract_article(page.html.encode("utf-8"), raw_url)
    assert set(record) == RECORD_KEYS
    assert record["url"] == normalize_url(raw_url) == f"https://news.example.org{page.path}"
    assert record["id"] == url_id(record["url"]) and len(record["id"]) == 32
    assert record["host"] == "news.example.org"
    assert record["content_sha256"] == hashlib.sha256(record["text"].encode("utf-8")).hexdigest()
    assert record["word_count"] == len(record["text"].split()) > 100
    assert record["extractor"] == EXTRACTOR and record["extractor"]["name"] == "ingest-extract"
    assert record["extractor"]["version"].endswith(f"+trafilatura-{trafilatura.__version__}")
    assert "\n\n\n" not in record["text"] and record["text"] == record["text"].strip()


def test_str_and_bytes_give_the_same_record() -> None:
    page = PAGES[0]
    url = f"https://news.example.org{page.path}"
    assert extract_article(page.html, url) == extract_article(page.html.encode("utf-8"), url)


def test_an_invalid_url_is_refused() -> None:
    with pytest.raises(InvalidURL):
        extract_article(PAGES[0].html, "ftp://example.org/a")


METADATA_PAGE = """<!DOCTYPE html><html lang="de-AT"><head><meta charset="utf-8">
<title>Hafen bekommt Nachtfähren | Hafenblatt</title>
<meta name="description" content="Zwei zusätzliche Fähren fahren ab Mai nachts zu den Inseln.">
<meta property="og:site_name" content="Hafenblatt">
<link rel="canonical" href="/lokales/2025/hafen-nachtfaehren.html?utm_source=feed">
<script type="application/ld+json">{ld}</script></head>
<body><header><nav><a href="/">Start</a> <a href="/lokales/">Lokales</a></nav></header>
<article><h1>Hafen bekommt Nachtfähren</h1>
<p>Die Hafenbehörde setzt ab Mai zwei zusätzliche Fähren in der Nacht ein, wie ihr Direktor am Dienstag sagte.</p>
<p>Die Fahrten um 22.15 Uhr und 23.40 Uhr sind für Schichtarbeiter des Containerterminals gedacht.</p>
<p>Die Fahrpreise bleiben gleich. Die Behörde rechnet mit Kosten von 1,2 Millionen Euro im Jahr.</p>
</article><footer>© Hafenblatt</footer></body></html>"""
LD = {
    "@context": "https://schema.org",
    "@type": "NewsArticle",
    "headline": "Hafen bekommt Nachtfähren",
    "datePublished": "2025-01-21T08:30:00+01:00",
    "author": [{"@type": "Person", "name": "Anna Beispiel"}, {"@type": "Person", "name": "Jonas Muster"}],
    "publisher": {"@type": "Organization", "name": "Hafenblatt"},
}


def test_metadata_from_json_ld_and_meta_tags() -> None:
    html = METADATA_PAGE.replace("{ld}", json.dumps(LD))
    record = extract_article(html.encode("utf-8"), "https://www.hafenblatt.example/lokales/2025/x.html")
    assert record["title"] == "Hafen bekommt Nachtfähren"
    assert record["authors"] == ["Anna Beispiel", "Jonas Muster"]
    assert record["published"] == "2025-01-21T08:30:00+01:00"
    assert record["language"] == "de"
    assert record["canonical_url"] == "https://www.hafenblatt.example/lokales/2025/hafen-nachtfaehren.html"
    assert record["sitename"] == "Hafenblatt"
    assert record["description"] == "Zwei zusätzliche Fähren fahren ab Mai nachts zu den Inseln."
    assert record["text"].endswith("Die Behörde rechnet mit Kosten von 1,2 Millionen Euro im Jahr.")
    assert record["updated"] is None and record["image"] is None and record["tags"] == []


def test_updated_image_and_tags_from_json_ld() -> None:
    ld = {
        **LD,
        "dateModified": "2025-01-22T10:00:00+01:00",
        "image": {"@type": "ImageObject", "url": "/bilder/faehre.jpg"},
        "keywords": ["Hafen", "Fähren", "hafen"],
    }
    html = METADATA_PAGE.replace("{ld}", json.dumps({"@context": "https://schema.org", "@graph": [ld]}))
    record = extract_article(html.encode("utf-8"), "https://www.hafenblatt.example/lokales/2025/x.html")
    assert record["updated"] == "2025-01-22T10:00:00+01:00"
    assert record["image"] == "https://www.hafenblatt.example/bilder/faehre.jpg"
    assert record["tags"] == ["Hafen", "Fähren"]  # deduplicated ignoring case, first spelling kept


def test_updated_image_and_tags_from_meta_tags_win_and_tags_are_capped() -> None:
    keywords = ", ".join(f"Thema {n}" for n in range(50))
    head = f"""<meta property="article:modified_time" content="2025-02-01T09:00:00Z">
    <meta property="og:image" content="//cdn.example/img/a.jpg"><meta name="keywords" content="{keywords}">
    <meta property="article:tag" content="Thema 1"><script type="application/ld+json">
    {{"@type": "NewsArticle", "dateModified": "2020-01-01", "image": "https://other.example/b.jpg"}}</script>"""
    record = extract_article(_page("Ein Absatz mit genug Worten, damit er als Text gilt.", head), "https://a.example/x")
    assert record["updated"] == "2025-02-01T09:00:00+00:00"
    assert record["image"] == "https://cdn.example/img/a.jpg"
    assert len(record["tags"]) == 30 and record["tags"][:2] == ["Thema 0", "Thema 1"]


def test_metadata_from_meta_tags_alone() -> None:
    html = """<html><head><meta charset="utf-8"><title>Night ferries for the islands - Harbour Gazette</title>
    <meta name="author" content="Jane Doe, John Roe">
    <meta property="article:published_time" content="2025-01-21T08:30:00Z">
    <meta property="og:url" content="https://harbour.example/local/night-ferries">
    <meta http-equiv="content-language" content="en-GB"><meta property="og:site_name" content="Harbour Gazette">
    </head><body><article><h1>Night ferries for the islands</h1>
    <p>The harbour authority will run two additional ferries every night between the old pier and the islands.</p>
    <p>The crossings are meant for shift workers at the container terminal who had to wait for the morning boat.</p>
    </article></body></html>"""
    record = extract_article(html.encode(), "https://harbour.example/local/night-ferries?ref=home")
    assert record["title"] == "Night ferries for the islands"  # without the site name glued to it
    assert record["authors"] == ["Jane Doe", "John Roe"]
    assert record["published"] == "2025-01-21T08:30:00+00:00"
    assert record["language"] == "en"
    assert record["canonical_url"] == "https://harbour.example/local/night-ferries"
    assert record["sitename"] == "Harbour Gazette"


def test_missing_metadata_is_none_not_empty() -> None:
    html = "<html><body><div>" + "<p>Ein Absatz mit genug Worten, damit er als Text gilt, Nummer %d.</p>" * 6
    record = extract_article((html % tuple(range(6)) + "</div></body></html>").encode(), "https://a.example/x")
    assert record["authors"] == []
    for key in ("canonical_url", "published", "updated", "image", "language", "description"):
        assert record[key] is None, key
    assert record["tags"] == []


_BYLINES = [
    '<div class="byline">By <a rel="author" href="/a/jane">Jane Doe</a></div>',
    '<aside class="sidebar"><span class="author">Sidebar Person</span></aside><p class="writer">Max Muster</p>',
    '<span class="meta-date"><span class="author-name">Dated Name</span></span><span id="Author">Erika Beispiel</span>',
    '<p class="author-name">By<time>2025-01-02</time>Ann Other and Bob Roe</p>',
    "<div><p><rel>me</rel>Carla Cue</p></div><author>Dana Doe</author>",
    '<figure><span class="byline">Photo Credit</span></figure><div data-component="Byline">Eve Example</div>',
    "<div class='author'>x</div><div class='author'>Frank Fallback</div>",
    "<p>No byline on this page at all, only an ordinary paragraph of text.</p>",
    # Pruned as a reviewer's line, so the second name is the byline.
    '<span class="meta-reviewer"><span class="author">Rev Iewer</span></span><p class="author">Real Name</p>',
    # trafilatura reads "me" from the <rel> once the date inside it is pruned.
    "<p><rel>me<time>2025-01-02</time></rel>Gina Gast</p><author>Hugo Host</author>",
]


@pytest.mark.parametrize("body", _BYLINES)
def test_byline_is_found_as_trafilatura_finds_it(body: str) -> None:
    # Our byline search reimplements trafilatura's extract_author for speed: same answer required.
    tree = parse_html(f"<html><head><title>t</title></head><body><article>{body}</article></body></html>")
    assert tree is not None
    assert byline(tree) == extract_author(tree)


def test_byline_matches_trafilatura_on_real_pages() -> None:
    found = 0
    for name in sorted(_corpus())[:60]:
        tree = parse_html(decode_html(_corpus_page(name)[0]))
        assert tree is not None
        expected = extract_author(tree)
        assert byline(tree) == expected, name
        found += expected is not None
    assert found >= 10


def test_widgets_and_boilerplate_lines_are_not_in_the_text() -> None:
    prose = "".join(
        f"<p>Der Gemeinderat hat den Haushalt für {year} nach einer langen Debatte mit großer Mehrheit beschlossen.</p>"
        for year in range(2020, 2030)
    )
    html = f"""<html><head><title>Haushalt beschlossen</title></head><body><article><h1>Haushalt beschlossen</h1>
    <figure><img src="/a.jpg"><figcaption>Das Rathaus am Abend</figcaption></figure>{prose}
    <p>Foto: Stadtverwaltung</p>
    <div class="newsletter-signup"><h3>Unser Newsletter</h3><p>Jeden Morgen die wichtigsten Nachrichten.</p></div>
    <p>Alle Rechte vorbehalten.</p><p>abc/dpa</p></article></body></html>"""
    text = extract_article(html.encode(), "https://stadt.example/haushalt")["text"]
    assert "Haushalt für 2020" in text and text.endswith(
        "Haushalt für 2029 nach einer langen Debatte mit großer Mehrheit beschlossen."
    )
    for boilerplate in ("Rathaus am Abend", "Foto:", "Newsletter", "wichtigsten Nachrichten", "Rechte", "dpa"):
        assert boilerplate not in text, boilerplate


# --- charsets and hostile input ------------------------------------------------------------------

RUSSIAN = (
    "Городской совет утвердил новый бюджет во вторник после дебатов, которые длились более пяти часов. "
    "Оппозиция заявила, что план слишком сильно сокращает расходы на библиотеки и ремонт дорог."
)


def _page(body: str, head: str = "") -> str:
    paragraphs = "".join(f"<p>{body} ({n})</p>" for n in range(4))
    return f"<html><head>{head}</head><body><article>{paragraphs}</article></body></html>"


def test_windows_1251_page_with_meta_charset() -> None:
    raw = _page(RUSSIAN, '<meta charset="windows-1251">').encode("cp1251")
    assert RUSSIAN in extract_article(raw, "https://ru.example/a")["text"]


def test_windows_1251_page_with_only_the_http_charset() -> None:
    raw = _page(RUSSIAN).encode("cp1251")
    assert RUSSIAN in extract_article(raw, "https://ru.example/a", encoding="windows-1251")["text"]


def test_http_charset_wins_over_a_wrong_meta_charset() -> None:
    raw = _page(RUSSIAN, '<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">').encode("cp1251")
    assert RUSSIAN in extract_article(raw, "https://ru.example/a", encoding="cp1251")["text"]


def test_latin1_label_decodes_as_windows_1252_and_utf16_bom_is_honoured() -> None:
    sentence = "Der Preis steigt auf 5 € – sagt „die Behörde“ am Mittwoch in einer längeren Erklärung."
    raw = _page(sentence, '<meta charset="iso-8859-1">').encode("cp1252")
    assert sentence in extract_article(raw, "https://de.example/a")["text"]
    raw16 = codecs.BOM_UTF16_LE + _page(sentence).encode("utf-16-le")
    assert sentence in extract_article(raw16, "https://de.example/a")["text"]


def test_mislabelled_utf8_is_read_as_utf8() -> None:
    raw = _page(RUSSIAN, '<meta charset="windows-1252">').encode("utf-8")
    assert RUSSIAN in extract_article(raw, "https://ru.example/a", encoding="iso-8859-1")["text"]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   \n ",
        b"\x00" * 100,
        bytes(range(256)) * 40,
        random.Random(7).randbytes(50_000),
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >>",
        b"<html></html>",
        b"<html><body><p>" + b"<div>" * 5000 + b"deep</p></body></html>",
        "<p>bare ünïcödé</p>".encode(),
    ],
    ids=["empty", "blank", "nul", "bytes", "random", "pdf", "empty-html", "deep", "fragment"],
)
def test_hostile_input_gives_an_empty_or_small_record_not_an_exception(raw: bytes) -> None:
    record = extract_article(raw, "https://bad.example/x")
    assert set(record) == RECORD_KEYS
    assert record["word_count"] == len(record["text"].split())
    if not record["text"]:
        assert record["word_count"] == 0
        assert record["content_sha256"] == hashlib.sha256(b"").hexdigest()


_TAGS = st.sampled_from(
    [
        "<p>",
        "</p>",
        "<div>",
        "</div>",
        "<br>",
        "<a href='/x'>",
        "</a>",
        "<table><tr><td>",
        "</td></tr></table>",
        "<ul><li>",
        "</li></ul>",
        "<h3>",
        "</h3>",
        "<!--",
        "-->",
        "<script>",
    ]
)
_WORDS = st.sampled_from(
    [
        "More From Naenara",
        "March 17, 2026",
        "Related",
        "KCNA",
        "Read more:",
        "der Text.",
        "\u00e9t\u00e9",
        "\x00",
        "&amp;",
        "&#xD800;",
        "]]>",
        "<?xml version='1.0'?>",
        "  \n",
    ]
)


_HINTS = st.sampled_from([None, "utf-8", "cp1251", "bogus", "rot13", "base64", "idna", "utf-7", "utf-8\x00"])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(_TAGS, _WORDS), max_size=60), _HINTS, st.sampled_from(["utf-8", "cp1252", "utf-16"]))
def test_arbitrary_markup_never_raises(parts: list[str], encoding: str | None, charset: str) -> None:
    html = "<html><body>" + "".join(parts)
    raw = html.encode(charset, "replace") if charset != "utf-8" else html.encode("utf-8", "surrogatepass")
    record = extract_article(raw, "https://fuzz.example/x", encoding=encoding)
    assert set(record) == RECORD_KEYS and record["word_count"] == len(record["text"].split())


def test_five_megabyte_page_is_extracted() -> None:
    paragraphs = "".join(
        f"<p>Paragraph {i}: the harbour authority will run more ferries, said official {i}.</p>" for i in range(40)
    )
    script = "<script>window.__STATE__=" + ('{"k":"' + "x" * 1000 + '"},') * 4800 + "0;</script>"
    nav = "".join(f'<li><a href="/s/{i}">Section {i}</a></li>' for i in range(2000))
    page = f"<html><head>{script}</head><body><ul>{nav}</ul><article>{paragraphs}</article></body></html>"
    raw = page.encode()
    assert len(raw) > 4_900_000
    text = extract_article(raw, "https://big.example/x")["text"]
    assert text.startswith("Paragraph 0:") and text.endswith("said official 39.")


# --- real pages ----------------------------------------------------------------------------------


@cache
def _corpus() -> dict[str, dict[str, Any]]:
    meta = json.loads((CORPUS / "annotations.json").read_text(encoding="utf-8"))
    return {entry["local_file"]: entry for entry in meta["pages"]}


def _corpus_page(name: str) -> tuple[bytes, str, dict[str, Any]]:
    entry = _corpus()[name]
    raw = gzip.decompress((CORPUS / "html" / name).read_bytes())
    try:
        url = normalize_url(entry["url"])
    except InvalidURL:  # a few entries carry labels instead of URLs
        url = f"https://corpus.invalid/{name}"
    return raw, url, entry


@pytest.mark.parametrize(
    ("name", "teaser"),
    [
        ("dw.com.colonial.html.gz", "Read more: Recognizing Germany colonial crimes"),
        ("100noticias.com-millones.html.gz", "Lea también: Impiden ingreso a Nicaragua"),
        ("hrjournal.de.trends.html.gz", "Lesen Sie auch die folgenden Beiträge:"),
        ("Unijne_fundusze_coraz_bli_ej._Sejm_zag_osowa__za__-_Polityka_-_rp.pl.html.gz", None),  # windows-1250
        ("proplanta.de.erloesobergrenze.html.gz", "Weitere Artikel zum Thema"),  # iso-8859-1
        ("Osthessen-news.de-Buergermeisterwahl.html.gz", None),  # UTF-8 with a BOM
    ],
)
def test_real_pages_keep_their_snippets_and_lose_their_teasers(name: str, teaser: str | None) -> None:
    raw, url, entry = _corpus_page(name)
    text = _collapse(extract_article(raw, url)["text"])
    assert [s for s in entry["with"] if _collapse(s) not in text] == []
    if teaser is not None:
        assert teaser in entry["without"] or any(w.startswith(teaser) for w in entry["without"])
        assert teaser not in text


def test_recall_on_forty_real_pages_is_not_below_trafilatura_defaults() -> None:
    ours = plain = total = 0
    for name in sorted(_corpus())[:40]:
        raw, url, entry = _corpus_page(name)
        mine = _collapse(extract_article(raw, url)["text"])
        theirs = _collapse(trafilatura.extract(raw) or "")
        for snippet in map(_collapse, entry["with"]):
            total += 1
            ours += snippet in mine
            plain += snippet in theirs
    assert total > 80
    assert ours >= plain
