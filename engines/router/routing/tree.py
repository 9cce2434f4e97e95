"""Small reads and edits of a pglast parse tree that several routing rules share.

Walking, deparsing, splitting a condition into conjuncts and renumbering parameters are not
routing decisions; keeping them here lets the rule modules read as rules.
"""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast
from pglast.enums import BoolExprType
from pglast.stream import RawStream

from engines.router.routing.plan import Schema


def walk(node: object, into_subqueries: bool = True) -> Iterator[ast.Node]:
    """Every node under ``node`` (itself included), depth first."""
    if isinstance(node, list | tuple):
        for item in node:
            yield from walk(item, into_subqueries)
        return
    if not isinstance(node, ast.Node):
        return
    yield node
    if not into_subqueries and isinstance(node, ast.SubLink):
        return
    for attr in node:
        yield from walk(getattr(node, attr), into_subqueries)


def deparse(node: ast.Node) -> str:
    return RawStream()(node)


def relname(node: object) -> str | None:
    return node.relname if isinstance(node, ast.RangeVar) else None


def sharded_names(node: object, schema: Schema) -> set[str]:
    """Names of sharded tables read anywhere under ``node`` (CTE names shadow nothing here:
    a conservative over-approximation, only used to refuse)."""
    return {n.relname for n in walk(node) if isinstance(n, ast.RangeVar)} & set(schema.tables)


def conjuncts(node: object) -> list[ast.Node]:
    """The top-level AND conjuncts of a boolean expression."""
    if node is None:
        return []
    if isinstance(node, ast.BoolExpr) and node.boolop == BoolExprType.AND_EXPR:
        return [c for arg in node.args for c in conjuncts(arg)]
    return [node]


def op_name(expr: ast.A_Expr) -> str:
    return expr.name[-1].sval


def funcname(call: ast.FuncCall) -> str:
    return call.funcname[-1].sval.lower()


def int_const(value: int) -> ast.A_Const:
    return ast.A_Const(isnull=False, val=ast.Integer(ival=value))


def has_window(node: object) -> bool:
    return any(
        isinstance(n, ast.FuncCall) and n.over is not None
        for n in walk(node, into_subqueries=False)
    )


def renumber_params(node: ast.Node) -> tuple[int, ...]:
    refs = [n for n in walk(node) if isinstance(n, ast.ParamRef)]
    used = tuple(sorted({ref.number for ref in refs}))
    new = {old: index + 1 for index, old in enumerate(used)}
    for ref in refs:
        ref.number = new[ref.number]
    return used
