"""Message decoding and validation: any bytes off the wire give an envelope; any JSON a verdict."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.hostile import FUZZ, texts, timed, timed_or_error
from workers.core.encoder import POISON_ACTOR, SafeOrjsonEncoder, envelope_problem
from workers.core.messages import KINDS, InvalidMessage, fetch_task, validate

# What JSON can carry: orjson refuses integers past 64 bits, and writes infinities as null.
JSON: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=30,
)
FIELDS = ("queue_name", "actor_name", "args", "kwargs", "options", "message_id", "message_timestamp")


def _nested(opener: bytes, closer: bytes, depth: int) -> bytes:
    return opener * depth + closer * depth


WIRE = st.one_of(
    st.binary(max_size=500),
    JSON.map(orjson.dumps),
    st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=7).map(orjson.dumps),
    st.builds(_nested, st.sampled_from((b"[", b'{"a":')), st.sampled_from((b"]", b"}")), st.integers(1, 100_000)),
    texts().map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.integers(1, 2_000_000).map(lambda n: b'{"queue_name":"' + b"x" * n + b'"}'),
)


@FUZZ
@given(WIRE)
def test_decode_never_raises_and_gives_an_envelope(data: bytes) -> None:
    message = timed(SafeOrjsonEncoder().decode, data)
    assert envelope_problem(message) is None
    if message["actor_name"] == POISON_ACTOR and message["options"].get("poison"):
        assert message["kwargs"]["raw_size"] == len(data)
        assert message["kwargs"]["reason"]


@FUZZ
@given(
    st.fixed_dictionaries(
        {
            "queue_name": st.text(max_size=20),
            "actor_name": st.text(max_size=20),
            "args": st.lists(JSON, max_size=3),
            "kwargs": st.dictionaries(st.text(max_size=10), JSON, max_size=3),
            "options": st.dictionaries(st.text(max_size=10), JSON, max_size=3),
            "message_id": st.text(max_size=40),
            "message_timestamp": st.integers(0, 2**62),
        }
    )
)
def test_a_valid_envelope_survives_the_wire(envelope: dict[str, Any]) -> None:
    encoder = SafeOrjsonEncoder()
    assert timed(encoder.decode, encoder.encode(envelope)) == envelope


@FUZZ
@given(
    st.sampled_from(KINDS),
    st.one_of(
        JSON,
        st.dictionaries(
            st.sampled_from(
                (
                    "schema_version",
                    "crawl_id",
                    "url",
                    "url_id",
                    "kind",
                    "depth",
                    "record",
                    "found",
                    "final_url",
                    "status",
                )
            ),
            JSON,
            max_size=10,
        ),
    ),
)
def test_validate_accepts_or_raises_invalid_message(kind: str, message: Any) -> None:
    result = timed_or_error(InvalidMessage, validate, kind, message)
    assert isinstance(result, InvalidMessage | dict)
    if isinstance(result, InvalidMessage):
        assert str(result).startswith(f"{kind} message invalid at ")


@FUZZ
@given(st.integers(1, 1000), st.sampled_from(("list", "dict")))
def test_validate_survives_deep_json(depth: int, shape: str) -> None:
    # What orjson lets through (it refuses more than 1024 levels) must still get a verdict.
    value: Any = "x"
    for _ in range(depth):
        value = [value] if shape == "list" else {"a": value}
    task = fetch_task(crawl_id="c", url="https://news.example.com/", url_id="0" * 32, kind="listing")
    for probe in ({**task, "found": {"via": "listing", "title": value}}, {**task, "extra": value}, value):
        result = timed_or_error(InvalidMessage, validate, "fetch", probe)
        assert isinstance(result, InvalidMessage)
