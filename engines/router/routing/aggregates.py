"""Aggregates and GROUP BY across shards: partial aggregates per shard, combined on merge.

count, sum, min and max combine from per-shard partials; avg does not, so each shard is sent
sum and count instead and the merge divides. HAVING and ORDER BY move from the shards to the
merge, since they apply to whole groups. Anything whose partials do not combine exactly
(``count(DISTINCT ...)``, other aggregates, grouping sets) is refused.
"""

from __future__ import annotations

import copy
from decimal import Decimal

from pglast import ast
from pglast.enums import A_Expr_Kind

from engines.router.routing.context import Context
from engines.router.routing.ordering import is_star, resolve_output, sort_key
from engines.router.routing.plan import (
    Aggregate,
    Avg,
    Col,
    HavingTerm,
    Merge,
    OrderLimit,
    RouteError,
)
from engines.router.routing.tree import conjuncts, deparse, funcname, op_name, walk
from engines.router.routing.values import UNUSABLE, key_value

_SUPPORTED_AGGREGATES = frozenset({"count", "sum", "min", "max", "avg"})
_OTHER_AGGREGATES = frozenset(
    {
        "array_agg",
        "string_agg",
        "json_agg",
        "jsonb_agg",
        "json_object_agg",
        "jsonb_object_agg",
        "json_arrayagg",
        "json_objectagg",
        "xmlagg",
        "bool_and",
        "bool_or",
        "every",
        "bit_and",
        "bit_or",
        "bit_xor",
        "stddev",
        "stddev_pop",
        "stddev_samp",
        "variance",
        "var_pop",
        "var_samp",
        "corr",
        "covar_pop",
        "covar_samp",
        "regr_avgx",
        "regr_avgy",
        "regr_count",
        "regr_intercept",
        "regr_r2",
        "regr_slope",
        "regr_sxx",
        "regr_sxy",
        "regr_syy",
        "percentile_cont",
        "percentile_disc",
        "mode",
        "range_agg",
        "range_intersect_agg",
        "any_value",
        "grouping",
    }
)


def is_aggregate(node: object) -> bool:
    if not isinstance(node, ast.FuncCall) or node.over is not None:
        return False
    name = funcname(node)
    return (
        name in _SUPPORTED_AGGREGATES
        or name in _OTHER_AGGREGATES
        or bool(node.agg_star or node.agg_distinct or node.agg_order or node.agg_filter)
        or bool(node.agg_within_group)
    )


def has_aggregate(node: object) -> bool:
    return any(is_aggregate(n) for n in walk(node, into_subqueries=False))


