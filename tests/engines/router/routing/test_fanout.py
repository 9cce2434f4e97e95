"""SELECT on several shards: rewrites and merges (routing.fanout, ordering, aggregates)."""

from __future__ import annotations

import pytest

from engines.router.routing import (
    Aggregate,
    Avg,
    Col,
    Distinct,
    HavingTerm,
    OrderLimit,
    Single,
)

from .support import EVERY, one, refused


def test_fan_out_aggregates_rewrite_avg() -> None:
    found = one("SELECT count(*), sum(x), avg(x), min(x), max(x) FROM users")
    assert found.shards == EVERY
    assert found.sql is not None
    assert set(found.sql) == set(EVERY)
    assert found.sql[0] == "SELECT count(*), sum(x), count(x), min(x), max(x) FROM users"
    assert found.merge == Aggregate(
        group_by=(),
        aggregates=((0, "count"), (1, "sum"), (2, "count"), (3, "min"), (4, "max")),
        output=(Col(0), Col(1), Avg(1, 2), Col(3), Col(4)),
    )


def test_avg_alone_adds_sum_and_count() -> None:
    found = one("SELECT avg(price) AS mean FROM orders WHERE status = 'paid'")
    assert found.sql is not None
    assert found.sql[0] == "SELECT sum(price), count(price) FROM orders WHERE status = 'paid'"
    assert found.merge == Aggregate((), ((0, "sum"), (1, "count")), (Avg(0, 1, "mean"),))


def test_aggregate_on_pinned_shards_merges_too() -> None:
    found = one("SELECT count(*) FROM users WHERE id IN (1, 2)")
    assert found.shards == (1, 2)
    assert isinstance(found.merge, Aggregate)
    assert one("SELECT count(*) FROM users WHERE id = 1").merge == Single()


def test_group_by_having_order_limit() -> None:
    found = one(
        "SELECT country, count(*) AS n FROM users GROUP BY country "
        "HAVING count(*) > 2 AND avg(age) < 40.5 ORDER BY n DESC, 1 LIMIT 5 OFFSET 1"
    )
    assert found.sql is not None
    assert found.sql[0] == (
        "SELECT country, count(*) AS n, sum(age), count(age) FROM users GROUP BY country"
    )
    merge = found.merge
    assert isinstance(merge, Aggregate)
    assert merge.group_by == (0,)
    assert merge.aggregates == ((1, "count"), (2, "sum"), (3, "count"))
    assert merge.output == (Col(0), Col(1))
    assert merge.having[0] == HavingTerm(Col(1), ">", 2)
    assert merge.having[1].value == Avg(2, 3)
    assert (merge.having[1].op, str(merge.having[1].constant)) == ("<", "40.5")
    assert merge.order == OrderLimit(((1, True, True), (0, False, False)), 5, 1)


def test_group_by_column_not_selected_and_by_position() -> None:
    found = one("SELECT count(*) FROM users GROUP BY country")
    assert found.sql is not None
    assert found.sql[0] == "SELECT count(*), country FROM users GROUP BY country"
    assert found.merge == Aggregate((1,), ((0, "count"),), (Col(0),))
    found = one("SELECT lower(name), max(x) FROM users GROUP BY 1")
    assert found.sql is not None
    assert found.sql[0] == "SELECT lower(name), max(x) FROM users GROUP BY lower(name)"


def test_selected_aggregates_keep_their_names_and_columns() -> None:
    found = one("SELECT sum(x) AS a, sum(x) AS b, avg(x) FROM users")
    assert found.sql is not None
    assert found.sql[0] == "SELECT sum(x) AS a, sum(x) AS b, count(x) FROM users"
    assert isinstance(found.merge, Aggregate)
    assert found.merge.output == (Col(0), Col(1), Avg(0, 2))


def test_having_flipped_and_with_param() -> None:
    found = one("SELECT a, sum(x) FROM users GROUP BY a HAVING $1 < sum(x)", [10])
    assert isinstance(found.merge, Aggregate)
    assert found.merge.having == (HavingTerm(Col(1), ">", 10),)
    assert found.param_map == dict.fromkeys(EVERY, ())  # $1 no longer sent to shards


