"""INSERT split by key across shards (routing.inserts)."""

from __future__ import annotations

import pglast
import pytest

from engines.router.routing import (
    Concat,
    CountTag,
    Single,
)

from .support import one, parses, refused


def test_multi_row_insert_is_split_by_shard() -> None:
    sql = "INSERT INTO users (id, v) VALUES (1, 'a'), (2, 'b'), (4, 'c'), (7, 'd'), (3, 'e')"
    found = one(sql)
    assert found.writes
    assert found.shards == (0, 1, 2)
    assert found.merge == CountTag()
    assert found.sql is not None
    expected = {0: [(3, "e")], 1: [(1, "a"), (4, "c"), (7, "d")], 2: [(2, "b")]}
    for shard, rows in expected.items():
        text = found.sql[shard]
        (raw,) = pglast.parse_sql(text)
        values = [(row[0].val.ival, row[1].val.sval) for row in raw.stmt.selectStmt.valuesLists]
        assert values == rows, text
    assert found.param_map is None
    assert "5 rows split" in found.reason


def test_insert_with_returning_concats() -> None:
    found = one("INSERT INTO users (v, id) VALUES ('a', 1), ('b', 2) RETURNING id, v")
    assert found.merge == Concat()
    assert found.sql is not None
    assert found.sql[1] == "INSERT INTO users (v, id) VALUES ('a', 1) RETURNING id, v"
    assert found.sql[2] == "INSERT INTO users (v, id) VALUES ('b', 2) RETURNING id, v"


def test_insert_into_one_shard_passes_through() -> None:
    found = one("INSERT INTO users (id, v) VALUES (1, 'a'), (4, 'b') RETURNING *")
    assert (found.shards, found.sql, found.merge) == ((1,), None, Single())


def test_insert_with_params_renumbers_per_shard() -> None:
    sql = (
        "INSERT INTO users (id, v) VALUES ($1, $2), ($3, $4) ON CONFLICT (id) DO UPDATE SET v = $5"
    )
    assert one(sql).needs_params
    found = one(sql, [1, "a", 2, "b", "z"])
    assert found.sql is not None
    assert found.param_map is not None
    assert found.shards == (1, 2)
    assert found.param_map == {1: (1, 2, 5), 2: (3, 4, 5)}
    assert "VALUES ($1, $2)" in found.sql[2]
    assert "SET v = $3" in found.sql[2]
    for text in found.sql.values():
        parses(text)


def test_insert_text_key() -> None:
    found = one("INSERT INTO accounts (name) VALUES ('a'), ('bb'), ('ccc'), ('dddd')")
    assert found.sql is not None
    assert set(found.sql) == {0, 1, 2}
    assert "'a'" in found.sql[1]
    assert "'dddd'" in found.sql[1]
    assert "'bb'" not in found.sql[1]


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("INSERT INTO users VALUES (1, 'a')", "explicit column list"),
        ("INSERT INTO users (v) VALUES ('a')", "must set its key column id"),
        ("INSERT INTO users (id) VALUES (NULL)", "row 1"),
        ("INSERT INTO users (id) VALUES (DEFAULT)", "row 1"),
        ("INSERT INTO users (id) VALUES (1), (random())", "row 2"),
        ("INSERT INTO users (id) SELECT 1", "VALUES"),
        ("INSERT INTO users DEFAULT VALUES", "key"),
        ("INSERT INTO users (id) SELECT user_id FROM orders", "orders"),
    ],
)
def test_insert_refusals(sql: str, fragment: str) -> None:
    assert fragment in refused(sql)
