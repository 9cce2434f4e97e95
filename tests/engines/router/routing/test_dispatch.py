"""Statement kinds through the router's entry: DDL, transactions, settings, EXPLAIN (routing.dispatch, routing.ddl)."""

from __future__ import annotations

import pytest

from engines.router.routing import (
    Replicated,
    RouteError,
    route,
)

from .support import EVERY, SCHEMA, one, refused, shard_of


def test_no_table_reads_shard_zero() -> None:
    assert one("SELECT 1 + 1").shards == (0,)


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE users (id bigint PRIMARY KEY, name text)",
        "CREATE TABLE orders (user_id bigint, n int, PRIMARY KEY (user_id, n))",
        "CREATE INDEX ON users (name)",
        "CREATE UNIQUE INDEX ON orders (user_id, n)",
        "ALTER TABLE users ADD COLUMN age int",
        "DROP TABLE users",
        "TRUNCATE users",
        "CREATE VIEW v AS SELECT 1",
        "CREATE SEQUENCE s",
    ],
)
def test_ddl_everywhere(sql: str) -> None:
    found = one(sql)
    assert (found.shards, found.merge, found.writes) == (EVERY, Replicated(), True)
    assert "DDL" in found.reason


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE users (id bigint, email text UNIQUE)",
        "CREATE TABLE orders (user_id bigint, n int, PRIMARY KEY (n))",
        "CREATE UNIQUE INDEX ON users (email)",
        "ALTER TABLE users ADD CONSTRAINT u UNIQUE (email)",
    ],
)
def test_unique_without_key_is_refused(sql: str) -> None:
    assert "must include" in refused(sql)


def test_views_and_tables_from_sharded_rows_are_refused() -> None:
    assert "view" in refused("CREATE VIEW v AS SELECT * FROM users")
    assert "CREATE TABLE AS" in refused("CREATE TABLE t AS SELECT * FROM orders")


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("BEGIN", "begin"),
        ("START TRANSACTION ISOLATION LEVEL REPEATABLE READ", "begin"),
        ("COMMIT", "commit"),
        ("ROLLBACK", "rollback"),
        ("SAVEPOINT a", "savepoint"),
        ("RELEASE SAVEPOINT a", "release"),
        ("ROLLBACK TO SAVEPOINT a", "rollback_to"),
    ],
)
def test_transaction_control(sql: str, kind: str) -> None:
    found = one(sql)
    assert (found.shards, found.transaction) == ((), kind)


def test_session_settings_and_show() -> None:
    assert one("SET statement_timeout = '5s'").merge == Replicated()
    assert one("SHOW statement_timeout").shards == (0,)


def test_explain_single_shard_only() -> None:
    assert one("EXPLAIN SELECT * FROM users WHERE id = 2").shards == (2,)
    assert "EXPLAIN ROUTE" in refused("EXPLAIN SELECT count(*) FROM users")


@pytest.mark.parametrize(
    "sql", ["COPY users FROM STDIN", "PREPARE TRANSACTION 'x'", "LISTEN ch", "SELECT FROM"]
)
def test_unsupported_statements(sql: str) -> None:
    refused(sql)


def test_multi_statement_string() -> None:
    routes = route(
        "BEGIN; INSERT INTO users (id, v) VALUES (1, 'é'), (2, 'b'); "
        "SELECT * FROM users WHERE id = 2; COMMIT",
        SCHEMA,
        shard_of,
    )
    assert [r.transaction for r in routes] == ["begin", None, None, "commit"]
    assert routes[1].statement == "INSERT INTO users (id, v) VALUES (1, 'é'), (2, 'b')"
    assert routes[1].shards == (1, 2)
    assert routes[2].statement == "SELECT * FROM users WHERE id = 2"
    assert routes[2].shards == (2,)


def test_placement_out_of_range_is_an_error() -> None:
    with pytest.raises(RouteError, match="placement"):
        route("SELECT * FROM users WHERE id = 1", SCHEMA, lambda value: 3)
