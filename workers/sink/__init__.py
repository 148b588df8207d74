"""The sink stage: a record in, one object in storage out.

Input: a ``sink`` message (schemas/sink.schema.json).  Output: ``articles/<host>/<id[:2]>/<id>.json``
in object storage, written once per URL id, so a repeated delivery is a no-op.  ``record`` builds
the record from what extraction found and the page's provenance.
"""
