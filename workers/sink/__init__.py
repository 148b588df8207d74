"""The sink stage: a record in, one object in storage out.

Input: a ``sink`` message (schemas/sink.schema.json).  Output: ``articles/<host>/<id[:2]>/<id>.json``
in object storage, one record per URL id, so a repeated delivery is a no-op (``sink.exists``).
``record`` builds the record from what extraction found and the page's provenance; ``write``
stores it (``write_record``).

Versions (sources with ``refresh = true``; every other record is create-only, the first one
stays): a refetch whose text (``content_sha256``) changed and whose fetch is newer than the
stored version's becomes version ``n + 1`` (``sink.updated``): ``articles/…`` is replaced by it,
with ``version``, ``first_seen`` (version 1's ``fetched_at``) and ``updated_at``, and every
version, the first included, is kept as ``versions/<host>/<id[:2]>/<id>/<n:06d>.json`` (a source's
``storage_prefix`` in front, as for ``articles/``).  A record that never changed has no
``versions/`` entry.  Unchanged text writes nothing (``sink.exists``), nor does a fetch older
than the stored version arriving late (``sink.stale``).  Versions are decided by create-if-absent
writes of ``versions/…/<n>.json`` only, so concurrent writers never leave an older version in
place of a newer one, on a local folder as on S3 (see ``write``).
"""
