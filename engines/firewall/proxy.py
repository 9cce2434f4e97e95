"""The firewall proxy: the protocol proxy of engines.pgproxy with the guard as its policy.

``FirewallProxy`` is a pgproxy ``BaseProxy`` (listener, SCRAM login, pools per database and
user, cancel routing: engines/pgproxy/proxy.py) that gives every session the guard's
policy: one guard per database, its policy read against that database's catalog at the
first login, its counters summed in the proxy's; and adds the guard's figures to the
metrics and its rules to the admin console (``psql -d firewall -c 'SHOW RULES'``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from engines.pgproxy._policy import Policy
from engines.pgproxy.client import ClientSession
from engines.pgproxy.pool import Pool
from engines.pgproxy.proxy import BaseProxy, LoginFailed

from . import admin, metrics
from ._guard import GuardStats
from .catalog import CatalogError, load_catalog
from .config import FirewallConfig
from .guard import Guard

logger = logging.getLogger(__name__)

__all__ = ["FirewallProxy", "FirewallSession"]


class FirewallSession(ClientSession):
    """A client session of the firewall: blocks are audited under ``engines.firewall.audit``
    and the deliberate syntax error a blocked statement becomes names the firewall."""

    audit = logging.getLogger("engines.firewall.audit")
    blocked_marker = "FIREWALL_BLOCKED_"


class FirewallProxy(BaseProxy):
    """The proxy: pools, guard, listener and the sessions it serves."""

    name = "firewall"
    session_class = FirewallSession
    console_commands = (*BaseProxy.console_commands, "SHOW RULES")
    config: FirewallConfig

    def __init__(self, config: FirewallConfig) -> None:
        super().__init__(config)
        # One guard per database, made at its first login (guard_for); their counters are
        # the proxy's, summed.
        self.guards: dict[str, Guard] = {}
        self.guard_stats = GuardStats()
        self._guard_locks: dict[str, asyncio.Lock] = {}

    async def close(self) -> None:
        await super().close()
        for guard in self.guards.values():
            guard.close()  # its worker process, if a long statement started one

    async def guard_for(self, database: str) -> Guard:
        """The guard of ``database``, its policy resolved against the server's catalog (read
        once, by the first login that needs it)."""
        guard = self.guards.get(database)
        if guard is not None:
            return guard
        lock = self._guard_locks.setdefault(database, asyncio.Lock())
        async with lock:
            guard = self.guards.get(database)
            if guard is None:
                config = self.config.databases[database]
                catalog = await load_catalog(config.upstream.dsn(), config.guard.functions)
                guard = self.guards[database] = Guard(
                    catalog, ddl=config.guard.ddl, settings=config.guard.settings,
                    exempt_roles=self.config.exempt_roles, stats=self.guard_stats,
                )  # fmt: skip
                logger.info("event=guard_ready database=%s %s", database, " ".join(
                    f"{k}={v}" for k, v in catalog.describe().items()))  # fmt: skip
        return guard

    # -- BaseProxy's hooks ------------------------------------------------------------------

    async def policy_for(self, database: str, user: str, encoding: str, pool: Pool) -> Policy:
        """The guard's session policy for a new client."""
        try:
            guard = await self.guard_for(database)
        except CatalogError as exc:
            raise LoginFailed("08006", f"database unavailable: {exc}") from exc
        return guard.session(
            user, transaction_mode=pool.database.pool_mode == "transaction", encoding=encoding
        )

    def policy_stats(self) -> dict[str, Any]:
        return {"guard": metrics.guard_snapshot(self.guard_stats)}

    def policy_metrics(self, stats: dict[str, Any]) -> list[str]:
        return metrics.guard_metrics(stats["guard"])

    def console_stats(self, stats: dict[str, Any]) -> list[list[Any]]:
        return admin.with_guard_rows(super().console_stats(stats), stats["guard"])

    def console_command(self, words: list[str], stats: dict[str, Any]) -> bytes | None:
        if words == ["SHOW", "RULES"]:
            return admin.show_rules(stats["guard"])
        return None
