# What a client session's relay asks of the statement policy it enforces (_policy.pyx).
# cimported by _client (which calls it) and by each proxy's policy (engines.firewall._guard).

cdef class Policy:
    cdef bint _allows(self, const unsigned char* sql, Py_ssize_t size) except -1
