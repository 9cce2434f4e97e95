# cython: language_level=3, boundscheck=False, wraparound=False
"""What one server connection has prepared, and which answers to Parse and Close it still
owes, in order: the compiled half of prepared.py (which explains why), updated by the
server's relay (_server.ServerRelay) on every ReadyForQuery and ErrorResponse and by
prepared.StatementRenamer as it renames and re-prepares a client's statements.

The contract: every Query or Sync sent counts one batch (``batches_sent``, by whoever
sends it: the session, or the proxy's own SETs); ``ready`` ends the oldest batch,
``failed`` skips the rest of it (PostgreSQL skips to the Sync); ``answered`` pops the
oldest expectation and says whether the proxy itself asked for it (drop the answer).
"""

cimport cython

from collections import deque


@cython.final
cdef class Expectation:
    """A ParseComplete ('1') or CloseComplete ('3') the server owes, in order: ``batch``
    counts the Syncs/Queries before it; ``injected`` when the proxy sent the message (drop
    the answer); ``statement``, the server-side name a Parse prepares, or None."""

    def __init__(self, long long batch, bytes kind, bint injected, statement=None) -> None:
        self.batch = batch
        self.kind = kind
        self.injected = injected
        self.statement = statement


@cython.final
cdef class ServerStatements:
    """What one server connection has prepared and which answers it still owes."""

    def __init__(self) -> None:
        self.prepared = set()
        self.expected = deque()

    cpdef void expect(self, bytes kind, bint injected, statement=None):
        self.expected.append(Expectation(self.batches_sent, kind, injected, statement))

    cpdef bint answered(self):
        """A ParseComplete/CloseComplete arrived: True if the proxy asked for it (drop it)."""
        if not self.expected:
            return False
        return (<Expectation>self.expected.popleft()).injected

    cpdef void failed(self):
        """An ErrorResponse: the server skips the rest of this batch, answers included."""
        self._forget_through(self.batches_done)  # the batch being answered

    cpdef void ready(self):
        """A ReadyForQuery: one batch is over, and nothing of it can still be answered."""
        self.batches_done += 1
        if self.expected:
            # Batches are numbered from 0, so the one just finished is batches_done - 1; the
            # expectations of later batches (pipelined already) stay.
            self._forget_through(self.batches_done - 1)

    cdef void _forget_through(self, long long batch):
        cdef Expectation skipped
        expected = self.expected
        while expected and (<Expectation>expected[0]).batch <= batch:
            skipped = expected.popleft()
            if skipped.statement is not None:
                self.prepared.discard(skipped.statement)
