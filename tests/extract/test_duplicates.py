"""Duplicates: the same text under another URL (exact) and syndicated wire copies (near) are recorded."""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import RedisServer
from tests.support.seedpages import seed_pages
from tests.support.site import corpus_articles
from workers.extract.article import extract_article
from workers.extract.duplicates import (
    LEAD_WORDS,
    DuplicateIndex,
    DuplicateRules,
    MemoryDuplicateIndex,
    RedisDuplicateIndex,
    bands,
    hamming,
    near_fingerprints,
    simhash,
    words,
)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def sha(text: str) -> str:
    """The record's ``content_sha256`` of a text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@functools.cache
def corpus_text(index: int) -> str:
    """Extracted text of one corpus page (real article text)."""
    spec = corpus_articles()[index]
    text: str = extract_article(spec.html, f"https://corpus.example{spec.path}")["text"]
    return text


#: Corpus page 51: a 1,100-word sports report, the kind of text news agencies syndicate.
WIRE = 51
#: Two other corpus articles of ordinary length.
OTHER_A, OTHER_B = 0, 3


def wire_copy(text: str) -> str:
    """A syndicated copy: the partner's own headline line on top and a few words edited."""
    return "Biathlon: Chinas Team hofft auf Heimvorteil\n\n" + text.replace(" und ", " sowie ", 2)


class Variant:
    """Makes duplicate indexes of one kind: in memory (``client`` None) or in one Redis server."""

    def __init__(self, client: Any | None) -> None:
        self.client: Any = client
        self._made = 0

    def __call__(self, rules: DuplicateRules | None = None) -> DuplicateIndex:
        if self.client is None:
            return MemoryDuplicateIndex(rules)
        self._made += 1
        return RedisDuplicateIndex(self.client, f"t{self._made}", rules)


@pytest.fixture(params=["memory", "redis"])
def make_index(request: pytest.FixtureRequest) -> Iterator[Variant]:
    """Each test below runs on both variants (Redis on its own server)."""
    if request.param == "memory":
        yield Variant(None)
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        yield Variant(server.client())


def test_simhash_is_stable_and_case_and_punctuation_blind() -> None:
    text = corpus_text(OTHER_A)
    # Pinned: hashes stored in Redis must mean the same in every process and release.
    assert simhash("The quick brown fox jumps over the lazy dog") == 0x77B12FE87CF06675
    assert simhash(text.upper().replace(",", " ").replace(".", " ! ")) == simhash(text)
    assert simhash("") == 0 and simhash("one two") != simhash("two one")
    assert words("Ärger, über-all!") == ["ärger", "über", "all"]


def _reference_simhash(tokens: list[str]) -> int:
    """The textbook SimHash (64 bit votes per shingle), which the fast one must equal bit for bit."""
    shingles = [" ".join(tokens[i : i + 3]) for i in range(max(1, len(tokens) - 2))] if tokens else []
    votes = [0] * 64
    for shingle in shingles:
        value = int.from_bytes(hashlib.blake2b(shingle.encode(), digest_size=8).digest(), "big")
        for bit in range(64):
            votes[bit] += 1 if value >> (63 - bit) & 1 else 0
    return sum(1 << (63 - bit) for bit in range(64) if votes[bit] > len(shingles) / 2)


def test_fast_simhash_and_lead_equal_the_textbook_ones() -> None:
    """Hashes stored in Redis must not change when the computation is made faster."""
    rules = DuplicateRules()
    for text in (corpus_text(OTHER_A), corpus_text(OTHER_B), "one", "one two", "one two three four"):
        tokens = words(text)
        assert simhash(text) == _reference_simhash(tokens)
        got = near_fingerprints(text, rules)
        if len(tokens) >= rules.min_words:
            assert got == (_reference_simhash(tokens), _reference_simhash(tokens[:LEAD_WORDS]))


def test_hamming_and_bands() -> None:
    assert hamming(0, 0) == 0 and hamming(0, (1 << 64) - 1) == 64 and hamming(0b1011, 0b0001) == 2
    assert bands(0x0001_0002_0003_FFFF) == [1, 2, 3, 0xFFFF]


def test_wire_copy_is_within_distance_three_and_other_articles_are_far() -> None:
    wire = corpus_text(WIRE)
    assert len(words(wire)) > 1000
    assert hamming(simhash(wire), simhash(wire_copy(wire))) <= 3
    assert hamming(simhash(corpus_text(OTHER_A)), simhash(corpus_text(OTHER_B))) > 10


