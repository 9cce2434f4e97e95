# cython: language_level=3, boundscheck=False, wraparound=False
"""A pool's lending and taking back, compiled: the idle stack, most recently used on top,
and the set of connections out with clients (``PoolCore``, the base of pool.Pool, which
keeps connecting, waiting, budgets and maintenance). A session borrows and returns a
server once per transaction (_client.ClientCore, with C calls to ``_acquire`` and
``_release``), so this is on the hot path.

The contract with the Python subclass, whose methods ``_release`` calls by name when a
connection cannot simply go back on the idle stack: ``_discard``, ``_fill_waiter_slot``
and ``_hand_to_waiter``, declared below; and with ``budget`` (pool.DatabaseBudget), asked
``give_away(server, pool)`` when the database's cap is shared (``shares_budget``).
"""

from engines.pgproxy._transport cimport monotonic


cdef class PoolStats:
    """A pool's counters for SHOW POOLS and the metrics endpoint."""


cdef class PoolCore:
    """A pool's lending and taking back (pool.Pool); ``waiters`` is a deque of futures, in
    arrival order."""

    # -- what the Python subclass provides ------------------------------------------------

    def _discard(self, ServerCore server) -> None:
        """Close ``server`` and forget it (idle or active)."""
        raise NotImplementedError

    def _fill_waiter_slot(self) -> None:
        """A connection was discarded: open a fresh one if a client waits for one."""
        raise NotImplementedError

    def _hand_to_waiter(self, ServerCore server) -> bool:
        """Lend ``server`` to the first client still waiting; False if none waits."""
        raise NotImplementedError

    # -- lending and taking back ----------------------------------------------------------

    def _expired(self, ServerCore server, double now) -> bool:
        return self._is_expired(server, now)

    cdef bint _is_expired(self, ServerCore server, double now):
        return (
            server.closed
            or now - server.created > self.server_lifetime
            or now - server.last_used > self.server_idle_timeout
        )

    def try_acquire(self):
        """An idle server connection right now, or None: the hot path, with no task switch."""
        return self._acquire()

    cdef ServerCore _acquire(self):
        cdef ServerCore server
        cdef double now
        idle = self.idle
        if not idle:
            return None
        now = monotonic()
        while idle:
            server = idle.pop()  # most recently used first
            if self._is_expired(server, now):
                self._discard(server)
                continue
            self.active.add(server)
            self.stats.acquired += 1
            return server
        return None

    def release(self, ServerCore server) -> None:
        """Take a server back; only a live connection idle outside a transaction is kept."""
        self._release(server)

    cdef int _release(self, ServerCore server) except -1:
        cdef double now = monotonic()
        self.active.discard(server)
        server._detach(now)
        if server.closed or server.status != "I" or self._is_expired(server, now):
            self._discard(server)
            self._fill_waiter_slot()
            return 0
        if self.waiters and self._hand_to_waiter(server):
            return 0
        if self.shares_budget and self.budget.give_away(server, self):
            return 0
        self.idle.append(server)
        return 0
