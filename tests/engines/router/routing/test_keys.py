"""Which shards a statement's key conditions and joins send it to (routing.keys)."""

from __future__ import annotations

import pytest

from engines.router.routing import (
    Concat,
    OrderLimit,
    RouteError,
    Schema,
    Single,
    route,
)

from .support import EVERY, SCHEMA, one, refused, shard_of

# -- key conditions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "params", "shard"),
    [
        ("SELECT * FROM users WHERE id = 4", None, 1),
        ("SELECT * FROM users WHERE 5 = id AND v > 2", None, 2),
        ("SELECT * FROM users u WHERE u.id = $1", [6], 0),
        ("SELECT * FROM users WHERE id = $1::bigint", ["7"], 1),
        ("SELECT * FROM accounts WHERE name = $1", ["abcd"], 1),
        ("SELECT * FROM accounts WHERE name = 'ab'", None, 2),
        ("SELECT * FROM users WHERE id = 9999999999", None, 9999999999 % 3),
        ("SELECT * FROM users WHERE id = ANY($1)", [[3, 6, None]], 0),
        ("SELECT * FROM users WHERE id IN (2, 5) AND id = 5", None, 2),
    ],
)
def test_point_read(sql: str, params: list[object] | None, shard: int) -> None:
    found = one(sql, params)
    assert found.shards == (shard,)
    assert found.merge == Single()
    assert found.sql is None
    assert found.statement == sql
    assert not found.writes
    assert not found.needs_params


def test_in_list_spanning_two_shards() -> None:
    found = one("SELECT * FROM users WHERE id IN (1, 4, 2)")
    assert found.shards == (1, 2)
    assert found.merge == Concat()
    assert found.sql is None


def test_any_array_literal_and_param() -> None:
    assert one("SELECT * FROM users WHERE id = ANY(ARRAY[1, 2])").shards == (1, 2)
    assert one("SELECT * FROM users WHERE id = ANY($1)", [[0, 2]]).shards == (0, 2)
    assert one("SELECT * FROM users WHERE id = ANY($1::int[])", [["3", 4]]).shards == (0, 1)
    assert one("SELECT * FROM users WHERE id = ANY('{1,2}')").shards == EVERY


def test_key_in_an_or_is_no_pin() -> None:
    found = one("SELECT * FROM users WHERE id = 1 OR v = 2")
    assert found.shards == EVERY
    assert found.merge == Concat()


def test_contradictory_keys_go_to_one_shard() -> None:
    assert one("SELECT * FROM users WHERE id = 1 AND id = 2").shards == (0,)


def test_prepared_statement_needs_params_then_routes_at_bind() -> None:
    sql = "SELECT * FROM users WHERE id = $1"
    at_parse = one(sql)
    assert at_parse.needs_params
    assert at_parse.shards == ()
    assert one(sql, [4]).shards == (1,)
    assert one(sql, [5]).shards == (2,)


def test_param_on_a_non_key_column_needs_nothing() -> None:
    found = one("SELECT * FROM users WHERE v = $1")
    assert not found.needs_params
    assert found.shards == EVERY


def test_limit_param_needs_params() -> None:
    assert one("SELECT * FROM users ORDER BY id LIMIT $1").needs_params
    found = one("SELECT * FROM users ORDER BY id LIMIT $1", [3])
    assert found.merge == OrderLimit(((-1, False, False),), 3, 0, hidden=1)
    assert found.sql is not None
    assert found.sql[0] == "SELECT *, id FROM users ORDER BY id LIMIT 3"
    assert found.param_map == dict.fromkeys(EVERY, ())  # bind no parameter on the shards


def test_missing_param_is_an_error() -> None:
    assert "$2" in refused("SELECT * FROM users WHERE id = $2", [1])


