"""Which writes narrow their rows: the every-row rule behind ``delete_without_where``,
``update_without_where`` and ``merge_without_condition``.

A WHERE that merely mentions a column proves nothing (``id = id``, ``id IS NOT NULL``,
``v = v OR true`` match every row). A write passes when one of its AND-ed conditions
compares a column of the target itself with values free of columns, or when a WHERE free
of columns is known to match no row (``WHERE false``; ``WHERE $1`` is decided at Bind). A
join with another relation never narrows: the client may create a table, or a view,
holding every key, so it proves nothing about how many rows go.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .bind_checks import DeferredWhere, matches_no_row
from .parse_tree import has, relation_name, strings

if TYPE_CHECKING:
    from .tree_policy import Decision

# Comparisons that narrow a write to the rows matching a value; `<>` matches nearly all.
# Ranges are taken at their word (`created < now() - interval '30 days'`): data may make one
# cover every row, as it may an equality; the form is what the guard can judge. LIKE narrows
# only with a pattern of its own (see _pattern).
_NARROWING_OPERATORS = frozenset({"=", "<", ">", "<=", ">="})


def every_row(relation: dict, where: Any, others: bool, rule: str, verb: str, d: Decision) -> None:
    """A write must narrow its rows: a conjunct of its WHERE compares a column of the
    target with a value (see _narrows), or WHERE CURRENT OF; or the WHERE, free of
    columns, is known to match no row (then or at Bind)."""
    what = f'{verb} on "{relation_name(relation)}" may change every row'
    if where is None:
        d.refuse(rule, f"{what}: it has no WHERE")
        return
    targets = _target_names(relation)
    if any(_narrows(c, targets, others, relation) for c in _conjuncts(where)):
        return
    if has(where, {"ColumnRef", "SubLink", "FuncCall", "CurrentOfExpr"}):
        d.refuse(rule, f"{what}: no condition of its WHERE narrows the rows by a column")
        return
    d.value_dependent = True
    if has(where, {"ParamRef"}):
        d.deferred.append(DeferredWhere(where, rule, f"{what}: the bound values match all"))
    elif not matches_no_row(where):
        d.refuse(rule, f"{what}: its WHERE holds for every row")


def _target_names(relation: dict) -> set[str]:
    alias = (relation.get("alias") or {}).get("aliasname")
    return {alias} if alias else {relation.get("relname", "")}


def _conjuncts(clause: Any) -> Iterator[Any]:
    stack = [clause]
    while stack:
        item = stack.pop()
        boolean = item.get("BoolExpr") if isinstance(item, dict) else None
        if boolean is not None and boolean.get("boolop") == "AND_EXPR":
            stack.extend(boolean.get("args", []))
        else:
            yield item


def _narrows(
    clause: Any, targets: set[str], qualified_only: bool, relation: dict | None = None
) -> bool:
    """Whether one condition narrows the rows: a column of the target compared (=, <,
    >, <=, >=, IN a list, = ANY, BETWEEN) with values free of columns, or LIKE a pattern
    with a character of its own, IS NULL, a boolean column of the target (or NOT it),
    CURRENT OF, IN a subquery over the same relation that narrows its own rows; or an OR
    whose every branch narrows.

    A join with another relation never narrows: the client may create a table (or a
    view) holding every key, so it proves nothing about how many rows go."""
    if not isinstance(clause, dict) or len(clause) != 1:
        return False
    ((kind, node),) = clause.items()
    if kind == "CurrentOfExpr":
        return True
    if kind == "ColumnRef" or (
        kind == "BoolExpr" and node.get("boolop") == "NOT_EXPR"
        and len(node.get("args", [])) == 1 and "ColumnRef" in node["args"][0]
    ):  # fmt: skip
        return _target_side(clause, targets, qualified_only)
    if kind == "SubLink" and relation is not None:
        return (
            node.get("subLinkType") == "ANY_SUBLINK"
            and strings(node.get("operName")) in ([], ["="])
            and _target_side(node.get("testexpr"), targets, qualified_only)
            and _narrowing_subquery(node.get("subselect"), relation)
        )
    if kind == "NullTest":
        return node.get("nulltesttype") == "IS_NULL" and _target_side(
            node.get("arg"), targets, qualified_only
        )
    if kind == "BoolExpr" and node.get("boolop") == "OR_EXPR":
        return all(_narrows(arg, targets, qualified_only) for arg in node.get("args", []))
    if kind != "A_Expr":
        return False
    op, names = node.get("kind"), strings(node.get("name"))
    left, right = node.get("lexpr"), node.get("rexpr")
    if op == "AEXPR_OP" and names[-1:] and names[-1] in _NARROWING_OPERATORS:
        sides = [(left, right), (right, left)]
        return any(_target_side(a, targets, qualified_only) and _value(b) for a, b in sides)
    if op in {"AEXPR_LIKE", "AEXPR_ILIKE"} and names[-1:] in (["~~"], ["~~*"]):
        return _target_side(left, targets, qualified_only) and _pattern(right)
    if (op in {"AEXPR_IN", "AEXPR_OP_ANY"} and names == ["="]) or op in {
        "AEXPR_BETWEEN", "AEXPR_BETWEEN_SYM"
    }:  # fmt: skip
        return _target_side(left, targets, qualified_only) and _value(right)
    return False


def _pattern(node: Any) -> bool:
    """A LIKE pattern written out that holds a character of its own: `'%3'` narrows,
    `'%'`, `'_%'` or a bound parameter may match every row. (The verdict cache keeps string
    constants exactly, so reading one here is safe to share.)"""
    while isinstance(node, dict) and "TypeCast" in node:
        node = node["TypeCast"].get("arg")
    const = node.get("A_Const", {}) if isinstance(node, dict) else {}
    text = const.get("sval", {}).get("sval") if "sval" in const else None
    return isinstance(text, str) and any(c not in "%_" for c in text)


def _narrowing_subquery(subselect: Any, relation: dict) -> bool:
    """``SELECT … FROM <the target relation itself> WHERE <narrowing>``: its rows are
    a narrowed subset of the target's (Django deletes with ``pk IN (SELECT …)``)."""
    select = (subselect or {}).get("SelectStmt", {})
    sources = select.get("fromClause") or []
    if len(sources) != 1 or "RangeVar" not in sources[0] or select.get("withClause"):
        return False
    inner = sources[0]["RangeVar"]
    same = (inner.get("schemaname"), inner.get("relname")) == (
        relation.get("schemaname"), relation.get("relname"))  # fmt: skip
    where = select.get("whereClause")
    if not same or where is None:
        return False
    targets = _target_names(inner)
    # It must select a bare column of its own rows: `SELECT o.id` (the outer row's) or
    # `SELECT generate_series(…)` would give any key at all.
    selected = select.get("targetList") or []
    if len(selected) != 1 or not _target_side(selected[0]["ResTarget"].get("val"), targets, False):
        return False
    return any(_narrows(c, targets, False, inner) for c in _conjuncts(where))


