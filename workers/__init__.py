"""ingest: news sites in, clean article records out, through four stages on a message queue.

Packages, with imports running one way (``cli`` -> ``pipeline`` -> the stages -> ``sources``, ``core``):

- ``core``: settings, messages and their schemas, broker, logs, storage, URLs; shared by all.
- ``sources``: the sources file (sites, their start pages, limits) and the registry of loaded ones.
- ``discover``: listing pages, feeds, sitemaps -> article and listing URLs, each once.
- ``fetch``: URLs -> raw pages in storage, politely (robots.txt, host rates, private-address guard).
- ``extract``: raw pages -> article records (trafilatura plus the stage's own cleaning).
- ``sink``: records -> object storage.
- ``pipeline``: the stages as Dramatiq actors, the embedded crawl, enqueueing, re-extraction.
- ``cli``: the ``ingest`` command.
"""
