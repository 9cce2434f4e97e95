"""Placement: a shard key's value -> the index of the shard that holds its rows.

Three steps, each a pure function, so the proxy, tests, benchmarks and any offline tool
(a rebalancer, a loader) agree on where every row lives:

1. ``canonical_key(value, key_type, binary=...)`` turns the value, however the client sent
   it, into one byte string per key value. The key's type family comes from the table's
   schema (the column's type), never from the value.
2. ``key_hash(canonical)`` is a stable 64-bit hash of those bytes: the first 8 bytes of
   SHA-256, read big-endian.
3. ``jump_hash(hash, shards)`` is Lamping & Veach's jump consistent hash (2014).

``Placement(shards)`` chains the three; ``measure()`` reports balance, movement and speed.

Canonical encoding
------------------
``"int"`` (int2, int4, int8 columns): the value as 8 bytes, big-endian two's complement,
the int8 range. That is exactly PostgreSQL's binary int8 (``int8send``), so a binary int8
parameter is already canonical, and a binary int2/int4 one is sign-extended to it. Text
(a literal, or a text-format parameter, as ``str`` or ``bytes``) is parsed the way
PostgreSQL's integer input (``pg_strtoint64_safe``) parses it: leading and trailing
whitespace (the C locale's six: space, \\t, \\n, \\v, \\f, \\r), an optional ``+`` or
``-``, decimal digits; and also the PostgreSQL 16+ forms, ``0x``/``0o``/``0b`` prefixes and
single underscores between digits (``1_000``). Accepting those is safe on older servers:
there the statement fails on the server; it is never routed by a value other than the one
the server stores. Non-ASCII digits, which Python's ``int()`` would take (fullwidth,
Arabic-Indic), are refused. The range checked is int8's: a value too big for an int2 or
int4 column is still placed, and the server then refuses it, as it would unsharded.

``"text"`` (text and varchar columns; not char(n), whose equality ignores trailing
spaces): the value's UTF-8 bytes. The text and binary formats of text are the same bytes,
so ``bytes`` in either format are taken as they are, only checked to be valid UTF-8
without NUL, which PostgreSQL refuses too. Conduit requires ``client_encoding`` UTF8, so a
client's bytes are the stored bytes. No Unicode normalization or case folding:
PostgreSQL's equality under a deterministic collation is byte equality, and placement
must agree with equality.

Integer and text keys never meet: a column has one type, so ``42`` (int) and ``"42"`` (text)
hashing differently is of no consequence.

Why SHA-256 truncated to 64 bits
--------------------------------
It must be stable across processes, machines and Python versions (Python's ``hash`` is
salted per process: never used here). Among stdlib hashes, the cost per call is dominated
by creating the hash object, not by 8-24 bytes of input: measured on the development box
(2 cores, shared, Python 3.11), ``blake2b(digest_size=8)`` 365 ns, ``sha256`` plus slicing
the digest 365 ns, for both 8-byte and 21-byte inputs; a pure-Python splitmix64 finalizer
for ints ~290 ns, too little gained to justify a second algorithm for one type. SHA-256 wins
the tie because PostgreSQL computes it too: ``sha256(int8send(id))`` and
``sha256(convert_to(name, 'UTF8'))`` are built in (PostgreSQL 11+), so a rebalancing or
checking job can hash keys on the server, which no extension-free SQL can do for blake2b.
(Checked on PostgreSQL 15: the tests pin hashes that the server computed; see ``key_hash``.)

Why jump consistent hash
------------------------
The three candidates, measured with the same SHA-256 key hash on the integer keys
1..10^5, 3 shards going to 4 (ideal share moved: 25 %); lookup is the whole call from
canonical bytes to shard index, in this module's Python, best of five passes:

============================  ============  ==========  ========  ======================
algorithm                     CV, 3 shards  moved 3->4  lookup    state to keep and ship
============================  ============  ==========  ========  ======================
jump (Lamping & Veach)        0.57 %        25.22 %     1.14 us   none
rendezvous (HRW)              0.43 %        24.93 %     2.40 us   none
ring, 100 vnodes per shard    3.30 %        24.24 %     0.88 us   300 points
ring, 1000 vnodes per shard   2.83 %        25.63 %     1.02 us   3000 points
============================  ============  ==========  ========  ======================

(CV is stdev/mean of keys per shard. A perfectly random assignment of 10^5 keys to 3
shards has a CV of about 0.45 % from sampling alone, which shrinks as keys grow: jump and
HRW sit at that floor. A ring's CV comes from where its points fell, one draw per ring,
and stays whatever the number of keys; more points per shard shrink it only slowly. In
every case each key that moved went to the new shard.)

Jump hash balances like a perfect random assignment (each shard's expected share is exactly
1/N), moves in expectation exactly 1/(N+1) of the keys when shard N is appended, and every
key that moves goes to the new shard, so a split copies rows from every old shard to the
new one and nothing between old shards. It needs no table (nothing to store, version and
ship to every proxy) and O(ln N) steps, about 200 ns here for 3 shards. Rendezvous hashing
shares those properties but hashes once per shard per lookup, so its cost grows with N. A
ring is a little faster in Python at 3 shards but is measurably unbalanced and is state
every proxy must hold identically. Jump hash's limitation: shards are numbered 0..N-1 and
can only be appended or removed at the end; a failed machine is replaced by pointing its
shard index at another server, which is what a shard index is for.

Measured by ``measure(3, 10**6)``
---------------------------------
Text keys are seeded random strings of 8 to 24 letters and digits. On the same shared
2-core box (Python 3.11; timings there are noisy to +-30 %):

=================================  =========================  =========================
                                   integer keys 1..10^6       10^6 random text keys
=================================  =========================  =========================
keys per shard                     333517, 332900, 333583     332911, 334460, 332629
CV                                 0.092 %                    0.241 %
moved when going to 4 shards       25.02 % (ideal 25 %)       25.07 % (ideal 25 %)
moved anywhere but the new shard   0                          0
=================================  =========================  =========================

``Placement.shard_for`` per call: 1.33 us for a Python int, 1.46 us for integer text,
1.42 us for a binary int8, 1.44 us for a text key. Roughly: canonical form 0.2-0.3 us,
SHA-256 0.4 us, jump 0.2 us, the rest calls. A statement's round trip to a shard takes
tens to hundreds of microseconds, so placement is not where a proxy's time goes.
"""

