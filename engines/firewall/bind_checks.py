"""Checks that wait for a statement's bound values, and the little evaluator they share with
the guard's reading of constant WHERE clauses.

``DELETE FROM t WHERE $1`` removes every row or none, depending on what the client binds;
``SELECT set_config($1, $2, false)``, as drivers send it, changes whatever setting ``$1``
names. Deciding such a statement at Parse would either refuse what drivers do every day or
let through what the parameter makes dangerous, so its verdict carries ``Deferred`` checks
and the session runs them on every Bind (guard.GuardSession.check_bind).

The evaluator knows booleans, numbers, strings, NULL, AND/OR/NOT, comparisons and IS [NOT]
NULL — enough for ``WHERE false``, ``WHERE 1 = 0`` and ``WHERE $1``; anything else is
``UNKNOWN``, which the guard treats as "may match every row".
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from .settings_policy import judge_setting, pg_bool
from .verdicts import Verdict, refusal

UNKNOWN = object()  # a value the evaluator cannot know
NULL = None  # SQL NULL
_COMPARISONS = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


def const_value(const: dict) -> Any:
    """An A_Const node's value: bool, int, Decimal, str, NULL."""
    if const.get("isnull"):
        return NULL
    if "boolval" in const:
        return bool(const["boolval"].get("boolval", False))
    if "ival" in const:
        return int(const["ival"].get("ival", 0))
    if "fval" in const:
        return Decimal(const["fval"]["fval"])
    if "sval" in const:
        return const["sval"].get("sval", "")
    return UNKNOWN


def _comparable(a: Any, b: Any) -> tuple[Any, Any] | None:
    """Both sides as one type PostgreSQL would compare them as (an untyped string meets a
    number as a number), or None."""
    if isinstance(a, bool) or isinstance(b, bool):
        a, b = (pg_bool(x) if isinstance(x, str) else x for x in (a, b))
        return (a, b) if isinstance(a, bool) and isinstance(b, bool) else None
    try:
        if isinstance(a, str) and not isinstance(b, str):
            a = Decimal(a)
        elif isinstance(b, str) and not isinstance(a, str):
            b = Decimal(b)
    except InvalidOperation:
        return None
    if isinstance(a, str) != isinstance(b, str):
        return None
    return a, b


def evaluate(node: Any, params: list[Any] | None = None) -> Any:
    """The value of a constant expression (a pglast JSON node), with ``params`` as the
    values of $1, $2…: a Python value, NULL, or UNKNOWN."""
    if not isinstance(node, dict) or len(node) != 1:
        return UNKNOWN
    ((kind, fields),) = node.items()
    if kind == "A_Const":
        return const_value(fields)
    if kind == "ParamRef":
        number = fields.get("number", 0)
        if params is None or not 1 <= number <= len(params):
            return UNKNOWN
        return params[number - 1]
    if kind == "TypeCast":
        value = evaluate(fields.get("arg"), params)
        names = [n.get("String", {}).get("sval") for n in fields["typeName"].get("names", [])]
        if names and names[-1] in {"bool", "boolean"} and isinstance(value, str | bool | int):
            return pg_bool(str(value)) if not isinstance(value, bool) else value
        # Other casts change how values compare ('1'::int = '01'::int is true, as strings
        # false): only text keeps a string's meaning.
        return value if names and names[-1] == "text" and isinstance(value, str) else UNKNOWN
    if kind == "BoolExpr":
        return _boolean(fields, params)
    if kind == "NullTest":
        value = evaluate(fields.get("arg"), params)
        if value is UNKNOWN:
            return UNKNOWN
        return (value is NULL) == (fields.get("nulltesttype") == "IS_NULL")
    if kind == "A_Expr" and fields.get("kind") == "AEXPR_OP":
        names = [n.get("String", {}).get("sval") for n in fields.get("name", [])]
        compare = _COMPARISONS.get(names[-1]) if len(names) == 1 else None
        left, right = evaluate(fields.get("lexpr"), params), evaluate(fields.get("rexpr"), params)
        if compare is None or UNKNOWN in (left, right):
            return UNKNOWN
        if left is NULL or right is NULL:
            return NULL
        pair = _comparable(left, right)
        return UNKNOWN if pair is None else compare(*pair)
    return UNKNOWN


