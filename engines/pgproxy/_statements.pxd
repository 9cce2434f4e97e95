# What a server connection has prepared and which answers it owes (_statements.pyx).
# cimported by _server, _client.

cimport cython


@cython.final
cdef class Expectation:
    cdef public long long batch
    cdef public bytes kind
    cdef public bint injected
    cdef public object statement
    cdef public bint unnamed  # a Parse or Close of the unnamed statement


@cython.final
cdef class ServerStatements:
    cdef public set prepared
    cdef public object expected  # deque[Expectation]
    cdef public long long batches_sent
    cdef public long long batches_done
    # The session (prepared.StatementRenamer.owner, never 0) whose unnamed statement this
    # connection holds, if any may be; 0 when it is nobody's or not known.
    cdef public unsigned long long unnamed_owner
    cdef public long long unnamed_batch  # the batch of the message that made it so

    cpdef void expect(self, bytes kind, bint injected, statement=*, bint unnamed=*)
    cpdef bint answered(self)
    cpdef void failed(self)
    cpdef void ready(self)
    cpdef void claim_unnamed(self, unsigned long long owner)
    cpdef bint owns_unnamed(self, unsigned long long owner)
    cdef void _forget_through(self, long long batch)
