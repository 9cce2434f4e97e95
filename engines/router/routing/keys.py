"""Which shards a statement's rows are on: shard-key conditions and co-location.

A statement can run on one shard only if its key conditions (``key = 3``, ``key IN (...)``,
``key = ANY($1)``) pin it there, and it can run on several only if every sharded table it
reads meets the others on their keys (joins, ``IN (SELECT ...)``, correlated subqueries), so
that each shard has all the rows it needs. ``Analysis`` collects both kinds of fact per scope
and decides the shards, or refuses the statement with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pglast import ast
from pglast.enums import A_Expr_Kind, JoinType, SetOperation, SubLinkType

from engines.router.routing.context import Context
from engines.router.routing.plan import RouteError
from engines.router.routing.tree import conjuncts, has_window, op_name
from engines.router.routing.values import key_value

Token = tuple[int, str]  # (relation id, column)


@dataclass
class _Rel:
    """A relation in a FROM list (table, CTE, subquery, function) under its alias."""

    alias: str
    table: str | None  # sharded table name, or None for anything else
    key: str | None
    scope: int


@dataclass
class _Scope:
    """One SELECT level: its relations, visible CTE names, equalities and key pins."""

    parent: int | None
    rels: list[int] = field(default_factory=list)
    ctes: set[str] = field(default_factory=set)
    equalities: list[tuple[Token, Token]] = field(default_factory=list)
    pins: list[tuple[Token, list[ast.Node], bool]] = field(default_factory=list)


class Analysis:
    """Relations of a statement by scope (each SELECT level), with the column equalities and
    key pins (``key = 3``, ``key IN (...)``) that its top-level conjuncts guarantee."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.rels: list[_Rel] = []
        self.scopes: list[_Scope] = []
        self.references: set[str] = set()

    # -- building -----------------------------------------------------------------------------

    def new_scope(self, parent: int | None) -> int:
        self.scopes.append(_Scope(parent))
        return len(self.scopes) - 1

    def select(self, stmt: ast.SelectStmt, parent: int | None) -> int:
        scope = self.new_scope(parent)
        self.with_clause(stmt.withClause, scope)
        if stmt.op != SetOperation.SETOP_NONE:
            self.select(stmt.larg, scope)
            self.select(stmt.rarg, scope)
            return scope
        for item in stmt.fromClause or ():
            self.from_item(item, scope)
        self.where(stmt.whereClause, scope)
        for part in (
            stmt.targetList,
            stmt.groupClause,
            stmt.havingClause,
            stmt.sortClause,
            stmt.valuesLists,
            stmt.limitCount,
            stmt.limitOffset,
            stmt.distinctClause,
        ):
            self.sublinks(part, scope)
        return scope

    def with_clause(self, clause: ast.WithClause | None, scope: int) -> None:
        """CTEs as child scopes; a CTE's name hides a table of that name only where it is
        visible: in later CTEs and the statement, and in every CTE of a WITH RECURSIVE."""
        if clause is None:
            return
        if clause.recursive:
            self.scopes[scope].ctes.update(cte.ctename for cte in clause.ctes)
        for cte in clause.ctes:
            if not isinstance(cte.ctequery, ast.SelectStmt):
                raise RouteError("data-modifying WITH is not supported through the router")
            self.select(cte.ctequery, scope)
            self.scopes[scope].ctes.add(cte.ctename)

    def add_rel(self, alias: str, table: str | None, scope: int) -> int:
        key = self.ctx.schema.tables.get(table) if table else None
        self.rels.append(_Rel(alias, table if key else None, key, scope))
        self.scopes[scope].rels.append(len(self.rels) - 1)
        return len(self.rels) - 1

    def range_var(self, node: ast.RangeVar, scope: int) -> int:
        alias = node.alias.aliasname if node.alias else node.relname
        if not node.schemaname and self.is_cte(node.relname, scope):
            return self.add_rel(alias, None, scope)
        if node.relname in self.ctx.schema.reference:
            self.references.add(node.relname)
        return self.add_rel(alias, node.relname, scope)

    def is_cte(self, name: str, scope: int | None) -> bool:
        while scope is not None:
            if name in self.scopes[scope].ctes:
                return True
            scope = self.scopes[scope].parent
        return False

    def from_item(self, item: ast.Node, scope: int) -> None:
        if isinstance(item, ast.RangeVar):
            self.range_var(item, scope)
        elif isinstance(item, ast.JoinExpr):
            self.from_item(item.larg, scope)
            self.from_item(item.rarg, scope)
            inner = item.jointype == JoinType.JOIN_INNER
            self.conditions(item.quals, scope, pins=inner)
            self.using(item, scope)
            self.sublinks(item.quals, scope)
        elif isinstance(item, ast.RangeSubselect):
            self.select(item.subquery, scope)
            self.add_rel(item.alias.aliasname if item.alias else "", None, scope)
        elif isinstance(item, ast.RangeTableSample):
            self.from_item(item.relation, scope)
        else:  # functions, XMLTABLE, JSON_TABLE: columns unknown, may hold subqueries
            self.sublinks(item, scope)
            self.add_rel(getattr(getattr(item, "alias", None), "aliasname", ""), None, scope)

    def using(self, join: ast.JoinExpr, scope: int) -> None:
        if not join.usingClause:
            return
        if not (isinstance(join.larg, ast.RangeVar) and isinstance(join.rarg, ast.RangeVar)):
            return
        left = self.find_alias(_alias(join.larg), scope)
        right = self.find_alias(_alias(join.rarg), scope)
        if left is not None and right is not None:
            for column in join.usingClause:
                self.scopes[scope].equalities.append(((left, column.sval), (right, column.sval)))

    def where(self, clause: object, scope: int) -> None:
        self.conditions(clause, scope, pins=True)
        for conjunct in conjuncts(clause):
            if _is_in_subquery(conjunct):
                self.in_subquery(conjunct, scope)
            else:
                self.sublinks(conjunct, scope)

    def in_subquery(self, link: ast.SubLink, scope: int) -> None:
        """``x IN (SELECT y ...)`` as a WHERE conjunct: only the rows with y = x decide it, so
        the equality holds inside the subquery (not with LIMIT: that picks rows before it)."""
        self.sublinks(link.testexpr, scope)
        sub = link.subselect
        inner = self.select(sub, scope)
        if sub.op != SetOperation.SETOP_NONE or sub.limitCount or sub.limitOffset:
            return
        if len(sub.targetList) != 1 or has_window(sub.targetList):
            return
        outer = self.token(link.testexpr, scope)
        column = self.token(sub.targetList[0].val, inner)
        if outer is not None and column is not None:
            self.scopes[inner].equalities.append((outer, column))

    def conditions(self, clause: object, scope: int, pins: bool) -> None:
        for conjunct in conjuncts(clause):
            self.condition(conjunct, scope, pins)

    def condition(self, node: ast.Node, scope: int, pins: bool) -> None:
        if not isinstance(node, ast.A_Expr) or op_name(node) != "=":
            return
        kind = node.kind
        left, right = node.lexpr, node.rexpr
        if kind == A_Expr_Kind.AEXPR_OP:
            if isinstance(right, ast.ColumnRef) and not isinstance(left, ast.ColumnRef):
                left, right = right, left
            token = self.token(left, scope)
            if token is None:
                return
            if isinstance(right, ast.ColumnRef):
                other = self.token(right, scope)
                if other is not None:
                    self.scopes[scope].equalities.append((token, other))
            elif pins:
                self.pin(token, [right], scope)
        elif kind == A_Expr_Kind.AEXPR_IN and pins:
            token = self.token(left, scope)
            if token is not None:
                self.pin(token, list(right), scope)
        elif kind == A_Expr_Kind.AEXPR_OP_ANY and pins:
            token = self.token(left, scope)
            if token is None:
                return
            if isinstance(right, ast.A_ArrayExpr):
                self.pin(token, list(right.elements or ()), scope)
            else:
                self.pin(token, [right], scope, array=True)

    def pin(self, token: Token, nodes: list[ast.Node], scope: int, array: bool = False) -> None:
        self.scopes[scope].pins.append((token, nodes, array))

    def token(self, node: object, scope: int) -> Token | None:
        """Which relation's column a ColumnRef names, when that is certain."""
        if not isinstance(node, ast.ColumnRef):
            return None
        fields = node.fields
        if not all(isinstance(f, ast.String) for f in fields):
            return None
        names = [f.sval for f in fields]
        if len(names) == 1:
            matches = [
                r
                for r in self.scopes[scope].rels
                if self.rels[r].key == names[0]  # else PostgreSQL finds it ambiguous
            ]
            return (matches[0], names[0]) if len(matches) == 1 else None
        rel = self.find_alias(names[-2], scope)
        return None if rel is None else (rel, names[-1])

    def find_alias(self, alias: str, scope: int | None) -> int | None:
        while scope is not None:
            found = [r for r in self.scopes[scope].rels if self.rels[r].alias == alias]
            if found:
                return found[0] if len(found) == 1 else None
            scope = self.scopes[scope].parent
        return None

    def sublinks(self, node: object, scope: int) -> None:
        """Analyze the subqueries under ``node`` as child scopes of ``scope``."""
        if isinstance(node, list | tuple):
            for item in node:
                self.sublinks(item, scope)
        elif isinstance(node, ast.SubLink):
            self.sublinks(node.testexpr, scope)
            self.select(node.subselect, scope)
        elif isinstance(node, ast.SelectStmt):
            self.select(node, scope)
        elif isinstance(node, ast.Node):
            for attr in node:
                self.sublinks(getattr(node, attr), scope)

    # -- deciding ---------------------------------------------------------------------------

    def ancestry(self, scope: int) -> list[int]:
        chain: list[int] = []
        current: int | None = scope
        while current is not None:
            chain.append(current)
            current = self.scopes[current].parent
        return chain

    def classes(self, scope: int) -> _UnionFind:
        """Column equalities that hold for the rows a scope sees: its own and its ancestors'."""
        found = _UnionFind()
        for s in self.ancestry(scope):
            for a, b in self.scopes[s].equalities:
                found.union(a, b)
        return found

    def pinned(self, rel: int, scope: int, classes: _UnionFind) -> frozenset[int] | None:
        """Shards holding the rows of ``rel`` that ``scope``'s own conditions can select."""
        key = (rel, self.rels[rel].key or "")
        result: frozenset[int] | None = None
        for token, nodes, array in self.scopes[scope].pins:
            if classes.find(token) != classes.find(key):
                continue
            values = _pin_values(nodes, array, self.ctx)
            if values is not None:
                table = self.rels[rel].table
                shards = frozenset(self.ctx.shard(v, table) for v in values)
                result = shards if result is None else result & shards
        return result

    def decide(self, top: int) -> tuple[tuple[int, ...], str]:
        """The shards that run the statement, or RouteError when no set of shards can."""
        sharded = [r for r, rel in enumerate(self.rels) if rel.key]
        if not sharded:
            return (), "no sharded table"
        target: frozenset[int] | None = None
        anchored: set[int] = set()
        # Top scope: all its sharded tables must meet on their keys, or all sit on one shard.
        top_rels = [r for r in self.scopes[top].rels if self.rels[r].key]
        if top_rels:
            classes = self.classes(top)
            groups: dict[Token, list[int]] = {}
            for r in top_rels:
                groups.setdefault(classes.find((r, self.rels[r].key or "")), []).append(r)
            pins = [self.pinned(members[0], top, classes) for members in groups.values()]
            if len(groups) == 1:
                target = pins[0] if pins[0] is not None else frozenset(self.ctx.everywhere)
            elif all(p is not None and len(p) == 1 for p in pins) and len(set(pins)) == 1:
                target = pins[0]
            else:
                names = ", ".join(sorted({self.rels[r].table or "" for r in top_rels}))
                raise RouteError(
                    f"join of sharded tables ({names}) not on equality of their key columns "
                    "would need rows from several shards"
                )
            anchored.update(top_rels)
        pending = [r for r in sharded if r not in anchored]
        progress = True
        while pending and progress:
            progress = False
            for r in list(pending):
                scope = self.rels[r].scope
                classes = self.classes(scope)
                visible = {a for a in anchored if self.rels[a].scope in self.ancestry(scope)}
                key = classes.find((r, self.rels[r].key or ""))
                if any(classes.find((a, self.rels[a].key or "")) == key for a in visible):
                    anchored.add(r)
                else:
                    pin = self.pinned(r, scope, classes)
                    if pin is None or len(pin) != 1 or (target is not None and pin != target):
                        continue
                    target = pin
                    anchored.add(r)
                pending.remove(r)
                progress = True
        if pending:
            table = self.rels[pending[0]].table
            raise RouteError(
                f"subquery over sharded table {table} (or a UNION branch, CTE or derived table) "
                "is not joined to the outer query on its key column, nor pinned to the same "
                "single shard: it would need rows from other shards"
            )
        assert target is not None
        if not target:
            return (0,), "the key conditions match no row: shard 0"
        return tuple(sorted(target)), ""


