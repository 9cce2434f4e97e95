# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The firewall's per-message hot path, compiled.

Profiled per pgbench transaction, the interpreter was the proxy's whole cost above
PgBouncer's: ~12 µs more user CPU, spread over a dozen small Python calls (frame headers
unpacked into tuples, a deque per latency sample, the pool hand-off, the verdict cache's
key, counters on dataclasses), run with cold caches after every wake-up. Here they are C:
frame headers read in place, the verdict-cache key built in one pass, the pool's idle
stack, the latency histogram, the counters; calls between these classes are C calls.

Each class is the base of the Python class that owns the rest of its job (client.py,
server.py, pool.py, guard.py, metrics.py, prepared.py): login, blocked statements,
prepared-statement renaming, faults, waiting. Anything but the common case is handed
back to those Python methods by name (``pump``, ``_guard``, ``_note_setting``…).

The connection, pool and histogram classes are subclassed in Python, and a ``cpdef``
method called on an instance of a Python subclass first looks itself up by name to find an
override (Cython's dispatch check; its one-slot cache misses whenever the instance differs
from the last one, so on nearly every call with 20 clients). So their hot methods are plain
``cdef`` (``_acquire``, ``_release``…) called from C, each with a ``def`` of the public name
for the Python side. Plain sockets are driven by the proxy's own transport
(_transport.pyx), which the relay writes to with C calls and which hands the relay its
reads in place (``_received``): the common case never becomes a Python object.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.string cimport memcpy

from engines.firewall._transport cimport Receiver, SocketTransport, monotonic

from collections import deque


cdef inline Py_ssize_t _length(const unsigned char* p) noexcept:
    """A message's Int32 length (big-endian; it counts itself, not the type byte)."""
    return (<Py_ssize_t>p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]


cdef inline bytes _as_bytes(data):
    return data if type(data) is bytes else bytes(data)


cdef inline str _status(unsigned char c):
    # ReadyForQuery's status byte as the interned one-letter strings the Python side compares.
    if c == b"I":
        return "I"
    if c == b"T":
        return "T"
    if c == b"E":
        return "E"
    return chr(c)


# -- writing ------------------------------------------------------------------------------


cdef class Endpoint(Receiver):
    """One end of the proxy (a client session or a server connection) and its transport.

    A plain socket's transport is the proxy's own (_transport.SocketTransport), written to
    with a C call that goes straight to send(2) when nothing is queued; a TLS one is the
    event loop's, written to through its write(). A Receiver because a client session is
    also its transport's protocol, taking reads in place; a server connection is not (its
    ServerRelay is) and keeps Receiver's default, which declines them."""

    cdef object _transport
    cdef SocketTransport _own
    cdef object _write

    @property
    def transport(self):
        return self._transport

    @transport.setter
    def transport(self, transport) -> None:
        self._transport = transport
        self._own = transport if type(transport) is SocketTransport else None
        self._write = transport.write

    cdef int _emit(self, data) except -1:
        if self._own is not None:
            return self._own._write(data)
        self._write(data)
        return 0

    cdef int _emit_raw(self, const char* data, Py_ssize_t size) except -1:
        if self._own is not None:
            return self._own._write_raw(data, size)
        self._write(PyBytes_FromStringAndSize(data, size))
        return 0


# -- figures ------------------------------------------------------------------------------

cdef enum:
    MAX_BUCKETS = 64


cdef class LatencyCounts:
    """Round trips counted by latency bucket (upper bounds in µs); metrics.LatencyHistogram
    adds percentiles and snapshots."""

    cdef double _bounds[MAX_BUCKETS]
    cdef long long _counts[MAX_BUCKETS + 1]
    cdef int _nbounds
    cdef public long long total
    cdef public double sum_us

    def __init__(self, bounds) -> None:
        bounds = sorted(bounds)
        if len(bounds) > MAX_BUCKETS:
            raise ValueError(f"at most {MAX_BUCKETS} bucket bounds")
        self._nbounds = len(bounds)
        for i, bound in enumerate(bounds):
            self._bounds[i] = bound
        for i in range(MAX_BUCKETS + 1):
            self._counts[i] = 0
        self.total = 0
        self.sum_us = 0.0

    def observe(self, double seconds) -> None:
        self._observe(seconds)

    cdef void _observe(self, double seconds) noexcept:
        cdef double micros = seconds * 1e6
        cdef int i = 0
        # The first bound >= micros (bisect_left); a linear scan beats a bisection at ~20.
        while i < self._nbounds and self._bounds[i] < micros:
            i += 1
        self._counts[i] += 1
        self.total += 1
        self.sum_us += micros

    @property
    def counts(self) -> list:
        """One count per bound, then the overflow bucket."""
        return [self._counts[i] for i in range(self._nbounds + 1)]


