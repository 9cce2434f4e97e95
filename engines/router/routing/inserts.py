"""INSERT into a sharded table: each VALUES row goes to the shard its key value names.

A multi-row INSERT may name keys on several shards, so it is split into one INSERT per shard
holding only that shard's rows, with its parameters renumbered ``$1, $2...`` and a map back
to the client's parameter numbers. Forms whose rows cannot be placed from the text (INSERT
... SELECT, no column list, a key that is an expression) are refused.
"""

from __future__ import annotations

import copy

from pglast import ast

from engines.router.routing.context import Context, NeedParams
from engines.router.routing.keys import Analysis
from engines.router.routing.plan import Concat, CountTag, Merge, Route, RouteError, Single
from engines.router.routing.tree import deparse, renumber_params, sharded_names
from engines.router.routing.values import UNUSABLE, key_value
from engines.router.routing.writes import refuse_key_change, route_replicated_write


def route_insert(stmt: ast.InsertStmt, ctx: Context) -> Route:
    table = stmt.relation.relname
    key = ctx.schema.tables.get(table)
    if stmt.withClause is not None:
        raise RouteError("INSERT with WITH is not supported through the router")
    if key is None:
        analysis = Analysis(ctx)
        top = analysis.new_scope(None)
        analysis.sublinks(stmt.selectStmt, top)
        analysis.sublinks(stmt.onConflictClause, top)
        analysis.sublinks(stmt.returningClause, top)
        return route_replicated_write("INSERT", table, analysis, ctx, stmt)
    others = sharded_names(
        [stmt.selectStmt, stmt.onConflictClause, stmt.returningClause], ctx.schema
    )
    if others:
        raise RouteError(
            f"INSERT into sharded table {table} reading sharded table(s) "
            f"{', '.join(sorted(others))} is not supported"
        )
    if stmt.onConflictClause is not None:
        refuse_key_change(stmt.onConflictClause.targetList, table, key)
    rows = _insert_rows(stmt, table)
    position = _key_position(stmt, table, key)
    try:
        groups = _group_rows(rows, position, table, ctx)
    except NeedParams as need:
        raise NeedParams(str(need), writes=True) from None
    returning = stmt.returningClause is not None
    if len(groups) == 1:
        (shard,) = groups
        return Route((shard,), None, Single(), f"INSERT {table}: key on shard {shard}", True)
    sql, param_map = _split_insert(stmt, groups)
    merge: Merge = Concat() if returning else CountTag()
    detail = ", ".join(f"{len(v)} to shard {s}" for s, v in groups.items())
    reason = f"INSERT {table}: {len(rows)} rows split by key ({detail})"
    return Route(tuple(groups), sql, merge, reason, True, param_map=param_map)


def _insert_rows(stmt: ast.InsertStmt, table: str) -> list[tuple[ast.Node, ...]]:
    select = stmt.selectStmt
    if select is None:
        raise RouteError(f"INSERT into sharded table {table} must give the key (DEFAULT VALUES)")
    plain = (
        isinstance(select, ast.SelectStmt)
        and select.valuesLists
        and not any(
            getattr(select, attr)
            for attr in ("targetList", "sortClause", "limitCount", "limitOffset", "withClause")
        )
    )
    if not plain:
        raise RouteError(f"sharded table {table}: only INSERT ... VALUES is supported")  # noqa: S608
    return [tuple(row) for row in select.valuesLists]


def _key_position(stmt: ast.InsertStmt, table: str, key: str) -> int:
    if not stmt.cols:
        raise RouteError(
            f"INSERT into sharded table {table} needs an explicit column list naming its key "
            f"column {key} (the router does not know the table's column order)"
        )
    names = [c.name for c in stmt.cols]
    if key not in names:
        raise RouteError(f"INSERT into sharded table {table} must set its key column {key}")
    return names.index(key)


def _group_rows(
    rows: list[tuple[ast.Node, ...]], position: int, table: str, ctx: Context
) -> dict[int, list[int]]:
    """Row indexes by shard, shards in order of first appearance."""
    groups: dict[int, list[int]] = {}
    for number, row in enumerate(rows):
        value = key_value(row[position], ctx)
        if not isinstance(value, int | str) or isinstance(value, bool):
            raise RouteError(
                f"INSERT into sharded table {table}: row {number + 1} needs a constant or "
                f"parameter integer or text key, not {deparse(row[position])}",
                "0A000" if value is UNUSABLE else "23502",
            )
        groups.setdefault(ctx.shard(value, table), []).append(number)
    return dict(sorted(groups.items()))


def _split_insert(
    stmt: ast.InsertStmt, groups: dict[int, list[int]]
) -> tuple[dict[int, str], dict[int, tuple[int, ...]] | None]:
    """Per shard: the INSERT with only that shard's VALUES rows, parameters renumbered."""
    sql: dict[int, str] = {}
    param_map: dict[int, tuple[int, ...]] = {}
    for shard, numbers in groups.items():
        part = copy.deepcopy(stmt)
        values = part.selectStmt.valuesLists
        part.selectStmt.valuesLists = tuple(values[n] for n in numbers)
        used = renumber_params(part)
        if used:
            param_map[shard] = used
        sql[shard] = deparse(part)
    return sql, (param_map or None)
