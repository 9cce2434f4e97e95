# cython: language_level=3, boundscheck=False, wraparound=False
"""What one server connection has prepared, and which answers to Parse and Close it still
owes, in order: the compiled half of prepared.py (which explains why), updated by the
server's relay (_server.ServerRelay) on every ReadyForQuery and ErrorResponse and by
prepared.StatementRenamer as it renames and re-prepares a client's statements.

The contract: every Query or Sync sent counts one batch (``batches_sent``, by whoever
sends it: the session, or the proxy's own SETs); ``ready`` ends the oldest batch,
``failed`` skips the rest of it (PostgreSQL skips to the Sync); ``answered`` pops the
oldest expectation and says whether the proxy itself asked for it (drop the answer).
Every Parse and Close sent on a connection that transaction pooling shares is expected,
the client's own too, so the answers are matched to the right messages.

The unnamed statement is one per connection, whoever parsed it: ``unnamed_owner`` says
whose it is (``claim_unnamed`` when a session's Parse or Close of it, or the proxy's on its
behalf, goes on; 0 after a Query, which drops it), and ``owns_unnamed`` whether a session
may bind it as it is. A claim is trusted once its batch is answered, or within its own
batch (an error before it skips whatever follows it up to the Sync); a Parse or Close of
the unnamed statement that a batch skipped takes the claim back (``_forget_through``), so
a connection whose unnamed statement may still be another client's is never taken for the
session's own.
"""

cimport cython

from collections import deque


@cython.final
cdef class Expectation:
    """A ParseComplete ('1') or CloseComplete ('3') the server owes, in order: ``batch``
    counts the Syncs/Queries before it; ``injected`` when the proxy sent the message (drop
    the answer); ``statement``, the server-side name a Parse prepares, or None; ``unnamed``
    when the message parses or closes the unnamed statement."""

    def __init__(
        self, long long batch, bytes kind, bint injected, statement=None, bint unnamed=False
    ) -> None:
        self.batch = batch
        self.kind = kind
        self.injected = injected
        self.statement = statement
        self.unnamed = unnamed


@cython.final
cdef class ServerStatements:
    """What one server connection has prepared and which answers it still owes."""

    def __init__(self) -> None:
        self.prepared = set()
        self.expected = deque()

    cpdef void expect(self, bytes kind, bint injected, statement=None, bint unnamed=False):
        self.expected.append(Expectation(self.batches_sent, kind, injected, statement, unnamed))

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

    cpdef void claim_unnamed(self, unsigned long long owner):
        """A Parse or Close of the unnamed statement for session ``owner`` goes on now."""
        self.unnamed_owner = owner
        self.unnamed_batch = self.batches_sent

    cpdef bint owns_unnamed(self, unsigned long long owner):
        """Whether the unnamed statement here is session ``owner``'s as far as its messages
        sent so far can tell: claimed by it, in the batch going on now or in one answered."""
        return self.unnamed_owner == owner and (
            self.unnamed_batch == self.batches_sent or self.unnamed_batch < self.batches_done
        )

    cdef void _forget_through(self, long long batch):
        cdef Expectation skipped
        expected = self.expected
        while expected and (<Expectation>expected[0]).batch <= batch:
            skipped = expected.popleft()
            if skipped.statement is not None:
                self.prepared.discard(skipped.statement)
            if skipped.unnamed:
                # Skipped, or failed: the unnamed statement is whatever it was before (maybe
                # another client's), or none. Whoever binds it next makes it theirs first.
                self.unnamed_owner = 0
