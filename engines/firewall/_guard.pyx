# cython: language_level=3, boundscheck=False, wraparound=False
"""The guard's compiled half: its counters, the one definition of the verdict-cache key,
and the guard as one session's relay asks it (``SessionGuard``, a _policy.Policy).

The verdict-cache key is a security invariant: two statements with one key get one
verdict. guard.Guard.check keys the cache with ``verdict_key`` and a session's hot path
(``SessionGuard._allows``) looks it up with the same C function, so the two cannot drift.

Why the key is sound: verdicts are cached under the statement's bytes with every ASCII
digit turned into 0, so ``... WHERE aid = 4711`` and ``... WHERE aid = 8150`` share one
parse. Swapping one digit for another never changes how PostgreSQL's lexer splits a
statement, or any name a rule looks for (none holds a digit), except where a digit is
part of something that must match or that spells another character:

* dollar-quote tags, which must match: ``$a1$ x $a2$; DROP …; $a2$ y $a1$`` is one
  harmless string, the same with every tag ``$a1$`` is three statements;
* escapes that spell characters by number, so a digit is a letter of a name: ``\\0064``
  in a ``U&"..."`` identifier (any escape character, chosen by UESCAPE: ``U&`` always
  precedes it) or ``\\x64``, ``\\144``, ``\\u0064`` in an ``E'...'`` string.
  ``U&"\\0064blink_exec"`` is dblink_exec; ``U&"\\0065blink_exec"`` is not.

So any text holding a ``$``, a backslash or an ``&`` is cached under its exact bytes
(prepared statements' $1 parameters too, whose text repeats anyway). Numbers, plain
identifiers (t1, int4) and the insides of literals then differ only in values and in
names no rule depends on; a setting is only accepted as "on" spelled as a word
(guard.py). guard.Guard caches a blocked verdict only under a key equal to the
statement itself, since its message names the relation.

The contract of ``SessionGuard``: ``_allows`` is true only for a statement whose key the
guard's cache holds as allowed (or for an exempt role), counted as guard.Guard.check
counts a cache hit; ``check`` is guard.Guard.check for the session's role.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.string cimport memcpy


cdef class GuardStats:
    """The guard's counters: checks, cache hits, parse errors, and blocks per rule.
    ``repeats`` are the cache hits a session answered from its memo of the statement shape
    it was last allowed, without a lookup (SessionGuard._allows)."""

    def __init__(self) -> None:
        self.blocked = {}


# -- the verdict-cache key ----------------------------------------------------------------


cdef inline bint _exact(unsigned char c) noexcept:
    """Whether text holding ``c`` is keyed by its exact bytes (see the module)."""
    return c == c"$" or c == c"\\" or c == c"&"


cdef inline unsigned char _shape(unsigned char c) noexcept:
    """A byte of a key that is not exact: every ASCII digit reads as 0."""
    return c"0" if c"0" <= c <= c"9" else c


cdef bytes _verdict_key(const unsigned char* sql, Py_ssize_t size, bytes text, bint* exact):
    """The key of ``sql`` (``size`` bytes), made in one pass; ``exact`` says whether it is
    the text itself. ``text``, when given, holds those same bytes: the exact key, uncopied."""
    cdef Py_ssize_t i
    cdef unsigned char c
    cdef bytes key = PyBytes_FromStringAndSize(NULL, size)
    cdef unsigned char* out = <unsigned char*>PyBytes_AS_STRING(key)
    exact[0] = False
    for i in range(size):
        c = sql[i]
        if _exact(c):
            exact[0] = True
            if text is not None:
                return text
            memcpy(out, sql, size)
            return key
        out[i] = _shape(c)
    return key


def verdict_key(bytes sql) -> bytes:
    """The verdict-cache key of one query string's bytes (see the module)."""
    cdef bint exact
    return _verdict_key(
        <const unsigned char*>PyBytes_AS_STRING(sql), PyBytes_GET_SIZE(sql), sql, &exact
    )


# -- the guard as a session's policy ------------------------------------------------------


@cython.final
cdef class SessionGuard(Policy):
    """The guard's policy for the sessions of one role (guard.Guard.session): the verdict
    cache read from C for a simple Query, and a memo of the key last allowed."""

    def __init__(self, guard, role, allowed) -> None:
        self._guard = guard
        self._role = role
        self._verdicts = guard._cache
        self._stats = guard.stats
        self._exempt = role in guard.exempt_roles
        self._allowed = allowed

    def check(self, bytes sql):
        return self._guard.check(sql, role=self._role)

    cdef bint _allows(self, const unsigned char* sql, Py_ssize_t size) except -1:
        if self._exempt:
            return True
        cdef Py_ssize_t i
        cdef bint exact
        cdef bytes last = self._last_allowed
        cdef const unsigned char* seen
        if last is not None and PyBytes_GET_SIZE(last) == size:
            # The key this session was last allowed: a client repeats its statements with
            # other numbers, and a verdict depends on the key alone. That key is never an
            # exact one, so it holds no byte of _exact, and text with one never matches it.
            seen = <const unsigned char*>PyBytes_AS_STRING(last)
            for i in range(size):
                if _shape(sql[i]) != seen[i]:
                    break
            else:
                self._stats.repeats += 1
                return self._cache_hit()
        key = _verdict_key(sql, size, None, &exact)
        if self._verdicts.get(key) is not self._allowed:
            return False
        if not exact:
            self._last_allowed = key
        return self._cache_hit()

    cdef bint _cache_hit(self) noexcept:
        """Count a check the verdict cache answered, as guard.Guard.check counts one."""
        self._stats.checked += 1
        self._stats.cache_hits += 1
        return True
