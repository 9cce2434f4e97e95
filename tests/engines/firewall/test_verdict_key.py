"""The verdict-cache key, a security invariant: statements that share a key must share a
verdict, since the guard parses only the first of them. One definition (_guard.pyx) keys
both the guard's cache and a session's hot path; these tests check that the two agree and
that the key is sound over the guard's corpus and over generated statements that mix
digits with the places where a digit means more than a value: dollar-quote tags, U&
escapes (with and without UESCAPE), E'' escapes, comments."""

from __future__ import annotations

import random

import pytest
from engines.firewall._guard import verdict_key

from engines.firewall.guard import Guard

from .test_guard import BENIGN, DESTRUCTIVE

# Names spelled by escapes, blocked as written, and with one digit of an escape changed: a
# harmless name the guard allows (had the two one key, the second would let the first in).
_ESCAPED_PAIRS = [
    ("SELECT U&\"\\0064blink_exec\"('x')", "SELECT U&\"\\0065blink_exec\"('x')"),
    (
        "SELECT U&\"!0070g_terminate_backend\" UESCAPE '!' (42)",
        "SELECT U&\"!0071g_terminate_backend\" UESCAPE '!' (42)",
    ),
    (
        "SELECT set_config(E'\\x63lient_encoding', 'BIG5', false)",
        "SELECT set_config(E'\\x64lient_encoding', 'BIG5', false)",
    ),
    (
        "SELECT set_config(E'\\163tandard_conforming_strings', 'off', false)",
        "SELECT set_config(E'\\164tandard_conforming_strings', 'off', false)",
    ),
    (
        "SELECT set_config(E'\\u0063lient_encoding', 'SJIS', false)",
        "SELECT set_config(E'\\u0064lient_encoding', 'SJIS', false)",
    ),
    (
        "SELECT set_config(U&'\\0063lient_encoding', 'GBK', false)",
        "SELECT set_config(U&'\\0064lient_encoding', 'GBK', false)",
    ),
    (
        "UPDATE U&\"pg_\\0073ettings\" SET setting = 'off' WHERE name = 'x'",
        "UPDATE U&\"pg_\\0074ettings\" SET setting = 'off' WHERE name = 'x'",
    ),
    ('SELECT U&"lo_unlin\\006b"(4)', 'SELECT U&"lo_unlin\\006c"(4)'),
]
_ESCAPED = [blocked for blocked, _ in _ESCAPED_PAIRS]

_PIECES = [
    "SELECT {n} FROM t{n} WHERE c{n} = {n}",
    "SELECT ${tag}{n}$ x ${tag}{n}$",
    "SELECT 'a{n}' || E'\\{n}{n}{n}'",
    'SELECT U&"\\00{n}{n}x"',
    "/* {n} */ SELECT {n}.{n}e{n} -- {n}\n",
    "SELECT set_config('application_name', '{n}', false)",
    "DELETE FROM t{n} WHERE c = {n}",
    "SELECT x'{n}F' & {n}",
    "SET work_mem = {n}",
]


def _statements(count: int, seed: int = 20240601) -> list[str]:
    """``count`` statements of one to three pieces, joined by semicolons."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        pieces = rng.sample(_PIECES + _ESCAPED, rng.randint(1, 3))
        out.append(
            "; ".join(
                piece.format(n=rng.randint(0, 99), tag=rng.choice(["", "a", "q"]))
                for piece in pieces
            )
        )
    return out


def _variants(sql: str, rng: random.Random, count: int = 4) -> list[str]:
    """``sql`` with some of its digits changed: the statements most likely to share a key."""
    positions = [i for i, c in enumerate(sql) if c.isdigit()]
    out = []
    for _ in range(count if positions else 0):
        chars = list(sql)
        for i in rng.sample(positions, rng.randint(1, len(positions))):
            chars[i] = rng.choice("0123456789")
        out.append("".join(chars))
    return out


CORPUS = [sql for sql, _ in DESTRUCTIVE] + BENIGN + _ESCAPED + _statements(300)


def _fresh_verdict(sql: str) -> bool:
    return Guard().check(sql).allowed


def test_statements_sharing_a_key_share_a_verdict():
    rng = random.Random(7)
    checked = 0
    for sql in CORPUS:
        allowed = _fresh_verdict(sql)
        for variant in _variants(sql, rng):
            if verdict_key(variant.encode()) == verdict_key(sql.encode()):
                assert _fresh_verdict(variant) == allowed, (sql, variant)
                checked += 1
    assert checked > 200  # the generator makes keys that really are shared


@pytest.mark.parametrize(("blocked", "harmless"), _ESCAPED_PAIRS)
def test_a_digit_in_an_escape_is_never_read_as_any_digit(blocked, harmless):
    """``U&"\\0065blink_exec"`` (a harmless name) allowed first must not let
    ``U&"\\0064blink_exec"`` (dblink_exec) through on its cached verdict."""
    guard = Guard()
    assert guard.check(harmless).allowed
    assert guard.check(blocked).blocked
    assert verdict_key(blocked.encode()) == blocked.encode()


def test_a_sessions_hot_path_allows_exactly_what_the_guard_cached():
    """The compiled lookup (SessionGuard, from C on the hot path) against Guard.check's
    cache: it allows a statement only if its key is cached as allowed, never a statement
    a fresh guard would block, and counts each answer as a cache hit."""
    rng = random.Random(11)
    guard = Guard()
    session = guard.session("app")
    for sql in CORPUS:
        guard.check(sql)
        for text in [sql, *_variants(sql, rng)]:
            raw = text.encode()
            cached = guard._cache.get(verdict_key(raw))
            hits = guard.stats.cache_hits
            allowed = session.allows(raw)
            assert allowed == (cached is not None and cached.allowed), text
            assert guard.stats.cache_hits == hits + allowed
            if allowed:
                assert _fresh_verdict(text), text


def test_exempt_roles_are_allowed_without_a_lookup():
    guard = Guard(exempt_roles={"owner"})
    assert guard.session("owner").allows(b"DROP TABLE t")
    assert not guard.session("app").allows(b"DROP TABLE t")
    assert guard.session("app").check(b"DROP TABLE t").rule == "drop"
