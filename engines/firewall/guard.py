"""The guard: decides from PostgreSQL's own parse tree whether a statement may run.

Matching SQL text with regular expressions is how firewalls get bypassed: a ``DROP`` hides
in a CTE, a multi-statement string, a ``PREPARE``, a ``CREATE RULE`` action, a quoted or
Unicode-escaped name, while a comment or a string literal that merely says "DROP" trips the
rule. The guard instead parses every statement with pglast (libpg_query, the PostgreSQL
parser itself) and walks the whole tree, so a destructive node is found wherever it sits and
text that is not SQL never matches.

pglast's Python AST costs ~150 µs a statement; its JSON output, walked as plain dicts, costs
~20 µs, and a verdict is cached by statement text (an LRU), so a repeated statement costs a
dict lookup.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pglast import parser as pg_parser

from ._guard import GuardStats, SessionGuard, verdict_key

logger = logging.getLogger(__name__)

# SQLSTATEs the proxy answers with.
INSUFFICIENT_PRIVILEGE = "42501"
SYNTAX_ERROR = "42601"
PROGRAM_LIMIT_EXCEEDED = "54000"


@dataclass(frozen=True)
class Rule:
    """A named kind of statement the guard blocks, with the reason a user reads."""

    name: str
    description: str


RULES: dict[str, Rule] = {
    rule.name: rule
    for rule in [
        Rule("drop", "DROP of any object"),
        Rule("truncate", "TRUNCATE"),
        Rule("alter_table", "ALTER TABLE, including renames and SET SCHEMA"),
        Rule("delete_without_where", "DELETE without a WHERE clause that names a column"),
        Rule("update_without_where", "UPDATE without a WHERE clause that names a column"),
        Rule("merge_without_condition", "MERGE that deletes or updates on a constant condition"),
        Rule("dynamic_sql", "DO blocks and function definitions, whose SQL cannot be checked"),
        Rule("copy_program", "COPY to or from a server-side program"),
        Rule("unsafe_function", "functions that run SQL elsewhere or end other sessions"),
        Rule(
            "string_syntax",
            "turning standard_conforming_strings off or client_encoding away from UTF8, after "
            "which PostgreSQL would read string literals differently from the guard",
        ),
    ]
}

# Relation kinds whose ALTER ... RENAME / SET SCHEMA counts as altering a table.
_RELATION_OBJECTS = {
    "OBJECT_TABLE", "OBJECT_COLUMN", "OBJECT_TABCONSTRAINT", "OBJECT_VIEW", "OBJECT_MATVIEW",
    "OBJECT_FOREIGN_TABLE", "OBJECT_SEQUENCE", "OBJECT_INDEX", "OBJECT_SCHEMA",
}  # fmt: skip
# Nodes that make a WHERE clause depend on the row: without one of them it is a constant,
# and `DELETE FROM t WHERE 1 = 1` removes every row as surely as no WHERE at all. A column
# (anywhere in the clause, subqueries included: it may be correlated), a bind parameter
# (its value comes later: the benefit of the doubt), WHERE CURRENT OF, or a function whose
# value changes from row to row. Any other function call is as constant as its arguments:
# `WHERE now() IS NOT NULL` and `WHERE EXISTS (SELECT 1)` match every row.
_ROW_DEPENDENT = {"ColumnRef", "ParamRef", "CurrentOfExpr"}
_PER_ROW_FUNCTIONS = {
    "random", "random_normal", "clock_timestamp", "timeofday", "nextval", "gen_random_uuid",
    "uuid_generate_v1", "uuid_generate_v4",
}  # fmt: skip
# A statement whose JSON tree contains none of these strings breaks no rule, and most
# statements (plain SELECTs, INSERTs) contain none: for them the guard skips json.loads and
# the tree walk, the bulk of its cost. Node types appear in the JSON only as keys, '{"Type":';
# a string literal spelling one is escaped ({\"Type\":) and so never matches. Function
# names appear as '"sval":"name"' (folded to lower case, as the parser folds them).
_NODE_TRIGGERS = (
    '{"Drop', '{"TruncateStmt":', '{"AlterTableStmt":', '{"RenameStmt":',
    '{"AlterObjectSchemaStmt":', '{"DeleteStmt":', '{"UpdateStmt":', '{"MergeStmt":',
    '{"DoStmt":', '{"CreateFunctionStmt":', '"is_program":',
    '{"VariableSetStmt":', '"setstmt":', '"relname":"pg_settings"',
)  # fmt: skip
UNSAFE_FUNCTIONS = {
    "dblink", "dblink_exec", "pg_terminate_backend", "lo_unlink", "pg_drop_replication_slot",
    "pg_replication_origin_drop", "pg_file_unlink",
}  # fmt: skip
# The guard reads SQL as PostgreSQL does only while two settings keep safe values, so
# nothing may change them (SET in every form, set_config(), UPDATE pg_settings, which calls
# set_config):
# - standard_conforming_strings on: the guard reads a backslash in '...' as an ordinary
#   character. Were it off, `SELECT 'a\' , ' ; DROP TABLE t; --'` — two harmless strings to
#   the guard — would be one string and a DROP to the server.
# - client_encoding UTF8: the guard decodes UTF-8. In a client-only encoding (BIG5, GBK,
#   SJIS…) a multibyte character may end in the byte of a backslash or quote: the UTF-8
#   bytes E4 B8 AD 5C read in BIG5 are two characters, no backslash, so `E'中\' ; DROP …'`
#   would be a string and a DROP to the server where the guard reads one string.
# Values are compared cleaned as PostgreSQL cleans encoding names (case and punctuation
# dropped) and with digits read as 0, like the verdict cache (_guard.pyx): `= 1`
# and `= 0` then get one verdict — refused, since only words count as "on".
_SAFE_SETTING_VALUES = {
    "standard_conforming_strings": {"on", "true", "yes", "t", "y"},
    "client_encoding": {"utf0", "unicode"},  # UTF8, utf-8, Unicode
}
_SETTING_FUNCTIONS = {"set_config"}
# PostgreSQL's client-only encodings: multibyte characters whose later bytes may be ASCII
# quotes or backslashes (every server encoding is ASCII-safe), the ones meant above.
_CLIENT_ONLY_ENCODINGS = {"BIG5", "GBK", "GB18030", "JOHAB", "SJIS", "SHIFT_JIS_2004", "UHC"}
_TRIGGERS = _NODE_TRIGGERS + tuple(
    f'"sval":"{name}"' for name in sorted(UNSAFE_FUNCTIONS | _SETTING_FUNCTIONS)
)


# Verdicts are cached by statement text with every digit read as 0, so `... WHERE aid =
# 4711` and `... WHERE aid = 8150` share one parse; text where a digit may matter (a `$`,
# a backslash, an `&`) is cached under its exact bytes. Why that is sound is a security
# invariant, so it is defined once, in C, for this module and for the sessions' hot path
# alike: _guard.pyx (verdict_key). Setting values are read the same way (_clean).
_DIGITS_TO_ZERO_TEXT = str.maketrans("123456789", "000000000")


@dataclass(frozen=True)
class Verdict:
    """The guard's answer for one query string (which may hold several statements)."""

    allowed: bool
    rule: str | None = None
    message: str = ""
    sqlstate: str = ""

    @property
    def blocked(self) -> bool:
        return not self.allowed


