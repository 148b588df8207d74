"""The discover stage: a stored discovery page in, the article and listing URLs it leads to out.

Input: a ``page`` message (schemas/page.schema.json) for a listing, home page, feed, sitemap or
robots.txt.  Output: ``fetch`` messages, one per URL new to the crawl, within the source's depth
and page budget.  Entry point: ``pages.found_on_page`` (pure: page bytes in, ``Found`` URLs out);
``links``, ``feeds``, ``sitemaps`` read each kind of page, ``traps`` refuses calendar and session
traps, ``frontier`` holds the seen-sets and budgets, ``schedule``/``scheduler`` poll sources again.
"""
