"""ORDER BY items as select-list columns: what a merge of sorted shard results sorts on.

The executor merges the shards' rows by column index, so each ORDER BY item (a position, an
output name or an expression) must be resolved to the select-list column it names, exactly
as PostgreSQL would resolve it, including the names it gives unnamed columns.
"""

from __future__ import annotations

from collections.abc import Sequence

from pglast import ast
from pglast.enums import A_Expr_Kind, SortByDir, SortByNulls

from engines.router.routing.plan import RouteError, SortKey
from engines.router.routing.tree import deparse, funcname


def is_star(target: ast.ResTarget) -> bool:
    return isinstance(target.val, ast.ColumnRef) and isinstance(target.val.fields[-1], ast.A_Star)


def _output_name(target: ast.ResTarget) -> str | None:
    """The column name PostgreSQL gives a select-list item (FigureColname), None if unsure."""
    return target.name or _figure_name(target.val)[0]


_UNNAMED = ("?column?", 0)
_FIXED_NAMES = {
    ast.A_ArrayExpr: "array",
    ast.RowExpr: "row",
    ast.CoalesceExpr: "coalesce",
    ast.GroupingFunc: "grouping",
}


def _figure_name(node: object) -> tuple[str | None, int]:
    """(name, strength) as in PostgreSQL's FigureColnameInternal, for the common nodes."""
    if isinstance(node, ast.ColumnRef):
        last = node.fields[-1]
        return (last.sval, 2) if isinstance(last, ast.String) else (None, 0)
    if isinstance(node, ast.FuncCall):
        return funcname(node), 2
    if isinstance(node, ast.TypeCast | ast.CollateClause):
        name, strength = _figure_name(node.arg)
        if strength <= 1 and isinstance(node, ast.TypeCast):
            return node.typeName.names[-1].sval, 1
        return name, strength
    if isinstance(node, ast.CaseExpr):
        name, strength = _figure_name(node.defresult)
        return (name, strength) if strength > 1 else ("case", 1)
    if type(node) in _FIXED_NAMES:
        return _FIXED_NAMES[type(node)], 2
    if isinstance(node, ast.MinMaxExpr):
        return ("greatest" if node.op == 0 else "least"), 2
    if isinstance(node, ast.A_Expr):
        return ("nullif", 2) if node.kind == A_Expr_Kind.AEXPR_NULLIF else _UNNAMED
    if isinstance(node, ast.A_Const | ast.ParamRef | ast.BoolExpr | ast.NullTest):
        return _UNNAMED
    if isinstance(node, ast.BooleanTest) or node is None:
        return _UNNAMED
    return None, 0  # subqueries, SQL value functions...: not worth guessing


def resolve_output(node: ast.Node, targets: Sequence[ast.ResTarget]) -> int | None:
    """Which select-list column an ORDER BY item names (position, output name, or the same
    expression); None when it is none of them or its position is unknown (after a ``*``)."""
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.Integer):
        position = node.val.ival - 1
        if not 0 <= position < len(targets) or any(is_star(t) for t in targets[: position + 1]):
            raise RouteError("ORDER BY position across shards must name an explicit column")
        return position
    known = []
    for index, target in enumerate(targets):
        if is_star(target):
            break
        known.append((index, target))
    bare = isinstance(node, ast.ColumnRef) and len(node.fields) == 1
    if bare and isinstance(node.fields[0], ast.String):  # an output column's name first
        index = _named_output(node.fields[0].sval, targets, len(known))
        if index is not None:
            return index
    text = deparse(node)
    for index, target in known:
        if deparse(target.val) == text:
            return index
    return None


def _named_output(name: str, targets: Sequence[ast.ResTarget], known: int) -> int | None:
    """The select-list item an ORDER BY bare name resolves to, as PostgreSQL does."""
    names = [None if is_star(t) else _output_name(t) for t in targets]
    named = [i for i, n in enumerate(names) if n == name]
    if len(named) > 1:
        raise RouteError(f'ORDER BY "{name}" is ambiguous')
    if named and named[0] >= known:
        raise RouteError(f'ORDER BY "{name}" across shards: list the column before any *')
    if not named and any(n is None and not is_star(t) for n, t in zip(names, targets, strict=True)):
        raise RouteError(f'ORDER BY "{name}" across shards: name the select-list items (AS)')
    return named[0] if named else None


def sort_key(sort: ast.SortBy, index: int) -> SortKey:
    if sort.sortby_dir == SortByDir.SORTBY_USING:
        raise RouteError("ORDER BY ... USING across shards is not supported")
    descending = sort.sortby_dir == SortByDir.SORTBY_DESC
    if sort.sortby_nulls == SortByNulls.SORTBY_NULLS_DEFAULT:
        nulls_first = descending  # PostgreSQL: NULLs sort as larger than any value
    else:
        nulls_first = sort.sortby_nulls == SortByNulls.SORTBY_NULLS_FIRST
    return (index, descending, nulls_first)