def test_exact_copy_names_the_first_url(make_index: Variant) -> None:
    index = make_index()
    text = corpus_text(OTHER_A)
    assert index.check_and_add("u1", sha(text), text) == (None, None)
    assert index.check_and_add("u2", sha(text), text) == ("u1", "exact")
    assert index.check_and_add("u3", sha(text), text) == ("u1", "exact"), "the first, not the latest"


def test_wire_copy_is_a_near_duplicate(make_index: Variant) -> None:
    index = make_index()
    wire = corpus_text(WIRE)
    copy = wire_copy(wire)
    assert index.check_and_add("agency", sha(wire), wire) == (None, None)
    assert index.check_and_add("partner", sha(copy), copy) == ("agency", "near")
    assert index.check_and_add("mirror", sha(copy), copy) == ("partner", "exact"), "same text: exact wins"


def test_a_copy_cut_short_or_extended_is_found_by_its_lead(make_index: Variant) -> None:
    index = make_index()
    wire = corpus_text(WIRE)
    paragraphs = wire.split("\n\n")
    shortened = "\n\n".join(paragraphs[: len(paragraphs) * 3 // 5])
    extended = wire + "\n\n" + corpus_text(OTHER_A)
    # Too far for the whole text's hash: only the lead's finds these copies.
    assert hamming(simhash(wire), simhash(shortened)) > 3 and hamming(simhash(wire), simhash(extended)) > 3
    assert index.check_and_add("agency", sha(wire), wire) == (None, None)
    assert index.check_and_add("short", sha(shortened), shortened) == ("agency", "near")
    assert index.check_and_add("long", sha(extended), extended) == ("agency", "near")


def test_different_articles_are_originals(make_index: Variant) -> None:
    index = make_index()
    texts = [corpus_text(i) for i in (OTHER_A, OTHER_B, WIRE)]
    texts += ["\n\n".join(page.paragraphs) for page in seed_pages()]
    answers = [index.check_and_add(f"u{i}", sha(t), t) for i, t in enumerate(texts)]
    assert answers == [(None, None)] * len(texts)


def test_same_url_id_gets_its_first_answer_again(make_index: Variant) -> None:
    index = make_index()
    text = corpus_text(OTHER_B)
    assert index.check_and_add("u1", sha(text), text) == (None, None)
    assert index.check_and_add("u2", sha(text), text) == ("u1", "exact")
    assert index.check_and_add("u1", sha(text), text) == (None, None), "never a duplicate of itself"
    assert index.check_and_add("u2", sha(text), text) == ("u1", "exact")
    other = corpus_text(OTHER_A)  # even if the page changed meanwhile: the record keeps its first answer
    assert index.check_and_add("u2", sha(other), other) == ("u1", "exact")


def test_short_texts_match_exactly_only(make_index: Variant) -> None:
    index = make_index()
    short = "Council workers began repairing the footbridge over the canal on Monday morning."
    edited = short.replace("Monday", "Tuesday")
    assert len(words(short)) < 50
    assert index.check_and_add("s1", sha(short), short) == (None, None)
    assert index.check_and_add("s2", sha(edited), edited) == (None, None), "one word differs: not a near copy"
    assert index.check_and_add("s3", sha(short), short) == ("s1", "exact")
    assert index.check_and_add("e1", sha(""), "") == (None, None)
    assert index.check_and_add("e2", sha(""), " \n ") == (None, None), "empty pages copy nothing"


@pytest.mark.parametrize("distance", [0, 1, 3, 4, 10])
def test_near_threshold_on_crafted_hashes(make_index: Variant, distance: int) -> None:
    """Flipped bits spread over both 32-bit halves (where the Lua popcount splits) and the sign bits."""
    index = make_index()
    base = 0xF0F0_1234_8000_FFFF
    flips = [63, 31, 32, 0, 17, 40, 50, 5, 9, 60][:distance]
    other = base
    for b in flips:
        other ^= 1 << b
    assert hamming(base, other) == distance
    assert index.check_and_add_hashed("a", "1" * 64, base) == (None, None)
    expected = ("a", "near") if distance <= 3 else (None, None)
    assert index.check_and_add_hashed("b", "2" * 64, other) == expected


def test_a_copy_of_a_copy_names_the_original(make_index: Variant) -> None:
    index = make_index()
    base = 0xF0F0_1234_8000_FFFF
    copy = base ^ 0b111  # three bits from the original
    copy_of_copy = copy ^ (0b111 << 40)  # three bits from the copy, six from the original
    assert index.check_and_add_hashed("agency", "1" * 64, base) == (None, None)
    assert index.check_and_add_hashed("partner", "2" * 64, copy) == ("agency", "near")
    assert index.check_and_add_hashed("aggregator", "3" * 64, copy_of_copy) == ("agency", "near")


def test_near_match_names_the_earliest_candidate(make_index: Variant) -> None:
    index = make_index()
    base = 0x0123_4567_89AB_CDEF
    assert index.check_and_add_hashed("first", "1" * 64, base ^ 0b111) == (None, None)
    assert index.check_and_add_hashed("second", "2" * 64, base) == ("first", "near")
    assert index.check_and_add_hashed("third", "3" * 64, base ^ 1) == ("first", "near")
    assert index.check_and_add_hashed("far", "4" * 64, base ^ (0b1111 << 60)) == (None, None)
    assert index.check_and_add_hashed("exact-only", "5" * 64, None) == (None, None)


def test_concurrent_copies_of_one_text_give_one_original(make_index: Variant) -> None:
    """Eight workers store the same article under eight URLs at once (each with its own connection)."""
    text = corpus_text(WIRE)
    if make_index.client is None:
        indexes = [make_index()] * 8
    else:  # the client's pool gives each thread a connection of its own
        indexes = [RedisDuplicateIndex(make_index.client, "race") for _ in range(8)]
    start = threading.Barrier(len(indexes))
    answers: dict[str, tuple[str | None, str | None]] = {}

    def store(index: DuplicateIndex, uid: str) -> None:
        start.wait()
        answers[uid] = index.check_and_add(uid, sha(text), text)

    threads = [threading.Thread(target=store, args=(ix, f"u{i}")) for i, ix in enumerate(indexes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    originals = [uid for uid, answer in answers.items() if answer == (None, None)]
    assert len(originals) == 1
    assert all(answer == (originals[0], "exact") for uid, answer in answers.items() if uid != originals[0])


def test_redis_keys_are_bounded_and_expire(redis_server: RedisServer) -> None:
    client = redis_server.client()
    index = RedisDuplicateIndex(client, "t", DuplicateRules(bucket_size=3, ttl_s=3600))
    base = 0xABCD_0000_0000_0000  # every hash below shares band 0 with it
    for i in range(6):
        index.check_and_add_hashed(f"u{i}", sha(str(i)), base | (0xFFFF << (16 * (i % 3))) ^ i)
    assert client.llen("t:dup:band:0:abcd") == 3, "a bucket keeps its newest entries only"
    entries = [e.decode() for e in client.lrange("t:dup:band:0:abcd", 0, -1)]
    # "simhash lead-simhash arrival original"; without a lead of its own, the lead is the whole hash.
    # u3..u5 are near copies of u0..u2 (two bits apart), filed under those originals.
    assert [int(e.split()[2]) for e in entries] == [6, 5, 4]
    assert [e.split()[3] for e in entries] == ["u2", "u1", "u0"]
    assert all(e.split()[0] == e.split()[1] for e in entries)
    keys = [k.decode() for k in client.keys("*")]
    assert all(k.startswith("t:dup:") for k in keys)
    assert {k.split(":")[2] for k in keys} == {"url", "sha", "band", "seq"}
    assert all(0 < client.ttl(k) <= 3600 for k in keys if k != "t:dup:seq")
    assert client.ttl("t:dup:seq") == -1, "one counter, kept"


def test_memory_index_forgets_after_the_ttl() -> None:
    clock = Clock()
    index = MemoryDuplicateIndex(DuplicateRules(ttl_s=3600), clock=clock)
    wire = corpus_text(WIRE)
    assert index.check_and_add("u1", sha(wire), wire) == (None, None)
    clock.now += 3599
    assert index.check_and_add("u2", sha(wire), wire) == ("u1", "exact")
    clock.now += 1
    assert index.check_and_add("u3", sha(wire), wire) == (None, None), "u1's sha and band entries expired"
    assert index.check_and_add("u2", sha(wire), wire) == ("u1", "exact"), "u2's own answer lives on"
    assert index.check_and_add("u1", sha(wire), wire) == ("u3", "exact"), "u1 is forgotten, so judged anew"
