"""The routing tests' fixed schema and fake placement, and shortcuts to route one statement.

Shared by the test modules of ``engines.router.routing`` so that every rule is checked against
the same three shards and the same placement, whose answers can be worked out by hand.
"""

from __future__ import annotations

import pglast
import pytest

from engines.router.routing import Route, RouteError, Schema, route

SCHEMA = Schema(
    tables={"users": "id", "orders": "user_id", "accounts": "name"},
    reference=frozenset({"countries"}),
    shards=3,
)
EVERY = (0, 1, 2)


def shard_of(value: object) -> int:
    """Fixed fake placement: ints mod 3, text by its length mod 3."""
    if isinstance(value, int):
        return value % 3
    assert isinstance(value, str)
    return len(value) % 3


def one(sql: str, params: list[object] | None = None, schema: Schema = SCHEMA) -> Route:
    (found,) = route(sql, schema, shard_of, params)
    return found


def refused(sql: str, params: list[object] | None = None) -> str:
    with pytest.raises(RouteError) as info:
        route(sql, SCHEMA, shard_of, params)
    assert info.value.sqlstate
    return info.value.message


def parses(sql: str) -> None:
    assert len(pglast.parse_sql(sql)) == 1
