# cython: language_level=3, boundscheck=False, wraparound=False
"""The two ends of the relay: what a client session and a server connection share (their
transport, written to in C), and the contract between a server's relay and the client it
serves (``ClientEnd``).

Both ends are compiled bases of Python classes (client.ClientSession, server.
ServerConnection); this module is what lets _server and _client cimport each other's
halves without a cycle: a server's relay (_server.ServerRelay) knows its client only as a
``ClientEnd``, and the session (_client.ClientCore) is one.

The contract of a ``ClientEnd``, that is, of anything attached to a server connection (a
client session, or a stand-in such as the one that waits for a released session server's
DISCARD ALL), as ServerRelay and server.ServerProtocol use it:

* ``transport``: where the server's answers go (``_emit``/``_emit_raw``), whole messages;
* ``_server_ready(status)`` after each ReadyForQuery has been passed on (compiled clients
  override it; the default calls the Python ``server_ready``);
* ``rewrites``: a non-empty dict when ErrorResponses may need ``rewrite_error``;
* ``wanted``: the tracked settings it should see, which ParameterStatus updates (a copy);
* ``server_lost(server)`` when the server connection dies under it, ``fatal(sqlstate,
  message)`` when the server may no longer serve it (a setting refused or made unsafe).
"""

from cpython.bytes cimport PyBytes_FromStringAndSize



cdef class Endpoint(Receiver):
    """One end of the proxy (a client session or a server connection) and its transport.

    A plain socket's transport is the proxy's own (_transport.SocketTransport), written to
    with a C call that goes straight to send(2) when nothing is queued; a TLS one is the
    event loop's, written to through its write(). A Receiver because a client session is
    also its transport's protocol, taking reads in place; a server connection is not (its
    ServerRelay is) and keeps Receiver's default, which declines them."""

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


cdef class ClientEnd(Endpoint):
    """What a server connection's relay needs of the client it serves (see the module's
    docstring); subclasses provide the methods below that raise NotImplementedError."""

    cdef int _server_ready(self, str status) except -1:
        self.server_ready(status)
        return 0

    def server_ready(self, str status) -> None:
        """A ReadyForQuery with this transaction ``status`` has been passed on."""
        raise NotImplementedError

    def rewrite_error(self, frame: bytes):
        """The message to send instead of this ErrorResponse frame, or None to pass it on;
        asked only while ``rewrites`` is not empty."""
        raise NotImplementedError

    def server_lost(self, server) -> None:
        """The server connection it was attached to closed."""
        raise NotImplementedError

    def fatal(self, str sqlstate, str message) -> None:
        """The server may no longer serve it: tell it why (a FATAL ErrorResponse) and end."""
        raise NotImplementedError
