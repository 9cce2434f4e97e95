# What a server connection has prepared and which answers it owes (_statements.pyx).
# cimported by _server, _client.

cimport cython


@cython.final
cdef class Expectation:
    cdef public long long batch
    cdef public bytes kind
    cdef public bint injected
    cdef public object statement


@cython.final
cdef class ServerStatements:
    cdef public set prepared
    cdef public object expected  # deque[Expectation]
    cdef public long long batches_sent
    cdef public long long batches_done

    cpdef void expect(self, bytes kind, bint injected, statement=*)
    cpdef bint answered(self)
    cpdef void failed(self)
    cpdef void ready(self)
    cdef void _forget_through(self, long long batch)
