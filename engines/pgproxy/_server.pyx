# cython: language_level=3, boundscheck=False, wraparound=False
"""A server connection's per-message half, compiled: its state (``ServerCore``, the base
of server.ServerConnection) and the relay of its answers to the attached client
(``ServerRelay``, the base of server.ServerProtocol), whole messages at a time.

The relay forwards what it does not need to understand untouched and watches five kinds
of message: ReadyForQuery (the transaction status, one batch answered, the client told),
ParameterStatus (the server's settings), ErrorResponse (a blocked statement's deliberate
error to rewrite; a failed batch; an idle server speaking up), and the ParseComplete /
CloseComplete answering the proxy's own Parse/Close (dropped). Its client is a
_endpoint.ClientEnd: that module states what the relay asks of it.

The contract with the Python subclass (server.ServerProtocol), whose methods the relay
calls by name for what it meets rarely: ``_note_setting``, ``_replay_failed`` and
``_idle_error``, declared below. Whoever sends the proxy's own SETs ahead of a client's
messages (client.ClientSession._replay) adds one to ``swallow`` per Query; their answers
are dropped up to and including its ReadyForQuery.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE

from engines.pgproxy._endpoint cimport _length


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


cdef class ServerCore(Endpoint):
    """The per-message state of one server connection (server.ServerConnection).

    ``throttled``: reading paused because the client it serves reads slower than it
    answers (_client.ClientCore ``backed_up``); undone when it goes back to the pool.
    ``settings_checked``: the session settings (a client's ``wanted`` dict) this server's
    parameters were last found to match; None once a ParameterStatus changes them.
    Sessions that logged in with the same settings share one such dict (proxy.py), so the
    check is one identity test per transaction instead of a walk over the settings."""

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


cdef class ServerRelay(Receiver):
    """Relays a server's messages to the attached client (server.ServerProtocol)."""

    # -- what the Python subclass provides ------------------------------------------------

    def _note_setting(self, bytes buffer, Py_ssize_t start, Py_ssize_t end) -> bool:
        """The ParameterStatus in ``buffer[start:end]``: note the server's new value (and
        the attached client's ``wanted`` one). False when the relay must stop: the server
        connection is then closed and its client ended."""
        raise NotImplementedError

    def _replay_failed(self, bytes frame) -> None:
        """The server refused one of the proxy's own SETs (ErrorResponse ``frame``): close
        the server and end its client with the reason."""
        raise NotImplementedError

    def _idle_error(self) -> None:
        """An ErrorResponse with no client attached: the server is going away."""
        raise NotImplementedError

    # -- relaying -------------------------------------------------------------------------

    cdef int _received(self, const char* data, Py_ssize_t size) except -1:
        """A read taken in place (_transport.Receiver) in the common case: whole messages
        for a client, none left over from before, nothing among them to act on but one
        ReadyForQuery, the last. Forwarded as it came; anything else, 0: data_received."""
        cdef const unsigned char* p = <const unsigned char*>data
        cdef Py_ssize_t end = 0, frame_end, ready = -1
        cdef unsigned char kind
        cdef ServerCore server
        cdef ServerStatements statements
        cdef bint owed
        cdef ClientEnd client = self.client
        if self.buffer or self.swallow or client is None:
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
        if ready < 0:
            client._emit_raw(data, size)
            return 1
        server.status = status = _status(p[ready + 5])
        statements.ready()
        client._emit_raw(data, size)
        client._server_ready(status)
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
        cdef ClientEnd client = self.client
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
                    client._emit(chunk)
                    client._server_ready(status)
                    client = self.client  # the client may have let the server go
            elif kind == b"S" and not self._note_setting(buffer, end, frame_end):
                return
            elif kind == b"E":
                statements.failed()
                if client is not None and client.rewrites:
                    replacement = client.rewrite_error(buffer[end:frame_end])
                    if replacement is not None:
                        client._emit(memoryview(buffer)[start:end])
                        client._emit(replacement)
                        start = frame_end
                elif client is None:
                    self._idle_error()
            elif (kind == b"1" or kind == b"3") and statements.expected and statements.answered():
                # The answer to the proxy's own Parse/Close: the client never asked, drop it.
                if client is not None:
                    client._emit(memoryview(buffer)[start:end])
                start = frame_end
            end = frame_end
        if client is not None and end > start:
            client._emit(buffer if end - start == size else memoryview(buffer)[start:end])
        self.buffer = buffer[end:] if end < size else b""
