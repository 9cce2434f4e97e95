"""UPDATE, DELETE and writes to copied tables (routing.writes)."""

from __future__ import annotations

import pytest

from engines.router.routing import (
    Concat,
    CountTag,
    Replicated,
    Single,
)

from .support import EVERY, one, refused


def test_update_and_delete_by_key() -> None:
    update = one("UPDATE users SET v = v + 1 WHERE id = 3")
    assert (update.shards, update.merge, update.writes) == ((0,), Single(), True)
    delete = one("DELETE FROM users WHERE id IN (1, 2)")
    assert (delete.shards, delete.merge, delete.writes) == ((1, 2), CountTag(), True)


def test_update_fan_out_sums_tags_and_returning_concats() -> None:
    assert one("UPDATE users SET v = 0 WHERE v > 1").merge == CountTag()
    found = one("DELETE FROM users WHERE v = 3 RETURNING id")
    assert (found.shards, found.merge) == (EVERY, Concat())


def test_update_needs_params_marks_a_write() -> None:
    found = one("UPDATE users SET v = $2 WHERE id = $1")
    assert found.needs_params
    assert found.writes
    assert one("UPDATE users SET v = $2 WHERE id = $1", [2, "x"]).shards == (2,)


def test_update_of_the_key_is_refused() -> None:
    assert "key column id" in refused("UPDATE users SET id = 7 WHERE id = 1")
    assert "key column id" in refused("UPDATE users SET (v, id) = (1, 2) WHERE id = 1")
    message = refused(
        "INSERT INTO users (id, v) VALUES (1, 2) ON CONFLICT (id) DO UPDATE SET id = 3"
    )
    assert "key column id" in message


def test_reference_table_read_and_write() -> None:
    read = one("SELECT * FROM countries WHERE code = 'FR'")
    assert (read.shards, read.merge, read.writes) == ((0,), Single(), False)
    for sql in [
        "INSERT INTO countries (code) VALUES ('FR'), ('DE')",
        "UPDATE countries SET name = 'x' WHERE code = 'FR'",
        "DELETE FROM countries",
    ]:
        write = one(sql)
        assert (write.shards, write.merge, write.writes) == (EVERY, Replicated(), True)


def test_reference_write_from_sharded_rows_is_refused() -> None:
    assert "diverge" in refused("INSERT INTO countries (code) SELECT country FROM users")
    assert "diverge" in refused(
        "UPDATE countries SET n = (SELECT count(*) FROM users WHERE id = 1)"
    )


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO countries (code, id) VALUES ('FR', nextval('s'))",
        "UPDATE countries SET seen = now()",
        "UPDATE countries SET seen = CURRENT_TIMESTAMP",
        "INSERT INTO countries (id) VALUES (gen_random_uuid())",
    ],
)
def test_reference_write_with_volatile_values_is_refused(sql: str) -> None:
    assert "different value" in refused(sql)
