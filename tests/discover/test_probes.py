"""Probes: links whose URL shape says too little, menus in <select>, "load more" endpoints and their JSON."""

from __future__ import annotations

import json

from workers.core.htmlparse import parse_html
from workers.discover.links import ARTICLE, LISTING, PROBE, discover_links
from workers.discover.pages import Found, found_on_page, routed_by_memory
from workers.discover.probes import json_links, widget_links

BASE = "https://news.example/index.html"
HOSTS = frozenset({"news.example"})


def _kinds(html: str, probes: bool = True) -> dict[str, str]:
    return {link.url.removeprefix("https://news.example"): link.kind
            for link in discover_links(html, BASE, allowed_hosts=HOSTS, probes=probes)}


def test_menu_links_of_unknown_shape_are_probes_and_were_dropped_before() -> None:
    page = ('<nav><ul><li><a href="/section/world/page/1.html">World</a></li>'
            '<li><a href="/c/12345">Sport</a></li><li><a href="/world/">World too</a></li></ul></nav>')
    assert _kinds(page) == {"/section/world/page/1.html": PROBE, "/c/12345": PROBE, "/world/": LISTING}
    assert _kinds(page, probes=False) == {"/c/12345": ARTICLE, "/world/": LISTING}


def test_a_headline_turns_a_probe_into_an_article() -> None:
    page = ('<a href="/a/31337"><img src="/x.jpg" alt=""></a>'
            '<h3><a href="/a/31337">Minister resigns over the budget</a></h3>'
            '<h2><a href="/x/7.html">World</a></h2>'
            '<footer><a href="/editorial-standards-and-corrections">x</a></footer>')
    assert _kinds(page) == {"/a/31337": ARTICLE, "/x/7.html": PROBE, "/editorial-standards-and-corrections": PROBE}


def test_select_menus_and_load_more_buttons_lead_on() -> None:
    tree = parse_html('<select><option value="">Sections</option><option value="/index.php?cat=3">World</option>'
                      '<option value="/c/48213">Sport</option></select>'
                      '<button class="load-more" data-href="/api/more?page=2">Load more</button>'
                      '<div class="share" data-href="https://news.example/a/1">Share</div>')
    assert tree is not None
    links = {link.url.removeprefix("https://news.example"): link.kind
             for link in widget_links(tree, BASE, allowed_hosts=HOSTS)}
    assert links == {"/index.php?cat=3": LISTING, "/c/48213": PROBE, "/api/more?page=2": LISTING}


def test_a_load_more_answer_gives_its_items_and_next_page() -> None:
    doc = {"items": [{"title": "Council closes the old bridge", "url": "/a/40001"},
                     {"title": "Short", "url": "/s/9.htm"}],
           "next": "/api/more?page=3", "html": '<h3><a href="/2024/05/01/a-long-story-here">A long story here</a></h3>'}
    links = {link.url.removeprefix("https://news.example"): link.kind
             for link in json_links(json.dumps(doc).encode(), BASE, allowed_hosts=HOSTS)}
    assert links == {"/a/40001": ARTICLE, "/s/9.htm": PROBE, "/api/more?page=3": LISTING,
                     "/2024/05/01/a-long-story-here": ARTICLE}
    assert json_links(b"{not json", BASE, allowed_hosts=HOSTS) == []
    found = found_on_page("listing", json.dumps(doc).encode(), BASE, "application/json", allowed_hosts=HOSTS)
    assert {f.kind for f in found} == {ARTICLE, PROBE, LISTING}


def test_site_memory_routes_known_shapes_without_a_probe() -> None:
    found = [Found("https://news.example/x/7.html", PROBE, "listing"), Found("https://news.example/c/22222", ARTICLE,
             "listing"), Found("https://news.example/s/x", PROBE, "listing"),
             Found("https://news.example/c/33333", ARTICLE, "sitemap")]
    learned = {"/x/{n}.html": {"article": 4}, "/c/{id}": {"listing": 3}, "/s/x": {"other": 5}}
    kinds = [f.kind for f in routed_by_memory(found, learned)]
    assert kinds == [ARTICLE, LISTING, PROBE, ARTICLE], "a sitemap's article is never second-guessed"
    section = [Found("https://news.example/food-and-drink", PROBE, "listing"),
               Found("https://news.example/north-korea-tests-a-missile", PROBE, "listing")]
    kinds = [f.kind for f in routed_by_memory(section, {"/{slug}": {"article": 9}})]
    assert kinds == [PROBE, ARTICLE], "a section-shaped probe is judged by its page, not by its stories' shape"
