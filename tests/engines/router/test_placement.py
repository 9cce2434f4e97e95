"""Placement: canonical keys, the stable hash, jump hash, balance, movement and stability."""

from __future__ import annotations

import ctypes
import dataclasses
import random
import statistics

import pytest

from engines.router.placement import (
    INT8_MAX,
    INT8_MIN,
    MAX_SHARDS,
    Placement,
    PlacementError,
    canonical_key,
    jump_hash,
    key_hash,
    measure,
)

CANONICAL_42 = (42).to_bytes(8, "big", signed=True)
CANONICAL_MINUS_42 = (-42).to_bytes(8, "big", signed=True)


def be(value: int, size: int) -> bytes:
    """``value`` as PostgreSQL's binary int2/int4/int8 (big-endian, signed)."""
    return value.to_bytes(size, "big", signed=True)


# --- canonical integer keys -------------------------------------------------------------

FORTY_TWO = [
    pytest.param(42, False, id="int"),
    pytest.param("42", False, id="text"),
    pytest.param(" 42", False, id="leading-space"),
    pytest.param("42 ", False, id="trailing-space"),
    pytest.param("+42", False, id="plus"),
    pytest.param(" \t\n\v\f\r+42\r\n ", False, id="all-c-spaces"),
    pytest.param("0042", False, id="leading-zeros"),
    pytest.param("0" * 5000 + "42", False, id="many-leading-zeros"),
    pytest.param("4_2", False, id="underscore"),
    pytest.param("0x2A", False, id="hex"),
    pytest.param("0X2a", False, id="hex-upper-prefix"),
    pytest.param("0x_2a", False, id="hex-underscore-after-prefix"),
    pytest.param("0o52", False, id="octal"),
    pytest.param("0b10_1010", False, id="binary-digits"),
    pytest.param(b"42", False, id="text-bytes"),
    pytest.param(b" +42 ", False, id="text-bytes-spaces"),
    pytest.param(bytearray(b"42"), False, id="bytearray"),
    pytest.param(be(42, 2), True, id="binary-int2"),
    pytest.param(be(42, 4), True, id="binary-int4"),
    pytest.param(be(42, 8), True, id="binary-int8"),
    pytest.param(memoryview(be(42, 4)), True, id="binary-memoryview"),
    pytest.param(42, True, id="int-binary-flag-ignored"),
    pytest.param("42", True, id="str-binary-flag-ignored"),
]


@pytest.mark.parametrize(("value", "binary"), FORTY_TWO)
def test_every_form_of_42_has_one_canonical_key_and_one_shard(value, binary):
    assert canonical_key(value, "int", binary=binary) == CANONICAL_42
    for shards in (1, 2, 3, 4, 7, 100):
        placement = Placement(shards)
        assert placement.shard_for(value, "int", binary=binary) == placement.shard_for(42, "int")


@pytest.mark.parametrize(
    ("value", "binary"),
    [
        (-42, False),
        ("-42", False),
        (" -42 ", False),
        ("-0x2A", False),
        (b"-42", False),
        (be(-42, 2), True),
        (be(-42, 4), True),
        (be(-42, 8), True),
    ],
)
def test_negative_integers_in_every_form(value, binary):
    assert canonical_key(value, "int", binary=binary) == CANONICAL_MINUS_42
    assert Placement(3).shard_for(value, "int", binary=binary) == Placement(3).shard_for(-42, "int")


def test_binary_int2_and_int4_are_sign_extended():
    assert canonical_key(b"\xff\xff", "int", binary=True) == be(-1, 8)
    assert canonical_key(b"\x80\x00", "int", binary=True) == be(-(2**15), 8)
    assert canonical_key(b"\x7f\xff\xff\xff", "int", binary=True) == be(2**31 - 1, 8)
    assert canonical_key(b"\x80\x00\x00\x00", "int", binary=True) == be(-(2**31), 8)


def test_canonical_integer_is_postgresql_binary_int8():
    for value in (0, 1, -1, 42, 2**40, INT8_MIN, INT8_MAX):
        canonical = canonical_key(value, "int")
        assert canonical == be(value, 8)
        assert canonical_key(canonical, "int", binary=True) == canonical