def test_order_limit_offset_pushdown() -> None:
    found = one("SELECT id, name FROM users ORDER BY name DESC, 1 LIMIT 10 OFFSET 5")
    assert found.sql is not None
    assert found.sql[2] == "SELECT id, name FROM users ORDER BY name DESC, 1 LIMIT 15"
    assert found.merge == OrderLimit(((1, True, True), (0, False, False)), 10, 5)
    assert "LIMIT 15" in found.reason


def test_order_by_expression_not_selected_becomes_a_hidden_column() -> None:
    found = one("SELECT id FROM users ORDER BY lower(name) NULLS FIRST LIMIT 3")
    assert found.sql is not None
    assert found.sql[0] == (
        "SELECT id, lower(name) FROM users ORDER BY lower(name) NULLS FIRST LIMIT 3"
    )
    assert found.merge == OrderLimit(((-1, False, True),), 3, 0, hidden=1)


def test_order_by_an_output_name() -> None:
    # x::text is output column "x": shards sort by the text, so must the merger
    found = one("SELECT x::text FROM users ORDER BY x LIMIT 2")
    assert found.merge == OrderLimit(((0, False, False),), 2, 0)
    found = one("SELECT count(*) AS n, a FROM users GROUP BY a ORDER BY n")
    assert isinstance(found.merge, Aggregate)
    assert found.merge.order == OrderLimit(((0, False, False),), None, 0)
    assert "AS" in refused("SELECT (SELECT 1) FROM users ORDER BY y LIMIT 1")
    assert "before any" in refused("SELECT *, lower(v) AS lv FROM users ORDER BY lv LIMIT 1")


def test_order_without_limit_and_limit_without_order() -> None:
    found = one("SELECT id FROM users ORDER BY id")
    assert found.merge == OrderLimit(((0, False, False),), None, 0)
    found = one("SELECT id FROM users LIMIT 2 OFFSET 2")
    assert found.merge == OrderLimit((), 2, 2)
    assert found.sql is not None
    assert found.sql[0] == "SELECT id FROM users LIMIT 4"


def test_distinct() -> None:
    found = one("SELECT DISTINCT country FROM users")
    assert (found.merge, found.sql) == (Distinct(), None)
    found = one("SELECT DISTINCT country FROM users ORDER BY country LIMIT 4 OFFSET 1")
    assert found.merge == Distinct(OrderLimit(((0, False, False),), 4, 1))
    assert found.sql is not None
    assert found.sql[1] == "SELECT DISTINCT country FROM users ORDER BY country LIMIT 5"


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("SELECT count(DISTINCT x) FROM users", "DISTINCT"),
        ("SELECT string_agg(v, ',') FROM users", "string_agg"),
        ("SELECT array_agg(v) FROM users GROUP BY a", "array_agg"),
        ("SELECT sum(x) + 1 FROM users", "expression over an aggregate"),
        ("SELECT id, row_number() OVER () FROM users", "window"),
        ("SELECT DISTINCT ON (a) a, b FROM users", "DISTINCT ON"),
        ("SELECT a, count(*) FROM users GROUP BY ROLLUP (a)", "ROLLUP"),
        ("SELECT a, count(*) FROM users GROUP BY a ORDER BY max(x)", "selected column"),
        ("SELECT a FROM users GROUP BY a HAVING count(*) > 1 OR a = 2", "HAVING"),
        ("SELECT * FROM users ORDER BY 1 FETCH FIRST 2 ROWS WITH TIES", "WITH TIES"),
        ("SELECT * FROM users ORDER BY 2 LIMIT 3", "position"),
        ("SELECT id FROM users UNION SELECT user_id FROM orders", "UNION"),
    ],
)
def test_fan_out_refusals(sql: str, fragment: str) -> None:
    assert fragment in refused(sql)
