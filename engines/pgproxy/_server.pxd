# A server connection's per-message state and its relay to the attached client
# (_server.pyx). cimported by _pool and _client.

from engines.pgproxy._endpoint cimport ClientEnd, Endpoint
from engines.pgproxy._statements cimport ServerStatements
from engines.pgproxy._transport cimport Receiver


cdef class ServerCore(Endpoint):
    cdef public object protocol  # a ServerRelay once logged in
    cdef public dict parameters
    cdef public ServerStatements statements
    cdef public str status
    cdef public double created
    cdef public double last_used
    cdef public bint closed
    cdef public bint throttled
    cdef public object settings_checked

    cdef int _detach(self, double now) except -1
    cdef int _unthrottle(self) except -1


cdef class ServerRelay(Receiver):
    cdef public ServerCore server
    cdef public ClientEnd client
    cdef public int swallow
    cdef public bytes buffer
    cdef public object on_lost
