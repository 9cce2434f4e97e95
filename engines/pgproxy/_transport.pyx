# cython: language_level=3, boundscheck=False, wraparound=False
"""The proxy's own transport for plain (not TLS) sockets, polled by one epoll per loop.

Why: under pgbench with 20 clients the proxy's CPU per transaction decides its throughput
(README, "Firewall"), and after the relay itself was compiled, most of the user CPU it
spent above PgBouncer's was the event loop's per-read machinery: for every read uvloop
takes the GIL twice (buffer, then callback), enters the protocol's context, and the write
path goes through a few layers more. PgBouncer does one epoll_wait, then recv(2) and
send(2). So does this module: each relayed socket is watched by an epoll instance of the
proxy's own, which the event loop watches as one descriptor; one loop callback drains
every ready socket with recv(2), hands each read to its protocol, and writes go straight
to send(2) unless bytes are already queued.

Only plain stream sockets are taken over, and only after login (``hand_over``): TLS and
everything before the first query stay with the loop's transports. The behaviour is
asyncio's, for the part of ``asyncio.Transport`` the proxy uses: writes are queued behind
unsent bytes and flushed when the socket has room, the protocol's pause_writing /
resume_writing follow the queue's high and low water marks, close() flushes first and
abort() does not, connection_lost is always called later from the loop, never from inside
the call that ended the connection, and the descriptor is closed only after it.
"""

import asyncio
import logging
import os
import socket

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.errno cimport EAGAIN, EINTR, errno
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, strerror

logger = logging.getLogger("engines.pgproxy")


cdef extern from "<sys/epoll.h>" nogil:
    int epoll_create1(int flags)
    int epoll_ctl(int epfd, int op, int fd, epoll_event* event)
    int epoll_wait(int epfd, epoll_event* events, int maxevents, int timeout)
    enum:
        EPOLLIN
        EPOLLOUT
        EPOLLERR
        EPOLLHUP
        EPOLL_CTL_ADD
        EPOLL_CTL_MOD
        EPOLL_CTL_DEL
        EPOLL_CLOEXEC


cdef extern from "<sys/socket.h>" nogil:
    ssize_t send(int fd, const void* buf, size_t n, int flags)
    ssize_t recv(int fd, void* buf, size_t n, int flags)
    int MSG_DONTWAIT
    int MSG_NOSIGNAL


cdef extern from "<unistd.h>" nogil:
    int close(int fd)


cdef extern from "<time.h>" nogil:
    ctypedef int clockid_t
    cdef struct timespec:
        long tv_sec
        long tv_nsec
    int clock_gettime(clockid_t clock, timespec* now)
    clockid_t CLOCK_MONOTONIC


cdef enum:
    ROUNDS = 4  # epoll_waits per loop callback while sockets keep being ready (see _poll)
    MAX_EVENTS = 128  # per loop callback; more stay ready for the next (epoll is level-triggered)
    READ_SIZE = 262144  # uvloop's read buffer size: a whole result set in one read
    HIGH_WATER = 65536  # asyncio's defaults for pause_writing / resume_writing
    LOW_WATER = 16384


cdef inline object _os_error(int err):
    return OSError(err, strerror(err).decode())  # picks the subclass: ConnectionResetError…


cdef inline bint _retry(int err) noexcept:
    return err == EAGAIN or err == EINTR  # EWOULDBLOCK is EAGAIN on Linux


# -- the clock ----------------------------------------------------------------------------

cdef double _batch_time = 0.0
cdef bint _in_batch = False


cdef inline double _clock() noexcept:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


cdef double monotonic() noexcept:
    """time.monotonic() (both read CLOCK_MONOTONIC), except while a reactor handles a batch
    of ready sockets: then the time the batch began, read once for all of them, as PgBouncer
    reads its clock once per loop iteration. A batch takes tens of microseconds at most, so
    latencies measured with it are off by no more; pool ages and idle times are seconds."""
    return _batch_time if _in_batch else _clock()


# -- what the read path did ----------------------------------------------------------------

# Reads on this process's own transports, by how they reached their protocol: taken in place
# by a Receiver, or copied into bytes for data_received. The in-place path is a speed path
# whose fallback does the same work, so only these counts show it is taken.
cdef unsigned long long _reads_in_place = 0
cdef unsigned long long _reads_copied = 0


