# cython: language_level=3, boundscheck=False, wraparound=False
"""The guard's compiled half: its counters, the one definition of the verdict-cache key,
and the guard as one session's relay asks it (``SessionGuard``, a _policy.Policy).

The verdict-cache key is a security invariant: two statements with one key get one
verdict. guard.Guard.check keys the cache with ``verdict_key`` and a session's hot path
(``SessionGuard._allows``) looks it up with the same C function, so the two cannot drift.

What the key is. A small lexer reads the bytes as PostgreSQL's (scan.l) reads them, in
one of five states: code, a '...' string ('' inside it is a quote), a "..." identifier
("" likewise), a -- comment (ended by a newline, a carriage return or the end of the text)
and a /* comment (nested, as PostgreSQL nests them). In code, a maximal run of ASCII digits
that starts a token and ends one (neither the byte before it nor the byte after it is an
identifier byte: [A-Za-z0-9_$] or any byte >= 0x80) is written as the single byte ``0``.
Every other byte is copied: names and the digits in them (t1, sha256, x1F), and all of
every string, quoted identifier and comment. The key is the byte NUL and that text:
``UPDATE t1 SET a = a + -4711 WHERE aid = 81505; -- 7`` has the key ``\\0UPDATE t1 SET a
= a + -0 WHERE aid = 0; -- 7``, as has every statement that differs from it only in those
two numbers. Text the lexer cannot read with certainty is keyed by its exact bytes:

* any backslash: in an ``E'...'`` string it escapes a quote (``E'\\''`` does not end
  there) and spells characters by number, so a digit is a letter (``E'\\x64'``,
  ``E'\\144'``, ``E'\\u0064'``); the lexer would have to tell E'' strings from others;
* any ``$``: dollar quotes, whose tags must match (``$a1$ x $a2$; DROP …; $a2$ y $a1$``
  is one harmless string, ``$a1$ x $a1$; DROP …; $a1$ y $a1$`` a DROP), bind parameters
  (``$1``) and names holding a ``$``;
* any ``&``: in ``U&"..."`` and ``U&'...'`` an escape spells a character by number
  (``U&"\\0064blink_exec"`` is dblink_exec, ``U&"\\0065blink_exec"`` is not), with an
  escape character UESCAPE may make any character;
* a string, quoted identifier or /* comment still open at the end: PostgreSQL rejects the
  text, and where that construct would have ended is what the lexer cannot see.

A normalized key starts with NUL, which no SQL text holds (the protocol ends a query
string with it), so it never equals an exact key: text keyed exactly shares its key with
nothing else.

Why the key is sound. Let texts A and B share a normalized key K. Each state the lexer
enters is decided by bytes it copies, and a run of digits in code leaves it in code, so it
walks A, B and K through the same states over the same copied bytes: A and B are the same
bytes but for the runs K writes as ``0``, each of which is, in A and in B, some run of
digits in code between the same two bytes, neither an identifier byte. Up to each run,
PostgreSQL splits A and B alike, and is in its initial state there: without a backslash,
``$`` or ``&``, its strings, identifiers and comments end exactly where the lexer's do. A
digit in code belongs to a name, a parameter or a number, and to a name or parameter only
after an identifier byte; so the run is (part of) a numeric literal: it starts one, or
continues one after '.' or an exponent's sign (``1.5``, ``1e-5``). The rules that spell
numeric literals (decinteger, numeric, real and their fail and junk forms) accept, where
they accept a digit, any digit and any number of them, but for the 0 of ``0x``, ``0o``
and ``0b``, which a letter follows; so with the same bytes around the run they match the
same stretch of A and of B, and both go on alike. A and B thus split into the same tokens,
of the same kinds and text, but for numeric literals (ICONST, FCONST), whose values differ
and so may their kind (an integer beyond 32 bits is an FCONST). A run followed by an
identifier byte is kept because there a digit can matter: since PostgreSQL 16, ``0x1F``,
``0o17`` and ``0b1`` are integers, ``7x1F`` an error (in 14, ``7 AS x1F``), ``1_000`` one
integer. Kept, A lexes without error exactly when B does, whatever the server's version.
Bytes >= 0x80 are identifier bytes to PostgreSQL, and in every client encoding the guard
reads (the ASCII-safe ones, encodings.py) a byte below 0x80 is only ever its ASCII
character: no byte of a multibyte character is a quote, a digit or a backslash.

What the key cannot promise is the guard's to keep: a verdict that read a number's value,
or that a number's length could decide (the length limit; a parse error, where the grammar
wants an integer and gets an FCONST), is stored under the exact text only (guard.py).

The contract of ``SessionGuard``: ``_allows`` is true only for a statement whose key the
guard's cache holds as allowed (or for an exempt role), counted as guard.Guard.check
counts a cache hit; ``check`` is guard.Guard.check for the session's role.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.string cimport memcpy


cdef class GuardStats:
    """The guard's counters: checks, cache hits, parse errors, and blocks per rule.
    ``repeats`` are the cache hits a session answered from its memo of the statement shape
    it was last allowed, without a lookup (SessionGuard._allows)."""

    def __init__(self) -> None:
        self.blocked = {}


# -- the verdict-cache key ----------------------------------------------------------------


from cpython.object cimport PyObject


cdef extern from "Python.h":
    # The key is written into a bytes object made at the largest size it can need, then cut
    # to its length in place: these hold it as a plain pointer while it is being cut.
    PyObject* _new_bytes "PyBytes_FromStringAndSize"(const char* v, Py_ssize_t n) except NULL
    int _resize_bytes "_PyBytes_Resize"(PyObject** b, Py_ssize_t n) except -1
    char* _bytes_data "PyBytes_AS_STRING"(PyObject* b)
    void _drop "Py_DECREF"(PyObject* o)


# What a byte means to the key's lexer: in which states it stops the plain copy (_STOP_*),
# and whether it can be part of a name (_IDENT). One table, read once a byte.
cdef enum:
    _STOP_EXACT = 1  # $ \ &: in every state, the text is keyed exactly (_exact)
    _STOP_CODE = 2  # 0-9 ' " - /: a number, a string, an identifier or a comment starts
    _STOP_QUOTE = 4  # ': a '...' string ends, or holds a quote ('')
    _STOP_DQUOTE = 8  # ": a "..." identifier ends, or holds a double quote ("")
    _STOP_LINE = 16  # newline, carriage return: a -- comment ends
    _STOP_BLOCK = 32  # * /: a /* comment ends, or another opens inside it
    _IDENT = 64  # A-Z a-z 0-9 _ $ and every byte >= 0x80, as PostgreSQL reads names

# The lexer's states, each as the stops it watches for.
cdef enum:
    _CODE = _STOP_EXACT | _STOP_CODE
    _QUOTE = _STOP_EXACT | _STOP_QUOTE
    _DQUOTE = _STOP_EXACT | _STOP_DQUOTE
    _LINE = _STOP_EXACT | _STOP_LINE
    _BLOCK = _STOP_EXACT | _STOP_BLOCK

cdef unsigned char _BYTE[256]


cdef inline bint _exact(unsigned char c) noexcept:
    """Whether text holding ``c`` is keyed by its exact bytes (see the module)."""
    return c == c"$" or c == c"\\" or c == c"&"


cdef inline bint _digit(unsigned char c) noexcept:
    return <unsigned char>(c - c"0") < 10


cdef void _init_bytes() noexcept:
    cdef int c
    cdef unsigned char flags
    for c in range(256):
        flags = 0
        if _exact(c):
            flags |= _STOP_EXACT
        if _digit(c) or c == c"'" or c == c'"' or c == c"-" or c == c"/":
            flags |= _STOP_CODE
        if c == c"'":
            flags |= _STOP_QUOTE
        if c == c'"':
            flags |= _STOP_DQUOTE
        if c == c"\n" or c == c"\r":
            flags |= _STOP_LINE
        if c == c"*" or c == c"/":
            flags |= _STOP_BLOCK
        if (
            c"a" <= c <= c"z" or c"A" <= c <= c"Z" or _digit(c) or c == c"_" or c == c"$"
            or c >= 0x80
        ):
            flags |= _IDENT
        _BYTE[c] = flags


_init_bytes()


cdef bytes _verdict_key(const unsigned char* sql, Py_ssize_t size, bytes text, bint* exact):
    """The key of ``sql`` (``size`` bytes), made in one pass; ``exact`` says whether it is
    the text itself. ``text``, when given, holds those same bytes: the exact key, uncopied."""
    # Written into one bytes object of the largest size a key can have (NUL and the text),
    # cut to the key's length at the end.
    cdef PyObject* buf = _new_bytes(NULL, size + 1)
    cdef unsigned char* out = <unsigned char*>_bytes_data(buf)
    cdef Py_ssize_t i = 0, o = 1, j, shift
    cdef Py_ssize_t depth = 0  # of nested /* comments
    cdef unsigned char c = 0, state = _CODE
    cdef bint whole = False  # the key is the text itself
    cdef bytes key
    out[0] = 0
    while True:
        # The bytes that are not this state's stops, copied as they are (one index for
        # both: the fastest loop).
        shift = o - i
        while i < size:
            c = sql[i]
            if _BYTE[c] & state:
                break
            out[i + shift] = c
            i += 1
        o = i + shift
        if i == size:
            # The end: inside a string, an identifier or a /* comment, the text is open.
            whole = state == _QUOTE or state == _DQUOTE or state == _BLOCK
            break
        if _BYTE[c] & _STOP_EXACT:
            whole = True
            break
        if state == _CODE:
            if _digit(c):
                j = i + 1
                while j < size and _digit(sql[j]):
                    j += 1
                if (i == 0 or not _BYTE[sql[i - 1]] & _IDENT) and (
                    j == size or not _BYTE[sql[j]] & _IDENT
                ):
                    out[o] = c"0"  # a number, or the digits of one after '.' or 'e-'
                    o += 1
                else:
                    memcpy(out + o, sql + i, j - i)  # in a name, or before one (0x1F)
                    o += j - i
                i = j
                continue
            out[o] = c
            o += 1
            i += 1
            if c == c"'":
                state = _QUOTE
            elif c == c'"':
                state = _DQUOTE
            elif c == c"-" and i < size and sql[i] == c"-":
                out[o] = c
                o += 1
                i += 1
                state = _LINE
            elif c == c"/" and i < size and sql[i] == c"*":
                out[o] = c"*"
                o += 1
                i += 1
                depth = 1
                state = _BLOCK
        elif state == _QUOTE or state == _DQUOTE:
            # The closing quote, unless doubled: then it is a quote inside, and the string
            # (or identifier) goes on.
            out[o] = c
            o += 1
            i += 1
            if i < size and sql[i] == c:
                out[o] = c
                o += 1
                i += 1
            else:
                state = _CODE
        elif state == _LINE:
            state = _CODE  # the newline itself is copied as code
        else:
            # In a /* comment: */ closes one level, /* opens another, as PostgreSQL nests
            # them; a lone * or / is a character of the comment.
            out[o] = c
            o += 1
            i += 1
            if i < size and c == c"*" and sql[i] == c"/":
                out[o] = c"/"
                o += 1
                i += 1
                depth -= 1
                if depth == 0:
                    state = _CODE
            elif i < size and c == c"/" and sql[i] == c"*":
                out[o] = c"*"
                o += 1
                i += 1
                depth += 1
    exact[0] = whole
    if whole:
        if text is not None:
            _drop(buf)
            return text
        memcpy(out, sql, size)
        o = size
    elif o == size + 1:
        key = <bytes>buf
        _drop(buf)
        return key
    _resize_bytes(&buf, o)  # on failure it frees buf and raises
    key = <bytes>buf
    _drop(buf)
    return key


def verdict_key(bytes sql) -> bytes:
    """The verdict-cache key of one query string's bytes (see the module)."""
    cdef bint exact
    return _verdict_key(
        <const unsigned char*>PyBytes_AS_STRING(sql), PyBytes_GET_SIZE(sql), sql, &exact
    )