@pytest.mark.parametrize(
    ("value", "binary", "expected"),
    [
        (INT8_MAX, False, INT8_MAX),
        (INT8_MIN, False, INT8_MIN),
        ("9223372036854775807", False, INT8_MAX),
        ("-9223372036854775808", False, INT8_MIN),
        (" +9223372036854775807 ", False, INT8_MAX),
        ("0x7FFFFFFFFFFFFFFF", False, INT8_MAX),
        ("-0x8000000000000000", False, INT8_MIN),
        ("-0o1000000000000000000000", False, INT8_MIN),
        ("-0b1" + "0" * 63, False, INT8_MIN),
        (b"9223372036854775807", False, INT8_MAX),
        (be(INT8_MAX, 8), True, INT8_MAX),
        (be(INT8_MIN, 8), True, INT8_MIN),
    ],
)
def test_int8_bounds_are_keys(value, binary, expected):
    assert canonical_key(value, "int", binary=binary) == be(expected, 8)


@pytest.mark.parametrize(
    "value",
    [
        INT8_MAX + 1,
        INT8_MIN - 1,
        10**30,
        "9223372036854775808",
        "-9223372036854775809",
        "0x8000000000000000",
        "-0x8000000000000001",
        "1" + "0" * 5000,
        b"99999999999999999999",
    ],
)
def test_integers_beyond_int8_are_refused(value):
    with pytest.raises(PlacementError, match="out of range for type bigint") as info:
        canonical_key(value, "int")
    assert info.value.sqlstate == "22003"


@pytest.mark.parametrize(
    "value",
    [
        "12abc",
        "",
        "   ",
        "+",
        "-",
        "+-42",
        "4 2",
        "42.0",
        "1e3",
        "_42",
        "42_",
        "4__2",
        "0x",
        "0x_",
        "0x2g",
        "0b102",
        "0o8",
        "\u00a042",  # no-break space: not a C-locale space
        "42\x00",
        "\uff14\uff12",  # fullwidth digits, which Python's int() would take
        "\u0664\u0662",  # Arabic-Indic digits, likewise
        b"12abc",
        b"\xff42",
    ],
)
def test_invalid_integer_text_is_refused_with_a_clear_message(value):
    with pytest.raises(PlacementError, match="invalid input syntax for type bigint") as info:
        canonical_key(value, "int")
    assert info.value.sqlstate == "22P02"
    assert isinstance(info.value, ValueError)


def test_error_message_quotes_the_value_like_postgresql():
    with pytest.raises(PlacementError) as info:
        canonical_key("12abc", "int")
    assert str(info.value) == 'invalid input syntax for type bigint: "12abc"'
    with pytest.raises(PlacementError) as info:
        canonical_key("9" * 1000, "int")
    assert len(str(info.value)) < 120  # long values are cut short


@pytest.mark.parametrize("size", [0, 1, 3, 5, 6, 7, 9, 16])
def test_binary_integer_of_a_wrong_length_is_refused(size):
    with pytest.raises(PlacementError, match=f"{size} bytes") as info:
        canonical_key(b"\x01" * size, "int", binary=True)
    assert info.value.sqlstate == "22P03"


@pytest.mark.parametrize("value", [True, False, 4.2, None, [42]])
def test_wrong_python_types_are_type_errors(value):
    with pytest.raises(TypeError):
        canonical_key(value, "int")


def test_unknown_key_type():
    with pytest.raises(ValueError, match="unknown shard key type"):
        canonical_key(42, "uuid")  # type: ignore[arg-type]


# --- canonical text keys ----------------------------------------------------------------


@pytest.mark.parametrize("text", ["alice", "", "Zürich", "東京", "emoji 🐘", " padded "])
def test_text_keys_by_str_and_bytes_in_either_format(text):
    utf8 = text.encode("utf-8")
    forms = [(text, False), (text, True), (utf8, False), (utf8, True), (bytearray(utf8), True)]
    for value, binary in forms:
        assert canonical_key(value, "text", binary=binary) == utf8
    for shards in (1, 3, 4, 10):
        placement = Placement(shards)
        assert {placement.shard_for(v, "text", binary=b) for v, b in forms} == {
            placement.shard_for(text, "text")
        }


