"""Reading pglast's JSON parse trees: every node, iteratively and against a deadline, and
the few field shapes every part of the guard's policy reads.

Node kinds appear as the keys that start with a capital letter; typed struct fields (a
statement's ``relation``, ``alias``, ``typeName``…) appear without one. The walk is
iterative because hostile SQL nests deeper than Python's recursion limit.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

_CHECK_CLOCK_EVERY = 2048  # nodes between looks at the deadline


class TooComplex(Exception):
    """The walk ran past its deadline."""


def nodes(tree: Any, deadline: float | None = None) -> Iterator[tuple[str, dict]]:
    """Every (node kind, fields) in a pglast JSON tree; TooComplex past ``deadline``
    (time.monotonic())."""
    stack = [tree]
    seen = 0
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if isinstance(value, dict):
                    if key[:1].isupper():
                        seen += 1
                        if (
                            deadline is not None
                            and seen % _CHECK_CLOCK_EVERY == 0
                            and time.monotonic() > deadline
                        ):
                            raise TooComplex
                        yield key, value
                    stack.append(value)
                elif isinstance(value, list):
                    stack.extend(value)
        elif isinstance(item, list):
            stack.extend(item)


def strings(items: list | None) -> list[str]:
    """The values of a list of String nodes (a qualified name, an operator)."""
    return [item.get("String", {}).get("sval", "") for item in items or []]


def relation_name(relation: dict) -> str:
    """A RangeVar as the user wrote it, for messages: schema.name."""
    parts = [relation.get("schemaname"), relation.get("relname")]
    return ".".join(p for p in parts if p) or "?"


def has(tree: Any, kinds: set[str]) -> bool:
    """Whether any node of ``tree`` is of one of ``kinds``."""
    return any(kind in kinds for kind, _ in nodes({"x": tree}))