cdef class GuardStats:
    """The guard's counters: checks, cache hits, parse errors, and blocks per rule."""

    cdef public long long checked
    cdef public long long cache_hits
    # Cache hits a session answered from its memo of the statement shape it was last
    # allowed, without a lookup (ClientCore._allowed_by_cache); a part of cache_hits.
    cdef public long long repeats
    cdef public long long parse_errors
    cdef public dict blocked

    def __init__(self) -> None:
        self.blocked = {}


cdef class PoolStats:
    """A pool's counters for SHOW POOLS and the metrics endpoint."""

    cdef public long long acquired
    cdef public long long waited
    cdef public long long timeouts
    cdef public long long connects
    cdef public long long connect_failures
    cdef public long long discarded
    cdef public double wait_seconds


# -- what a server connection has prepared (prepared.py explains why) ----------------------


@cython.final
cdef class Expectation:
    """A ParseComplete ('1') or CloseComplete ('3') the server owes, in order."""

    cdef public long long batch  # how many Syncs/Queries went before it: its Sync batch
    cdef public bytes kind
    cdef public bint injected  # the proxy's own message: drop the answer, do not relay it
    cdef public object statement  # the server-side name a Parse prepares, or None

    def __init__(self, long long batch, bytes kind, bint injected, statement=None) -> None:
        self.batch = batch
        self.kind = kind
        self.injected = injected
        self.statement = statement


@cython.final
cdef class ServerStatements:
    """What one server connection has prepared and which answers it still owes."""

    cdef public set prepared
    cdef public object expected  # deque[Expectation]
    cdef public long long batches_sent
    cdef public long long batches_done

    def __init__(self) -> None:
        self.prepared = set()
        self.expected = deque()

    cpdef void expect(self, bytes kind, bint injected, statement=None):
        self.expected.append(Expectation(self.batches_sent, kind, injected, statement))

    cpdef bint answered(self):
        """A ParseComplete/CloseComplete arrived: True if the proxy asked for it (drop it)."""
        if not self.expected:
            return False
        return (<Expectation>self.expected.popleft()).injected

    cpdef void failed(self):
        """An ErrorResponse: the server skips the rest of this batch, answers included."""
        self._forget_through(self.batches_done)  # the batch being answered

    cpdef void ready(self):
        """A ReadyForQuery: one batch is over, and nothing of it can still be answered."""
        self.batches_done += 1
        if self.expected:
            # Batches are numbered from 0, so the one just finished is batches_done - 1; the
            # expectations of later batches (pipelined already) stay.
            self._forget_through(self.batches_done - 1)

    cdef void _forget_through(self, long long batch):
        cdef Expectation skipped
        expected = self.expected
        while expected and (<Expectation>expected[0]).batch <= batch:
            skipped = expected.popleft()
            if skipped.statement is not None:
                self.prepared.discard(skipped.statement)


# -- server connections -------------------------------------------------------------------


cdef class ServerCore(Endpoint):
    """The per-message state of one server connection (server.ServerConnection)."""

    cdef public object protocol  # a ServerRelay once logged in
    cdef public dict parameters
    cdef public ServerStatements statements
    cdef public str status  # transaction status from the last ReadyForQuery
    cdef public double created
    cdef public double last_used
    cdef public bint closed
    # Reading paused because the client it serves reads slower than it answers (ClientCore
    # ``backed_up``); undone when it goes back to the pool.
    cdef public bint throttled
    # The session settings (a ClientSession's ``wanted`` dict) this server's parameters were
    # last found to match; None once a ParameterStatus changes them. Sessions that logged in
    # with the same settings share one such dict (proxy.py), so the check is one identity
    # test per transaction instead of a walk over the settings.
    cdef public object settings_checked

    def attach(self, client) -> None:
        (<ServerRelay>self.protocol).client = client

    cdef int _detach(self, double now) except -1:
        """Back from a client at ``now`` (monotonic): the idle timeout counts from here."""
        if self.protocol is not None:
            (<ServerRelay>self.protocol).client = None
        if self.throttled:
            self._unthrottle()
        self.last_used = now
        return 0

    def throttle(self) -> None:
        """Stop reading the server's answers until unthrottle(): its client is backed up."""
        if not self.throttled and not self.closed:
            self.throttled = True
            self._transport.pause_reading()

    def unthrottle(self) -> None:
        self._unthrottle()

    cdef int _unthrottle(self) except -1:
        if self.throttled:
            self.throttled = False
            if not self.closed:
                self._transport.resume_reading()
        return 0

    def write(self, data) -> None:
        self._emit(data)


