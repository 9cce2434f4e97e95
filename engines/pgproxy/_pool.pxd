# A pool's lending and taking back (_pool.pyx). cimported by _client.

from engines.pgproxy._server cimport ServerCore


cdef class PoolStats:
    cdef public long long acquired
    cdef public long long waited
    cdef public long long timeouts
    cdef public long long connects
    cdef public long long connect_failures
    cdef public long long discarded
    cdef public double wait_seconds


cdef class PoolCore:
    cdef public list idle
    cdef public set active
    cdef public object waiters
    cdef public PoolStats stats
    cdef public double server_lifetime
    cdef public double server_idle_timeout
    cdef public object budget
    cdef public bint shares_budget

    cdef bint _is_expired(self, ServerCore server, double now)
    cdef ServerCore _acquire(self)
    cdef int _release(self, ServerCore server) except -1
