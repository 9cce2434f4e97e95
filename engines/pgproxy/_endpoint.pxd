# The two ends of the relay and what a server's relay may ask of the client it serves
# (_endpoint.pyx says why). cimported by _server, _client.

from engines.pgproxy._transport cimport Receiver, SocketTransport


cdef inline Py_ssize_t _length(const unsigned char* p) noexcept:
    """A message's Int32 length (big-endian; it counts itself, not the type byte)."""
    return (<Py_ssize_t>p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]


cdef class Endpoint(Receiver):
    cdef object _transport
    cdef SocketTransport _own  # the transport, when it is the proxy's own: written in C
    cdef object _write

    cdef int _emit(self, data) except -1
    cdef int _emit_raw(self, const char* data, Py_ssize_t size) except -1


cdef class ClientEnd(Endpoint):
    cdef public dict rewrites  # the tokens of blocked statements, to their verdicts
    cdef public dict wanted  # the tracked settings this client should see

    cdef int _server_ready(self, str status) except -1