cdef inline int _send(client, chunk) except -1:
    """Write to a client: a session, or a stand-in's transport."""
    if isinstance(client, ClientCore):
        (<ClientCore>client)._emit(chunk)
    else:
        client.transport.write(chunk)
    return 0


cdef class ServerRelay(Receiver):
    """Relays a server's messages to the attached client (server.ServerProtocol), whole
    messages at a time, watching ReadyForQuery, ParameterStatus, errors and the answers to
    the proxy's own Parse/Close."""

    cdef public ServerCore server
    cdef public object client  # a ClientCore, or a stand-in while a session is reset
    cdef public int swallow  # answers to the proxy's own SETs still to drop, up to their Z
    cdef public bytes buffer
    cdef public object on_lost

    cdef int _received(self, const char* data, Py_ssize_t size) except -1:
        """A read taken in place (_transport.Receiver) in the common case: whole messages
        for a session, none left over from before, nothing among them to act on but one
        ReadyForQuery, the last. Forwarded as it came; anything else, 0: data_received."""
        cdef const unsigned char* p = <const unsigned char*>data
        cdef Py_ssize_t end = 0, frame_end, ready = -1
        cdef unsigned char kind
        cdef ServerCore server
        cdef ServerStatements statements
        cdef bint owed
        cdef ClientCore session
        if self.buffer or self.swallow or not isinstance(self.client, ClientCore):
            return 0
        server = self.server
        statements = server.statements
        owed = len(statements.expected) > 0
        while end < size:
            if size - end < 5 or ready >= 0:
                return 0  # a partial header, or something after the ReadyForQuery
            kind = p[end]
            frame_end = end + 1 + _length(p + end + 1)
            if frame_end > size:
                return 0
            if kind == b"Z":
                if frame_end - end != 6:
                    return 0  # malformed: data_received passes it on as it is
                ready = end
            elif kind == b"S" or kind == b"E" or (owed and (kind == b"1" or kind == b"3")):
                return 0
            end = frame_end
        session = <ClientCore>self.client
        if ready < 0:
            session._emit_raw(data, size)
            return 1
        server.status = status = _status(p[ready + 5])
        statements.ready()
        session._emit_raw(data, size)
        session._server_ready(status)
        return 1

    def data_received(self, data) -> None:
        # Work on an immutable bytes object: transports may hold on to what we write until
        # the socket takes it, so slices of it must never change under them. In the common
        # case (no partial message left over) this is the received object itself, no copy,
        # and a response that ends in its ReadyForQuery is written on in one piece.
        cdef bytes buffer = self.buffer + data if self.buffer else _as_bytes(data)
        cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(buffer)
        cdef Py_ssize_t size = PyBytes_GET_SIZE(buffer)
        cdef Py_ssize_t start = 0, end = 0, frame_end
        cdef unsigned char kind
        cdef ServerCore server = self.server
        cdef ServerStatements statements = server.statements
        cdef str status
        client = self.client
        while size - end >= 5:
            kind = p[end]
            frame_end = end + 1 + _length(p + end + 1)
            if frame_end > size:
                break
            if self.swallow:
                # The answer to the SETs the proxy slipped in before the client's messages
                # (ClientSession._replay): nothing the client asked for, so nothing is
                # passed on, but the server's settings are noted all the same.
                if kind == b"Z":
                    self.swallow -= 1
                    server.status = _status(p[end + 5])
                    statements.ready()
                elif kind == b"S" and not self._note_setting(buffer, end, frame_end):
                    return
                elif kind == b"E":
                    # A setting the client asked for at login that the server refuses (an
                    # unknown TimeZone, say): PostgreSQL would have refused the login, so the
                    # session ends here with the server's reason, never half-configured.
                    self._replay_failed(buffer[end:frame_end])
                    return
                start = end = frame_end
                continue
            if kind == b"Z":
                server.status = status = _status(p[end + 5])
                statements.ready()
                if client is not None:
                    chunk = buffer if start == 0 and frame_end == size else (
                        memoryview(buffer)[start:frame_end])
                    start = frame_end
                    _send(client, chunk)
                    if isinstance(client, ClientCore):
                        (<ClientCore>client)._server_ready(status)
                    else:
                        client.server_ready(status)
                    client = self.client  # the client may have let the server go
            elif kind == b"S" and not self._note_setting(buffer, end, frame_end):
                return
            elif kind == b"E":
                statements.failed()
                if client is not None and client.rewrites:
                    replacement = client.rewrite_error(buffer[end:frame_end])
                    if replacement is not None:
                        _send(client, memoryview(buffer)[start:end])
                        _send(client, replacement)
                        start = frame_end
                elif client is None:
                    self._idle_error()
            elif (kind == b"1" or kind == b"3") and statements.expected and statements.answered():
                # The answer to the proxy's own Parse/Close: the client never asked, drop it.
                if client is not None:
                    _send(client, memoryview(buffer)[start:end])
                start = frame_end
            end = frame_end
        if client is not None and end > start:
            _send(client, buffer if end - start == size else memoryview(buffer)[start:end])
        self.buffer = buffer[end:] if end < size else b""