# -- the guard as a session's policy ------------------------------------------------------


cdef class SessionGuard(Policy):
    """The compiled half of one session's guard (guard.GuardSession, its Python subclass,
    has the rest): the verdict cache of the session's encoding read from C for a simple
    Query, and a memo of the key last allowed."""

    def __init__(self, guard, role, allowed) -> None:
        self._stats = guard.stats
        self._exempt = role in guard.exempt_roles
        self._allowed = allowed
        self._verdicts = {}

    def use_cache(self, dict verdicts) -> None:
        """Read simple Queries' verdicts from ``verdicts`` (the client encoding changed)."""
        self._verdicts = verdicts
        self._last_allowed = None

    cdef bint _allows(self, const unsigned char* sql, Py_ssize_t size) except -1:
        if self._exempt:
            return True
        cdef bint exact
        key = _verdict_key(sql, size, None, &exact)
        cdef bytes last = self._last_allowed
        if last is not None and key == last:
            # A client repeats its statements with other numbers: the key it was allowed
            # last time needs no lookup (a cached verdict never changes, and this key is
            # not one whose verdict read a constant: that one would not be ALLOWED).
            self._stats.repeats += 1
            return self._cache_hit()
        if self._verdicts.get(key) is not self._allowed:
            return False
        self._last_allowed = key
        return self._cache_hit()

    cdef bint _cache_hit(self) noexcept:
        """Count a check the verdict cache answered, as guard.Guard.verdict counts one."""
        self._stats.checked += 1
        self._stats.cache_hits += 1
        return True
