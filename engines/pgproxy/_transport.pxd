# The proxy's own plain-socket transport, declared for C calls from the relay
# (_endpoint, _server, _client, _pool: their clock, and reads taken in place).

cdef extern from "<sys/epoll.h>" nogil:
    cdef union epoll_data_t:
        void* ptr
        int fd
        unsigned int u32
        unsigned long long u64

    cdef struct epoll_event:
        unsigned int events
        epoll_data_t data


cdef double monotonic() noexcept


cdef class Receiver:
    cdef int _received(self, const char* data, Py_ssize_t size) except -1


cdef class Reactor:
    cdef int _epfd
    cdef object _loop
    cdef dict _transports  # descriptor -> SocketTransport, while it is watched (and so alive)
    cdef epoll_event* _events
    cdef char* _buffer  # every read lands here: a Receiver takes it in place, others a copy

    cdef int _watch(self, SocketTransport transport) except -1
    cdef int _change(self, SocketTransport transport, unsigned int events) except -1
    cdef void _forget(self, int fd) noexcept
    cdef void _shut(self) noexcept


cdef class SocketTransport:
    cdef Reactor _reactor
    cdef object _loop
    cdef object _sock
    cdef int _fd
    cdef object _protocol
    cdef object _data_received
    cdef Receiver _receiver  # the protocol, when it can take reads in place
    cdef bytearray _pending  # bytes the socket has not taken yet, in order
    cdef unsigned int _armed  # the epoll events asked for now
    cdef bint _reading
    cdef bint _closing
    cdef bint _lost
    cdef bint _writing_paused
    cdef dict _extra

    cdef int _write(self, data) except -1
    cdef int _write_raw(self, const char* data, Py_ssize_t size) except -1
    cdef void _ready(self, unsigned int events) noexcept
    cdef int _read(self) except -1
    cdef int _flush(self) except -1
    cdef int _queue(self, const char* data, Py_ssize_t size) except -1
    cdef int _arm(self) except -1
    cdef int _finish(self, exc) except -1
    cdef int _force(self, exc) except -1