def _truth(value: Any) -> Any:
    if value is UNKNOWN or value is NULL or isinstance(value, bool):
        return value
    return pg_bool(value) if isinstance(value, str) else UNKNOWN


def _boolean(fields: dict, params: list[Any] | None) -> Any:
    values = [_truth(evaluate(arg, params)) for arg in fields.get("args", [])]
    op = fields.get("boolop")
    if op == "NOT_EXPR":
        value = values[0] if values else UNKNOWN
        return value if value is UNKNOWN or value is NULL else not value
    absorbing = op == "OR_EXPR"  # true absorbs an OR, false an AND
    if absorbing in values:
        return absorbing
    if UNKNOWN in values:
        return UNKNOWN
    return NULL if NULL in values else not absorbing


def matches_no_row(clause: Any, params: list[Any] | None = None) -> bool:
    """Whether a WHERE clause without columns is known to match no row (false or NULL)."""
    value = _truth(evaluate(clause, params))
    return value is False or value is NULL


def bound_values(values: list[bytes | None], formats: list[int], codec: str) -> list[Any]:
    """A Bind's parameter values as the evaluator reads them: text-format values decoded in
    the session's encoding; a binary value only where its meaning is certain whatever its
    type (one byte 0/1: a boolean), else UNKNOWN. NULL stays NULL."""
    out: list[Any] = []
    for value, fmt in zip(values, formats, strict=True):
        if value is None:
            out.append(NULL)
        elif fmt == 0:
            try:
                out.append(value.decode(codec))
            except UnicodeDecodeError:
                out.append(UNKNOWN)
        elif len(value) == 1 and value in (b"\0", b"\1"):
            out.append(value == b"\1")
        else:
            out.append(UNKNOWN)
    return out


class Deferred:
    """A check run at each Bind of the statement it came from."""

    def check(self, values: list[bytes | None], formats: list[int], codec: str) -> Verdict | None:
        """None when the bound values pass, else the refusal."""
        raise NotImplementedError


@dataclass(frozen=True)
class DeferredWhere(Deferred):
    """A WHERE clause with no column but parameters: fine only if the bound values make it
    match no row."""

    clause: Any
    rule: str
    detail: str

    def check(self, values: list[bytes | None], formats: list[int], codec: str) -> Verdict | None:
        if matches_no_row(self.clause, bound_values(values, formats, codec)):
            return None
        return refusal(self.rule, self.detail)


@dataclass(frozen=True)
class DeferredSetting(Deferred):
    """set_config(name, value, is_local) with parameters among its arguments: each argument
    is ("const", value) or ("param", number)."""

    name: tuple[str, Any]
    value: tuple[str, Any]
    local: tuple[str, Any]
    extra_settings: frozenset[str] = frozenset()

    def check(self, values: list[bytes | None], formats: list[int], codec: str) -> Verdict | None:
        bound = bound_values(values, formats, codec)

        def arg(spec: tuple[str, Any]) -> Any:
            kind, what = spec
            if kind == "const":
                return what
            return bound[what - 1] if 1 <= what <= len(bound) else UNKNOWN

        name, value, local = arg(self.name), arg(self.value), arg(self.local)
        if not isinstance(name, str):
            return refusal("setting", "set_config() of a setting the firewall cannot read")
        if isinstance(local, str):
            local = pg_bool(local)
        if not isinstance(local, bool):
            return refusal("setting", "set_config() whose is_local the firewall cannot read")
        change = judge_setting(
            name, value if isinstance(value, str) else None, local=local, simple_query=False,
            extra=self.extra_settings,
        )  # fmt: skip
        if change.rule is not None:
            return refusal(change.rule, change.detail)
        if change.session_only:
            return Verdict(True, session_only=change.session_only)
        return None