def read_counts() -> tuple[int, int]:
    """Reads so far on this process's own transports: (taken in place, copied to bytes)."""
    return _reads_in_place, _reads_copied


# One reactor per running loop, made by the first socket handed over on it and shut when its
# last socket has closed (tests run many loops; none keeps an epoll descriptor behind).
cdef dict _reactors = {}


cdef Reactor _reactor_for(loop):
    reactor = _reactors.get(loop)
    if reactor is None:
        for closed in [other for other in _reactors if other.is_closed()]:
            del _reactors[closed]  # a loop closed with sockets still open: nothing to wait for
        reactor = Reactor(loop)
        _reactors[loop] = reactor
    return reactor


cdef class Reactor:
    """One epoll instance watching every socket handed over on one event loop; the loop
    watches its descriptor and calls ``_poll`` whenever any of those sockets is ready."""

    def __cinit__(self, loop) -> None:
        self._epfd = -1
        self._events = <epoll_event*>malloc(MAX_EVENTS * sizeof(epoll_event))
        self._buffer = <char*>malloc(READ_SIZE)
        if self._events == NULL or self._buffer == NULL:
            raise MemoryError()
        self._epfd = epoll_create1(EPOLL_CLOEXEC)
        if self._epfd < 0:
            raise _os_error(errno)
        self._loop = loop
        self._transports = {}
        loop.add_reader(self._epfd, self._poll)

    def __dealloc__(self) -> None:
        if self._epfd >= 0:
            close(self._epfd)
        free(self._events)
        free(self._buffer)

    def _poll(self) -> None:
        """Handle every ready socket. While sockets keep being ready (a busy proxy), poll
        again, a few rounds, before giving the loop back: each return to the loop costs
        its own epoll_wait, which polls this epoll descriptor and so every ready socket in
        it once more."""
        global _batch_time, _in_batch
        cdef int i, ready, rounds = 0
        cdef SocketTransport transport
        _in_batch = True
        try:
            while rounds < ROUNDS:
                ready = epoll_wait(self._epfd, self._events, MAX_EVENTS, 0)
                if ready <= 0:
                    break
                rounds += 1
                _batch_time = _clock()
                for i in range(ready):
                    # Every pointer here is alive: a watched transport is in _transports, and
                    # one closed by an earlier event of this batch is held by its pending
                    # connection_lost call until after it (_finish), so _ready sees it lost.
                    transport = <SocketTransport>self._events[i].data.ptr
                    transport._ready(self._events[i].events)
        finally:
            _in_batch = False

    cdef int _watch(self, SocketTransport transport) except -1:
        cdef epoll_event event
        event.events = EPOLLIN
        event.data.ptr = <void*>transport
        if epoll_ctl(self._epfd, EPOLL_CTL_ADD, transport._fd, &event) < 0:
            raise _os_error(errno)
        self._transports[transport._fd] = transport
        return 0

    cdef int _change(self, SocketTransport transport, unsigned int events) except -1:
        cdef epoll_event event
        event.events = events
        event.data.ptr = <void*>transport
        if epoll_ctl(self._epfd, EPOLL_CTL_MOD, transport._fd, &event) < 0:
            raise _os_error(errno)
        return 0

    cdef void _forget(self, int fd) noexcept:
        cdef epoll_event unused  # kernels before 2.6.9 wanted one even for DEL
        epoll_ctl(self._epfd, EPOLL_CTL_DEL, fd, &unused)
        self._transports.pop(fd, None)

    cdef void _shut(self) noexcept:
        """No socket left: stop being watched, and let the next hand-over make a new one."""
        if self._transports or self._epfd < 0:
            return
        if _reactors.get(self._loop) is self:
            del _reactors[self._loop]
        if not self._loop.is_closed():
            self._loop.remove_reader(self._epfd)
        close(self._epfd)
        self._epfd = -1


cdef class Receiver:
    """A protocol that can take a read straight from the reactor's buffer, before any bytes
    object is made for it (the relay's, for its common case: one whole message).

    ``_received`` returns 1 when it has dealt with the read, 0 to have it delivered as
    usual, a bytes copy to ``data_received``; so whatever it did before returning 0 must
    leave nothing for data_received to do twice.
    """

    cdef int _received(self, const char* data, Py_ssize_t size) except -1:
        return 0