def _pin_values(nodes: list[ast.Node], array: bool, ctx: Context) -> list[object] | None:
    """The key values a pin allows (NULLs dropped), or None when one is not a usable key."""
    values: list[object] = []
    for node in nodes:
        value = key_value(node, ctx)
        if array and not isinstance(value, list):
            return None
        for candidate in value if array else [value]:  # type: ignore[union-attr]
            if candidate is None:
                continue  # NULL never equals a key
            if not isinstance(candidate, int | str) or isinstance(candidate, bool):
                return None
            values.append(candidate)
    return values


def _is_in_subquery(node: object) -> bool:
    return (
        isinstance(node, ast.SubLink)
        and node.subLinkType == SubLinkType.ANY_SUBLINK
        and (not node.operName or node.operName[-1].sval == "=")
        and isinstance(node.subselect, ast.SelectStmt)
    )


def _alias(node: ast.RangeVar) -> str:
    return node.alias.aliasname if node.alias else node.relname


class _UnionFind:
    """Columns known equal, in classes: co-located keys share a class."""

    def __init__(self) -> None:
        self.parent: dict[Token, Token] = {}

    def find(self, item: Token) -> Token:
        while self.parent.get(item, item) != item:
            item = self.parent[item]
        return item

    def union(self, a: Token, b: Token) -> None:
        self.parent[self.find(a)] = self.find(b)
