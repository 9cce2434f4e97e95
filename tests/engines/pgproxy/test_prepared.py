"""ServerStatements' bookkeeping of the answers a server owes, batch by batch."""

from __future__ import annotations

from engines.pgproxy.prepared import ServerStatements


def two_pipelined_batches() -> ServerStatements:
    """Batch 0 prepares "a" (the client's own Parse); batch 1, sent before batch 0 is
    answered, prepares "b" (a Parse the proxy slipped in)."""
    statements = ServerStatements()
    statements.prepared.add("a")
    statements.expect(b"1", injected=False, statement="a")
    statements.batches_sent += 1
    statements.prepared.add("b")
    statements.expect(b"1", injected=True, statement="b")
    statements.batches_sent += 1
    return statements


def test_the_end_of_a_batch_keeps_what_later_batches_are_owed():
    statements = two_pipelined_batches()
    assert statements.answered() is False  # batch 0's ParseComplete: the client's, relayed
    statements.ready()  # batch 0 is over
    assert statements.answered() is True  # batch 1's is still expected, and dropped
    statements.ready()
    assert statements.prepared == {"a", "b"}
    assert not statements.expected


def test_an_error_forgets_only_what_its_own_batch_would_have_prepared():
    statements = two_pipelined_batches()
    assert statements.answered() is False
    statements.ready()
    statements.failed()  # batch 1 fails before its Parse is answered: "b" never existed
    assert statements.prepared == {"a"}
    assert not statements.expected
