"""The guard's policy: a statement passes only when every node of its parse tree is of a kind
the policy allows, every function and operator it calls is one the server's catalog shows to
be harmless, and every write narrows its rows by a column.

Why deny by default: a list of dangerous things is a list of what the author thought of.
The red team found destruction in MERGE, upserts, catalog writes, rules, triggers,
extensions, COPY to a server path, functions reached through ``query_to_xml`` and operators;
each was missing from a list. Here each is missing from the allowlist instead, and so
refused, with the rule that names why (verdicts.RULES).

The tree is pglast's JSON (libpg_query, PostgreSQL's own grammar), walked iteratively:
hostile SQL nests deeper than Python's recursion limit. Node kinds appear as the keys that
start with a capital letter; typed struct fields (a statement's ``relation``, ``alias``,
``typeName``…) appear without one and are walked as plain data inside an allowed node.

The walk also notes what only the session can settle (verdicts.Verdict): session-only
statements, the session's own temporary tables, checks on bound parameters, settings after
which the next messages must wait. And whether the verdict read any constant's value
(``value_dependent``): the verdict cache may then share it only with the very same text
(guard.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .bind_checks import UNKNOWN, DeferredSetting, const_value
from .catalog import Catalog
from .narrowing import every_row, merge, upsert
from .parse_tree import nodes, relation_name, strings
from .settings_policy import judge_setting

DEFAULT_DDL = frozenset({"CREATE TABLE", "CREATE INDEX", "CREATE VIEW", "CREATE SEQUENCE"})
KNOWN_DDL = DEFAULT_DDL | {"CREATE MATERIALIZED VIEW"}
# Nodes inside statements that compute, name or shape data and do nothing else. Function
# calls and operators among them are checked against the catalog on their own.
EXPRESSION_NODES = frozenset(
    {
        "A_ArrayExpr", "A_Const", "A_Expr", "A_Indices", "A_Indirection", "A_Star", "Alias",
        "AlterTableCmd",  # a part of ALTER TABLE, which is judged whole
        "VacuumRelation",  # ANALYZE's table list
        "BitString", "BoolExpr", "Boolean", "BooleanTest", "CaseExpr", "CaseWhen",
        "CoalesceExpr", "CollateClause", "ColumnDef", "ColumnRef", "CommonTableExpr",
        "Constraint", "CTECycleClause", "CTESearchClause", "CurrentOfExpr", "DefElem", "Float",
        "FuncCall", "GroupingFunc", "GroupingSet", "IndexElem", "InferClause", "Integer",
        "IntoClause", "JoinExpr", "List", "LockingClause", "MergeWhenClause", "MinMaxExpr",
        "MultiAssignRef", "NullTest", "OnConflictClause", "ParamRef", "PartitionBoundSpec",
        "PartitionElem", "PartitionRangeDatum", "PartitionSpec", "RangeFunction",
        "RangeSubselect", "RangeTableFunc", "RangeTableFuncCol", "RangeTableSample", "RangeVar",
        "ResTarget", "RowExpr", "SetToDefault", "SortBy", "SQLValueFunction", "String",
        "SubLink", "TableLikeClause", "TypeCast", "TypeName", "WindowDef", "WithClause",
        "XmlExpr", "XmlSerialize",
    }
)  # fmt: skip
# Statements that read and write rows, control transactions or read settings.
DATA_STATEMENTS = frozenset(
    {"SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt", "TransactionStmt",
     "VariableSetStmt", "VariableShowStmt", "ExplainStmt", "CopyStmt", "DeclareCursorStmt",
     "FetchStmt", "ClosePortalStmt", "NotifyStmt", "VacuumStmt"}
)  # fmt: skip
# Statements whose effect lives in the server session, fine when the server is the client's.
SESSION_STATEMENTS = {
    "ListenStmt": "LISTEN", "UnlistenStmt": "UNLISTEN", "PrepareStmt": "PREPARE",
    "ExecuteStmt": "EXECUTE", "DeallocateStmt": "DEALLOCATE", "DiscardStmt": "DISCARD",
}  # fmt: skip
_DDL_OF = {"CreateStmt": "CREATE TABLE", "IndexStmt": "CREATE INDEX", "ViewStmt": "CREATE VIEW",
           "CreateSeqStmt": "CREATE SEQUENCE"}  # fmt: skip
CATALOG_SCHEMAS = frozenset({"pg_catalog", "information_schema", "pg_toast"})
# Views that show other sessions' statements: every client reaches the server as one role,
# so through them one client would read another's SQL (their functions are denied too).
PRIVATE_VIEWS = frozenset({"pg_stat_activity", "pg_prepared_statements", "pg_cursors"})
_TEMP_OBJECTS = {"OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_SEQUENCE", "OBJECT_INDEX"}
_CURSOR_OPT_HOLD = 0x20  # DECLARE … WITH HOLD: the cursor outlives its transaction
_TABLESAMPLE_METHODS = frozenset({"system", "bernoulli"})


@dataclass
class Decision:
    """What the walk found (see the module); turned into a verdict by guard.Guard."""

    findings: list[tuple[str, str]] = field(default_factory=list)
    unknown_parts: list[tuple[str, str]] = field(default_factory=list)
    temp_findings: list[tuple[str, str]] = field(default_factory=list)
    temp_targets: set[str] = field(default_factory=set)
    session_only: str | None = None
    creates_temp: set[str] = field(default_factory=set)
    deferred: list = field(default_factory=list)
    holds: bool = False
    value_dependent: bool = False
    index_renames: list[tuple[str | None, str]] = field(default_factory=list)

    def refuse(self, rule: str, detail: str) -> None:
        self.findings.append((rule, detail))

    def only_in_session(self, reason: str) -> None:
        self.session_only = self.session_only or reason


def _is_catalog(relation: dict) -> bool:
    schema = relation.get("schemaname")
    if schema is not None:
        return schema in CATALOG_SCHEMAS or schema.startswith("pg_toast")
    return relation.get("relname", "").startswith("pg_")


_STATEMENT_NAMES = {"RuleStmt": "CREATE RULE", "CreateTrigStmt": "CREATE TRIGGER",
                    "DropdbStmt": "DROP DATABASE", "CreatedbStmt": "CREATE DATABASE"}  # fmt: skip


def _words(kind: str, node: dict | None = None) -> str:
    """ "CreateExtensionStmt" → "CREATE EXTENSION"; DefineStmt → "CREATE AGGREGATE"…"""
    if kind == "DefineStmt" and node is not None:
        return "CREATE " + node.get("kind", "OBJECT_?").removeprefix("OBJECT_").replace("_", " ")
    if kind in _STATEMENT_NAMES:
        return _STATEMENT_NAMES[kind]
    return " ".join(re.findall(r"[A-Z][a-z]*", kind.removesuffix("Stmt"))).upper()


def _unwrap(node: Any) -> tuple[str, Any]:
    """An argument node as ("const", value) or ("param", number), looking through casts;
    ("other", None) for anything computed."""
    while isinstance(node, dict) and "TypeCast" in node:
        node = node["TypeCast"].get("arg")
    if isinstance(node, dict) and "A_Const" in node:
        value = const_value(node["A_Const"])
        return ("other", None) if value is UNKNOWN else ("const", value)
    if isinstance(node, dict) and "ParamRef" in node:
        return "param", node["ParamRef"].get("number", 0)
    return "other", None


class TreePolicy:
    """Decides a parsed query string against one database's policy: its catalog (which
    functions and operators are harmless), the DDL kinds allowed, and extra settings."""

    def __init__(
        self,
        catalog: Catalog | None,
        ddl: frozenset[str] = DEFAULT_DDL,
        extra_settings: frozenset[str] = frozenset(),
    ) -> None:
        unknown = set(ddl) - KNOWN_DDL
        if unknown:
            raise ValueError(f"unknown DDL kinds {sorted(unknown)}; known: {sorted(KNOWN_DDL)}")
        self.catalog = catalog
        self.ddl = frozenset(ddl)
        self.extra_settings = frozenset(extra_settings)
        # Every function name, for column notation: PostgreSQL runs `(x).f` and `t.f` as
        # f(x) and f(t) when no column f exists, so a field may be a call.
        self._function_names = frozenset(f.name for f in catalog.functions) if catalog else None

    def decide(self, tree: dict, *, simple_query: bool, deadline: float | None = None) -> Decision:
        decision = Decision()
        prepares = False
        for kind, node in nodes(tree, deadline):
            if kind in EXPRESSION_NODES:
                self._expression(kind, node, decision, simple_query)
            elif kind in DATA_STATEMENTS:
                self._data_statement(kind, node, decision, simple_query)
            elif kind in SESSION_STATEMENTS:
                prepares = prepares or kind == "PrepareStmt"
                decision.holds = decision.holds or kind == "DiscardStmt"  # DISCARD ALL resets
                # client_encoding too: what follows waits
                decision.only_in_session(
                    f"{SESSION_STATEMENTS[kind]} keeps state in the server session; use "
                    "session pool mode"
                )
            else:
                self._ddl(kind, node, decision)
        if not decision.findings:
            decision.findings = decision.unknown_parts
        if decision.index_renames and len(tree.get("stmts", [])) > 1:
            # Its check runs first (guard._index_checks): what ran between could change
            # what the name means, so the statement must come alone.
            decision.refuse(
                "alter_table", "ALTER INDEX … RENAME must be sent alone, so the server can check "
                "first that it names an index",
            )  # fmt: skip
        if prepares and decision.deferred:
            decision.refuse(
                "statement", "PREPARE of a statement whose safety depends on its parameters"
            )
        return decision

    # -- expressions ------------------------------------------------------------------------

    def _expression(self, kind: str, node: dict, d: Decision, simple_query: bool) -> None:
        if kind == "FuncCall":
            self._function(node, d, simple_query)
        elif kind == "ColumnRef":
            self._fields(strings(node.get("fields"))[1:], d)
        elif kind == "A_Indirection":
            self._fields(strings(node.get("indirection")), d)
        elif kind == "A_Expr":
            self._operator(node, d)
        elif kind == "SortBy" and node.get("useOp"):
            self._operator_name(strings(node["useOp"]), d)
        elif kind == "RangeVar" and node.get("relname") in PRIVATE_VIEWS:
            if node.get("schemaname") in {None, "pg_catalog"}:
                d.refuse("catalog", f"{node['relname']} would show other clients' statements")
        elif kind == "RangeTableSample":
            method = strings(node.get("method"))
            if len(method) != 1 or method[0] not in _TABLESAMPLE_METHODS:
                d.refuse("function", f"TABLESAMPLE {'.'.join(method)} is not allowed")

    def _function(self, node: dict, d: Decision, simple_query: bool) -> None:
        names = strings(node.get("funcname"))
        name, schema = names[-1], (names[-2] if len(names) > 1 else None)
        catalog = self.catalog
        if catalog is None:
            d.refuse("function", f"{name}(): the server's catalog has not been read")
            return
        if name == "set_config" and schema in {None, "pg_catalog"} and catalog.builtin_only(name):
            self._set_config(node, d, simple_query)
        elif not catalog.function_allowed(name, schema):
            d.refuse("function", f"{'.'.join(names)}() is not allowed")

    def _fields(self, names: list[str], d: Decision) -> None:
        """Field names that may be calls in column notation: refused when a function the
        policy does not allow bears the name (``('/etc/passwd'::text).pg_read_file``)."""
        for name in names:
            if not name:
                continue
            if self._function_names is None:
                d.refuse("function", f".{name}: the server's catalog has not been read")
            elif name in self._function_names and not self.catalog.function_allowed(name):
                d.refuse("function", f"{name}() in column notation (.{name}) is not allowed")

    def _set_config(self, node: dict, d: Decision, simple_query: bool) -> None:
        args = [_unwrap(arg) for arg in node.get("args") or []]
        if len(args) != 3 or any(kind == "other" for kind, _ in args):
            d.refuse("setting", "set_config() with arguments the firewall cannot read")
            return
        d.value_dependent = True
        if any(kind == "param" for kind, _ in args):
            d.deferred.append(DeferredSetting(*args, extra_settings=self.extra_settings))
            return
        (_, name), (_, value), (_, local) = args
        if not isinstance(name, str):
            d.refuse("setting", "set_config() of a setting named by a non-text value")
            return
        local = local if isinstance(local, bool) else str(local).lower() in {"t", "true", "on"}
        self._setting(
            name, None if value is None else str(value), local=local, reset=False, d=d,
            simple_query=False,  # set_config cannot be held behind: refuse client_encoding
        )  # fmt: skip

    def _operator(self, node: dict, d: Decision) -> None:
        names = strings(node.get("name"))
        kind = node.get("kind", "")
        if kind.startswith("AEXPR_BETWEEN") or kind.startswith("AEXPR_NOT_BETWEEN"):
            names = ["<="]  # BETWEEN expands to <= and >=
            self._operator_name([">="], d)
        elif kind == "AEXPR_SIMILAR":
            names = ["~"]
        self._operator_name(names, d)

    def _operator_name(self, names: list[str], d: Decision) -> None:
        if not names:
            return
        name, schema = names[-1], (names[-2] if len(names) > 1 else None)
        if self.catalog is None or not self.catalog.operator_allowed(name, schema):
            d.refuse("operator", f"operator {'.'.join(names)} is not allowed")

    # -- data statements --------------------------------------------------------------------

    def _data_statement(self, kind: str, node: dict, d: Decision, simple_query: bool) -> None:
        if kind == "SelectStmt" and node.get("intoClause"):
            into = node["intoClause"]
            self._creates("CREATE TABLE", into.get("rel") or {}, d,
                          on_commit_drop=into.get("onCommit") == "ONCOMMIT_DROP")  # fmt: skip
        elif kind == "InsertStmt":
            self._write_target(node.get("relation") or {}, d)
            upsert(node, d)
        elif kind in {"UpdateStmt", "DeleteStmt"}:
            relation = node.get("relation") or {}
            self._write_target(relation, d)
            others = node.get("fromClause" if kind == "UpdateStmt" else "usingClause")
            verb = "UPDATE" if kind == "UpdateStmt" else "DELETE"
            rule = "update_without_where" if verb == "UPDATE" else "delete_without_where"
            every_row(relation, node.get("whereClause"), bool(others), rule, verb, d)
        elif kind == "MergeStmt":
            self._write_target(node.get("relation") or {}, d)
            merge(node, d)
        elif kind == "CopyStmt":
            if node.get("filename") is not None or node.get("is_program"):
                d.refuse("server_files", "COPY to or from a server file or program")
            if node.get("is_from") and node.get("relation"):
                self._write_target(node["relation"], d)
        elif kind == "TransactionStmt" and node.get("kind") in {
            "TRANS_STMT_PREPARE", "TRANS_STMT_COMMIT_PREPARED", "TRANS_STMT_ROLLBACK_PREPARED"
        }:  # fmt: skip
            d.refuse("statement", "two-phase commit keeps locks beyond the session")
        elif kind == "VariableSetStmt":
            self._set_statement(node, d, simple_query)
        elif kind == "VacuumStmt" and node.get("is_vacuumcmd"):
            d.refuse("statement", "VACUUM is not allowed (ANALYZE is)")
        elif kind == "VacuumStmt":
            for item in node.get("rels") or []:
                if _is_catalog(item.get("VacuumRelation", {}).get("relation") or {}):
                    d.refuse("catalog", "ANALYZE of a system catalog writes pg_statistic")
        elif kind == "DeclareCursorStmt" and node.get("options", 0) & _CURSOR_OPT_HOLD:
            d.only_in_session("a cursor WITH HOLD outlives its transaction; use session pool mode")

    def _write_target(self, relation: dict, d: Decision) -> None:
        if _is_catalog(relation):
            d.refuse("catalog", f'writing to system catalog "{relation_name(relation)}"')

    def _set_statement(self, node: dict, d: Decision, simple_query: bool) -> None:
        kind, name = node.get("kind"), (node.get("name") or "").lower()
        if kind == "VAR_SET_MULTI":
            if name == "session characteristics":
                d.only_in_session(
                    "SET SESSION CHARACTERISTICS outlives the transaction; use session pool mode"
                )
            return  # SET TRANSACTION …: this transaction only
        if kind == "VAR_RESET_ALL":
            d.only_in_session(
                "RESET ALL resets settings the proxy keeps for the session; use session pool mode"
            )
            d.holds = True  # client_encoding among them: what follows waits
            return
        reset = kind in {"VAR_RESET", "VAR_SET_DEFAULT"}
        value = None
        if kind == "VAR_SET_VALUE":
            args = node.get("args") or []
            if len(args) == 1:
                arg_kind, raw = _unwrap(args[0])
                value = str(raw) if arg_kind == "const" and raw is not None else None
            d.value_dependent = True
        elif not reset:  # VAR_SET_CURRENT: FROM CURRENT
            d.only_in_session(f"SET {name} FROM CURRENT; use session pool mode")
        self._setting(name, value, local=bool(node.get("is_local")), reset=reset, d=d,
                      simple_query=simple_query)  # fmt: skip

    def _setting(
        self, name: str, value: str | None, *, local: bool, reset: bool, d: Decision,
        simple_query: bool,
    ) -> None:  # fmt: skip
        change = judge_setting(name, value, local=local, reset=reset, simple_query=simple_query,
                               extra=self.extra_settings)  # fmt: skip
        if change.rule is not None:
            d.refuse(change.rule, change.detail)
        if change.session_only:
            d.only_in_session(change.session_only)
        d.holds = d.holds or change.holds

    # -- DDL and everything else -------------------------------------------------------------

    def _creates(
        self, ddl: str, relation: dict, d: Decision, *, on_commit_drop: bool = False
    ) -> None:
        if ddl not in self.ddl:
            d.refuse("statement", f"{ddl} is not allowed")
        if _is_catalog(relation):
            d.refuse("catalog", f'creating "{relation_name(relation)}" among system catalogs')
        schema = relation.get("schemaname") or ""
        temp = relation.get("relpersistence") == "t" or schema == "pg_temp"
        temp = temp or schema.startswith("pg_temp_")  # the session's own, by its real name
        if temp:
            d.creates_temp.add(relation.get("relname", ""))
            if not on_commit_drop:
                d.only_in_session(
                    "a temporary object outlives the transaction on a pooled server; use ON "
                    "COMMIT DROP, or session pool mode"
                )

    def _built_on_catalogs(self, query: Any, what: str, d: Decision) -> None:
        for kind, node in nodes({"x": query}):
            if kind == "RangeVar" and _is_catalog(node):
                d.refuse("catalog", f'{what} over system catalog "{relation_name(node)}"')
                return

    def _ddl(self, kind: str, node: dict, d: Decision) -> None:
        if kind == "CreateStmt":
            self._creates("CREATE TABLE", node.get("relation") or {}, d,
                          on_commit_drop=node.get("oncommit") == "ONCOMMIT_DROP")  # fmt: skip
            if any(
                c.get("contype") == "CONSTR_FOREIGN" for k, c in nodes(node) if k == "Constraint"
            ):
                d.refuse("alter_table", "a foreign key adds triggers to the table it references")
            if node.get("inhRelations") or node.get("partbound"):
                # A child or a partition adds its rows to what the parent's readers see.
                d.refuse("alter_table", "a table that inherits from, or is a partition of, "
                         "another alters what that table holds")  # fmt: skip
        elif kind == "CreateTableAsStmt":
            into = node.get("into") or {}
            matview = node.get("objtype") == "OBJECT_MATVIEW"
            self._creates("CREATE MATERIALIZED VIEW" if matview else "CREATE TABLE",
                          into.get("rel") or {}, d,
                          on_commit_drop=into.get("onCommit") == "ONCOMMIT_DROP")  # fmt: skip
            if matview:
                self._built_on_catalogs(node.get("query"), "a materialized view", d)
        elif kind == "ViewStmt":
            self._creates("CREATE VIEW", node.get("view") or {}, d)
            if node.get("replace"):
                d.refuse("alter_table", f'replacing view "{relation_name(node["view"])}"')
            self._built_on_catalogs(node.get("query"), "a view", d)
        elif kind == "CreateSeqStmt":
            self._creates("CREATE SEQUENCE", node.get("sequence") or {}, d)
        elif kind == "IndexStmt":
            self._index(node, d)
        elif kind == "RenameStmt":
            self._rename(node, d)
        elif kind == "DropStmt":
            self._drop(node, d)
        elif kind == "TruncateStmt":
            names = [relation_name(r.get("RangeVar", {})) for r in node.get("relations", [])]
            self._temp_or_refuse("truncate", f"TRUNCATE {', '.join(names)}", names, d)
        elif kind == "AlterTableStmt" and node.get("objtype") == "OBJECT_TABLE":
            name = relation_name(node.get("relation") or {})
            self._temp_or_refuse("alter_table", f'ALTER of "{name}"', [name], d)
        elif kind == "AlterTableStmt" or kind == "AlterObjectSchemaStmt":
            d.refuse("alter_table", f"{_words(kind)} is not allowed")
        elif kind in {"DoStmt", "CreateFunctionStmt"}:
            what = "DO blocks" if kind == "DoStmt" else "function definitions"
            d.refuse("dynamic_sql", f"{what} are not allowed")
        elif kind.startswith("Drop") and kind.endswith("Stmt"):
            d.refuse("drop", f"{_words(kind)} is not allowed")
        elif kind.endswith("Stmt"):
            d.refuse("statement", f"{_words(kind, node)} is not allowed")
        else:  # a part of some statement the policy knows nothing of: that one is named
            d.unknown_parts.append(("statement", f"{kind} is not allowed"))

    def _index(self, node: dict, d: Decision) -> None:
        """A plain index (columns, not unique, no predicate) only speeds reads up; a unique,
        expression or partial one constrains every later write to the table (`UNIQUE ON
        ((true))` allows one more row, `((1 / 0))` none): those only on the session's own
        temporary tables."""
        relation = node.get("relation") or {}
        if "CREATE INDEX" not in self.ddl:
            d.refuse("statement", "CREATE INDEX is not allowed")
        if _is_catalog(relation):
            d.refuse("catalog", "an index on a system catalog")
        elements = [e.get("IndexElem", {}) for e in node.get("indexParams", [])]
        plain = all(e.get("name") and not e.get("expr") for e in elements)
        if node.get("unique") or node.get("primary") or node.get("whereClause") or not plain:
            name = relation_name(relation)
            self._temp_or_refuse(
                "alter_table", f'a unique, expression or partial index on "{name}"', [name], d
            )

    def _rename(self, node: dict, d: Decision) -> None:
        what = node.get("renameType", "").removeprefix("OBJECT_")
        relation = node.get("relation") or {}
        if what == "INDEX" and not _is_catalog(relation):
            # An index's name is only a name; but PostgreSQL renames a table too under ALTER
            # INDEX, so the server is asked first (guard._index_checks).
            d.index_renames.append((relation.get("schemaname"), relation.get("relname", "")))
            return
        name = relation_name(relation) if relation else "?"
        if what in {"TABLE", "COLUMN", "VIEW", "SEQUENCE", "TABCONSTRAINT"} and relation:
            self._temp_or_refuse("alter_table", f'renaming "{name}"', [name], d)
        else:
            d.refuse("alter_table", f"renaming a {what.lower().replace('_', ' ')} is not allowed")

    def _drop(self, node: dict, d: Decision) -> None:
        kind = node.get("removeType", "")
        what = "DROP " + kind.removeprefix("OBJECT_").replace("_", " ")
        if kind not in _TEMP_OBJECTS:
            d.refuse("drop", f"{what} is not allowed")
            return
        names = []
        for item in node.get("objects", []):
            parts = strings(item.get("List", {}).get("items"))
            names.append(".".join(parts))
        self._temp_or_refuse("drop", f"{what} {', '.join(names)}", names, d)

    @staticmethod
    def _temp_or_refuse(rule: str, detail: str, names: list[str], d: Decision) -> None:
        """Refused, unless every name is one of the session's own temporary objects (the
        session decides: guard.GuardSession) or is qualified by pg_temp."""
        unqualified = set()
        for name in names:
            schema, _, relname = name.rpartition(".")
            if schema == "pg_temp":
                continue
            if schema or not relname:
                d.refuse(rule, f"{detail} is not allowed")
                return
            unqualified.add(relname)
        if unqualified:
            d.temp_findings.append((rule, f"{detail} is not allowed"))
            d.temp_targets |= unqualified
