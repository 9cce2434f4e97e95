"""What the firewall adds to its proxy's admin console (engines/pgproxy/admin.py: SHOW POOLS,
SHOW STATS, reached with ``psql -d firewall``): the guard's counters in SHOW STATS, and
SHOW RULES, each rule with how many statements it blocked.
"""

from __future__ import annotations

from typing import Any

from engines.pgproxy.admin import result

from .verdicts import RULES


def with_guard_rows(rows: list[list[Any]], guard: dict[str, Any]) -> list[list[Any]]:
    """SHOW STATS's ``rows`` with the guard's: what it checked after the logins, what it
    blocked after the relay's reads."""
    names = [row[0] for row in rows]
    at = names.index("login_failures") + 1
    checked = [
        ["statements_checked", guard["checked"]],
        ["verdict_cache_hits", guard["cache_hits"]],
        ["verdict_repeats", guard["repeats"]],
    ]
    rows = rows[:at] + checked + rows[at:]
    at = names.index("reads_copied") + 1 + len(checked)
    rows.insert(at, ["statements_blocked", sum(guard["blocked"].values())])
    return rows


def show_rules(guard: dict[str, Any]) -> bytes:
    """SHOW RULES: every rule, the statements it blocked, what it refuses."""
    blocked = guard["blocked"]
    rows = [[rule.name, blocked.get(rule.name, 0), rule.description] for rule in RULES.values()]
    return result(["rule", "blocked", "description"], rows, "SHOW")
