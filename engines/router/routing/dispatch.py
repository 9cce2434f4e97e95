"""The router's entry: parse the SQL, route each statement by its kind.

This is the one place that knows every kind of statement the router accepts (reads, writes,
DDL, session and transaction control) and sends each to the module with its rules; a kind
not listed is refused rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Sequence

from pglast import ast, parse_sql
from pglast.enums import TransactionStmtKind
from pglast.parser import ParseError

from engines.router.routing.context import Context, NeedParams, ShardOf
from engines.router.routing.ddl import check_ddl, is_ddl
from engines.router.routing.fanout import route_select
from engines.router.routing.inserts import route_insert
from engines.router.routing.plan import Replicated, Route, RouteError, Schema, Single
from engines.router.routing.writes import route_update_delete


def route(
    sql: str,
    schema: Schema,
    shard_of: ShardOf,
    params: Sequence[object] | None = None,
) -> list[Route]:
    """Route every statement of ``sql``, one Route each, in order.

    Raises :class:`RouteError` if any statement is refused, before any of them runs.
    ``params`` are the bound parameter values ($1 is ``params[0]``): int or str for a key,
    a list for ``key = ANY($n)``; None at Parse, before they are known."""
    try:
        raws = parse_sql(sql)
    except ParseError as exc:
        raise RouteError(f"syntax error: {exc}", "42601") from exc
    routes = []
    for raw in raws:
        text = _statement_text(sql, raw)
        ctx = Context(schema, shard_of, params)
        try:
            found = _route_statement(raw.stmt, ctx)
        except NeedParams as need:
            found = Route((), None, Single(), f"needs parameters: {need}", need.writes)
            found = _replace(found, needs_params=True)
        routes.append(_replace(found, statement=text))
    return routes


def _statement_text(sql: str, raw: ast.RawStmt) -> str:
    """The statement's own text (pglast gives character offsets), without the semicolon."""
    start = raw.stmt_location or 0
    end = start + raw.stmt_len if raw.stmt_len else len(sql)
    return sql[start:end].strip().rstrip(";").strip()


def _replace(found: Route, **changes: object) -> Route:
    values = {name: getattr(found, name) for name in Route.__dataclass_fields__}
    values.update(changes)
    return Route(**values)  # type: ignore[arg-type]


_TRANSACTIONS = {
    TransactionStmtKind.TRANS_STMT_BEGIN: "begin",
    TransactionStmtKind.TRANS_STMT_START: "begin",
    TransactionStmtKind.TRANS_STMT_COMMIT: "commit",
    TransactionStmtKind.TRANS_STMT_ROLLBACK: "rollback",
    TransactionStmtKind.TRANS_STMT_SAVEPOINT: "savepoint",
    TransactionStmtKind.TRANS_STMT_RELEASE: "release",
    TransactionStmtKind.TRANS_STMT_ROLLBACK_TO: "rollback_to",
}


def _route_statement(stmt: ast.Node, ctx: Context) -> Route:
    name = type(stmt).__name__
    if isinstance(stmt, ast.TransactionStmt):
        kind = _TRANSACTIONS.get(stmt.kind)
        if kind is None:
            raise RouteError("two-phase commit statements are not supported through the router")
        return Route((), None, Single(), f"transaction control: {kind}", False, transaction=kind)
    if isinstance(stmt, ast.SelectStmt):
        return route_select(stmt, ctx)
    if isinstance(stmt, ast.InsertStmt):
        return route_insert(stmt, ctx)
    if isinstance(stmt, ast.UpdateStmt | ast.DeleteStmt):
        return route_update_delete(stmt, ctx)
    if isinstance(stmt, ast.DiscardStmt | ast.LockStmt):
        return Route(ctx.everywhere, None, Replicated(), f"{name}: every shard", False)
    if isinstance(stmt, ast.VariableSetStmt):
        return Route(ctx.everywhere, None, Replicated(), "session setting: every shard", False)
    if isinstance(stmt, ast.VariableShowStmt):
        return Route((0,), None, Single(), "SHOW: shard 0", False)
    if isinstance(stmt, ast.ExplainStmt):
        return _route_explain(stmt, ctx)
    if is_ddl(stmt):
        check_ddl(stmt, ctx)
        return Route(ctx.everywhere, None, Replicated(), f"DDL ({name}): every shard", True)
    raise RouteError(f"{name} is not supported through the router")


def _route_explain(stmt: ast.ExplainStmt, ctx: Context) -> Route:
    inner = _route_statement(stmt.query, ctx)
    if len(inner.shards) != 1 or inner.sql is not None:
        raise RouteError(
            "EXPLAIN of a statement that runs on several shards is not supported: use EXPLAIN ROUTE"
        )
    return Route(inner.shards, None, Single(), f"EXPLAIN: {inner.reason}", inner.writes)
