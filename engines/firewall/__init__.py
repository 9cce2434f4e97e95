"""The SQL firewall: a PostgreSQL wire-protocol proxy that pools server connections and
blocks destructive statements. ``guard`` decides; the proxy (``proxy.FirewallProxy``,
run by ``python -m engines.firewall``) enforces."""

from .guard import RULES, Guard, Rule, Verdict

__all__ = ["RULES", "Guard", "Rule", "Verdict"]