def _target_side(node: Any, targets: set[str], qualified_only: bool) -> bool:
    """A bare column of the target, or a cast of one. Nothing computed: `id * 0`,
    `nullif(id, id)`, `id - id` or `email || 'x'` hold one value for every row."""
    while isinstance(node, dict) and "TypeCast" in node:
        node = node["TypeCast"].get("arg")
    column = node.get("ColumnRef") if isinstance(node, dict) else None
    if column is None:
        return False
    names = strings(column.get("fields"))
    if not names or len(names) != len(column.get("fields", [])):
        return False  # t.*
    if len(names) == 1:
        return not qualified_only  # with other tables in FROM/USING it could be theirs
    return names[-2] in targets


def _value(node: Any) -> bool:
    """An expression free of columns and subqueries: one value (or list) for all rows."""
    return node is not None and not has(node, {"ColumnRef", "SubLink"})


def upsert(node: dict, d: Decision) -> None:
    conflict = node.get("onConflictClause") or {}
    if conflict.get("action") != "ONCONFLICT_UPDATE":
        return
    select = (node.get("selectStmt") or {}).get("SelectStmt", {})
    if select.get("valuesLists") and not select.get("fromClause"):
        return  # the rows it may update are those its own VALUES name
    d.refuse(
        "merge_without_condition",
        f'INSERT … SELECT … ON CONFLICT DO UPDATE on "{relation_name(node["relation"])}" '
        "may update every row",
    )


def merge(node: dict, d: Decision) -> None:
    """MERGE updates or deletes only the target rows its source matches: fine when the
    source is a VALUES list joined on a target column, or when each WHEN clause that
    updates or deletes narrows the rows itself."""
    relation = node.get("relation") or {}
    targets = _target_names(relation)
    source = node.get("sourceRelation") or {}
    subquery = source.get("RangeSubselect", {}).get("subquery", {}).get("SelectStmt", {})
    values_source = bool(subquery.get("valuesLists")) and not subquery.get("fromClause")
    source_alias = (source.get("RangeSubselect", {}).get("alias") or {}).get("aliasname")
    joined = values_source and any(
        _joins_values(c, targets, source_alias) for c in _conjuncts(node.get("joinCondition"))
    )
    for clause in node.get("mergeWhenClauses", []):
        when = clause.get("MergeWhenClause", {})
        if when.get("commandType") not in {"CMD_UPDATE", "CMD_DELETE"}:
            continue
        matched = when.get("matchKind") == "MERGE_WHEN_MATCHED"
        if matched and joined:
            continue
        condition = when.get("condition")
        if condition is not None and any(_narrows(c, targets, True) for c in _conjuncts(condition)):
            continue
        d.refuse(
            "merge_without_condition",
            f'MERGE into "{relation_name(relation)}" may change every row',
        )


def _joins_values(clause: Any, targets: set[str], source: str | None) -> bool:
    node = clause.get("A_Expr") if isinstance(clause, dict) else None
    if not node or node.get("kind") != "AEXPR_OP" or strings(node.get("name")) != ["="]:
        return False
    sides = [node.get("lexpr"), node.get("rexpr")]
    refs = [strings((s or {}).get("ColumnRef", {}).get("fields")) for s in sides]
    if any(len(r) != 2 for r in refs):
        return False
    return {refs[0][0], refs[1][0]} == {next(iter(targets)), source}