from __future__ import annotations

import hashlib
import random
import re
import statistics
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "INT8_MAX",
    "INT8_MIN",
    "MAX_SHARDS",
    "KeyType",
    "Placement",
    "PlacementError",
    "canonical_key",
    "jump_hash",
    "key_hash",
    "measure",
]

KeyType = Literal["int", "text"]
"""The type family of a shard key column: ``"int"`` for int2/int4/int8, ``"text"``."""

INT8_MIN = -(2**63)
INT8_MAX = 2**63 - 1
MAX_SHARDS = 2**31 - 1
"""Jump hash's bucket count is an int32 in the paper's reference implementation."""

_U64 = 2**64 - 1
_JUMP_MULTIPLIER = 2862933555777941757  # the paper's 64-bit linear congruential generator
_TWO_POW_31 = float(1 << 31)

# PostgreSQL's integer input (16+). The spaces are C's isspace() in the C locale: str.strip()
# would also strip Unicode spaces and \x1c-\x1f, which PostgreSQL refuses.
_INT_TEXT = re.compile(
    r"[ \t\n\v\f\r]*"
    r"(?P<sign>[+-]?)"
    r"(?:0[xX](?P<hex>(?:_?[0-9a-fA-F])+)"
    r"|0[oO](?P<oct>(?:_?[0-7])+)"
    r"|0[bB](?P<bin>(?:_?[01])+)"
    r"|(?P<dec>[0-9](?:_?[0-9])*))"
    r"[ \t\n\v\f\r]*"
)
# (group, base, most significant digits an int8 can need once leading zeros are gone)
_BASES = (("dec", 10, 19), ("hex", 16, 16), ("oct", 8, 22), ("bin", 2, 64))
_BINARY_INT_SIZES = (2, 4, 8)


