"""Which function and operator names a statement may call, read from the server's catalog.

The guard denies by default: a statement may call only functions the policy allows, and the
policy is about *functions* — built-in ones chosen by OID and volatility as the server's own
catalog reports them, plus any the operator names by signature — never about names alone,
since anyone with CREATE on a schema can make a function called ``lower``. The guard,
though, sees pglast's raw parse trees: names as written (``lower``, ``pg_catalog.lower``,
``=``, ``||``), before PostgreSQL has resolved them to an OID against a search_path and the
argument types. This module bridges the two, soundly: a name is safe only when EVERY
function (operator) that name could resolve to is allowed — for an unqualified name, every
one in any schema, because a client's search_path can reach any schema.

``load_catalog`` reads one database's ``pg_proc`` and ``pg_operator`` once, at start-up
(catalogs are per database: load one per database the proxy serves). The answer is a
snapshot: a function created afterwards is unknown to it (an unknown name is refused, but a
new overload of a known name is not seen), so the guard must also keep clients from
creating or renaming functions, operators, casts and types.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

# OIDs below this are the server's own, made by initdb (pg_catalog, information_schema and
# the plpgsql language installed with it); every object created later — user functions,
# extensions, even after the OID counter wraps around — gets one at or above it.
FIRST_NORMAL_OBJECT_ID = 16384

# Built-in VOLATILE functions allowed all the same (immutable and stable built-ins are
# allowed by volatility and need no listing: now, statement_timestamp, transaction_timestamp,
# pg_backend_pid, txid_current, pg_current_xact_id are stable in PostgreSQL 15). Only
# functions whose whole effect is their result, transaction-scoped state, or advancing a
# sequence the caller already has rights on.
HARMLESS_VOLATILE = frozenset(
    {
        # Clocks: read the time, nothing else.
        "clock_timestamp",
        "timeofday",
        # Randomness: read the session's generator (setseed, which re-seeds it for whoever
        # uses the pooled server connection next, is left out).
        "random",
        "random_normal",  # PostgreSQL 16+
        "gen_random_uuid",
        "uuidv4",  # PostgreSQL 18+
        "uuidv7",  # PostgreSQL 18+
        # Sequences: nextval does what every INSERT into a serial column does, under the
        # sequence's own USAGE/UPDATE privilege. currval and lastval are left out: they read
        # the server session's last value, on a pooled connection a previous client's;
        # setval, which rewinds a sequence for everyone, too.
        "nextval",
        # Transaction-level advisory locks: released at commit or rollback, so nothing
        # outlives the transaction on a pooled connection (the session-level
        # pg_advisory_lock family, which would, is left out).
        "pg_advisory_xact_lock",
        "pg_advisory_xact_lock_shared",
        "pg_try_advisory_xact_lock",
        "pg_try_advisory_xact_lock_shared",
        # A read of server state drivers ask for (libpq's target_session_attrs=primary
        # sends SELECT pg_catalog.pg_is_in_recovery()).
        "pg_is_in_recovery",
        # Waiting: holds its pooled connection no longer than any slow query would, and the
        # server's statement_timeout ends it.
        "pg_sleep",
        "pg_sleep_for",
        "pg_sleep_until",
    }
)

# Built-in functions denied whatever their volatility. Most are immutable or stable, so the
# volatility rule would allow them, yet they run SQL text or read data the statement does
# not name (the guard judges the statement's text, never the SQL they run), or see other
# clients of the shared upstream role. The volatile ones in the list are already denied;
# they are named so the list documents the whole danger and stays right should a release
# relabel one. Found by listing every pg_proc row of PostgreSQL 15 by volatility and
# reading the names (xml, query, cursor, file, ls_, stat, lo, exec, terminate, cancel,
# signal, reload, write, import, export, slot, backup, validator…). A configured
# extra function overrides this list: naming one there is a deliberate choice.
SQL_RUNNING = frozenset(
    {
        # Run a query given as text, or fetch from a cursor (query_to_* and cursor_to_* are
        # volatile; the table/schema/database ones are STABLE and run SELECT * on every
        # table they are given or find, by name, where the guard sees only a string).
        "query_to_xml",
        "query_to_xmlschema",
        "query_to_xml_and_xmlschema",
        "cursor_to_xml",
        "cursor_to_xmlschema",
        "table_to_xml",
        "table_to_xmlschema",
        "table_to_xml_and_xmlschema",
        "schema_to_xml",
        "schema_to_xmlschema",
        "schema_to_xml_and_xmlschema",
        "database_to_xml",
        "database_to_xmlschema",
        "database_to_xml_and_xmlschema",
        # Text search functions that run a query given as text: ts_stat(sqlquery) and
        # ts_rewrite(tsquery, sqlquery) (volatile; ts_rewrite's other overload is immutable,
        # and the guard cannot tell overloads apart, so the name goes).
        "ts_stat",
        "ts_rewrite",
        # Validators run by CREATE FUNCTION (STABLE): they parse stored function bodies or
        # load a C function's library, and have no business in a client's statement.
        "fmgr_sql_validator",
        "fmgr_c_validator",
        "fmgr_internal_validator",
        "plpgsql_validator",
        # Other clients' SQL (STABLE). Every client reaches the server as the one upstream
        # role, so PostgreSQL's "your own sessions only" rule shows each client everyone's
        # query text (pg_stat_get_activity, behind pg_stat_activity), and the server
        # connection a client borrows holds other clients' prepared statements and cursors
        # (behind pg_prepared_statements and pg_cursors).
        "pg_stat_get_activity",
        "pg_stat_get_backend_activity",
        "pg_prepared_statement",
        "pg_cursor",
        # The server's files (volatile; superuser or pg_read_server_files only, denied
        # anyway).
        "pg_read_file",
        "pg_read_file_old",
        "pg_read_binary_file",
        "pg_stat_file",
        "pg_ls_dir",
        "pg_ls_logdir",
        "pg_ls_waldir",
        "pg_ls_tmpdir",
        "pg_ls_archive_statusdir",
        "pg_ls_logicalmapdir",
        "pg_ls_logicalsnapdir",
        "pg_ls_replslotdir",
        "pg_current_logfile",
        "pg_hba_file_rules",
        "pg_ident_file_mappings",
        "pg_show_all_file_settings",
        # Large objects, every one (volatile): server-side files (lo_import, lo_export) and
        # data outside any table the statement names.
        "lo_close",
        "lo_creat",
        "lo_create",
        "lo_export",
        "lo_from_bytea",
        "lo_get",
        "lo_import",
        "lo_lseek",
        "lo_lseek64",
        "lo_open",
        "lo_put",
        "lo_tell",
        "lo_tell64",
        "lo_truncate",
        "lo_truncate64",
        "lo_unlink",
        "loread",
        "lowrite",
        # Settings and other sessions (volatile): set_config is SET in disguise (the guard
        # must see SET to keep the settings it depends on); the rest end or signal other
        # sessions, or act on the whole server.
        "set_config",
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_log_backend_memory_contexts",
        "pg_notify",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_rotate_logfile_old",
        "pg_promote",
        "pg_switch_wal",
        "pg_create_restore_point",
        "pg_backup_start",
        "pg_backup_stop",
        "pg_wal_replay_pause",
        "pg_wal_replay_resume",
        # Replication slots and origins (volatile): logical slots hand out every change to
        # every table.
        "pg_create_physical_replication_slot",
        "pg_create_logical_replication_slot",
        "pg_copy_physical_replication_slot",
        "pg_copy_logical_replication_slot",
        "pg_drop_replication_slot",
        "pg_replication_slot_advance",
        "pg_logical_slot_get_changes",
        "pg_logical_slot_get_binary_changes",
        "pg_logical_slot_peek_changes",
        "pg_logical_slot_peek_binary_changes",
        "pg_logical_emit_message",
        "pg_replication_origin_create",
        "pg_replication_origin_drop",
        "pg_replication_origin_advance",
        "pg_replication_origin_session_setup",
        # Not built-in (extensions dblink and adminpack, so never allowed by default), named
        # so a configured allowlist that re-adds them reads as the deliberate act it is.
        "dblink",
        "dblink_exec",
        "dblink_connect",
        "dblink_connect_u",
        "dblink_open",
        "dblink_fetch",
        "dblink_send_query",
        "pg_file_write",
        "pg_file_unlink",
        "pg_file_rename",
    }
)

_ALLOWED_VOLATILITIES = frozenset({"i", "s"})


class CatalogError(Exception):
    """The catalog could not be read, or the configured allowlist names a missing function."""


@dataclass(frozen=True)
class Function:
    """One pg_proc row."""

    oid: int
    schema: str  # pg_namespace.nspname, unquoted, as the parser gives a qualified name
    name: str
    volatility: str  # 'i' immutable, 's' stable, 'v' volatile
    kind: str  # 'f' function, 'a' aggregate, 'w' window, 'p' procedure

    @property
    def built_in(self) -> bool:
        return self.oid < FIRST_NORMAL_OBJECT_ID


@dataclass(frozen=True)
class Operator:
    """One pg_operator row."""

    oid: int
    schema: str
    name: str
    function_oid: int  # oprcode; 0 for a shell operator

    @property
    def built_in(self) -> bool:
        return self.oid < FIRST_NORMAL_OBJECT_ID


class Catalog:
    """What one database's catalog says about functions and operators, and which names are safe.

    ``allowed_oids``: built-in functions (OID below ``FIRST_NORMAL_OBJECT_ID``) that are
    immutable or stable or named in ``HARMLESS_VOLATILE``, less those named in
    ``SQL_RUNNING``, plus ``extra_oids`` (the operator's configured additions, any schema,
    any volatility). A name is safe when at least one function bears it and every function
    bearing it — in any schema for an unqualified name, in the given schema for a qualified
    one — is allowed. An operator is allowed when its function is allowed and either the
    operator is built-in or its function is one of the configured additions; a name is safe
    when every operator bearing it is.
    """

    def __init__(
        self,
        functions: Iterable[Function],
        operators: Iterable[Operator],
        extra_oids: frozenset[int] = frozenset(),
    ) -> None:
        self.functions: tuple[Function, ...] = tuple(functions)
        self.operators: tuple[Operator, ...] = tuple(operators)
        self.extra_oids: frozenset[int] = frozenset(extra_oids)
        self._by_oid: dict[int, Function] = {f.oid: f for f in self.functions}
        self.allowed_oids: frozenset[int] = (
            frozenset(
                f.oid
                for f in self.functions
                if f.built_in
                and (f.volatility in _ALLOWED_VOLATILITIES or f.name in HARMLESS_VOLATILE)
                and f.name not in SQL_RUNNING
            )
            | self.extra_oids
        )
        self._safe_functions, self._safe_qualified_functions = _safe_names(
            (f.schema, f.name, f.oid in self.allowed_oids) for f in self.functions
        )
        self._safe_operators, self._safe_qualified_operators = _safe_names(
            (o.schema, o.name, self._operator_ok(o)) for o in self.operators
        )

    def _operator_ok(self, operator: Operator) -> bool:
        return operator.function_oid in self.allowed_oids and (
            operator.built_in or operator.function_oid in self.extra_oids
        )

    def function_allowed(self, name: str, schema: str | None = None) -> bool:
        """Whether a call of ``name`` (``schema.name`` when qualified) can only reach allowed
        functions. ``name`` and ``schema`` as the parser gives them: folded to lower case
        unless quoted; no function by that name means False."""
        if schema is None:
            return name in self._safe_functions
        return (schema, name) in self._safe_qualified_functions

    def operator_allowed(self, name: str, schema: str | None = None) -> bool:
        """Whether operator ``name`` (``OPERATOR(schema.name)`` when qualified) can only
        reach allowed operators; an unknown operator means False."""
        if schema is None:
            return name in self._safe_operators
        return (schema, name) in self._safe_qualified_operators

    def builtin_only(self, name: str) -> bool:
        """Whether every function named ``name``, in any schema, is the server's own: a call
        the guard may read by the built-in's meaning (set_config, say), since no other
        function (a user's, or one renamed to it) can answer to that name."""
        bearers = [f for f in self.functions if f.name == name]
        return bool(bearers) and all(f.built_in for f in bearers)

    def function(self, oid: int) -> Function | None:
        """The function with this OID, e.g. for a fastpath FunctionCall message."""
        return self._by_oid.get(oid)

    def oid_allowed(self, oid: int) -> bool:
        """Whether the function with this OID may be called (the fastpath check)."""
        return oid in self.allowed_oids

    def describe(self) -> dict[str, int]:
        """Counts for metrics and docs."""
        return {
            "functions": len(self.functions),
            "functions_allowed": sum(f.oid in self.allowed_oids for f in self.functions),
            "function_names": len({f.name for f in self.functions}),
            "function_names_allowed": len(self._safe_functions),
            "operators": len(self.operators),
            "operators_allowed": sum(self._operator_ok(o) for o in self.operators),
            "operator_names": len({o.name for o in self.operators}),
            "operator_names_allowed": len(self._safe_operators),
        }


def _safe_names(
    rows: Iterable[tuple[str, str, bool]],
) -> tuple[frozenset[str], frozenset[tuple[str, str]]]:
    """Names (and schema-qualified names) all of whose bearers are ok."""
    everywhere: dict[str, bool] = defaultdict(lambda: True)
    qualified: dict[tuple[str, str], bool] = defaultdict(lambda: True)
    for schema, name, ok in rows:
        everywhere[name] &= ok
        qualified[schema, name] &= ok
    return (
        frozenset(name for name, ok in everywhere.items() if ok),
        frozenset(key for key, ok in qualified.items() if ok),
    )


_FUNCTIONS_SQL = """
SELECT p.oid, n.nspname, p.proname, p.provolatile, p.prokind
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
"""
_OPERATORS_SQL = """
SELECT o.oid, n.nspname, o.oprname, o.oprcode::pg_catalog.oid
FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
"""
_RESOLVE_SQL = "SELECT pg_catalog.to_regprocedure(%s)::pg_catalog.oid"
_RESOLVE_MANY_SQL = (
    "SELECT pg_catalog.to_regprocedure(s)::pg_catalog.oid"
    " FROM pg_catalog.unnest(%s::pg_catalog.text[]) WITH ORDINALITY AS t(s, i) ORDER BY i"
)


async def load_catalog(
    dsn: str, extra_functions: Sequence[str] = (), connect_timeout: int = 10
) -> Catalog:
    """Read the catalog of the database ``dsn`` names (a libpq URL or key=value string).

    ``extra_functions`` are signatures to allow besides the built-ins, such as
    ``"public.slugify(text)"`` or ``"myfn(int, int)"`` (unqualified ones resolve against
    this connection's search_path, so qualify them); one that names no function raises
    CatalogError. So does any failure to connect or read, with a message free of the
    password. ``connect_timeout`` (seconds) applies unless the DSN sets its own.
    """
    where = _where(dsn)
    try:
        options: dict[str, Any] = {}
        if "connect_timeout" not in _conninfo(dsn):
            options["connect_timeout"] = connect_timeout
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True, **options) as conn:
            functions = [
                Function(oid, schema, name, volatility, kind)
                for oid, schema, name, volatility, kind in await (
                    await conn.execute(_FUNCTIONS_SQL)
                ).fetchall()
            ]
            operators = [
                Operator(oid, schema, name, function_oid)
                for oid, schema, name, function_oid in await (
                    await conn.execute(_OPERATORS_SQL)
                ).fetchall()
            ]
            extra_oids = await _resolve(conn, list(extra_functions))
    except CatalogError:
        raise
    except (psycopg.Error, OSError) as exc:
        message = _scrub(" ".join(str(exc).split()), dsn)
        raise CatalogError(f"cannot read the function catalog of {where}: {message}") from None
    return Catalog(functions, operators, extra_oids)