def test_text_is_not_normalized_nor_trimmed():
    # PostgreSQL compares text (deterministic collation) byte for byte; so does placement.
    assert canonical_key("\u00e9", "text") != canonical_key("e\u0301", "text")
    assert canonical_key("alice", "text") != canonical_key("alice ", "text")
    assert canonical_key("Alice", "text") != canonical_key("alice", "text")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"\xff\xfe", "invalid byte sequence for encoding UTF8"),
        (b"caf\xe9", "invalid byte sequence for encoding UTF8"),
        (b"\xed\xa0\x80", "invalid byte sequence for encoding UTF8"),  # an encoded surrogate
        (b"\xc0\xaf", "invalid byte sequence for encoding UTF8"),  # overlong
        ("a\ud800b", "not valid Unicode"),  # a lone surrogate in a str
        ("a\x00b", "NUL"),
        (b"a\x00b", "NUL"),
    ],
)
def test_invalid_text_keys_are_refused(value, message):
    with pytest.raises(PlacementError, match=message) as info:
        canonical_key(value, "text")
    assert info.value.sqlstate == "22021"


@pytest.mark.parametrize("value", [42, 4.2, None])
def test_text_keys_must_be_str_or_bytes(value):
    with pytest.raises(TypeError):
        canonical_key(value, "text")


# --- hash ---------------------------------------------------------------------------------


def test_key_hash_is_pinned_and_matches_postgresql():
    # Computed by PostgreSQL 15 itself, as a signed int8:
    #   SELECT ('x' || left(encode(sha256(int8send(k)), 'hex'), 16))::bit(64)::bigint
    #   SELECT ('x' || left(encode(sha256(convert_to('alice', 'UTF8')), 'hex'), 16))::bit(64)::bigint
    pinned = {
        canonical_key(42, "int"): -6432526491365186678,
        canonical_key(-1, "int"): 1343108722416799325,
        canonical_key(1, "int"): -3664133403169687886,
        canonical_key("alice", "text"): 3159282601090220207,
    }
    for canonical, signed in pinned.items():
        assert key_hash(canonical) == signed % 2**64


def test_key_hash_is_64_bit_and_spreads():
    hashes = [key_hash(be(i, 8)) for i in range(1000)]
    assert all(0 <= h < 2**64 for h in hashes)
    assert len(set(hashes)) == 1000
    assert max(hashes) >= 2**63  # the top bit is used


# --- jump hash ----------------------------------------------------------------------------


def jump_hash_ctypes(key: int, buckets: int) -> int:
    """A second transcription of the paper's C++, with C's uint64/int64/double types."""
    k = ctypes.c_uint64(key)
    b, j = ctypes.c_int64(-1), ctypes.c_int64(0)
    while j.value < buckets:
        b.value = j.value
        k.value = k.value * 2862933555777941757 + 1  # c_uint64 wraps mod 2**64
        j.value = int(
            ctypes.c_double(b.value + 1).value
            * (ctypes.c_double(1 << 31).value / ctypes.c_double((k.value >> 33) + 1).value)
        )
    return b.value


# Published by other implementations of the paper (Go, Python, Elixir, C test suites).
JUMP_VECTORS = [
    (1, 1, 0),
    (42, 57, 43),
    (0xDEAD10CC, 1, 0),
    (0xDEAD10CC, 666, 361),
    (256, 1024, 520),
    (0, 1, 0),
    (3, 1, 0),
    (0, 2, 0),
    (4, 2, 1),
    (7, 2, 0),
    (1, 128, 55),
    (129, 128, 120),
    (128, 100_000_000, 38_172_097),
    (2**64 - 1, 128, 92),
]


@pytest.mark.parametrize(("key", "buckets", "expected"), JUMP_VECTORS)
def test_jump_hash_reference_vectors(key, buckets, expected):
    assert jump_hash(key, buckets) == expected
    assert jump_hash_ctypes(key, buckets) == expected


def test_jump_hash_agrees_with_a_second_implementation():
    rng = random.Random(7)
    for _ in range(2000):
        key = rng.getrandbits(64)
        buckets = rng.choice([1, 2, 3, 4, 5, 10, 1000, rng.randint(1, MAX_SHARDS)])
        assert jump_hash(key, buckets) == jump_hash_ctypes(key, buckets)


@pytest.mark.parametrize(("key", "buckets"), [(-1, 3), (2**64, 3), (1, 0), (1, -3), (1, 2**31)])
def test_jump_hash_refuses_out_of_range_arguments(key, buckets):
    with pytest.raises(ValueError, match="jump_hash"):
        jump_hash(key, buckets)


def test_jump_hash_moves_keys_only_to_the_new_bucket():
    rng = random.Random(11)
    keys = [rng.getrandbits(64) for _ in range(3000)]
    for buckets in range(1, 12):
        for key in keys:
            old, new = jump_hash(key, buckets), jump_hash(key, buckets + 1)
            assert new in (old, buckets)


