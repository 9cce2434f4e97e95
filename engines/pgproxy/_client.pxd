# A client session's per-message path (_client.pyx). Used from Python (client.py) only.

from engines.pgproxy._endpoint cimport ClientEnd
from engines.pgproxy._metrics cimport LatencyCounts
from engines.pgproxy._policy cimport Policy
from engines.pgproxy._pool cimport PoolCore
from engines.pgproxy._server cimport ServerCore

cdef enum:
    SENT_RING = 64  # send times kept for round-trip latency: a deeper pipeline goes unmeasured

# The bits of ClientCore.detour: why the hot path must leave a Query to pump().
cdef enum:
    UNSYNCED = 1  # extended-protocol messages went on since the last Sync, Query or FunctionCall
    HOLDING = 2  # a held statement's ReadyForQuery is awaited: nothing more goes on till then
    PENDING = 4  # a verdict is awaited: nothing from that message on goes on till then
    UNNAMED = 8  # the client has an unnamed statement, which its next Query drops


cdef class ClientCore(ClientEnd):
    cdef public PoolCore pool
    cdef public Policy policy
    cdef public LatencyCounts latency
    cdef public str user
    cdef public ServerCore server
    cdef public bytes buffer
    cdef public long long expected_ready
    cdef public object acquiring
    cdef public bint closed
    cdef public bint session_mode
    cdef public object renamer
    cdef public bint backed_up
    cdef readonly unsigned int detour  # the bits above; set through their properties
    cdef object _pending  # the future of the verdict awaited (PENDING)
    cdef double _sent[SENT_RING]
    cdef unsigned long long _sent_first, _sent_count, _sends, _replies

    cdef bint _forward_query(self, const unsigned char* p, Py_ssize_t size, bytes data) except -1
    cdef void _sent_batch(self) noexcept
    cdef int _attach(self, ServerCore server) except -1
    cdef int _resume_reading(self) except -1
    cdef void _flag(self, unsigned int bit, bint on) noexcept