ALLOWED = Verdict(True)


def guard_blind_value(name: str, value: str) -> bool:
    """Whether a setting's value, as the server reports it (ParameterStatus) or a client
    asks for it at login, makes PostgreSQL read SQL unlike the guard (see above): a session
    in which it holds cannot be guarded, and is refused or ended."""
    if name == "standard_conforming_strings":
        return value != "on"
    return name == "client_encoding" and value.upper() in _CLIENT_ONLY_ENCODINGS


def _nodes(tree: Any) -> Iterator[tuple[str, dict]]:
    """Every (node type, fields) in a pglast JSON tree, iteratively: hostile SQL can nest
    deeper than Python's recursion limit."""
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if isinstance(value, dict):
                    if key[:1].isupper():
                        yield key, value
                    stack.append(value)
                elif isinstance(value, list):
                    stack.extend(value)
        elif isinstance(item, list):
            stack.extend(item)


def _row_dependent(clause: Any) -> bool:
    return any(
        kind in _ROW_DEPENDENT
        or (kind == "FuncCall" and _function_name(node).lower() in _PER_ROW_FUNCTIONS)
        for kind, node in _nodes({"Node": clause})
    )


def _clean(value: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(value).lower()).translate(_DIGITS_TO_ZERO_TEXT)


def _unsafe_setting(setting: dict) -> str | None:
    """The setting a VariableSetStmt's fields would give an unsafe value, if any."""
    name = (setting.get("name") or "").lower()
    if name not in _SAFE_SETTING_VALUES or setting.get("kind") in {"VAR_RESET", "VAR_SET_DEFAULT"}:
        return None
    args = setting.get("args") or []
    if setting.get("kind") != "VAR_SET_VALUE" or len(args) != 1:
        return name
    const = args[0].get("A_Const", {})
    value = const["sval"].get("sval") if "sval" in const else const.get("ival", {}).get("ival")
    return None if _clean(value) in _SAFE_SETTING_VALUES[name] else name