class _AggregatePlan:
    """Rewrites a grouped or aggregate SELECT into what each shard computes."""

    def __init__(self, q: ast.SelectStmt, ctx: Context) -> None:
        self.q = q
        self.ctx = ctx
        self.group_indexes: list[int] = []
        self.original: list[ast.ResTarget] = list(q.targetList)
        self.targets: list[ast.ResTarget] = []
        self.aggregates: list[tuple[int, str]] = []
        self.output: list[Col | Avg] = []

    def add(self, val: ast.Node, name: str | None = None) -> int:
        self.targets.append(ast.ResTarget(name=name, val=val))
        return len(self.targets) - 1

    def aggregate(
        self, call: ast.FuncCall, name: str | None = None, own: bool = False
    ) -> Col | Avg:
        """Shard column(s) for an aggregate call. A selected one (``own``) gets its own column
        under the client's name; the parts of avg and HAVING's reuse any equal column."""
        kind = funcname(call)
        if kind not in _SUPPORTED_AGGREGATES:
            raise RouteError(f"aggregate {kind}() across shards is not supported")
        if call.agg_distinct:
            raise RouteError(f"{kind}(DISTINCT ...) across shards is not supported")
        if call.agg_within_group:
            raise RouteError(f"{kind}() WITHIN GROUP across shards is not supported")
        if kind == "avg":
            total = self.aggregate_part(call, "sum")
            return Avg(total, self.aggregate_part(call, "count"), name or "avg")
        return Col(self.aggregate_part(call, kind, name, own))

    def aggregate_part(
        self, call: ast.FuncCall, kind: str, name: str | None = None, own: bool = False
    ) -> int:
        part = copy.deepcopy(call)
        part.funcname = (ast.String(sval=kind),)
        text = deparse(part)
        for index, _kind in () if own else self.aggregates:
            if deparse(self.targets[index].val) == text:
                return index
        index = self.add(part, name)
        self.aggregates.append((index, kind))
        return index

    def select_list(self) -> None:
        for target in self.original:
            if is_star(target):
                raise RouteError("SELECT * with aggregates across shards is not supported")
            if is_aggregate(target.val):
                self.output.append(self.aggregate(target.val, target.name, own=True))
            elif has_aggregate(target.val):
                raise RouteError(
                    "an expression over an aggregate across shards is not supported: "
                    "select the aggregate itself"
                )
            else:
                self.output.append(Col(self.add(copy.deepcopy(target.val), target.name)))

    def group_by(self) -> list[int]:
        indexes = []
        items = []
        for item in self.q.groupClause or ():
            if isinstance(item, ast.GroupingSet):
                raise RouteError("GROUPING SETS, ROLLUP and CUBE across shards are not supported")
            if isinstance(item, ast.A_Const) and isinstance(item.val, ast.Integer):
                position = item.val.ival - 1
                if not 0 <= position < len(self.original):
                    raise RouteError("GROUP BY position out of range")
                item = self.original[position].val
                if has_aggregate(item):
                    raise RouteError("GROUP BY an aggregate is not allowed")
            items.append(item)
            indexes.append(self.group_column(item))
        self.q.groupClause = tuple(copy.deepcopy(items)) or None
        return indexes

    def group_column(self, item: ast.Node) -> int:
        text = deparse(item)
        for target, out in zip(self.original, self.output, strict=True):
            if isinstance(out, Col) and deparse(target.val) == text:
                return out.index
        return self.add(copy.deepcopy(item))

    def having(self) -> list[HavingTerm]:
        terms = []
        for conjunct in conjuncts(self.q.havingClause):
            terms.append(self.having_term(conjunct))
        self.q.havingClause = None
        return terms

    def having_term(self, node: ast.Node) -> HavingTerm:
        flipped = {"=": "=", "<>": "<>", "!=": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
        if not (isinstance(node, ast.A_Expr) and node.kind == A_Expr_Kind.AEXPR_OP):
            raise RouteError("HAVING across shards supports only comparisons joined by AND")
        op = op_name(node)
        if op not in flipped:
            raise RouteError(f"HAVING operator {op} across shards is not supported")
        left, right = node.lexpr, node.rexpr
        if _is_constant(left) and not _is_constant(right):
            left, right, op = right, left, flipped[op]
        if not _is_constant(right):
            raise RouteError("HAVING across shards must compare an aggregate with a constant")
        value = _constant(right, self.ctx)
        return HavingTerm(self.having_value(left), "<>" if op == "!=" else op, value)

    def having_value(self, node: ast.Node) -> Col | Avg:
        if is_aggregate(node):
            return self.aggregate(node)
        text = deparse(node)
        for index in self.group_indexes:
            if deparse(self.targets[index].val) == text:
                return Col(index)
        raise RouteError("HAVING across shards must compare an aggregate or a grouped column")

    def order(self, limit: int | None, offset: int) -> OrderLimit | None:
        keys = []
        for sort in self.q.sortClause or ():
            index = resolve_output(sort.node, self.original)
            if index is None:
                raise RouteError("ORDER BY of a cross-shard aggregate must name a selected column")
            keys.append(sort_key(sort, index))
        self.q.sortClause = None
        self.q.limitCount = self.q.limitOffset = None
        if not keys and limit is None and not offset:
            return None
        return OrderLimit(tuple(keys), limit, offset)


def _constant(node: ast.Node, ctx: Context) -> object:
    """The Python value of a constant HAVING operand (numeric literals as Decimal)."""
    inner = node.arg if isinstance(node, ast.TypeCast) else node
    if isinstance(inner, ast.A_Const) and isinstance(inner.val, ast.Float):
        return Decimal(inner.val.fval)
    if isinstance(inner, ast.A_Const) and isinstance(inner.val, ast.Boolean):
        return inner.val.boolval
    value = key_value(node, ctx)
    if value is UNUSABLE:
        raise RouteError(f"HAVING across shards cannot compare with {deparse(node)}")
    return value


def _is_constant(node: object) -> bool:
    if isinstance(node, ast.TypeCast):
        return _is_constant(node.arg)
    return isinstance(node, ast.A_Const | ast.ParamRef)


def plan_aggregate(
    q: ast.SelectStmt, limit: int | None, offset: int, ctx: Context
) -> tuple[Merge, ast.SelectStmt | None, str]:
    if q.distinctClause:
        raise RouteError("SELECT DISTINCT with aggregates across shards is not supported")
    if q.groupDistinct:
        raise RouteError("GROUP BY DISTINCT across shards is not supported")
    plan = _AggregatePlan(q, ctx)
    plan.select_list()
    group_by = plan.group_by()
    plan.group_indexes = group_by
    having = plan.having()
    order = plan.order(limit, offset)
    q.targetList = tuple(plan.targets)
    merge = Aggregate(
        tuple(group_by), tuple(plan.aggregates), tuple(plan.output), tuple(having), order
    )
    how = "aggregates merged" + (" by group" if group_by else "")
    return merge, q, how
