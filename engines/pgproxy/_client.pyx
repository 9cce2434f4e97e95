# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""A client session's per-message path, compiled (``ClientCore``, the base of
client.ClientSession): a whole simple Query checked by the session's policy and
forwarded as it came, and the hand-back of the server at the end of each transaction.

Profiled per pgbench transaction, the interpreter was the proxy's whole cost above
PgBouncer's: ~12 µs more user CPU, spread over a dozen small Python calls (frame headers
unpacked into tuples, a deque per latency sample, the pool hand-off, the verdict cache's
key, counters on dataclasses), run with cold caches after every wake-up. So the common
case is C from the read to the write: the read taken in place (_transport.Receiver), the
policy asked (_policy.Policy ``_allows``), a server borrowed and given back (_pool), the
latency counted (_metrics), all C calls between compiled classes.

Why the hot methods are plain ``cdef``: the session, pool, server and histogram classes
are subclassed in Python, and a ``cpdef`` method called on an instance of a Python
subclass first looks itself up by name to find an override (Cython's dispatch check; its
one-slot cache misses whenever the instance differs from the last one, so on nearly every
call with 20 clients). So ``_acquire``, ``_release``, ``_attach``… are ``cdef``, each
with a ``def`` of the public name for the Python side.

The session's collaborators, set by its Python subclass: ``pool`` (it borrows from),
``policy`` (it enforces), ``latency`` (it counts round trips in). The contract with the
subclass, whose methods the compiled path calls by name for anything but the common case:
``pump``, ``_guard`` and ``_replay``, declared below (and, as a ClientEnd, what a
server's relay asks: _endpoint.pyx).

A server goes back to the pool only at a ReadyForQuery, idle, that answers the last
message the client sent: not while extended-protocol messages went on after the last Sync
(``unsynced``: the server may be inside the implicit transaction the first of them opened,
whatever that ReadyForQuery's status says). The hot path takes a Query only when nothing
of the sort is going on: ``detour``, one field, says why not (its bits: _client.pxd).
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE

from engines.pgproxy._endpoint cimport _length
from engines.pgproxy._server cimport ServerRelay
from engines.pgproxy._transport cimport monotonic

# asyncio's default write-buffer high-water mark, which the proxy's own transport keeps too:
# past it a server connection's transport has paused its client's reading (back-pressure).
cdef Py_ssize_t WRITE_HIGH_WATER = 64 * 1024


cdef class ClientCore(ClientEnd):
    """The per-message path of one client session (client.ClientSession).

    ``expected_ready`` counts the ReadyForQuery messages owed for the Queries and Syncs
    sent on; ``backed_up``, more than the transport's high-water mark is waiting to go to
    the client: the servers it holds are not read until it drains (ClientSession.
    pause_writing). Send times of consecutive batches are kept for round-trip latency:
    the batch numbered ``_sent_first`` is the oldest kept; replies come back in order."""

    # -- what the Python subclass provides ------------------------------------------------

    def pump(self) -> None:
        """Forward every complete message in ``buffer``, borrowing a server first if
        needed; anything the compiled path leaves (``buffer`` is then what is left)."""
        raise NotImplementedError

    def _guard(self, bytes kind, bytes frame):
        """Ask the policy about a whole Query ``frame`` the hot path is about to send: None
        to send it as it came, else the bytes to send instead (b"" when the session has
        been ended). When the verdict is not ready it sets ``pending`` (nothing is sent:
        the frame waits in ``buffer``); when the statement holds, ``holding``."""
        raise NotImplementedError

    def _replay(self, ServerCore server) -> None:
        """Bring ``server``'s tracked settings in line with ``wanted`` before this
        session's messages go on (answers dropped by the relay's ``swallow``)."""
        raise NotImplementedError

    # -- what keeps a Query off the hot path (``detour``) ---------------------------------

    cdef void _flag(self, unsigned int bit, bint on) noexcept:
        if on:
            self.detour |= bit
        else:
            self.detour &= ~bit

    @property
    def unsynced(self) -> bool:
        """Extended-protocol messages (Parse, Bind, Describe, Execute, Close, Flush) went on
        since the last Sync, Query or FunctionCall: the server may be inside the implicit
        transaction they opened, so it stays with this session, and goes if it leaves."""
        return self.detour & UNSYNCED != 0

    @unsynced.setter
    def unsynced(self, bint value) -> None:
        self._flag(UNSYNCED, value)

    @property
    def holding(self) -> bool:
        """A statement that may change how the server reads what follows (a SET of
        client_encoding) went on: nothing more does until every ReadyForQuery owed has
        come (``expected_ready`` back to 0)."""
        return self.detour & HOLDING != 0

    @holding.setter
    def holding(self, bint value) -> None:
        self._flag(HOLDING, value)

    @property
    def pending(self):
        """The future of a verdict not decided yet; the message it is for, and everything
        after it, wait in ``buffer`` until it is done. None when there is none."""
        return self._pending

    @pending.setter
    def pending(self, future) -> None:
        self._pending = future
        self._flag(PENDING, future is not None)

    @property
    def has_unnamed(self) -> bool:
        """The client has an unnamed statement (renamer.unnamed), which its next Query
        drops: pump() does that, so the hot path leaves such a Query to it."""
        return self.detour & UNNAMED != 0

    @has_unnamed.setter
    def has_unnamed(self, bint value) -> None:
        self._flag(UNNAMED, value)

    def resume(self) -> None:
        """Read the client again after a hold or a verdict (_resume_reading)."""
        self._resume_reading()

    cdef int _resume_reading(self) except -1:
        # Unless the server it holds is still taking an earlier upload in: past the
        # high-water mark its transport has paused this client, and its resume_writing
        # will resume it.
        cdef ServerCore server = self.server
        if self.closed:
            return 0
        if server is not None and server._transport.get_write_buffer_size() > WRITE_HIGH_WATER:
            return 0
        self._transport.resume_reading()
        return 0

    # -- client to server -----------------------------------------------------------------

    cdef int _received(self, const char* data, Py_ssize_t size) except -1:
        """A read taken in place (_transport.Receiver): the hot path without a bytes object
        when it applies, else 0 (a server it borrowed on the way stays attached)."""
        if self.buffer or self.acquiring is not None:
            return 0
        return self._forward_query(<const unsigned char*>data, size, None)

    def data_received(self, data) -> None:
        if (
            not self.buffer
            and self.acquiring is None
            and type(data) is bytes
            and self._forward_query(
                <const unsigned char*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), data
            )
        ):
            return
        self.buffer = self.buffer + data if self.buffer else (
            data if type(data) is bytes else bytes(data))
        if self.acquiring is None:
            self.pump()

    cdef bint _forward_query(self, const unsigned char* p, Py_ssize_t size, bytes data) except -1:
        """The hot path: ``p`` is exactly one simple Query (pgbench, psql, most drivers'
        plain statements arrive so) and a server is at hand. Checks and forwards it as it
        came, no frame scan, no copy; False leaves anything else to pump(), and everything
        while ``detour`` is set. Without ``data`` (a read in place) only a statement the
        policy allows outright goes on."""
        if size < 6 or p[0] != b"Q" or _length(p + 1) + 1 != size or self.detour:
            return False
        cdef ServerCore server = self.server
        if server is None:
            server = self.pool._acquire()
            if server is None:
                return False
            self._attach(server)
        if p[size - 1] == 0 and self.policy is not None and self.policy._allows(p + 5, size - 6):
            self._sent_batch()
            server.statements.unnamed_owner = 0  # a Query drops the unnamed statement
            server._emit_raw(<const char*>p, size)
            return True
        if data is None:
            return False  # the policy reads the message as bytes: data_received has them
        replacement = self._guard(b"Q", data)  # not allowed outright, or malformed
        if self.closed:
            return True
        if self.detour & PENDING:
            return False  # data_received keeps it in the buffer, where pump() finds it
        self._sent_batch()
        server.statements.unnamed_owner = 0
        server._emit(data if replacement is None else replacement)
        return True

    def sent_batch(self) -> None:
        """A Query or Sync went to the server: one more ReadyForQuery is owed."""
        self._sent_batch()

    cdef void _sent_batch(self) noexcept:
        cdef unsigned long long batch = self._sends
        self._sends += 1
        self.expected_ready += 1
        if self._sent_count == 0:
            self._sent_first = batch
        if self._sent_count < SENT_RING and self._sent_first + self._sent_count == batch:
            self._sent[batch % SENT_RING] = monotonic()
            self._sent_count += 1
        self.server.statements.batches_sent += 1

    # -- borrowing and giving back --------------------------------------------------------

    def attach(self, ServerCore server) -> None:
        self._attach(server)

    cdef int _attach(self, ServerCore server) except -1:
        self.server = server
        (<ServerRelay>server.protocol).client = self
        if self.backed_up:
            server.throttle()
        wanted = self.wanted
        if wanted and server.settings_checked is not wanted:
            parameters = server.parameters
            for name, value in wanted.items():
                if parameters.get(name) != value:
                    self._replay(server)  # its answers bring _note_setting, which resets the mark
                    break
            else:
                server.settings_checked = wanted
        return 0

    def server_ready(self, str status) -> None:
        self._server_ready(status)

    cdef int _server_ready(self, str status) except -1:
        cdef unsigned long long batch = self._replies
        cdef ServerCore server
        cdef bint resume = False
        self._replies += 1
        if self._sent_count and self._sent_first == batch:
            self.latency._observe(monotonic() - self._sent[batch % SENT_RING])
            self._sent_first += 1
            self._sent_count -= 1
        self.expected_ready -= 1
        if self.expected_ready > 0:
            return 0
        self.expected_ready = 0
        if self.detour & UNSYNCED:
            # Every batch sent is answered, but extended-protocol messages went on after the
            # last Sync: the server may be inside the implicit transaction the first of them
            # opened (the status is the one as of that Sync), and the errors of statements
            # blocked among them are still to come. Server and rewrites stay.
            return 0
        if self.rewrites:
            self.rewrites.clear()  # a blocked statement skipped after an earlier error
        if self.detour & HOLDING:
            self.detour &= ~HOLDING  # the held statement is complete: what follows may go
            self._resume_reading()
            resume = True
        server = self.server
        if not self.session_mode and status == "I" and server is not None:
            self.server = None
            self.pool._release(server)
            resume = True
        if resume and PyBytes_GET_SIZE(self.buffer) >= 5:
            self.pump()
        return 0
