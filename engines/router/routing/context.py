"""What routing one statement is given: the schema, the placement and the bound parameters.

Every rule of the router asks the same few questions of its inputs (how many shards, which
shard holds this key value, what does ``$2`` hold); a ``Context`` answers them in one place,
so that a parameter not yet bound (Parse of a prepared statement) or a placement bug is
reported the same way whichever rule asked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engines.router.routing.plan import RouteError, Schema
from engines.router.routing.values import typed_key

ShardOf = Callable[[object], int]


class NeedParams(Exception):
    """Control flow: the route depends on a parameter that is not bound yet."""

    def __init__(self, what: str, writes: bool = False) -> None:
        super().__init__(what)
        self.writes = writes


@dataclass
class Context:
    """One statement's inputs, with the checks every rule relies on when it uses them."""

    schema: Schema
    shard_of: ShardOf
    params: Sequence[object] | None

    @property
    def everywhere(self) -> tuple[int, ...]:
        return tuple(range(self.schema.shards))

    def shard(self, value: object, table: str | None) -> int:
        value = typed_key(value, self.schema.key_types.get(table or ""))
        index = self.shard_of(value)
        if not isinstance(index, int) or not 0 <= index < self.schema.shards:
            raise RouteError(f"placement returned shard {index!r} for key {value!r}", "XX000")
        return index

    def param(self, number: int) -> object:
        if self.params is None:
            raise NeedParams(f"${number} decides the route")
        if not 1 <= number <= len(self.params):
            raise RouteError(
                f"statement uses ${number} but {len(self.params)} parameters were bound", "08P01"
            )
        return self.params[number - 1]


def describe(shards: tuple[int, ...], ctx: Context) -> str:
    """Shards as a route's reason names them: "shard 1", "shards 0, 2", "every shard"."""
    if shards == ctx.everywhere and len(shards) > 1:
        return "every shard"
    return (
        "shard " + ", ".join(map(str, shards))
        if len(shards) == 1
        else ("shards " + ", ".join(map(str, shards)))
    )
