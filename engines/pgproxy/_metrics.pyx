# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Round trips counted by latency bucket: the compiled half of metrics.py, which adds
percentiles and snapshots (metrics.LatencyHistogram). Compiled because every round trip
of every session counts one (_client.ClientCore, with a C call to ``_observe``).

The contract: ``_observe(seconds)`` counts one round trip in the first bucket whose upper
bound (µs) is at least its latency, else in the overflow bucket; ``counts`` reads them.
"""


cdef class LatencyCounts:
    """Round trips counted by latency bucket (upper bounds in µs)."""

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