cdef class SocketTransport:
    """A connected stream socket driven by a Reactor: the part of ``asyncio.Transport`` the
    proxy uses (write, close, abort, pause/resume reading, write-buffer size, extra info,
    protocol swap), with asyncio's semantics and its default water marks."""

    def __init__(self, Reactor reactor, sock: socket.socket, protocol) -> None:
        self._reactor = reactor
        self._loop = reactor._loop
        self._sock = sock
        self._fd = sock.fileno()
        self._pending = bytearray()
        self._reading = True
        self._armed = EPOLLIN
        self._extra = {"socket": sock, "sockname": sock.getsockname()}
        try:
            self._extra["peername"] = sock.getpeername()
        except OSError:
            pass  # already reset: the first read will say so
        self.set_protocol(protocol)
        reactor._watch(self)

    def __repr__(self) -> str:
        state = "closed" if self._lost else "closing" if self._closing else "open"
        return f"<SocketTransport fd={self._fd} {state} pending={len(self._pending)}>"

    # -- asyncio.Transport ---------------------------------------------------------------

    def write(self, data) -> None:
        self._write(data)

    def close(self) -> None:
        """Stop reading, send what is queued, then report connection_lost(None)."""
        if self._closing:
            return
        self._closing = True
        self._reading = False
        if PyByteArray_GET_SIZE(self._pending):
            self._arm()  # _flush finishes the close once the queue is empty
        else:
            self._finish(None)

    def abort(self) -> None:
        """Close now, dropping whatever is queued."""
        self._force(None)

    def is_closing(self) -> bool:
        return self._closing

    def pause_reading(self) -> None:
        if self._closing or not self._reading:
            return
        self._reading = False
        self._arm()

    def resume_reading(self) -> None:
        if self._closing or self._reading:
            return
        self._reading = True
        self._arm()

    def is_reading(self) -> bool:
        return self._reading and not self._closing

    def get_write_buffer_size(self) -> int:
        return PyByteArray_GET_SIZE(self._pending)

    def get_extra_info(self, name, default=None):
        return self._extra.get(name, default)

    def set_protocol(self, protocol) -> None:
        self._protocol = protocol
        self._data_received = protocol.data_received
        self._receiver = protocol if isinstance(protocol, Receiver) else None

    # -- writing -------------------------------------------------------------------------

    cdef int _write(self, data) except -1:
        cdef Py_buffer view
        if type(data) is bytes:
            return self._write_raw(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            return self._write_raw(<const char*>view.buf, view.len)  # copies what it queues
        finally:
            PyBuffer_Release(&view)

    cdef int _write_raw(self, const char* data, Py_ssize_t size) except -1:
        cdef ssize_t sent
        cdef int err
        if self._closing or size == 0:
            return 0  # as asyncio's transports: a write after close() goes nowhere
        if PyByteArray_GET_SIZE(self._pending):
            return self._queue(data, size)  # behind earlier bytes, never ahead of them
        sent = send(self._fd, data, size, MSG_DONTWAIT | MSG_NOSIGNAL)
        if sent == size:
            return 0
        if sent < 0:
            err = errno
            if not _retry(err):
                return self._force(_os_error(err))
            sent = 0
        return self._queue(data + sent, size - sent)

    cdef int _queue(self, const char* data, Py_ssize_t size) except -1:
        cdef Py_ssize_t queued = PyByteArray_GET_SIZE(self._pending)
        PyByteArray_Resize(self._pending, queued + size)
        memcpy(PyByteArray_AS_STRING(self._pending) + queued, data, size)
        self._arm()
        if not self._writing_paused and queued + size > HIGH_WATER:
            self._writing_paused = True
            try:
                self._protocol.pause_writing()
            except Exception:
                logger.exception("protocol.pause_writing() failed")
        return 0

    cdef int _flush(self) except -1:
        cdef Py_ssize_t size = PyByteArray_GET_SIZE(self._pending)
        cdef ssize_t sent = 0
        if size:
            sent = send(self._fd, PyByteArray_AS_STRING(self._pending), size,
                        MSG_DONTWAIT | MSG_NOSIGNAL)
            if sent < 0:
                if _retry(errno):
                    return 0
                return self._force(_os_error(errno))
            del self._pending[:sent]  # bytearray drops a prefix without moving the rest
            size -= sent
        if size == 0:
            self._arm()
        if self._writing_paused and size <= LOW_WATER:
            self._writing_paused = False
            try:
                self._protocol.resume_writing()
            except Exception:
                logger.exception("protocol.resume_writing() failed")
        if size == 0 and self._closing:
            self._finish(None)
        return 0

    # -- reading and readiness -----------------------------------------------------------

    cdef void _ready(self, unsigned int events) noexcept:
        if self._lost:
            return
        try:
            if events & EPOLLOUT:
                self._flush()
            if self._lost:
                return
            if self._reading and events & (EPOLLIN | EPOLLHUP | EPOLLERR):
                self._read()  # a hang-up or error shows as the read's 0 or errno
            elif events & (EPOLLHUP | EPOLLERR):
                # epoll reports these whether asked for or not, and again on every poll: with
                # reading paused nothing else would clear them.
                err = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                self._force(_os_error(err) if err else ConnectionResetError("connection lost"))
        except Exception as exc:
            if not isinstance(exc, OSError):
                logger.error("fatal error on %r", self, exc_info=True)
            try:
                self._force(exc)
            except Exception:
                logger.exception("cannot close %r", self)

    cdef int _read(self) except -1:
        global _reads_in_place, _reads_copied
        cdef char* buffer = self._reactor._buffer
        cdef ssize_t got = recv(self._fd, buffer, READ_SIZE, MSG_DONTWAIT)
        if got > 0:
            if self._receiver is not None and self._receiver._received(buffer, got):
                _reads_in_place += 1
            else:
                _reads_copied += 1
                self._data_received(PyBytes_FromStringAndSize(buffer, got))
        elif got == 0:  # the peer's FIN
            self._reading = False
            self._arm()
            if not self._protocol.eof_received():
                self.close()
        elif not _retry(errno):
            self._force(_os_error(errno))
        return 0

    cdef int _arm(self) except -1:
        """Ask epoll for what is wanted now: input while reading, room while bytes wait."""
        cdef unsigned int wanted = EPOLLIN if self._reading else 0
        if PyByteArray_GET_SIZE(self._pending):
            wanted |= EPOLLOUT
        if wanted != self._armed and not self._lost:
            self._reactor._change(self, wanted)
            self._armed = wanted
        return 0

    # -- ending --------------------------------------------------------------------------

    cdef int _force(self, exc) except -1:
        del self._pending[:]
        self._closing = True
        self._reading = False
        return self._finish(exc)

    cdef int _finish(self, exc) except -1:
        if self._lost:
            return 0
        self._lost = True
        self._reactor._forget(self._fd)
        self._loop.call_soon(self._connection_lost, exc)
        return 0

    def _connection_lost(self, exc) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._sock.close()
            self._reactor._shut()


def hand_over(transport: asyncio.Transport, protocol) -> object:
    """The transport ``protocol`` is driven by from now on: for a plain stream socket, a
    SocketTransport that took it over from ``transport`` (which lets go of it); for any
    other (TLS, bytes still queued, closing), or when the process is out of descriptors,
    ``transport`` itself, switched to ``protocol``.

    The taking over: the socket's descriptor is duplicated and the loop's transport
    aborted. Both loops remove a descriptor from their poller (EPOLL_CTL_DEL) before
    closing it, so no stale registration of the shared socket is left behind, and abort()
    sends nothing (no FIN: the duplicate keeps the connection open). Whatever it had read
    is in its StreamReader's buffer, for the caller to pass on.
    """
    sock = transport.get_extra_info("socket")
    if (
        sock is None
        or sock.type != socket.SOCK_STREAM
        or transport.get_extra_info("sslcontext") is not None
        or transport.get_write_buffer_size()
        or transport.is_closing()
    ):
        transport.set_protocol(protocol)
        return transport
    try:
        own = socket.socket(fileno=os.dup(sock.fileno()))
    except OSError:  # out of descriptors: the loop's transport carries on
        transport.set_protocol(protocol)
        return transport
    reactor = None
    try:
        own.setblocking(False)
        reactor = _reactor_for(asyncio.get_running_loop())
        taken = SocketTransport(reactor, own, protocol)
    except OSError:  # no epoll descriptor or watch to be had: likewise
        own.close()
        if reactor is not None:
            (<Reactor>reactor)._shut()  # if it watches nothing else
        transport.set_protocol(protocol)
        return transport
    transport.abort()  # only now: until here the loop's transport could carry on
    return taken
