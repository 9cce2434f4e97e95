"""The answer the router gives for a statement: a Route, and the Merge the executor applies.

These are the only types the rest of Conduit needs from routing analysis: the executor reads
a Route to send each shard its SQL and combines the shards' replies as its ``merge`` says;
``EXPLAIN ROUTE`` prints its ``reason``. They sit apart from the analysis so that the
executor depends on the contract, not on how the router reaches it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Schema:
    """What the router knows: sharded tables and their key column, reference tables, N."""

    tables: dict[str, str]  # sharded table -> key column
    reference: frozenset[str] = frozenset()
    shards: int = 1
    # sharded table -> "int" or "text", the key column's type family. When given, a key is
    # handed to shard_of as that type ('42' for an int key as 42, 42 for a text key as "42"),
    # so shard_of can tell the family from the Python type; when not, as written.
    key_types: dict[str, str] = field(default_factory=dict)


class RouteError(Exception):
    """A statement the router refuses; ``sqlstate`` is what the client should receive."""

    def __init__(self, message: str, sqlstate: str = "0A000") -> None:
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate


SortKey = tuple[int, bool, bool]  # (column index, descending, nulls_first)


@dataclass(frozen=True)
class Single:
    """One shard ran it: pass its rows and command tag through unchanged."""


@dataclass(frozen=True)
class Replicated:
    """Every shard ran the same thing (DDL, SET, write to a reference table): relay shard 0's
    rows and command tag once; the others must succeed too, their results are discarded."""


@dataclass(frozen=True)
class Concat:
    """Rows from every shard in any order. For a write with RETURNING, the command tag is the
    sum as for :class:`CountTag`; for a SELECT it is ``SELECT <rows relayed>``."""


@dataclass(frozen=True)
class CountTag:
    """A write on several shards: add up the counts of the command tags ("INSERT 0 4" +
    "INSERT 0 7" -> "INSERT 0 11", "UPDATE 13" + "UPDATE 27" -> "UPDATE 40")."""


@dataclass(frozen=True)
class OrderLimit:
    """Merge rows sorted by ``sort_keys``, skip ``offset``, keep ``limit`` (None: all), then
    drop the last ``hidden`` columns (sort expressions the rewrite appended to the select list;
    negative indexes count from the end). Shards were sent ``LIMIT limit + offset`` and no
    OFFSET. Empty ``sort_keys``: LIMIT without ORDER BY, any rows will do. Each shard's rows
    arrive sorted; the merge must compare values as the server does (text by the column's
    collation, not by Python's code-point order, unless that collation is "C")."""

    sort_keys: tuple[SortKey, ...]
    limit: int | None = None
    offset: int = 0
    hidden: int = 0


@dataclass(frozen=True)
class Distinct:
    """Union of the shards' distinct rows, de-duplicated again; then ``order`` if given (its
    indexes are the row's columns; shards were sent ``LIMIT limit + offset``)."""

    order: OrderLimit | None = None


@dataclass(frozen=True)
class Col:
    """Output column taken from merged shard column ``index``."""

    index: int


@dataclass(frozen=True)
class Avg:
    """Output column ``avg`` rebuilt from merged shard columns: sum / count (NULL if count
    0). ``name`` is the client's column name; its type is float8 if the sum's is float4 or
    float8, interval for interval, else numeric (PostgreSQL's avg result types)."""

    sum_index: int
    count_index: int
    name: str = "avg"


@dataclass(frozen=True)
class HavingTerm:
    """One conjunct of HAVING, evaluated after merging: ``value op constant``."""

    value: Col | Avg
    op: str  # one of = <> < <= > >=
    constant: object


@dataclass(frozen=True)
class Aggregate:
    """Cross-shard aggregation. Shard rows are grouped on the ``group_by`` shard columns (no
    group_by: all rows form one group, which yields one row before HAVING even when every
    shard saw no rows). In each group, ``aggregates`` columns combine by kind: count -> sum
    of counts (0 if none), sum -> sum of non-NULL values (NULL if none), min/max -> of
    non-NULL values; any other shard column has one value in the whole group, take any.
    Then the client's row is ``output`` (Col: that merged column, with the shard's name and
    type; Avg: see there), kept if every ``having`` term holds (a NULL comparison fails),
    then ``order`` is applied with indexes into ``output``. Shard columns that no output
    names (GROUP BY or HAVING helpers) are not sent to the client."""

    group_by: tuple[int, ...]
    aggregates: tuple[tuple[int, str], ...]
    output: tuple[Col | Avg, ...]
    having: tuple[HavingTerm, ...] = ()
    order: OrderLimit | None = None


Merge = Single | Replicated | Concat | CountTag | OrderLimit | Distinct | Aggregate


@dataclass(frozen=True)
class Route:
    """Where one statement goes. ``sql`` None: every shard runs ``statement`` as is.

    ``needs_params``: the route depends on parameters that are not bound yet (Parse of a
    prepared statement): call :func:`route` again at Bind; ``shards`` is then empty.
    ``transaction``: BEGIN/COMMIT/ROLLBACK/SAVEPOINT/RELEASE/ROLLBACK TO (``begin``,
    ``commit``, ``rollback``, ``savepoint``, ``release``, ``rollback_to``), for the caller to
    handle; ``shards`` is empty. ``param_map[shard]``: the original parameter numbers that the
    shard's ``$1, $2...`` stand for, when its SQL was renumbered (a split INSERT, or a rewrite
    that dropped a HAVING or LIMIT parameter; an empty tuple: bind none)."""

    shards: tuple[int, ...]
    sql: dict[int, str] | None
    merge: Merge
    reason: str
    writes: bool
    statement: str = ""
    needs_params: bool = False
    transaction: str | None = None
    param_map: dict[int, tuple[int, ...]] | None = None
