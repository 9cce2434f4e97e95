"""Routing analysis: which shards run a statement, with what SQL, and how to merge the results.

Conduit sits between clients and N PostgreSQL shards. Before a statement can go anywhere the
router has to answer three questions from the SQL alone: which shards hold the rows it touches,
whether each shard needs a different text (a multi-row INSERT split by key, an aggregate or a
LIMIT rewritten so that the partial results can be combined), and how the executor combines
what the shards send back. This package answers them as pure functions over the PostgreSQL 18
parse tree (pglast), with no sockets and no catalog, so that every rule can be unit-tested and
shown to an operator (``EXPLAIN ROUTE`` prints ``Route.reason``).

The guiding rule is *never a wrong answer*: a statement whose result the router cannot prove
it reproduces exactly (a join of sharded tables not on their keys, a subquery that needs rows
from other shards, ``count(DISTINCT ...)`` across shards, an UPDATE of the key...) is refused
with a :class:`RouteError` that names the reason, rather than answered approximately.

Placement (key value -> shard index) lives elsewhere and is injected as ``shard_of``: it is
called with a Python ``int`` or ``str`` key, bound parameters already resolved here.

Modules: ``plan`` (what a route is), ``dispatch`` (the entry, by statement kind), ``keys``
(key conditions and co-location), ``fanout``, ``ordering`` and ``aggregates`` (a SELECT on
several shards), ``inserts`` and ``writes`` (INSERT, UPDATE, DELETE), ``ddl``; ``context``,
``values`` and ``tree`` are what they share.
"""

from engines.router.routing.context import ShardOf
from engines.router.routing.dispatch import route
from engines.router.routing.plan import (
    Aggregate,
    Avg,
    Col,
    Concat,
    CountTag,
    Distinct,
    HavingTerm,
    Merge,
    OrderLimit,
    Replicated,
    Route,
    RouteError,
    Schema,
    Single,
    SortKey,
)

__all__ = [
    "Aggregate",
    "Avg",
    "Col",
    "Concat",
    "CountTag",
    "Distinct",
    "HavingTerm",
    "Merge",
    "OrderLimit",
    "Replicated",
    "Route",
    "RouteError",
    "Schema",
    "ShardOf",
    "Single",
    "SortKey",
    "route",
]
