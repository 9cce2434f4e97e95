"""What the guard answers: the named rules a statement can be refused under, and the verdict
a session acts on.

The rules are names for the reasons a deny-by-default policy refuses (tree_policy.py): a
client is told which one, the demo shows it, the admin console and the metrics count by it.
A verdict can also carry what depends on the session rather than the text (its pool mode,
its own temporary tables, values bound later), which guard.GuardSession settles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from engines.pgproxy.verdict import Verdict as BaseVerdict

if TYPE_CHECKING:
    from .bind_checks import Deferred

# SQLSTATEs the proxy answers with.
INSUFFICIENT_PRIVILEGE = "42501"
SYNTAX_ERROR = "42601"
PROGRAM_LIMIT_EXCEEDED = "54000"
CHARACTER_NOT_IN_REPERTOIRE = "22021"


@dataclass(frozen=True)
class Rule:
    """A named reason the guard refuses a statement, with the description a user reads."""

    name: str
    description: str


RULES: dict[str, Rule] = {
    rule.name: rule
    for rule in [
        Rule("drop", "DROP of anything but the session's own temporary objects"),
        Rule("truncate", "TRUNCATE of anything but the session's own temporary tables"),
        Rule("alter_table", "ALTER of tables and other objects, renames and SET SCHEMA"),
        Rule("delete_without_where", "DELETE whose WHERE does not narrow the rows by a column"),
        Rule("update_without_where", "UPDATE whose WHERE does not narrow the rows by a column"),
        Rule("merge_without_condition", "MERGE or upsert that may change every row"),
        Rule("statement", "statement kinds the policy does not list"),
        Rule("dynamic_sql", "DO blocks and function definitions, whose SQL cannot be checked"),
        Rule("function", "functions the policy does not allow (volatile, unknown, user-defined)"),
        Rule("operator", "operators not built on allowed functions"),
        Rule("catalog", "writing to system catalogs, or building objects on them"),
        Rule("server_files", "COPY to or from server files or programs"),
        Rule("setting", "settings clients may not change"),
        Rule("string_syntax", "settings that would make the server read SQL unlike the guard"),
        Rule("session_state", "state that outlives a transaction, under transaction pooling"),
        Rule("encoding", "bytes that are not valid in the session's client encoding"),
        Rule("too_long", "statements longer than the guard reads"),
        Rule("too_complex", "statements the guard cannot check in time"),
        Rule("parse_error", "statements the guard cannot parse"),
    ]
}


@dataclass(frozen=True, eq=False)
class Verdict(BaseVerdict):
    """The guard's answer for one query string (which may hold several statements).

    Beyond what a session's relay reads (engines.pgproxy.verdict.Verdict: ``allowed``,
    ``rule``, ``message``, ``sqlstate``, ``holds``, ``sql``, ``pending``), what the guard's
    session must settle itself (guard.GuardSession):

    * ``session_only``: allowed only in session pool mode; the reason, for the error.
    * ``temp_targets``: refused unless every named relation is one of the session's own
      temporary objects; the statement then runs with those names qualified by pg_temp.
    * ``creates_temp``: temporary relations the statement creates.
    * ``deferred``: checks that need the values bound to the statement's parameters.

    ``sql`` is str from the guard, bytes in the client's encoding once the session has
    settled it.
    """

    session_only: str | None = None
    temp_targets: frozenset[str] = frozenset()
    creates_temp: frozenset[str] = frozenset()
    deferred: tuple[Deferred, ...] = ()


ALLOWED = Verdict(True)


def refusal(rule: str, detail: str, sqlstate: str = INSUFFICIENT_PRIVILEGE, **extra) -> Verdict:
    """A verdict refusing under ``rule``, with the message clients read."""
    message = f'firewall: blocked by rule "{rule}" ({RULES[rule].description}): {detail}'
    return Verdict(False, rule, message, sqlstate, **extra)