class PlacementError(ValueError):
    """A value that is not a valid key of its column's type: the statement cannot be placed.

    Raised for values a client sent (bad syntax, out of range, bad binary length, invalid
    UTF-8), never for programming errors (those raise ``TypeError``). ``sqlstate`` is the
    code PostgreSQL itself reports for the same input, so the proxy can answer with the
    ErrorResponse the client would have had from an unsharded server.
    """

    def __init__(self, message: str, sqlstate: str = "22P02") -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def _shown(value: object) -> str:
    """The value as it appears in an error message, cut short so a huge value stays readable."""
    text = value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _int_from_text(text: str) -> int:
    """Parse integer input text as PostgreSQL 16+'s ``int8in`` does; see the module doc."""
    if text.isascii() and text.isdigit() and len(text) <= 18:  # plain digits: no regex
        return int(text)
    match = _INT_TEXT.fullmatch(text) if text.isascii() else None
    if match is None:
        raise PlacementError(f'invalid input syntax for type bigint: "{_shown(text)}"', "22P02")
    digits, base, max_digits = next(
        (match[group], base, max_digits)
        for group, base, max_digits in _BASES
        if match[group] is not None
    )
    # Leading zeros are unbounded in PostgreSQL's input; dropping them first keeps int()
    # within its digit limit and the range check cheap.
    digits = digits.replace("_", "").lstrip("0") or "0"
    number = int(digits, base) if len(digits) <= max_digits else INT8_MAX + 2
    if match["sign"] == "-":
        number = -number
    if not INT8_MIN <= number <= INT8_MAX:
        raise PlacementError(f'value "{_shown(text)}" is out of range for type bigint', "22003")
    return number


def _int_key(value: int | str | bytes, binary: bool) -> bytes:
    if isinstance(value, bool):
        raise TypeError("a bool is not an integer shard key")
    if isinstance(value, int):
        if not INT8_MIN <= value <= INT8_MAX:
            raise PlacementError(
                f'value "{_shown(value)}" is out of range for type bigint', "22003"
            )
        return value.to_bytes(8, "big", signed=True)
    if isinstance(value, str):
        return _int_from_text(value).to_bytes(8, "big", signed=True)
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        if binary:
            if len(data) == 8:  # binary int8 is the canonical form
                return data
            if len(data) not in _BINARY_INT_SIZES:
                raise PlacementError(
                    f"binary integer key of {len(data)} bytes: int2, int4 and int8 "
                    "are 2, 4 and 8 bytes",
                    "22P03",
                )
            return int.from_bytes(data, "big", signed=True).to_bytes(8, "big", signed=True)
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            raise PlacementError(
                f'invalid input syntax for type bigint: "{_shown(data)}"', "22P02"
            ) from None
        return _int_from_text(text).to_bytes(8, "big", signed=True)
    raise TypeError(f"an integer shard key must be int, str or bytes, not {type(value).__name__}")


def _text_key(value: int | str | bytes, binary: bool) -> bytes:
    del binary  # text's binary format is its text format: the same UTF-8 bytes
    if isinstance(value, str):
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates
            raise PlacementError(
                f"text key {_shown(value)!r} is not valid Unicode", "22021"
            ) from None
    elif isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PlacementError(
                f"invalid byte sequence for encoding UTF8 in text key: {exc.reason} "
                f"at byte {exc.start}",
                "22021",
            ) from None
    else:
        raise TypeError(f"a text shard key must be str or bytes, not {type(value).__name__}")
    if b"\x00" in data:
        raise PlacementError("text key contains a NUL byte, which PostgreSQL refuses", "22021")
    return data