# -- pools --------------------------------------------------------------------------------


cdef class PoolCore:
    """A pool's lending and taking back (pool.Pool): an idle stack, most recently used on
    top, and the set of connections out with clients."""

    cdef public list idle
    cdef public set active
    cdef public object waiters  # deque of futures, in arrival order
    cdef public PoolStats stats
    cdef public double server_lifetime
    cdef public double server_idle_timeout
    cdef public object budget  # pool.DatabaseBudget: the database's cap across its pools
    cdef public bint shares_budget  # that cap is set

    def _expired(self, ServerCore server, double now) -> bool:
        return self._is_expired(server, now)

    cdef bint _is_expired(self, ServerCore server, double now):
        return (
            server.closed
            or now - server.created > self.server_lifetime
            or now - server.last_used > self.server_idle_timeout
        )

    def try_acquire(self):
        """An idle server connection right now, or None: the hot path, with no task switch."""
        return self._acquire()

    cdef ServerCore _acquire(self):
        cdef ServerCore server
        cdef double now
        idle = self.idle
        if not idle:
            return None
        now = monotonic()
        while idle:
            server = idle.pop()  # most recently used first
            if self._is_expired(server, now):
                self._discard(server)
                continue
            self.active.add(server)
            self.stats.acquired += 1
            return server
        return None

    def release(self, ServerCore server) -> None:
        """Take a server back; only a live connection idle outside a transaction is kept."""
        self._release(server)

    cdef int _release(self, ServerCore server) except -1:
        cdef double now = monotonic()
        self.active.discard(server)
        server._detach(now)
        if server.closed or server.status != "I" or self._is_expired(server, now):
            self._discard(server)
            self._fill_waiter_slot()
            return 0
        if self.waiters and self._hand_to_waiter(server):
            return 0
        if self.shares_budget and self.budget.give_away(server, self):
            return 0
        self.idle.append(server)
        return 0


# -- client sessions ----------------------------------------------------------------------

cdef enum:
    SENT_RING = 64  # send times kept for round-trip latency: a deeper pipeline goes unmeasured


