"""The message encoder: orjson on the wire, and undecodable bytes turned into dead letters.

Dramatiq's own encoders raise on bytes they cannot decode, and a raise inside the Redis
consumer stops that consumer and strands the messages it had prefetched with the bad one.
This encoder never raises: it hands the worker a well-formed message addressed to the poison
actor, carrying the reason and a fingerprint of the bytes, and the dead-letter middleware takes
it from there.  Its neighbours are processed as if nothing happened.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from typing import Any

import orjson
from dramatiq.encoder import Encoder, MessageData

__all__ = ["POISON_ACTOR", "POISON_QUEUE", "SafeOrjsonEncoder", "envelope_problem"]

#: The actor every undecodable message is addressed to; it only ever raises PoisonMessage.
POISON_ACTOR = "poison"
POISON_QUEUE = "poison"
_PREVIEW_BYTES = 512

_ENVELOPE_TYPES: dict[str, type | tuple[type, ...]] = {
    "queue_name": str,
    "actor_name": str,
    "args": list,
    "kwargs": dict,
    "options": dict,
    "message_id": str,
    "message_timestamp": int,
}


def envelope_problem(fields: Any) -> str | None:
    """Why ``fields`` is not a Dramatiq message envelope, or None when it is one."""
    if not isinstance(fields, dict):
        return f"message is a JSON {type(fields).__name__}, not an object"
    for name, typ in _ENVELOPE_TYPES.items():
        if name not in fields:
            return f"message has no {name!r} field"
        if not isinstance(fields[name], typ):
            return f"message field {name!r} has the wrong type"
    return None


class SafeOrjsonEncoder(Encoder):
    """JSON via orjson; bytes that are not a valid message become a message to the poison actor."""

    def encode(self, data: MessageData) -> bytes:
        """Serialise a message envelope (plain JSON types only)."""
        return orjson.dumps(data)

    def decode(self, data: bytes) -> MessageData:
        """Parse an envelope; never raises (see the module docstring)."""
        try:
            fields = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            return poison_envelope(data, f"undecodable message: {exc}")
        problem = envelope_problem(fields)
        if problem is not None:
            return poison_envelope(data, f"malformed message: {problem}")
        assert isinstance(fields, dict)
        return fields


def poison_envelope(data: bytes | str, reason: str) -> MessageData:
    """A valid envelope that tells the poison actor about ``data`` and why it was refused."""
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else bytes(data)
    digest = hashlib.sha256(raw).hexdigest()
    return {
        "queue_name": POISON_QUEUE,
        "actor_name": POISON_ACTOR,
        "args": [],
        "kwargs": {
            "reason": reason,
            "raw_sha256": digest,
            "raw_size": len(raw),
            "raw_preview_b64": base64.b64encode(raw[:_PREVIEW_BYTES]).decode("ascii"),
        },
        # The Redis consumer acks and nacks by this id; the dead-letter middleware replaces the
        # placeholder with the real one before the message is settled.
        "options": {"redis_message_id": "unknown", "poison": True},
        "message_id": str(uuid.UUID(digest[:32])),
        "message_timestamp": int(time.time() * 1000),
    }