async def _resolve(conn: psycopg.AsyncConnection[Any], signatures: list[str]) -> frozenset[int]:
    """The OIDs of these signatures, in one query; one at a time only to name a bad one."""
    if not signatures:
        return frozenset()
    try:
        rows = await (await conn.execute(_RESOLVE_MANY_SQL, [signatures])).fetchall()
        oids: list[int | None] = [oid for (oid,) in rows]
    except (psycopg.DataError, psycopg.ProgrammingError):
        # A malformed signature or an unknown argument type is an error, not a NULL.
        oids = []
        for signature in signatures:
            try:
                row = await (await conn.execute(_RESOLVE_SQL, [signature])).fetchone()
            except (psycopg.DataError, psycopg.ProgrammingError) as exc:
                raise CatalogError(
                    f"unknown function in the guard's allowlist: {signature!r} ({exc})"
                ) from None
            oids.append(row[0] if row else None)
    for signature, oid in zip(signatures, oids, strict=True):
        if oid is None:
            raise CatalogError(f"unknown function in the guard's allowlist: {signature!r}")
    return frozenset(oid for oid in oids if oid is not None)


def _conninfo(dsn: str) -> dict[str, Any]:
    try:
        return conninfo_to_dict(dsn)
    except psycopg.Error:
        return {}


def _where(dsn: str) -> str:
    """user@host:port/db, for messages: never the password."""
    info = _conninfo(dsn)
    if info:
        user, host = info.get("user", ""), info.get("host", "")
        port, db = info.get("port", ""), info.get("dbname", "")
    else:
        parts = urlsplit(dsn)
        try:
            port = str(parts.port or "")
        except ValueError:
            port = ""
        user, host = unquote(parts.username or ""), parts.hostname or ""
        db = unquote(parts.path.lstrip("/"))
    return f"{user + '@' if user else ''}{host or 'localhost'}{':' + port if port else ''}/{db}"


def _scrub(message: str, dsn: str) -> str:
    """The message with every form of the DSN's password (and the DSN itself) masked."""
    secrets = {dsn}
    password = _conninfo(dsn).get("password")
    if password:
        secrets.add(password)
    try:
        raw = urlsplit(dsn).password
    except ValueError:
        raw = None
    if raw:
        secrets |= {raw, unquote(raw)}
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            message = message.replace(secret, "***")
    return message
