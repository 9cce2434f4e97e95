"""The guard's figures, as the firewall adds them to its proxy's (engines/pgproxy/metrics.py:
clients, pools, the round-trip latency histogram, served at ``/metrics`` and
``/stats.json``): statements checked, verdict-cache hits, and blocks per rule.
"""

from __future__ import annotations

from typing import Any

from ._guard import GuardStats
from .verdicts import RULES


def guard_snapshot(guard: GuardStats) -> dict[str, Any]:
    """The guard's counters, JSON-ready (``stats.json``'s ``guard``)."""
    return {
        "checked": guard.checked,
        "cache_hits": guard.cache_hits,
        "repeats": guard.repeats,
        "parse_errors": guard.parse_errors,
        "blocked": dict(guard.blocked),
        "rules": sorted(RULES),
    }


def guard_metrics(guard: dict[str, Any]) -> list[str]:
    """The same in Prometheus' text format, from ``guard_snapshot``'s dict."""
    lines = [
        "# TYPE firewall_statements_checked_total counter",
        f"firewall_statements_checked_total {guard['checked']}",
        "# TYPE firewall_statements_blocked_total counter",
    ]
    lines += [
        f'firewall_statements_blocked_total{{rule="{rule}"}} {count}'
        for rule, count in sorted(guard["blocked"].items())
    ]
    return lines