def _set_config_of_unsafe_setting(call: dict) -> str | None:
    """set_config(name, ...) of a guarded setting (or of a name that is not a constant)."""
    args = call.get("args") or []
    name = args[0].get("A_Const", {}).get("sval", {}).get("sval") if args else None
    if name is None:
        return "a setting named by an expression"
    return name.lower() if name.lower() in _SAFE_SETTING_VALUES else None


def _relation_name(node: dict) -> str:
    relation = node.get("relation") or {}
    parts = [relation.get("schemaname"), relation.get("relname")]
    return ".".join(p for p in parts if p) or "?"


def _drop_what(kind: str, node: dict) -> str:
    """ "DROP TABLE" for DropStmt's removeType, "DROP DATABASE" for DropdbStmt, and so on."""
    if kind == "DropStmt":
        return "DROP " + node.get("removeType", "").removeprefix("OBJECT_").replace("_", " ")
    words = re.findall(r"[A-Z][a-z]*", kind.removesuffix("Stmt").replace("Dropdb", "DropDatabase"))
    return " ".join(words).upper()


def _function_name(node: dict) -> str:
    names = [part.get("String", {}).get("sval", "") for part in node.get("funcname", [])]
    return names[-1] if names else ""


class Guard:
    """Checks query strings against the enabled rules, caching verdicts by text.

    ``exempt_roles`` skip every check (migrations run as the owner role, say); ``rules``
    names the enabled rules, all of them by default.
    """

    def __init__(
        self,
        rules: frozenset[str] | set[str] | None = None,
        exempt_roles: frozenset[str] | set[str] = frozenset(),
        cache_size: int = 10_000,
        max_query_bytes: int = 1 << 20,
    ) -> None:
        unknown = set(rules or ()) - set(RULES)
        if unknown:
            raise ValueError(f"unknown guard rules {sorted(unknown)}; known: {sorted(RULES)}")
        self.rules = frozenset(RULES) if rules is None else frozenset(rules)
        self.exempt_roles = frozenset(exempt_roles)
        self.cache_size = cache_size
        self.max_query_bytes = max_query_bytes
        self.stats = GuardStats()
        # Insertion-ordered, evicted oldest-first: a hit costs one lookup and nothing more
        # (no LRU bookkeeping on the hot path); a hot shape evicted by a flood of new ones is
        # parsed again once.
        self._cache: dict[bytes, Verdict] = {}

    def session(self, role: str) -> SessionGuard:
        """The guard as the policy of one session of ``role`` (_policy.pyx): ``check``, and
        the verdict cache read in C on the session's hot path."""
        return SessionGuard(self, role, ALLOWED)

    def check(self, sql: str | bytes, role: str | None = None) -> Verdict:
        """The verdict for one query string as a client sent it (text, or UTF-8 bytes as
        they came off the wire; undecodable bytes raise UnicodeDecodeError)."""
        if role is not None and role in self.exempt_roles:
            return ALLOWED
        self.stats.checked += 1
        raw = sql if isinstance(sql, bytes) else sql.encode()
        key = verdict_key(raw)
        cache = self._cache
        verdict = cache.get(key)
        if verdict is not None:
            self.stats.cache_hits += 1
        else:
            verdict = self._decide(sql if isinstance(sql, str) else raw.decode())
            if verdict.allowed or key == raw:
                if len(cache) >= self.cache_size:
                    del cache[next(iter(cache))]
                cache[key] = verdict
        if not verdict.allowed:
            self.stats.blocked[verdict.rule] = self.stats.blocked.get(verdict.rule, 0) + 1
        return verdict

    def _decide(self, sql: str) -> Verdict:
        if len(sql) > self.max_query_bytes:
            limit = self.max_query_bytes
            message = f"firewall: query of {len(sql)} bytes exceeds the {limit}-byte limit"
            return Verdict(False, "too_long", message, PROGRAM_LIMIT_EXCEEDED)
        try:
            text = pg_parser.parse_sql_json(sql)
            if not any(trigger in text for trigger in _TRIGGERS):
                return ALLOWED
            tree = json.loads(text)
        except pg_parser.ParseError as exc:
            # Fail closed: what the guard cannot read, it does not let through.
            self.stats.parse_errors += 1
            return Verdict(False, "parse_error", f"firewall: {exc}", SYNTAX_ERROR)
        except RecursionError:
            return Verdict(
                False, "too_complex", "firewall: query nests too deeply to check",
                PROGRAM_LIMIT_EXCEEDED,
            )  # fmt: skip
        for kind, node in _nodes(tree):
            broken = self._rule_for(kind, node)
            if broken and broken[0] in self.rules:
                rule, detail = broken
                return Verdict(
                    False, rule,
                    f'firewall: blocked by rule "{rule}" ({RULES[rule].description}): {detail}',
                    INSUFFICIENT_PRIVILEGE,
                )  # fmt: skip
        return ALLOWED

    @staticmethod
    def _rule_for(kind: str, node: dict) -> tuple[str, str] | None:
        """The rule a single parse-tree node breaks, with a detail naming the object."""
        if kind.startswith("Drop") and kind.endswith("Stmt"):
            return "drop", f"{_drop_what(kind, node)} is not allowed"
        if kind == "TruncateStmt":
            return "truncate", "TRUNCATE is not allowed"
        if kind == "AlterTableStmt":
            return "alter_table", f'ALTER of "{_relation_name(node)}" is not allowed'
        if kind == "RenameStmt" and node.get("renameType") in _RELATION_OBJECTS:
            return "alter_table", f'renaming "{_relation_name(node)}" is not allowed'
        if kind == "AlterObjectSchemaStmt" and node.get("objectType") in _RELATION_OBJECTS:
            return (
                "alter_table",
                f'moving "{_relation_name(node)}" to another schema is not allowed',
            )
        if kind == "DeleteStmt" and not _row_dependent(node.get("whereClause")):
            return (
                "delete_without_where",
                f'DELETE on "{_relation_name(node)}" would remove every row',
            )
        if kind == "UpdateStmt" and not _row_dependent(node.get("whereClause")):
            return (
                "update_without_where",
                f'UPDATE on "{_relation_name(node)}" would change every row',
            )
        if kind == "MergeStmt" and not _row_dependent(node.get("joinCondition")):
            actions = {
                w.get("MergeWhenClause", {}).get("commandType")
                for w in node.get("mergeWhenClauses", [])
            }
            if actions & {"CMD_DELETE", "CMD_UPDATE"}:
                return (
                    "merge_without_condition",
                    f'MERGE into "{_relation_name(node)}" matches every row',
                )
        if kind in {"DoStmt", "CreateFunctionStmt"}:
            return (
                "dynamic_sql",
                f"{'DO blocks' if kind == 'DoStmt' else 'function definitions'} are not allowed",
            )
        if kind == "CopyStmt" and node.get("is_program"):
            return "copy_program", "COPY with PROGRAM is not allowed"
        if kind == "FuncCall" and _function_name(node).lower() in UNSAFE_FUNCTIONS:
            return "unsafe_function", f"{_function_name(node)}() is not allowed"
        return Guard._string_rule_for(kind, node)

    @staticmethod
    def _string_rule_for(kind: str, node: dict) -> tuple[str, str] | None:
        setting = node if kind == "VariableSetStmt" else node.get("setstmt")
        name = _unsafe_setting(setting) if isinstance(setting, dict) else None
        if name is not None:
            safe = "on" if name == "standard_conforming_strings" else "UTF8"
            return "string_syntax", f"{name} must stay {safe}"
        if kind == "FuncCall" and _function_name(node).lower() in _SETTING_FUNCTIONS:
            name = _set_config_of_unsafe_setting(node)
            if name is not None:
                return "string_syntax", f"set_config() of {name} is not allowed"
        if kind == "UpdateStmt" and (node.get("relation") or {}).get("relname") == "pg_settings":
            return "string_syntax", "UPDATE of pg_settings is not allowed"
        return None
