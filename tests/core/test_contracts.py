"""Schemas, messages, records, the encoder and settings: the contracts between stages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import orjson
import pytest
from dramatiq.message import Message

from workers.core.encoder import POISON_ACTOR, SafeOrjsonEncoder, envelope_problem
from workers.core.messages import InvalidMessage, fetch_task, page_task, schema, sink_task, validate
from workers.core.settings import Settings, SettingsError, redact_url
from workers.core.urls import url_id
from workers.sink.record import build_record

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def _fetch() -> dict[str, object]:
    url = "https://news.example/world/2025/01/21/a-story.html"
    return fetch_task(crawl_id="c1", url=url, url_id=url_id(url), kind="article", allowed_hosts=["news.example"])


def _page() -> dict[str, object]:
    return page_task(
        _fetch(), final_url="https://news.example/a", status=200, fetched_at="2025-01-21T10:00:00.000Z",
        raw_key="raw/news.example/ab/x.html", content_type="text/html", encoding="utf-8", size=1234,
    )


def _extracted() -> dict[str, object]:
    return {
        "title": "A story", "authors": ["A. Writer", "B. Writer"], "published": "2025-01-21",
        "language": "en", "sitename": "News", "description": "d", "canonical_url": None,
        "text": "First.\n\nSecond.", "word_count": 2, "content_sha256": "0" * 64,
        "extractor": {"name": "ingest-extract", "version": "1", "options": {}},
    }


def test_every_schema_file_is_a_2020_12_schema_with_an_id() -> None:
    files = sorted(SCHEMAS.glob("*.schema.json"))
    assert {f.name.split(".")[0] for f in files} == {"fetch", "page", "sink", "article"}
    for f in files:
        loaded = json.loads(f.read_text())
        assert loaded["$schema"].endswith("2020-12/schema") and loaded["$id"].endswith(f.name)


def test_built_messages_validate() -> None:
    validate("fetch", _fetch())
    validate("page", _page())
    record = build_record(_extracted(), _page())
    validate("article", record)
    validate("sink", sink_task(crawl_id="c1", url_id=record["id"], record=record))


def test_record_identity_comes_from_the_requested_url_not_the_redirect() -> None:
    record = build_record(_extracted(), _page())
    assert record["id"] == _fetch()["url_id"]
    assert record["url"] == _fetch()["url"] and record["final_url"] == "https://news.example/a"
    assert record["host"] == "news.example" and record["authors"] == ["A. Writer", "B. Writer"]
    assert record["schema_version"] == schema("article")["properties"]["schema_version"]["const"]


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda m: m.pop("url"), "(top)"),
        (lambda m: m.update(url="ftp://x/y"), "url"),
        (lambda m: m.update(kind="video"), "kind"),
        (lambda m: m.update(url_id="XYZ"), "url_id"),
        (lambda m: m.update(extra=1), "(top)"),
        (lambda m: m.update(schema_version=2), "schema_version"),
    ],
)
def test_invalid_messages_say_where(mutate: object, where: str) -> None:
    message: dict[str, object] = _fetch()
    mutate(message)  # type: ignore[operator]
    with pytest.raises(InvalidMessage, match=re.escape(f"at {where}:")):
        validate("fetch", message)


def test_a_record_missing_its_text_is_invalid() -> None:
    record = build_record(_extracted(), _page())
    del record["text"]
    with pytest.raises(InvalidMessage, match="text"):
        validate("article", record)


def test_encoder_round_trips_a_message() -> None:
    enc = SafeOrjsonEncoder()
    message: Message[None] = Message(queue_name="fetch", actor_name="fetch", args=(_fetch(),), kwargs={}, options={})
    assert enc.decode(enc.encode(message.asdict())) == orjson.loads(orjson.dumps(message.asdict()))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xfe garbage \x00", "undecodable"),
        (b"{not json", "undecodable"),
        (b"[1, 2, 3]", "JSON list"),
        (b'{"queue_name": "fetch"}', "actor_name"),
        (orjson.dumps({"queue_name": "fetch", "actor_name": "fetch", "args": "x", "kwargs": {}, "options": {},
                       "message_id": "m", "message_timestamp": 1}), "args"),
    ],
)
def test_encoder_turns_bad_bytes_into_a_poison_message(data: bytes, reason: str) -> None:
    fields = SafeOrjsonEncoder().decode(data)
    assert envelope_problem(fields) is None
    assert fields["actor_name"] == POISON_ACTOR
    assert reason in fields["kwargs"]["reason"]
    assert fields["kwargs"]["raw_size"] == len(data)
    # Dramatiq builds a Message from it without raising: the consumer keeps going.
    Message(**{**fields, "args": tuple(fields["args"])})


def test_settings_from_env_parse_and_validate() -> None:
    s = Settings.from_env({"INGEST_HOST_RATE": "2.5", "INGEST_ALLOW_PRIVATE": "yes",
                           "INGEST_ALLOW_NETWORKS": "169.254.0.0/16, 10.1.2.3/32", "INGEST_MAX_BYTES": "100"})
    assert s.host_rate == 2.5 and s.allow_private is True and s.max_bytes == 100
    assert s.allow_networks == ("169.254.0.0/16", "10.1.2.3/32")
    assert Settings.from_env({}, host_rate=0.0).host_rate == 0.0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"INGEST_HOST_RATE": "fast"}, "INGEST_HOST_RATE"),
        ({"INGEST_ALLOW_PRIVATE": "maybe"}, "INGEST_ALLOW_PRIVATE"),
        ({"INGEST_ALLOW_NETWORKS": "10.0.0.0/99"}, "INGEST_ALLOW_NETWORKS"),
        ({"INGEST_BROKER_URL": "amqp://x"}, "INGEST_BROKER_URL"),
        ({"INGEST_LOG_FORMAT": "xml"}, "INGEST_LOG_FORMAT"),
        ({"INGEST_PAGE_PROCESSES": "-1"}, "INGEST_PAGE_PROCESSES"),
        ({"INGEST_PAGE_PROCESSES": "many"}, "INGEST_PAGE_PROCESSES"),
    ],
)
def test_bad_settings_fail_fast_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_secrets_in_urls_are_masked() -> None:
    assert redact_url("redis://:hunter2@redis:6379/0") == "redis://***@redis:6379/0"
    assert redact_url("redis://user:hunter2@redis/0") == "redis://user:***@redis/0"
    assert "hunter2" not in str(Settings(broker_url="redis://u:hunter2@h/0").redacted())


def test_a_page_without_a_date_takes_the_date_of_the_feed_or_sitemap_entry() -> None:
    page = _page()
    page["found"] = {"via": "sitemap", "published": "2025-01-20", "title": None, "referrer": "https://news.example/s"}
    record = build_record({**_extracted(), "published": None}, page)
    assert (record["published"], record["published_source"]) == ("2025-01-20", "discovery")
    assert record["discovered"] == {"via": "sitemap", "published": "2025-01-20", "referrer": "https://news.example/s"}
    validate("article", record)
    own = build_record(_extracted(), page)
    assert (own["published"], own["published_source"]) == ("2025-01-21", "page"), "the page's own date wins"


def _mutations(message: object) -> list[object]:
    """``message`` changed in one place each: every key dropped, retyped, mis-formatted, or joined by an extra one."""
    wrong: list[object] = [None, 1, -1, 1.5, "x", "", "2025-13-45T99:00:00Z", "ftp://x/y", [], {}, [1], True]
    out: list[object] = []
    if isinstance(message, dict):
        out.append({**message, "extra": 1})
        for key, value in message.items():
            out.append({k: v for k, v in message.items() if k != key})
            out.extend({**message, key: w} for w in wrong if w != value)
            out.extend({**message, key: m} for m in _mutations(value))
    elif isinstance(message, list) and message:
        out.extend([m, *message[1:]] for m in _mutations(message[0]))
        out.append([*message, message[0]])
    return out


def test_the_compiled_validator_never_accepts_what_jsonschema_rejects() -> None:
    # validate() trusts the compiled validator's "valid": it must agree with jsonschema on thousands of
    # near-misses of real messages, or a bad message would pass where it was caught before.
    from workers.core.messages import _fast_validator, _validator

    record = build_record(_extracted(), _page())
    bases = {"fetch": _fetch(), "page": _page(), "article": record,
             "sink": sink_task(crawl_id="c1", url_id=record["id"], record=record)}  # fmt: skip
    checked = 0
    for kind, base in bases.items():
        assert _fast_validator(kind).is_valid(base)
        for message in _mutations(base):
            rejected = any(True for _ in _validator(kind).iter_errors(message))
            if rejected:
                assert not _fast_validator(kind).is_valid(message), (kind, message)
                with pytest.raises(InvalidMessage):
                    validate(kind, message)
            else:
                assert validate(kind, message) is message
            checked += 1
    assert checked > 1000


def test_a_message_with_a_non_string_key_is_invalid_not_a_crash() -> None:
    message: dict[object, object] = {k: v for k, v in _fetch().items()}
    message[3] = "x"
    with pytest.raises(InvalidMessage):
        validate("fetch", message)
