"""The verdict-cache key (_guard.pyx, ``verdict_key``), a security invariant: statements
that share a key share a verdict, since the guard parses only the first of them. So two
texts may share a key only if PostgreSQL's lexer (pglast's, PostgreSQL 17) splits them into
the same tokens, of the same kinds and with the same text, but for the values of numeric
literals (ICONST, FCONST: an integer too large for 32 bits is an FCONST, so these two count
as one kind). These tests check that against the lexer itself, on chosen examples, on a
corpus of ordinary statements and on generated text dense in everything that decides where
a token ends: digits, quotes, escapes, dollar quotes, comments."""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Iterator

import pytest
from engines.firewall._guard import verdict_key
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pglast.parser import ParseError, scan

_NUMBERS = {"ICONST", "FCONST"}
_DIGITS = re.compile(rb"[0-9]+")


def _tokens(sql: str) -> list[tuple[str, str | None]] | None:
    """PostgreSQL's tokens of ``sql`` as (kind, text), a number's text left out; None if
    it does not lex. Token positions are character indexes, ``end`` inclusive."""
    try:
        tokens = scan(sql)
    except ParseError:
        return None
    return [
        ("NUMBER", None) if t.name in _NUMBERS else (t.name, sql[t.start : t.end + 1])
        for t in tokens
    ]


def _key(sql: str) -> bytes:
    return verdict_key(sql.encode())


def _assert_sound(a: str, b: str) -> bool:
    """If ``a`` and ``b`` share a key, both lex alike (or both fail to); whether they do."""
    if _key(a) != _key(b):
        return False
    tokens_a, tokens_b = _tokens(a), _tokens(b)
    assert (tokens_a is None) == (tokens_b is None), (a, b)
    assert tokens_a == tokens_b, (a, b)
    return True


def _reference_key(sql: bytes) -> bytes:
    """The key as the module defines it, written plainly: a second reading to check the
    one-pass C one against."""
    if any(c in sql for c in b"\\$&"):
        return sql
    ident = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_$") | set(
        range(0x80, 0x100)
    )
    out, i, n = bytearray(b"\0"), 0, len(sql)
    while i < n:
        if sql.startswith(b"--", i):
            end = min([j for j in (sql.find(b"\n", i), sql.find(b"\r", i)) if j >= 0] + [n])
        elif sql.startswith(b"/*", i):
            end, depth = i + 2, 1
            while depth:
                if end >= n:
                    return sql
                pair = sql[end : end + 2]
                depth += {b"/*": 1, b"*/": -1}.get(pair, 0)
                end += 2 if pair in (b"/*", b"*/") else 1
        elif sql[i] in b"'\"":
            quote, end = sql[i : i + 1], i + 1
            while True:
                end = sql.find(quote, end)
                if end < 0:
                    return sql
                if sql[end + 1 : end + 2] != quote:
                    break
                end += 2
            end += 1
        elif 0x30 <= sql[i] <= 0x39:
            end = _DIGITS.match(sql, i).end()
            before = sql[i - 1] if i else None
            after = sql[end] if end < n else None
            if before not in ident and after not in ident:
                out += b"0"
                i = end
                continue
        else:
            end = i + 1
        out += sql[i:end]
        i = end
    return bytes(out)


# -- chosen examples ------------------------------------------------------------------------

_PGBENCH = "UPDATE pgbench_accounts SET abalance = abalance + {} WHERE aid = {};"

SHARED = [
    (_PGBENCH.format(-4711, 81505), _PGBENCH.format(-17, 3)),
    (
        "SELECT abalance FROM pgbench_accounts WHERE aid = 1",
        "SELECT abalance FROM pgbench_accounts WHERE aid = 99999999999",
    ),
    (
        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (3, 1, 24, -18, CURRENT_TIMESTAMP);",
        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (88, 12, 1000001, -4999, CURRENT_TIMESTAMP);",
    ),
    ("SELECT 1.5, .25, 3., 1e-5", "SELECT 22.75, .5, 10., 1e-12"),
    ("SELECT x FROM t1 LIMIT 10 OFFSET 20", "SELECT x FROM t1 LIMIT 1 OFFSET 0"),
    ("SELECT '1' || 2 -- note 3\n", "SELECT '1' || 9 -- note 3\n"),
    ("SELECT * FROM t WHERE a IN (1, 2, 3)", "SELECT * FROM t WHERE a IN (4, 55, 666)"),
    ("SELECT 1..2", "SELECT 3..4"),  # 1, .., 2
    ("SELECT 1 -- c\r+ 2", "SELECT 1 -- c\r+ 3"),  # a carriage return ends the comment
    ("SELECT a[1:2] FROM t", "SELECT a[7:8] FROM t"),
]

