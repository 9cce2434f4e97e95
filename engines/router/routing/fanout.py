"""A SELECT: on the one shard its keys pin, or on several with a rewrite and a merge.

When a SELECT runs on several shards, each shard's answer is only part of the client's:
ORDER BY needs a merge sort (with hidden sort columns), LIMIT/OFFSET must be pushed down as
``LIMIT limit + offset``, DISTINCT needs de-duplicating again, aggregates need combining
(see ``aggregates``). This module rewrites the per-shard SQL and describes that merge, and
refuses what cannot be merged exactly (set operations, window functions, WITH TIES).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from pglast import ast
from pglast.enums import LimitOption, SetOperation

from engines.router.routing.aggregates import has_aggregate, plan_aggregate
from engines.router.routing.context import Context, describe
from engines.router.routing.keys import Analysis
from engines.router.routing.ordering import resolve_output, sort_key
from engines.router.routing.plan import (
    Concat,
    Distinct,
    Merge,
    OrderLimit,
    Route,
    RouteError,
    Single,
    SortKey,
)
from engines.router.routing.tree import deparse, has_window, int_const, renumber_params, walk
from engines.router.routing.values import key_value, typed_key


def route_select(stmt: ast.SelectStmt, ctx: Context) -> Route:
    """A SELECT's shards from its key conditions; on several, its rewrite and merge."""
    analysis = Analysis(ctx)
    top = analysis.select(stmt, None)
    shards, note = analysis.decide(top)
    if not shards:
        what = "reference table" if analysis.references else "no sharded table"
        return Route((0,), None, Single(), f"{what}: read on shard 0", False)
    if stmt.intoClause is not None:
        raise RouteError("SELECT INTO from a sharded table is not supported")
    if len(shards) == 1:
        return Route(shards, None, Single(), note or f"key pinned: {describe(shards, ctx)}", False)
    merge, rewritten, how = _plan_fanout(copy.deepcopy(stmt), ctx)
    reason = f"{describe(shards, ctx)}, {how}"
    if rewritten is None:
        return Route(shards, None, merge, reason, False)
    before = tuple(sorted({n.number for n in walk(stmt) if isinstance(n, ast.ParamRef)}))
    used = renumber_params(rewritten)  # a rewrite may drop a HAVING or LIMIT parameter
    param_map = dict.fromkeys(shards, used) if used != before else None
    text = deparse(rewritten)
    return Route(shards, dict.fromkeys(shards, text), merge, reason, False, param_map=param_map)


def _plan_fanout(q: ast.SelectStmt, ctx: Context) -> tuple[Merge, ast.SelectStmt | None, str]:
    """How shards' results of a SELECT combine, with the per-shard text if it changes."""
    if q.op != SetOperation.SETOP_NONE:
        raise RouteError("UNION/INTERSECT/EXCEPT across shards is not supported")
    local = [q.targetList, q.sortClause, q.havingClause]
    if q.windowClause or has_window(local):
        raise RouteError("window functions across shards are not supported")
    if q.limitOption == LimitOption.LIMIT_OPTION_WITH_TIES:
        raise RouteError("FETCH ... WITH TIES across shards is not supported")
    limit = _limit_value(q.limitCount, ctx)
    offset = _limit_value(q.limitOffset, ctx) or 0
    distinct = bool(q.distinctClause)
    if distinct and q.distinctClause != (None,):
        raise RouteError("DISTINCT ON across shards is not supported")
    if q.groupClause or q.havingClause or has_aggregate(local):
        return plan_aggregate(q, limit, offset, ctx)
    if distinct:
        return _plan_distinct(q, limit, offset)
    if q.sortClause or limit is not None or offset:
        return _plan_order_limit(q, limit, offset)
    return Concat(), None, "rows concatenated"


def _limit_value(node: object, ctx: Context) -> int | None:
    if node is None or (isinstance(node, ast.A_Const) and node.isnull):
        return None
    value = key_value(node, ctx)
    if isinstance(value, str):  # a text-format parameter
        value = typed_key(value, "int")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if value is None:
        return None
    raise RouteError("LIMIT/OFFSET across shards must be an integer constant or parameter")


def _push_limit(q: ast.SelectStmt, limit: int | None, offset: int) -> None:
    """Each shard returns its first limit + offset rows; the merger applies the OFFSET."""
    q.limitOffset = None
    if limit is not None:
        q.limitCount = int_const(limit + offset)
        q.limitOption = LimitOption.LIMIT_OPTION_COUNT


def _plan_order_limit(
    q: ast.SelectStmt, limit: int | None, offset: int
) -> tuple[Merge, ast.SelectStmt | None, str]:
    targets = list(q.targetList)
    hidden = [
        ast.ResTarget(val=copy.deepcopy(sort.node))
        for sort in q.sortClause or ()
        if resolve_output(sort.node, targets) is None
    ]
    sort_keys = _finish_keys(q.sortClause or (), targets, hidden)
    q.targetList = (*targets, *hidden)
    _push_limit(q, limit, offset)
    merge = OrderLimit(tuple(sort_keys), limit, offset, len(hidden))
    how = "merge-sorted" if sort_keys else "rows concatenated"
    if limit is not None:
        how += f", LIMIT {limit} OFFSET {offset} pushed down as LIMIT {limit + offset}"
    return merge, q, how


def _finish_keys(
    sorts: Sequence[ast.SortBy], targets: list[ast.ResTarget], hidden: list[ast.ResTarget]
) -> list[SortKey]:
    """Sort keys by column index; hidden sort columns get negative indexes (from the end)."""
    keys = []
    hidden_seen = 0
    for sort in sorts:
        index = resolve_output(sort.node, targets)
        if index is None:
            index = hidden_seen - len(hidden)
            hidden_seen += 1
        keys.append(sort_key(sort, index))
    return keys


def _plan_distinct(
    q: ast.SelectStmt, limit: int | None, offset: int
) -> tuple[Merge, ast.SelectStmt | None, str]:
    targets = list(q.targetList)
    keys = []
    for sort in q.sortClause or ():
        index = resolve_output(sort.node, targets)
        if index is None:
            raise RouteError("ORDER BY of a cross-shard DISTINCT must name a selected column")
        keys.append(sort_key(sort, index))
    if not keys and limit is None and not offset:
        return Distinct(), None, "distinct rows merged"
    _push_limit(q, limit, offset)
    return Distinct(OrderLimit(tuple(keys), limit, offset)), q, "distinct rows merged"
