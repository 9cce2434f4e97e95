"""Key values written in a statement, read as the Python values that placement hashes.

A key can be written as a literal, a cast, a bigint that pglast parses as a float, or a
parameter bound as int, str or a list; placement must see the same value for each of them
(``'42'`` for an int key is 42) or equal keys would land on different shards. Anything the
router cannot read with certainty is ``UNUSABLE`` and decides no shard.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pglast import ast

from engines.router.routing.plan import RouteError

if TYPE_CHECKING:
    from engines.router.routing.context import Context


_INTEGER_TEXT = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+[ \t\n\v\f\r]*")


def typed_key(value: object, key_type: str | None) -> object:
    """A key value as its column's type family: int for "int", str for "text"."""
    if key_type == "text" and isinstance(value, int):
        return str(value)
    if key_type == "int" and isinstance(value, str):
        if not _INTEGER_TEXT.fullmatch(value):  # 0x.., 1_000: let the server decide
            raise RouteError(f"key {value!r} is not a plain integer: cannot place it", "22P02")
        return int(value)
    return value


_INT_TYPES = frozenset({"int2", "int4", "int8", "integer", "smallint", "bigint"})
_TEXT_TYPES = frozenset({"text", "varchar"})
UNUSABLE = object()  # a value that cannot decide a shard (NULL, float, expression...)


def _cast(value: object, cast: str) -> object:
    """A key value cast to an int or text type, as the server would (else UNUSABLE)."""
    if value is None or value is UNUSABLE:
        return value
    try:
        if cast in _INT_TYPES:
            return int(value)  # type: ignore[call-overload]
        if cast in _TEXT_TYPES:
            return str(value)
    except (TypeError, ValueError):
        return UNUSABLE
    return UNUSABLE


def key_value(node: object, ctx: Context) -> object:
    """A key value written in the statement: int, str, list (array parameter), None (NULL) or
    UNUSABLE. Raises NeedParams for a parameter that is not bound yet."""
    if isinstance(node, ast.TypeCast):
        value = key_value(node.arg, ctx)
        cast = node.typeName.names[-1].sval
        if not node.typeName.arrayBounds:
            return _cast(value, cast)
        if not isinstance(value, list):  # an array literal '{1,2}': not parsed here
            return UNUSABLE
        return [_cast(item, cast) for item in value]
    if isinstance(node, ast.ParamRef):
        value = ctx.param(node.number)
        if value is None or isinstance(value, int | str | list | tuple):
            return None if value is None else (list(value) if isinstance(value, tuple) else value)
        return UNUSABLE
    if isinstance(node, ast.A_Const):
        if node.isnull:
            return None
        val = node.val
        if isinstance(val, ast.Integer):
            return val.ival
        if isinstance(val, ast.String):
            return val.sval
        if isinstance(val, ast.Float) and val.fval.lstrip("-").isdigit():
            return int(val.fval)  # a bigint literal
    return UNUSABLE