DIFFERENT = [
    ("SELECT * FROM t1", "SELECT * FROM t2"),
    ("SELECT sha224('x')", "SELECT sha256('x')"),
    ("SELECT md5('1')", "SELECT md5('2')"),
    ("SELECT 1 /* 1 */", "SELECT 1 /* 2 */"),
    ("SELECT 1 /* /* 1 */ 1 */", "SELECT 1 /* /* 1 */ 2 */"),
    ("SELECT 1 -- 1", "SELECT 1 -- 2"),
    ('SELECT "t1".a FROM "t1"', 'SELECT "t2".a FROM "t2"'),
    ('SELECT "a""1"', 'SELECT "a""2"'),
    ("SELECT 'it''s 1'", "SELECT 'it''s 2'"),
    ("SELECT 'a'\n'1'", "SELECT 'a'\n'2'"),  # one string, continued
    ("SELECT x'1F', b'01', n'1'", "SELECT x'2F', b'01', n'1'"),
    ('SELECT U&"\\0064blink_exec"(1)', 'SELECT U&"\\0065blink_exec"(1)'),
    ("SELECT U&'\\0063' UESCAPE '!'", "SELECT U&'\\0064' UESCAPE '!'"),
    ("SELECT E'\\163tandard'", "SELECT E'\\164tandard'"),
    ("SELECT E'\\x63'", "SELECT E'\\x64'"),
    ("SELECT $1", "SELECT $2"),
    ("SELECT $a$x$a$", "SELECT $b$x$b$"),
    (
        "SELECT $a1$ x $a2$; DROP TABLE t; $a2$ y $a1$",
        "SELECT $a1$ x $a1$; DROP TABLE t; $a1$ y $a1$",
    ),
    ("SELECT a$1", "SELECT a$2"),
    ("SELECT 0x1F", "SELECT 7x1F"),  # a hexadecimal integer, an error (in 14: 7 AS x1F)
    ("SELECT 0x1F", "SELECT 0x2F"),
    ("SELECT 1e5", "SELECT 2e5"),  # digits before a letter are kept
    ("SELECT 1_000", "SELECT 2_000"),
    ("SELECT é1", "SELECT é2"),  # a name: bytes >= 0x80 are letters
    ("SELECT 1", "SELECT 1.0"),
    ("SELECT 1", "SELECT -1"),
]

EXACT = [
    "SELECT $1",
    "SELECT $$1$$",
    "SELECT E'\\n1'",
    "SELECT 'a\\b', 1",
    'SELECT U&"d\\0061t\\+000061"',
    "SELECT 1 & 3",
    "SELECT 'unterminated 1",
    'SELECT "unterminated 1',
    "SELECT 1 /* unterminated",
    "SELECT 1 /* /* */ still open",
    "SELECT 'it''s",
]


@pytest.mark.parametrize(("a", "b"), SHARED)
def test_statements_that_differ_in_numbers_share_a_key(a, b):
    assert _key(a) == _key(b)
    assert _assert_sound(a, b)


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_names_strings_comments_and_escapes_are_keyed_as_written(a, b):
    assert _key(a) != _key(b)


@pytest.mark.parametrize("sql", EXACT)
def test_what_the_lexer_cannot_read_with_certainty_is_its_own_key(sql):
    raw = sql.encode()
    assert verdict_key(raw) is raw  # the text itself, uncopied


def test_a_normalized_key_is_marked_and_never_an_exact_one():
    assert _key(_PGBENCH.format(-4711, 81505)) == (
        b"\0UPDATE pgbench_accounts SET abalance = abalance + -0 WHERE aid = 0;"
    )
    assert _key("") == b"\0"
    assert _key("SELECT 1 -- to the end, which ends the comment") == (
        b"\0SELECT 0 -- to the end, which ends the comment"
    )
    assert _key("SELECT 1 /* /* */ */ 2") == b"\0SELECT 0 /* /* */ */ 0"
    # A text shaped like a normalized key is keyed normally itself: it cannot collide.
    assert _key("\0SELECT 0") == b"\0\0SELECT 0"


# -- a corpus of ordinary statements --------------------------------------------------------

