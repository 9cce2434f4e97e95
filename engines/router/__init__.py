"""Conduit: a PostgreSQL wire-protocol proxy that routes statements across sharded instances.

Rows of a sharded table live on the shard chosen by the value of its shard key alone, so
rows of two tables with equal key values (a user and that user's orders) land together and
a statement that names one key value runs on one shard. ``placement`` maps a key value to
its shard index: a canonical encoding of the value (equal for every way a client can send
it), a stable 64-bit hash of that encoding, and jump consistent hash over the shard count.
"""