def canonical_key(value: int | str | bytes, key_type: KeyType, *, binary: bool = False) -> bytes:
    """The one byte string every representation of a key value maps to.

    ``key_type`` is the column's type family. ``binary`` says a ``bytes`` value is in the
    wire protocol's binary format (a Bind parameter with format code 1); it does not
    matter for ``int`` and ``str`` values, already decoded, nor for text, whose two
    formats are the same bytes. ``"int"`` gives 8 bytes big-endian (int8's binary form);
    ``"text"`` gives the UTF-8 bytes. Raises ``PlacementError`` for a value that is not a
    valid key of that type (``"12abc"``, a value outside int8, a 3-byte binary integer,
    invalid UTF-8) and ``TypeError`` for a Python type that cannot carry one.
    """
    if key_type == "int":
        return _int_key(value, binary)
    if key_type == "text":
        return _text_key(value, binary)
    raise ValueError(f"unknown shard key type {key_type!r}: expected 'int' or 'text'")


def key_hash(canonical: bytes) -> int:
    """A stable 64-bit hash of a canonical key: SHA-256's first 8 bytes, big-endian.

    Stable across processes and versions (unlike Python's salted ``hash``), uniform enough
    that jump hash's balance holds, and computable inside PostgreSQL too:
    ``('x' || left(encode(sha256(int8send(k)), 'hex'), 16))::bit(64)::bigint`` is the same
    64 bits read as a signed int8 (and ``convert_to(k, 'UTF8')`` in place of ``int8send(k)``
    for text keys).
    """
    return int.from_bytes(hashlib.sha256(canonical).digest()[:8], "big")


def jump_hash(key: int, buckets: int) -> int:
    """Jump consistent hash (Lamping & Veach 2014): ``key`` (uint64) -> ``[0, buckets)``.

    A line-by-line transcription of the paper's C++ reference, including its double
    arithmetic (Python floats are IEEE doubles and ``int()`` truncates like C's cast), so
    it returns what every other faithful implementation returns for the same inputs.
    """
    if not 0 <= key <= _U64:
        raise ValueError(f"jump_hash key must be an unsigned 64-bit integer, not {key}")
    if not 1 <= buckets <= MAX_SHARDS:
        raise ValueError(f"jump_hash needs 1 to {MAX_SHARDS} buckets, not {buckets}")
    return _jump(key, buckets)


def _jump(key: int, buckets: int) -> int:
    """``jump_hash`` without the argument checks, for callers whose arguments are valid."""
    b, j = -1, 0
    while j < buckets:
        b = j
        key = (key * _JUMP_MULTIPLIER + 1) & _U64
        j = int((b + 1) * (_TWO_POW_31 / float((key >> 33) + 1)))
    return b


@dataclass(frozen=True, slots=True)
class Placement:
    """Where keys live with ``shards`` shards, numbered 0 to ``shards - 1``.

    Immutable: a resharding builds a new ``Placement`` (``with_shard_added``) and the
    router keeps both while rows move, so each lookup says which layout it used.
    """

    shards: int

    def __post_init__(self) -> None:
        if isinstance(self.shards, bool) or not isinstance(self.shards, int):
            raise TypeError(f"shards must be an int, not {type(self.shards).__name__}")
        if not 1 <= self.shards <= MAX_SHARDS:
            raise ValueError(f"a placement needs 1 to {MAX_SHARDS} shards, not {self.shards}")

    def shard_for(
        self, value: int | str | bytes, key_type: KeyType, *, binary: bool = False
    ) -> int:
        """The shard holding rows whose key equals ``value`` (see ``canonical_key``)."""
        # key_hash's result is a uint64 and shards was checked once: no need to check again.
        return _jump(key_hash(canonical_key(value, key_type, binary=binary)), self.shards)

    def shard_for_canonical(self, canonical: bytes) -> int:
        """The shard for a key already in canonical form (from ``canonical_key``)."""
        return _jump(key_hash(canonical), self.shards)

    def with_shard_added(self) -> Placement:
        """The placement after appending shard number ``shards``.

        Each key stays where it was or moves to the new shard (about 1/(shards+1) of them).
        """
        return Placement(self.shards + 1)


