# cython: language_level=3
"""The one interface through which a statement policy enters the relay.

A client session (_client.ClientCore, client.ClientSession) holds one ``Policy`` for its
whole life and asks it about every Query, Parse, Bind and FunctionCall it forwards; it
knows nothing else of the policy. The firewall's is the guard's, one per session
(engines.firewall._guard.SessionGuard, made by engines.firewall.guard.Guard.session); a proxy
built on the same login, pools, transport and relay without the guard (the sharding router)
gives its sessions a policy of its own, from its ``BaseProxy.policy_for`` (proxy.py).

The contract:

* ``_allows(sql, size)``, from C on the hot path, for a simple Query's text (without its
  NUL) in the read buffer: True when the statement is known to be allowed without any
  Python work, in which case the session forwards it as it came. False means only "not
  known here": the session then asks ``check``. It must never allow what ``check`` would
  not.
* ``check(sql, statement=None) -> verdict``, from Python, for the text of a Query
  (``statement`` None) or a Parse (the client's statement name, b"" unnamed), bytes as they
  came off the wire: a verdict.Verdict (or a subclass). When not allowed, ``rule``, ``message`` and
  ``sqlstate`` are what the client is told in place of the server's answer; ``sql`` is
  text to send instead, ``holds`` makes the session forward nothing more until the
  statement has completed, ``pending`` is a future after which to ask again.
* ``checks_bind(statement)`` (cheap: False lets a Bind go undecoded),
  ``check_bind(statement, values, formats)``, ``forget(statement)`` (the client closed
  it) and ``check_function_call(oid)``: the verdicts on a Bind of a statement checked
  before, and on a fastpath call.

The default knows nothing and decides nothing: policies deny by default.
"""


cdef class Policy:
    """A statement policy, as a client session's relay uses it (see the module)."""

    cdef bint _allows(self, const unsigned char* sql, Py_ssize_t size) except -1:
        return False

    def allows(self, bytes sql) -> bool:
        """``_allows`` from Python (tests): whether ``sql`` is allowed without ``check``."""
        return self._allows(<const unsigned char*><char*>sql, len(sql))

    def check(self, bytes sql, statement=None):
        """The verdict on one query string (see the module for what a verdict holds)."""
        raise NotImplementedError

    def checks_bind(self, bytes statement) -> bool:
        """Whether a Bind of ``statement`` needs ``check_bind`` (its values decoded)."""
        return True

    def check_bind(self, bytes statement, list values, list formats):
        raise NotImplementedError

    def forget(self, bytes statement) -> None:
        pass

    def check_function_call(self, oid):
        raise NotImplementedError
