"""The guard's catalog: which function and operator names are safe, read from a real server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from engines.firewall.catalog import (
    FIRST_NORMAL_OBJECT_ID,
    HARMLESS_VOLATILE,
    SQL_RUNNING,
    Catalog,
    CatalogError,
    Function,
    Operator,
    load_catalog,
)
from engines.pgcluster import Cluster
from engines.procs import free_port

# Names in HARMLESS_VOLATILE and SQL_RUNNING that PostgreSQL 15 lacks: newer releases' and
# extensions' functions (listed there on purpose, see catalog.py).
NOT_IN_PG15 = frozenset(
    {
        "random_normal",  # 16+
        "uuidv4",  # 18+
        "uuidv7",  # 18+
        "dblink",  # extension dblink
        "dblink_exec",
        "dblink_connect",
        "dblink_connect_u",
        "dblink_open",
        "dblink_fetch",
        "dblink_send_query",
        "pg_file_write",  # extension adminpack
        "pg_file_unlink",
        "pg_file_rename",
    }
)


def load(postgres: Cluster, extra_functions: tuple[str, ...] = ()) -> Catalog:
    return asyncio.run(load_catalog(postgres[0].dsn(), extra_functions))


def oid_of(postgres: Cluster, signature: str) -> int:
    with psycopg.connect(postgres[0].dsn(), autocommit=True) as conn:
        row = conn.execute("SELECT to_regprocedure(%s)::oid", [signature]).fetchone()
    assert row is not None
    assert row[0] is not None, signature
    return row[0]


@dataclass
class Shadows:
    """A throwaway schema whose functions and operators reuse built-in names."""

    schema: str
    function: str  # public.f_<hex>(), IMMUTABLE, in no allowlist


@pytest.fixture
def shadows(postgres: Cluster) -> Iterator[Shadows]:
    hex_ = uuid.uuid4().hex[:12]
    found = Shadows(schema=f"fw_catalog_{hex_}", function=f"f_{hex_}")
    s = found.schema
    with psycopg.connect(postgres[0].dsn(), autocommit=True) as conn:
        try:
            conn.execute(f"CREATE SCHEMA {s}")
            conn.execute(
                f"CREATE FUNCTION {s}.lower(text) RETURNS text IMMUTABLE LANGUAGE sql AS 'SELECT $1'"
            )
            conn.execute(
                f"CREATE FUNCTION {s}.cat(text, int) RETURNS text IMMUTABLE LANGUAGE sql"
                " AS 'SELECT $1 || $2'"
            )
            conn.execute(
                f"CREATE FUNCTION {s}.same(text, text) RETURNS bool IMMUTABLE LANGUAGE sql"
                " AS 'SELECT $1 = $2'"
            )
            conn.execute(
                f"CREATE OPERATOR {s}.|| (LEFTARG = text, RIGHTARG = int, FUNCTION = {s}.cat)"
            )
            conn.execute(
                f"CREATE OPERATOR {s}.=== (LEFTARG = text, RIGHTARG = text, FUNCTION = {s}.same)"
            )
            conn.execute(
                f"CREATE FUNCTION public.{found.function}() RETURNS int IMMUTABLE LANGUAGE sql"
                " AS 'SELECT 1'"
            )
            yield found
        finally:
            conn.execute(f"DROP SCHEMA IF EXISTS {s} CASCADE")
            conn.execute(f"DROP FUNCTION IF EXISTS public.{found.function}()")


# -- built-in functions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "lower",
        "abs",
        "length",
        "now",
        "random",
        "nextval",
        "count",
        "sum",
        "clock_timestamp",
        "gen_random_uuid",
        "pg_try_advisory_xact_lock",
        "to_char",
        "jsonb_build_object",
        "current_setting",
    ],
)
def test_harmless_builtins_are_allowed(catalog: Catalog, name: str) -> None:
    assert catalog.function_allowed(name)


@pytest.mark.parametrize(
    "name",
    [
        "set_config",
        "pg_read_file",
        "pg_ls_dir",
        "lo_import",
        "lo_unlink",
        "lo_get",
        "pg_terminate_backend",
        "pg_cancel_backend",
        "query_to_xml",
        "table_to_xml",  # STABLE, yet reads any table by name
        "ts_rewrite",  # one overload IMMUTABLE, one runs a query
        "pg_stat_get_activity",  # STABLE, shows other clients' SQL
        "setseed",
        "currval",  # a pooled server session's last value: maybe another client's
        "lastval",
        "setval",
        "pg_advisory_lock",  # session-level: outlives the transaction
        "pg_notify",
        "dblink",  # not installed
    ],
)
def test_dangerous_builtins_are_not(catalog: Catalog, name: str) -> None:
    assert not catalog.function_allowed(name)
    assert not catalog.function_allowed(name, "pg_catalog")


@pytest.mark.parametrize("name", ["no_such_function", "LOWER", "", "lower(text)"])
def test_unknown_names_are_not_allowed(catalog: Catalog, name: str) -> None:
    # "LOWER" is what the parser gives for a quoted "LOWER": no function has that name.
    assert not catalog.function_allowed(name)


def test_qualified_names_look_only_in_their_schema(catalog: Catalog) -> None:
    assert catalog.function_allowed("lower", "pg_catalog")
    assert catalog.function_allowed("count", "pg_catalog")
    assert not catalog.function_allowed("lower", "public")
    assert not catalog.function_allowed("lower", "no_such_schema")
    assert not catalog.function_allowed("set_config", "pg_catalog")


def test_a_user_function_shadowing_a_builtin_name_makes_the_bare_name_unsafe(
    postgres: Cluster, shadows: Shadows
) -> None:
    catalog = load(postgres)
    assert not catalog.function_allowed("lower")  # a search_path could reach the schema's
    assert catalog.function_allowed("lower", "pg_catalog")  # only the built-in
    assert not catalog.function_allowed("lower", shadows.schema)
    assert catalog.function_allowed("upper")  # untouched names stay safe


# -- configured additions ---------------------------------------------------------------------


def test_a_user_function_is_allowed_only_when_configured(
    postgres: Cluster, shadows: Shadows
) -> None:
    signature = f"public.{shadows.function}()"
    oid = oid_of(postgres, signature)
    assert oid >= FIRST_NORMAL_OBJECT_ID

    plain = load(postgres)
    assert plain.function(oid) == Function(oid, "public", shadows.function, "i", "f")
    assert not plain.function_allowed(shadows.function)
    assert not plain.function_allowed(shadows.function, "public")
    assert not plain.oid_allowed(oid)

    configured = load(postgres, (signature,))
    assert configured.function_allowed(shadows.function)
    assert configured.function_allowed(shadows.function, "public")
    assert oid in configured.allowed_oids
    assert configured.describe()["functions_allowed"] == plain.describe()["functions_allowed"] + 1


def test_a_configured_volatile_builtin_is_allowed(postgres: Cluster) -> None:
    assert not load(postgres).function_allowed("pg_notify")
    catalog = load(postgres, ("pg_catalog.pg_notify(text, text)",))
    assert catalog.function_allowed("pg_notify")


@pytest.mark.parametrize(
    "signature",
    ["public.no_such_function_here(int)", "lower(no_such_type)", "lower(", "lower"],
)
def test_an_unknown_configured_function_is_an_error(postgres: Cluster, signature: str) -> None:
    with pytest.raises(CatalogError, match="unknown function in the guard's allowlist") as error:
        load(postgres, ("lower(text)", signature))
    assert repr(signature) in str(error.value)


# -- operators ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["=", "<>", "+", "||", "~~", "@>", "->>", "@@"])
def test_builtin_operators_are_allowed(catalog: Catalog, name: str) -> None:
    assert catalog.operator_allowed(name)
    assert catalog.operator_allowed(name, "pg_catalog")


def test_unknown_operators_are_not(catalog: Catalog) -> None:
    assert not catalog.operator_allowed("===")
    assert not catalog.operator_allowed("=", "public")


def test_a_user_operator_makes_its_name_unsafe(postgres: Cluster, shadows: Shadows) -> None:
    catalog = load(postgres)
    assert not catalog.operator_allowed("||")
    assert catalog.operator_allowed("||", "pg_catalog")  # OPERATOR(pg_catalog.||)
    assert not catalog.operator_allowed("||", shadows.schema)
    assert not catalog.operator_allowed("===")
    assert catalog.operator_allowed("=")

    # A user operator is allowed once its function is configured; the other stays unsafe.
    configured = load(postgres, (f"{shadows.schema}.same(text, text)",))
    assert configured.operator_allowed("===")
    assert configured.operator_allowed("===", shadows.schema)
    assert not configured.operator_allowed("||")


# -- the fastpath (FunctionCall by OID) ------------------------------------------------------------


def test_fastpath_calls_are_checked_by_oid(postgres: Cluster, catalog: Catalog) -> None:
    lower = oid_of(postgres, "pg_catalog.lower(text)")
    set_config = oid_of(postgres, "pg_catalog.set_config(text, text, boolean)")
    assert catalog.oid_allowed(lower)
    assert lower in catalog.allowed_oids
    assert not catalog.oid_allowed(set_config)
    assert catalog.function(set_config) == Function(
        set_config, "pg_catalog", "set_config", "v", "f"
    )
    assert catalog.function(4_000_000_000) is None
    assert not catalog.oid_allowed(4_000_000_000)


# -- the lists themselves, against PostgreSQL 15 -------------------------------------------------


def test_the_lists_name_real_functions(postgres: Cluster, catalog: Catalog) -> None:
    with psycopg.connect(postgres[0].dsn(), autocommit=True) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()
    assert version is not None
    if int(version[0]) // 10000 != 15:
        pytest.skip("the list of absent names is PostgreSQL 15's")
    built_in = {f.name for f in catalog.functions if f.oid < FIRST_NORMAL_OBJECT_ID}
    assert sorted((SQL_RUNNING | HARMLESS_VOLATILE) - built_in) == sorted(NOT_IN_PG15)
    # HARMLESS_VOLATILE lists only what volatility would deny anyway.
    for function in catalog.functions:
        if function.name in HARMLESS_VOLATILE:
            assert function.volatility == "v", function
    # Every large-object function is in SQL_RUNNING.
    assert {name for name in built_in if name.startswith("lo_")} <= SQL_RUNNING
    assert not SQL_RUNNING & HARMLESS_VOLATILE


def test_nothing_sql_running_is_allowed(catalog: Catalog) -> None:
    for name in SQL_RUNNING:
        assert not catalog.function_allowed(name), name
    for function in catalog.functions:
        if function.name in SQL_RUNNING:
            assert not catalog.oid_allowed(function.oid), function


def test_only_builtins_and_no_volatile_outside_the_list_are_allowed(catalog: Catalog) -> None:
    for function in catalog.functions:
        if catalog.oid_allowed(function.oid):
            assert function.oid < FIRST_NORMAL_OBJECT_ID
            assert function.volatility in "is" or function.name in HARMLESS_VOLATILE


def test_describe_counts(catalog: Catalog) -> None:
    counts = catalog.describe()
    assert counts["functions"] == len(catalog.functions) > 3000
    assert 0 < counts["functions_allowed"] < counts["functions"]
    assert counts["functions_allowed"] == len(catalog.allowed_oids)
    assert 0 < counts["function_names_allowed"] < counts["function_names"]
    assert counts["operators"] == len(catalog.operators) > 0
    assert counts["operators_allowed"] == counts["operators"]  # no user operators here


# -- without a server ---------------------------------------------------------------------------


def test_one_unsafe_overload_in_any_schema_makes_the_name_unsafe() -> None:
    catalog = Catalog(
        [
            Function(870, "pg_catalog", "lower", "i", "f"),
            Function(3000, "pg_catalog", "mixed", "i", "f"),
            Function(3001, "pg_catalog", "mixed", "v", "f"),
            Function(20000, "app", "lower", "i", "f"),
            Function(20001, "app", "helper", "i", "f"),
        ],
        [
            Operator(96, "pg_catalog", "=", 65),  # function 65 unknown: not allowed
            Operator(98, "pg_catalog", "||", 870),
            Operator(20002, "app", "<<<", 870),  # user operator on a built-in function
            Operator(20003, "app", "!!", 0),  # a shell
            Operator(20004, "app", "~~~", 20001),
        ],
        extra_oids=frozenset({20001}),
    )
    assert not catalog.function_allowed("lower")
    assert catalog.function_allowed("lower", "pg_catalog")
    assert not catalog.function_allowed("lower", "app")
    assert not catalog.function_allowed("mixed")
    assert catalog.function_allowed("helper")
    assert catalog.function_allowed("helper", "app")
    assert not catalog.operator_allowed("=")
    assert catalog.operator_allowed("||")
    assert not catalog.operator_allowed("<<<")  # neither built-in nor configured
    assert not catalog.operator_allowed("!!")
    assert catalog.operator_allowed("~~~")
    assert catalog.allowed_oids == {870, 3000, 20001}


# -- connection failures ------------------------------------------------------------------------


def test_a_failed_connection_is_a_catalog_error_without_the_password(postgres: Cluster) -> None:
    wrong = postgres[0].dsn().replace("@127.0.0.1", "WRONGpw@127.0.0.1", 1)
    with pytest.raises(CatalogError, match="password authentication failed") as error:
        asyncio.run(load_catalog(wrong))
    assert "WRONGpw" not in str(error.value)
    assert error.value.__cause__ is None
    assert error.value.__suppress_context__

    with pytest.raises(CatalogError, match="cannot read the function catalog") as error:
        asyncio.run(load_catalog(f"postgresql://u:s3cret-pw@127.0.0.1:{free_port()}/db"))
    assert "s3cret-pw" not in str(error.value)

    with pytest.raises(CatalogError) as error:
        asyncio.run(load_catalog("postgresql://u:s3cret%zz@127.0.0.1:1/db"))  # a bad URL
    assert "s3cret" not in str(error.value)