def _distribution(hashes: list[int], shards: int) -> dict:
    """Keys per shard, CV, and what moves going from ``shards`` to ``shards + 1``."""
    before = [_jump(h, shards) for h in hashes]
    after = [_jump(h, shards + 1) for h in hashes]
    per_shard = [0] * shards
    for shard in before:
        per_shard[shard] += 1
    per_shard_after = [0] * (shards + 1)
    moved = moved_elsewhere = 0
    for old, new in zip(before, after, strict=True):
        per_shard_after[new] += 1
        if old != new:
            moved += 1
            moved_elsewhere += new != shards
    return {
        "per_shard": per_shard,
        "cv": statistics.pstdev(per_shard) / statistics.fmean(per_shard),
        "per_shard_after_add": per_shard_after,
        "moved_share": moved / len(hashes),
        "ideal_moved_share": 1 / (shards + 1),
        "moved_not_to_new_shard": moved_elsewhere,
    }


def _ns_per_call(
    call: Callable[..., int], values: list, key_type: KeyType, binary: bool = False
) -> float:
    """Best of five timed passes over ``values``, in nanoseconds per call (loop included)."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter_ns()
        for value in values:
            call(value, key_type, binary=binary)
        best = min(best, (time.perf_counter_ns() - start) / len(values))
    return best


def _random_text_keys(count: int, seed: int) -> list[str]:
    """``count`` seeded random strings of 8 to 24 letters and digits."""
    rng = random.Random(seed)  # noqa: S311  (reproducible sample data, not a secret)
    alphabet = string.ascii_letters + string.digits
    return ["".join(rng.choices(alphabet, k=rng.randint(8, 24))) for _ in range(count)]


def measure(shards: int = 3, keys: int = 10**6, *, seed: int = 20140101) -> dict:
    """Balance, movement on adding a shard, and speed of this placement.

    For the integer keys 1..``keys`` and for ``keys`` seeded random text keys: keys per
    shard, their coefficient of variation (population stdev / mean), the share of keys
    that move when shard number ``shards`` is added against the ideal 1/(shards+1), and
    how many moved anywhere but to the new shard (0 for jump hash). ``ns_per_call`` times
    ``Placement.shard_for`` on a sample (best of five passes, loop overhead included) for
    ints given as Python ints, as text, as binary int8, and for text keys.
    """
    if keys < 1:
        raise ValueError("measure needs at least one key")
    placement = Placement(shards)
    int_hashes = [key_hash(i.to_bytes(8, "big", signed=True)) for i in range(1, keys + 1)]
    text_keys = _random_text_keys(keys, seed)
    text_hashes = [key_hash(k.encode()) for k in text_keys]
    sample = min(keys, 100_000)
    shard_for = placement.shard_for
    return {
        "shards": shards,
        "keys": keys,
        "algorithm": "jump consistent hash over sha256[:8]",
        "int": _distribution(int_hashes, shards),
        "text": _distribution(text_hashes, shards),
        "ns_per_call": {
            "int": _ns_per_call(shard_for, list(range(1, sample + 1)), "int"),
            "int_text": _ns_per_call(shard_for, [str(i) for i in range(1, sample + 1)], "int"),
            "int_binary": _ns_per_call(
                shard_for,
                [i.to_bytes(8, "big", signed=True) for i in range(1, sample + 1)],
                "int",
                binary=True,
            ),
            "text": _ns_per_call(shard_for, text_keys[:sample], "text"),
        },
    }