# --- placement ----------------------------------------------------------------------------


def test_balance_over_100k_keys_for_3_shards():
    placement = Placement(3)
    for keys in (list(range(1, 100_001)), [f"user-{i}" for i in range(100_000)]):
        key_type = "int" if isinstance(keys[0], int) else "text"
        per_shard = [0, 0, 0]
        for key in keys:
            per_shard[placement.shard_for(key, key_type)] += 1
        cv = statistics.pstdev(per_shard) / statistics.fmean(per_shard)
        assert cv < 0.05, (key_type, per_shard)


def test_adding_a_fourth_shard_moves_a_quarter_all_to_the_new_shard():
    three = Placement(3)
    four = three.with_shard_added()
    assert four == Placement(4)
    canonicals = [canonical_key(i, "int") for i in range(1, 100_001)]
    moved = 0
    for canonical in canonicals:
        before, after = three.shard_for_canonical(canonical), four.shard_for_canonical(canonical)
        if before != after:
            moved += 1
            assert after == 3  # jump hash: a key moves only to the new shard
    assert 0.20 <= moved / len(canonicals) <= 0.30


# Pinned: a change of canonical form, hash or jump hash moves rows and must not go unnoticed.
PINNED_INT_SHARDS_OF_3 = {
    0: 2,
    1: 2,
    2: 2,
    3: 2,
    4: 1,
    5: 1,
    6: 1,
    7: 0,
    8: 0,
    9: 2,
    10: 0,
    42: 0,
    100: 0,
    1000: 1,
    12345: 2,
    -1: 1,
    -42: 2,
    2**31 - 1: 2,
    INT8_MIN: 2,
    INT8_MAX: 0,
}
PINNED_TEXT_SHARDS_OF_3 = {
    "": 2,
    "a": 1,
    "alice": 1,
    "bob": 1,
    "carol": 1,
    "dave": 1,
    "user-1": 2,
    "user-2": 0,
    "Zürich": 1,
    "東京": 2,
    "42": 0,
}


def test_placement_is_stable():
    placement = Placement(3)
    assert {v: placement.shard_for(v, "int") for v in PINNED_INT_SHARDS_OF_3} == (
        PINNED_INT_SHARDS_OF_3
    )
    assert {v: placement.shard_for(v, "text") for v in PINNED_TEXT_SHARDS_OF_3} == (
        PINNED_TEXT_SHARDS_OF_3
    )


def test_shard_for_canonical_matches_shard_for():
    placement = Placement(5)
    for value in (0, 42, -7, INT8_MAX):
        assert placement.shard_for_canonical(canonical_key(value, "int")) == placement.shard_for(
            value, "int"
        )
    assert placement.shard_for_canonical(b"alice") == placement.shard_for("alice", "text")


def test_one_shard_takes_everything():
    placement = Placement(1)
    assert {placement.shard_for(i, "int") for i in range(1000)} == {0}


@pytest.mark.parametrize("shards", [0, -1, MAX_SHARDS + 1])
def test_placement_needs_a_valid_shard_count(shards):
    with pytest.raises(ValueError, match="shards"):
        Placement(shards)


@pytest.mark.parametrize("shards", [3.0, "3", True])
def test_placement_shard_count_must_be_an_int(shards):
    with pytest.raises(TypeError):
        Placement(shards)


def test_placement_is_immutable():
    placement = Placement(3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        placement.shards = 4  # type: ignore[misc]
    assert placement.with_shard_added().shards == 4
    assert placement.shards == 3


def test_measure_reports_balance_movement_and_speed():
    report = measure(3, 3000)
    assert report["shards"] == 3
    assert report["keys"] == 3000
    for kind in ("int", "text"):
        figures = report[kind]
        assert sum(figures["per_shard"]) == 3000
        assert len(figures["per_shard"]) == 3
        assert sum(figures["per_shard_after_add"]) == 3000
        assert len(figures["per_shard_after_add"]) == 4
        assert 0 <= figures["cv"] < 0.1
        assert figures["ideal_moved_share"] == 0.25
        assert 0.2 <= figures["moved_share"] <= 0.3
        assert figures["moved_not_to_new_shard"] == 0
    assert set(report["ns_per_call"]) == {"int", "int_text", "int_binary", "text"}
    assert all(ns > 0 for ns in report["ns_per_call"].values())
    assert measure(3, 3000)["text"]["per_shard"] == report["text"]["per_shard"]  # seeded
