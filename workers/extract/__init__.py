"""The extract stage: a raw page in, an article record out.

Input: a ``page`` message for an article.  Output: a ``sink`` message holding the record
(schemas/article.schema.json).  Entry point: ``extract_article(html, url)`` in ``article``
(pure: bytes in, dict out), which runs trafilatura and the stage's own cleaning: ``teasers``,
``boilerplate``, ``lead``, ``scroll``; metadata from ``metadata``, ``fields``, ``byline``,
``datelines``.  Across pages of a host: ``sitememory`` (repeated blocks), ``duplicates``
(same or near-same text), ``health`` (extraction health per host).
"""

from workers.extract.article import extract_article

__all__ = ["extract_article"]
