"""UPDATE and DELETE, and writes to tables that every shard holds a copy of.

An UPDATE or DELETE of a sharded table goes where its key conditions allow, and must not
change the key (the row would belong on another shard). A write to a reference or unsharded
table runs on every shard, so it must compute the same rows everywhere: it may not read a
sharded table or call a function whose value differs per shard (random, now, nextval...).
"""

from __future__ import annotations

from collections.abc import Sequence

from pglast import ast

from engines.router.routing.context import Context, NeedParams, describe
from engines.router.routing.keys import Analysis
from engines.router.routing.plan import (
    Concat,
    CountTag,
    Merge,
    Replicated,
    Route,
    RouteError,
    Single,
)
from engines.router.routing.tree import funcname, walk


def route_update_delete(stmt: ast.UpdateStmt | ast.DeleteStmt, ctx: Context) -> Route:
    verb = "UPDATE" if isinstance(stmt, ast.UpdateStmt) else "DELETE"
    analysis = Analysis(ctx)
    top = analysis.new_scope(None)
    analysis.with_clause(stmt.withClause, top)
    target = analysis.range_var(stmt.relation, top)
    extra = stmt.fromClause if isinstance(stmt, ast.UpdateStmt) else stmt.usingClause
    for item in extra or ():
        analysis.from_item(item, top)
    analysis.where(stmt.whereClause, top)
    analysis.sublinks(stmt.returningClause, top)
    if isinstance(stmt, ast.UpdateStmt):
        analysis.sublinks(stmt.targetList, top)
    table = stmt.relation.relname
    key = analysis.rels[target].key
    if key is None:
        return route_replicated_write(verb, table, analysis, ctx, stmt)
    if isinstance(stmt, ast.UpdateStmt):
        refuse_key_change(stmt.targetList, table, key)
    try:
        shards, note = analysis.decide(top)
    except NeedParams as need:
        raise NeedParams(str(need), writes=True) from None
    returning = stmt.returningClause is not None
    merge: Merge = Single() if len(shards) == 1 else Concat() if returning else CountTag()
    reason = note or f"{verb} {table}: {describe(shards, ctx)}"
    return Route(shards, None, merge, reason, True)


def refuse_key_change(targets: Sequence[ast.ResTarget] | None, table: str, key: str) -> None:
    for target in targets or ():
        if target.name == key:  # also each column of SET (a, b) = (...)
            raise RouteError(
                f"UPDATE of key column {key} of sharded table {table} is not supported: "
                "it would move the row to another shard (DELETE and INSERT it instead)"
            )


_VOLATILE = frozenset(
    {
        "random",
        "random_normal",
        "gen_random_uuid",
        "uuidv4",
        "uuidv7",
        "uuid_generate_v1",
        "uuid_generate_v4",
        "clock_timestamp",
        "timeofday",
        "now",
        "statement_timestamp",
        "transaction_timestamp",
        "nextval",
        "setval",
        "txid_current",
        "pg_current_xact_id",
    }
)


def route_replicated_write(
    verb: str, table: str, analysis: Analysis, ctx: Context, stmt: ast.Node
) -> Route:
    """A write to a table copied on every shard: each shard must compute the same rows."""
    if any(rel.key for rel in analysis.rels):
        raise RouteError(
            f"{verb} of {table} (copied on every shard) reading a sharded table is not "
            "supported: the copies would diverge"
        )
    for node in walk(stmt):
        volatile = isinstance(node, ast.FuncCall) and funcname(node) in _VOLATILE
        if volatile or isinstance(node, ast.SQLValueFunction):
            name = funcname(node) if volatile else "the current time"
            raise RouteError(
                f"{verb} of {table} (copied on every shard) using {name} is not supported: "
                "each shard would store a different value"
            )
    what = "reference table" if table in ctx.schema.reference else "unsharded table"
    return Route(ctx.everywhere, None, Replicated(), f"{verb} {what} {table}: every shard", True)
