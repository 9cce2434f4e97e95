"""DDL through the router: replicated to every shard, unless its meaning would differ per shard.

A schema change runs everywhere so that the shards stay alike; but a unique constraint that
leaves out the key can only be enforced within each shard, and a table or view built from
sharded rows would hold one shard's rows only. Those are refused here, by name.
"""

from __future__ import annotations

from pglast import ast
from pglast.enums import ConstrType

from engines.router.routing.context import Context
from engines.router.routing.plan import RouteError
from engines.router.routing.tree import relname, sharded_names, walk

_DDL_PREFIXES = ("Create", "Alter", "Drop", "Define")
_DDL_NODES = frozenset(
    {
        "IndexStmt",
        "RenameStmt",
        "CommentStmt",
        "GrantStmt",
        "TruncateStmt",
        "ViewStmt",
        "VacuumStmt",
        "ReindexStmt",
        "ClusterStmt",
        "CompositeTypeStmt",
        "RuleStmt",
        "SecLabelStmt",
    }
)


def is_ddl(stmt: ast.Node) -> bool:
    """Whether a statement changes the schema (or maintains it), so every shard runs it."""
    name = type(stmt).__name__
    return name.startswith(_DDL_PREFIXES) or name in _DDL_NODES


def check_ddl(stmt: ast.Node, ctx: Context) -> None:
    """Refuse DDL whose meaning would differ per shard: a unique constraint without the key
    (each shard would only enforce it locally), a table created from sharded rows."""
    if isinstance(stmt, ast.CreateTableAsStmt) and sharded_names(stmt.query, ctx.schema):
        raise RouteError("CREATE TABLE AS over a sharded table is not supported")
    if isinstance(stmt, ast.ViewStmt) and sharded_names(stmt.query, ctx.schema):
        # the router would read the view like a reference table, from shard 0 alone
        raise RouteError("a view over a sharded table is not supported: query the table")
    table = relname(getattr(stmt, "relation", None))
    key = ctx.schema.tables.get(table or "")
    if key is None:
        return
    if isinstance(stmt, ast.IndexStmt) and stmt.unique:
        columns = [p.name for p in stmt.indexParams or () if p.name]
        if key not in columns:
            raise RouteError(
                f"a unique index on sharded table {table} must include its key column {key}"
            )
    for node in walk(stmt):
        if isinstance(node, ast.ColumnDef):
            for constraint in node.constraints or ():
                _check_unique(constraint, [node.colname], table, key)
        elif isinstance(node, ast.Constraint) and node.keys:
            _check_unique(node, [k.sval for k in node.keys], table, key)


def _check_unique(constraint: ast.Node, columns: list[str], table: str, key: str) -> None:
    kinds = (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE, ConstrType.CONSTR_EXCLUSION)
    if (
        isinstance(constraint, ast.Constraint)
        and constraint.contype in kinds
        and key not in columns
    ):
        raise RouteError(
            f"a primary key or unique constraint on sharded table {table} must include "
            f"its key column {key}: shards cannot enforce it across each other"
        )
