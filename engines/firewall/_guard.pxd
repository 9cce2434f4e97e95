# The guard's compiled half (_guard.pyx): its counters, the verdict-cache key, and its
# policy as one session's relay asks it. Used from Python (guard.py) only.

from engines.pgproxy._policy cimport Policy


cdef class GuardStats:
    cdef public long long checked
    cdef public long long cache_hits
    cdef public long long repeats
    cdef public long long parse_errors
    cdef public dict blocked


cdef bytes _verdict_key(const unsigned char* sql, Py_ssize_t size, bytes text, bint* exact)


cdef class SessionGuard(Policy):
    cdef dict _verdicts
    cdef GuardStats _stats
    cdef object _allowed
    cdef bint _exempt
    cdef bytes _last_allowed

    cdef bint _cache_hit(self) noexcept