cdef class ClientCore(Endpoint):
    """The per-message path of one client session (client.ClientSession): a whole simple
    Query checked against the verdict cache and forwarded as it came, and the hand-back of
    the server at the end of each transaction."""

    cdef public object proxy
    cdef public PoolCore pool
    cdef public str user
    cdef public ServerCore server
    cdef public bytes buffer
    cdef public long long expected_ready  # ReadyForQuery messages owed for Query/Sync sent on
    cdef public dict rewrites
    cdef public object acquiring
    cdef public bint closed
    cdef public bint session_mode
    cdef public object renamer
    cdef public dict wanted  # the tracked settings this session should see
    # More than the transport's high-water mark is waiting to go to the client: the servers
    # it holds are not read until it drains (client.ClientSession.pause_writing).
    cdef public bint backed_up
    cdef dict _verdicts
    cdef bytes _last_allowed  # the verdict-cache key last found allowed (not an exact one)
    cdef object _allowed
    cdef GuardStats _guard_stats
    cdef bint _exempt
    cdef LatencyCounts _latency
    # Send times of consecutive batches, for round-trip latency: the batch numbered
    # _sent_first is the oldest kept; replies come back in batch order.
    cdef double _sent[SENT_RING]
    cdef unsigned long long _sent_first, _sent_count, _sends, _replies

    def bind(self, guard, LatencyCounts latency, allowed) -> None:
        """Wire the compiled path to the proxy's guard (its verdict cache and the verdict
        that means allowed) and latency histogram."""
        self._verdicts = guard._cache
        self._guard_stats = guard.stats
        self._exempt = self.user in guard.exempt_roles
        self._allowed = allowed
        self._latency = latency

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
        self.buffer = self.buffer + data if self.buffer else _as_bytes(data)
        if self.acquiring is None:
            self.pump()

    cdef bint _forward_query(self, const unsigned char* p, Py_ssize_t size, bytes data) except -1:
        """The hot path: ``p`` is exactly one simple Query (pgbench, psql, most drivers'
        plain statements arrive so) and a server is at hand. Checks and forwards it as it
        came, no frame scan, no copy; False leaves anything else to pump(). Without
        ``data`` (a read in place) only a statement the verdict cache allows goes on."""
        if size < 6 or p[0] != b"Q" or _length(p + 1) + 1 != size:
            return False
        cdef ServerCore server = self.server
        if server is None:
            server = self.pool._acquire()
            if server is None:
                return False
            self._attach(server)
        if p[size - 1] == 0 and self._allowed_by_cache(p + 5, size - 6):
            self._sent_batch()
            server._emit_raw(<const char*>p, size)
            return True
        if data is None:
            return False  # the guard reads the message as bytes: data_received has them
        replacement = self._guard(b"Q", data)  # a miss, a block, or malformed
        if self.closed:
            return True
        self._sent_batch()
        server._emit(data if replacement is None else replacement)
        return True

    cdef bint _allowed_by_cache(self, const unsigned char* sql, Py_ssize_t size) except -1:
        """Whether the verdict cache already allows this statement text (guard.Guard.check
        keys it the same way: digits as 0, the exact bytes when a ``$`` appears)."""
        if self._exempt:
            return True
        cdef Py_ssize_t i
        cdef unsigned char c
        cdef bint exact = False
        cdef bytes last = self._last_allowed
        cdef const unsigned char* seen
        if last is not None and PyBytes_GET_SIZE(last) == size:
            # The key this session was last allowed: a client repeats its statements with
            # other numbers, and a verdict depends on the key alone. That key is never an
            # exact one, so it holds no ``$`` and text with one never matches it here.
            seen = <const unsigned char*>PyBytes_AS_STRING(last)
            for i in range(size):
                c = sql[i]
                if c"0" <= c <= c"9":
                    c = c"0"
                if c != seen[i]:
                    break
            else:
                self._guard_stats.repeats += 1
                return self._cache_hit()
        cdef bytes key = PyBytes_FromStringAndSize(NULL, size)
        cdef char* out = PyBytes_AS_STRING(key)
        for i in range(size):
            c = sql[i]
            if c == c"$":
                memcpy(out, sql, size)
                exact = True
                break
            out[i] = c"0" if c"0" <= c <= c"9" else c
        if self._verdicts.get(key) is not self._allowed:
            return False
        if not exact:
            self._last_allowed = key
        return self._cache_hit()

    cdef inline bint _cache_hit(self) noexcept:
        """Count a check the verdict cache answered, as Guard.check counts one."""
        self._guard_stats.checked += 1
        self._guard_stats.cache_hits += 1
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
        self._replies += 1
        if self._sent_count and self._sent_first == batch:
            self._latency._observe(monotonic() - self._sent[batch % SENT_RING])
            self._sent_first += 1
            self._sent_count -= 1
        self.expected_ready -= 1
        if self.expected_ready > 0:
            return 0
        self.expected_ready = 0
        if self.rewrites:
            self.rewrites.clear()  # a blocked statement skipped after an earlier error
        cdef ServerCore server = self.server
        if not self.session_mode and status == "I" and server is not None:
            self.server = None
            self.pool._release(server)
            if PyBytes_GET_SIZE(self.buffer) >= 5:
                self.pump()
        return 0