CORPUS = [
    # pgbench's TPC-B-like script and its select-only one
    "UPDATE pgbench_accounts SET abalance = abalance + -4711 WHERE aid = 81505;",
    "SELECT abalance FROM pgbench_accounts WHERE aid = 81505;",
    "UPDATE pgbench_tellers SET tbalance = tbalance + 2212 WHERE tid = 7;",
    "UPDATE pgbench_branches SET bbalance = bbalance + -371 WHERE bid = 1;",
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, 81505, -4711, CURRENT_TIMESTAMP);",
    "BEGIN;",
    "END;",
    # what ORMs and applications send
    'SELECT "auth_user"."id", "auth_user"."password", "auth_user"."last_login" FROM "auth_user" WHERE "auth_user"."id" = 42 LIMIT 21',
    'INSERT INTO "blog_post" ("title", "body", "created") VALUES (\'Post 12\', \'2 + 2 = 4\', \'2024-06-01T12:00:00+00:00\'::timestamptz) RETURNING "blog_post"."id"',
    'UPDATE "blog_post" SET "views" = ("blog_post"."views" + 1) WHERE "blog_post"."id" IN (3, 5, 8)',
    "SELECT t1.a, t2.b FROM t1 JOIN t2 ON t1.id = t2.t1_id WHERE t2.b > 10.5 ORDER BY 1 DESC LIMIT 50 OFFSET 100",
    "SELECT sha256(convert_to('x1', 'UTF8')), sha224('y'), md5('7'), encode(sha512('z'), 'hex')",
    "SELECT count(*) FILTER (WHERE n % 2 = 0), avg(x)::numeric(10, 2) FROM generate_series(1, 1000) AS g(n)",
    "SELECT now() - interval '3 days', date_trunc('hour', ts) + interval '15 minutes' FROM events WHERE id = 901",
    "SELECT a[1], a[2:3], (r).f1 FROM arrays WHERE b @> ARRAY[1, 2]",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT n FROM r",
    "CREATE TABLE t3 (id int4 PRIMARY KEY, v varchar(255) DEFAULT 'v1', f float8 CHECK (f > 0.5))",
    "SET statement_timeout = 5000; SET application_name = 'worker-3'",
    "SELECT set_config('app.tenant', '17', false)",
    "/* app: worker 3 */ SELECT 1 -- trailing 4",
    "/* nested /* 1 */ 2 */ SELECT 2.5e10, .5, 6., 1e-3, 0x1F, 0o17, 0b101, 1_000_000",
    "SELECT 'multi'\n'line 2', x'1F', b'0101', n'nat 3', e'plain 4'",
    "SELECT 9999999999, 2147483647, 2147483648, -2147483648",
    "DELETE FROM sessions WHERE expires < now() - interval '30 days' AND id > 123",
    "SELECT café1, 中文2 FROM ünïcode3 WHERE x = 4",
    # held to their exact bytes
    "SELECT $1::int4 + $2",
    "SELECT $fn$ SELECT 1 $fn$",
    "SELECT E'line\\n2'",
    'SELECT U&"\\0064blink_exec"(1)',
]


def _digit_variants(sql: str, rng: random.Random) -> list[str]:
    """``sql`` with each run of digits in turn, and then all of them, rewritten; and with
    each single digit changed: the texts most likely to share its key."""

    def other() -> str:
        return str(rng.choice([0, 1, 7, 42, 999, 2147483648, 10**20]))

    runs = list(re.finditer(r"[0-9]+", sql))
    out = [sql[: m.start()] + other() + sql[m.end() :] for m in runs]
    out.append(re.sub(r"[0-9]+", lambda m: other(), sql))
    for i, c in enumerate(sql):
        if c.isdigit():
            out.append(sql[:i] + str((int(c) + rng.randint(1, 9)) % 10) + sql[i + 1 :])
    return out


def test_a_corpus_of_statements_shares_keys_only_with_texts_that_lex_alike():
    rng = random.Random(20240601)
    shared = 0
    for sql in CORPUS:
        assert _tokens(sql) is not None, sql
        assert verdict_key(sql.encode()) == _reference_key(sql.encode()), sql
        for variant in _digit_variants(sql, rng):
            if variant != sql:
                shared += _assert_sound(sql, variant)
    assert shared > 100  # numbers did share keys


# -- generated text -------------------------------------------------------------------------

