# The round-trip latency counts (_metrics.pyx). cimported by _client.

cdef enum:
    MAX_BUCKETS = 64


cdef class LatencyCounts:
    cdef double _bounds[MAX_BUCKETS]
    cdef long long _counts[MAX_BUCKETS + 1]
    cdef int _nbounds
    cdef public long long total
    cdef public double sum_us

    cdef void _observe(self, double seconds) noexcept