def test_key_types_normalize_literals() -> None:
    typed = Schema(SCHEMA.tables, SCHEMA.reference, 3, {"users": "int", "accounts": "text"})
    assert one("SELECT * FROM users WHERE id = '4'", schema=typed).shards == (1,)
    assert one("SELECT * FROM users WHERE id = $1", [" 5 "], schema=typed).shards == (2,)
    assert one("SELECT * FROM accounts WHERE name = $1", [12], schema=typed).shards == (2,)
    with pytest.raises(RouteError):
        route("SELECT * FROM users WHERE id = '0x10'", typed, shard_of)


# -- joins and subqueries -------------------------------------------------------------------


def test_co_located_join() -> None:
    sql = "SELECT * FROM users u JOIN orders o ON o.user_id = u.id"
    assert one(sql).shards == EVERY
    found = one(sql + " WHERE u.id = 7")
    assert found.shards == (1,)
    found = one("SELECT * FROM users u, orders o WHERE u.id = o.user_id AND o.user_id = $1", [8])
    assert found.shards == (2,)
    assert one("SELECT * FROM users u LEFT JOIN orders o ON u.id = o.user_id").shards == EVERY


def test_join_with_reference_table() -> None:
    found = one("SELECT * FROM users u JOIN countries c ON c.code = u.country WHERE u.id = 2")
    assert found.shards == (2,)


def test_non_co_located_join_is_refused() -> None:
    assert "not on equality of their key" in refused(
        "SELECT * FROM users u JOIN orders o ON o.id = u.order_id"
    )
    assert "not on equality of their key" in refused(
        "SELECT * FROM users u JOIN orders o ON o.user_id = u.id OR o.user_id = u.x"
    )


def test_joins_pinned_to_the_same_shard_are_allowed() -> None:
    assert one("SELECT * FROM users u, orders o WHERE u.id = 1 AND o.user_id = 4").shards == (1,)
    assert "key" in refused("SELECT * FROM users u, orders o WHERE u.id = 1 AND o.user_id = 2")


def test_correlated_subqueries_on_the_key_are_allowed() -> None:
    exists = "SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id)"
    assert one(exists).shards == EVERY
    scalar = "SELECT u.id, (SELECT count(*) FROM orders o WHERE o.user_id = u.id) FROM users u"
    assert one(scalar + " WHERE u.id = 5").shards == (2,)
    key_in = "SELECT * FROM users WHERE id IN (SELECT user_id FROM orders WHERE total > 9)"
    assert one(key_in).shards == EVERY


def test_cross_shard_subqueries_are_refused() -> None:
    for sql in [
        "SELECT * FROM users WHERE x IN (SELECT v FROM orders)",
        "SELECT * FROM users WHERE id IN (SELECT user_id FROM orders ORDER BY total LIMIT 3)",
        "SELECT * FROM users WHERE NOT (id IN (SELECT user_id FROM orders))",
        "SELECT (SELECT count(*) FROM users)",
        "SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.x)",
        "SELECT * FROM users u JOIN (SELECT user_id, count(*) FROM orders GROUP BY 1) s "
        "ON s.user_id = u.id",
        "WITH t AS (SELECT * FROM orders) SELECT * FROM users u JOIN t ON t.user_id = u.id",
    ]:
        assert "would need rows from other shards" in refused(sql), sql


def test_subqueries_pinned_to_the_same_shard_are_allowed() -> None:
    sql = "SELECT * FROM users WHERE id = 1 AND x IN (SELECT v FROM orders WHERE user_id = 4)"
    assert one(sql).shards == (1,)
    cte = "WITH t AS (SELECT * FROM orders WHERE user_id = 2) SELECT * FROM t"
    assert one(cte).shards == (2,)
    union = "SELECT id FROM users WHERE id = 1 UNION ALL SELECT id FROM users WHERE id = 4"
    assert one(union).shards == (1,)


def test_a_cte_named_like_a_sharded_table_shadows_it() -> None:
    assert one("WITH users AS (SELECT 1 AS id) SELECT * FROM users").shards == (0,)
    # ...but not inside its own (non-recursive) definition, which reads the real table
    message = refused("WITH users AS (SELECT * FROM users) SELECT count(*) FROM users")
    assert "other shards" in message


def test_data_modifying_cte_is_refused() -> None:
    assert "WITH" in refused("WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d")
