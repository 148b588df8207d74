"""The fetch stage: a URL in, its raw page in storage and a claim check out.

Input: a ``fetch`` message (schemas/fetch.schema.json).  Output: a ``page`` message to discover
(listings, feeds, sitemaps) or extract (articles), with the raw page's storage key.  Entry point:
``stage.fetch``, which checks ``robots``, takes a send permit from ``politeness``, requests the
page through ``client`` (httpx behind the private-address guard of ``netguard``) with conditional
GET validators (``validators``), and records one outcome per page.
"""
