"""The SQL firewall: a PostgreSQL wire-protocol proxy that pools server connections and
lets through only what its guard's deny-by-default policy allows. ``guard`` decides
(``tree_policy`` is the policy); the proxy (``proxy.FirewallProxy``, run by
``python -m engines.firewall``) enforces."""

from .verdicts import RULES, Rule, Verdict

__all__ = ["RULES", "Rule", "Verdict"]