# Pieces dense in what decides where a token ends, with digits next to each: code, whole
# strings, identifiers and comments; openers and closers on their own, which may leave one
# open or close it elsewhere; and pieces that make a text keyed exactly. Half the texts are
# made of the first two kinds only, so that most of them are normalized.
_CODE = [
    "SELECT ", "FROM ", "t", "t1", "sha256", "x", "e", "E", "é", "中", "_", "0x", "0b", "0o",
    " ", "  ", "\n", "\r", "\t", "\x0b", "\x0c",
    "0", "1", "7", "12", "007", "99999999999", "1_0", "1e5", "2.5", ".5", " 3 ", "(4)", "=5",
    ", 6.5", " -7;",
    ".", "..", "e-", "e+", "+", "-", "*", "/", "%", "<", "=", "!", "@", "::", ":", ",", ";",
    "(", ")", "[", "]",
]  # fmt: skip
_CLOSED = [
    "'12'", "'a''1'", "''", "'--1'", "'/*1'", '"t1"', '"a""1"', '"1\'"', "/* 1 */", "/* /* 2 */ 3 */",
    "/*/ 4 **/", "/*'5*/", "-- 6\n", "--7\r", "--'8\n", "E'9'", "e'1'", "x'1F'", "b'01'",
    "n'2'", "'a'\n'3'", "'a' -- 4\n'5'", " UESCAPE '!'",
]  # fmt: skip
_OPEN = ["'", '"', "/*", "*/", "--", "E'", "x'", "b'", "n'", "--\r'", "-- \r/*"]
_EXACT = ["a$", "U&", "U&'", 'U&"', "&", "\\", "\\0", "\\x", "\\u", "$", "$1", "$a$", "$$"]
_CHARS = sorted({c for piece in _CODE + _CLOSED + _OPEN + _EXACT for c in piece})
_texts = st.one_of(
    st.lists(st.sampled_from(_CODE + _CLOSED), min_size=1, max_size=24),
    st.lists(st.sampled_from(_CODE + _CLOSED + _OPEN + _EXACT), min_size=1, max_size=24),
).map("".join)
_runs = st.text(alphabet="0123456789", min_size=1, max_size=12)


def _rewritten(sql: str, runs: Iterator[str | None]) -> str:
    """``sql`` with its runs of digits replaced, each by the next of ``runs`` (None keeps
    it), where that alone keeps its key: a rewrite that changes the key tests nothing."""
    parts = re.split(r"([0-9]+)", sql)
    key = _key(sql)
    for i in range(1, len(parts), 2):
        new = next(runs)
        if new is not None and _key("".join([*parts[:i], new, *parts[i + 1 :]])) == key:
            parts[i] = new
    return "".join(parts)


@st.composite
def _pairs(draw: st.DrawFn) -> tuple[str, str]:
    """A text, and the same text with some of its numbers rewritten and, now and then, one
    character changed, added or removed: pairs that mostly share a key, and that differ
    where a digit's place in the text matters most."""
    a = draw(_texts)
    b = _rewritten(a, (draw(_runs | st.none()) for _ in itertools.count()))
    edit = draw(st.integers(0, 17))
    if edit < 3:
        i = draw(st.integers(0, len(b)))
        new = draw(st.sampled_from(_CHARS))
        b = [b[:i] + new + b[i + 1 :], b[:i] + new + b[i:], b[:i] + b[i + 1 :]][edit]
    return a, b


@settings(
    max_examples=4000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(_pairs())
def test_generated_texts_share_keys_only_when_they_lex_alike(pair):
    a, b = pair
    if _assert_sound(a, b):
        event("shared a key" if a != b else "the same text")


@settings(max_examples=2000, deadline=None, database=None)
@given(_texts)
def test_the_key_is_the_one_the_module_defines(sql):
    raw = sql.encode()
    key = verdict_key(raw)
    assert key == _reference_key(raw)
    try:
        scan(sql)
    except ParseError as exc:
        if "unterminated" in str(exc):
            assert key is raw  # open at the end: keyed exactly
    else:
        if not any(c in raw for c in b"\\$&"):
            assert key.startswith(b"\0")  # what lexes and needs no fallback is normalized


def test_generated_texts_do_share_keys():
    """Texts made as the property's are, sharing keys with others often: the pairs the
    property is about (seeded, so that this holds on every run)."""
    rng = random.Random(5)
    shared = lexed = 0
    for _ in range(3000):
        pieces = rng.choice([_CODE + _CLOSED, _CODE + _CLOSED + _OPEN + _EXACT])
        a = "".join(rng.choices(pieces, k=rng.randint(1, 24)))
        b = _rewritten(
            a, (str(rng.randint(0, 10 ** rng.randint(1, 12))) for _ in itertools.count())
        )
        if a != b and _assert_sound(a, b):
            shared += 1
            lexed += _tokens(a) is not None
    assert shared > 600
    assert lexed > 300
