"""A pool of warm server connections for one client user in one database.

Clients borrow a connection for a transaction (transaction pooling) or for their whole
session (session pooling) and give it back; a connection goes back only when PostgreSQL
says it is idle outside any transaction, so no client ever inherits another's open
transaction. When every connection is busy, clients queue in arrival order and give up
after ``query_wait_timeout`` with a clear error. The most recently used connection is lent
first (its caches are warm); connections idle too long or alive too long are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque

from ._pool import PoolCore, PoolStats
from .config import DatabaseConfig
from .server import ServerConnection, ServerError

logger = logging.getLogger(__name__)


class PoolTimeout(Exception):
    """No server connection became free in time."""


class DatabaseBudget:
    """The server connections one database allows across all its user pools
    (``max_db_connections``; 0 for no cap), as PgBouncer's setting of that name.

    Every pool logs in as the same upstream user, so at the cap the pools share: a pool with
    no room takes another pool's idle connection, and a released connection goes to another
    pool's waiting client before it goes idle.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pools: list[Pool] = []

    def room(self) -> bool:
        return not self.limit or sum(pool.total for pool in self.pools) < self.limit

    def take_idle(self, taker: Pool) -> ServerConnection | None:
        """An idle, live connection of another pool, now ``taker``'s; None if there is none."""
        now = time.monotonic()
        for pool in self.pools:
            while pool is not taker and pool.idle:
                server = pool.idle.pop(0)  # its least recently used
                if pool._expired(server, now):
                    pool._discard(server)
                    continue
                taker._adopt(server)
                return server
        return None

    def give_away(self, server: ServerConnection, giver: Pool) -> bool:
        """At the cap, hand a released connection to another pool's waiting client."""
        if not self.limit:
            return False
        for pool in self.pools:
            if pool is not giver and pool.total < pool.pool_size and pool._hand_to_waiter(server):
                return True
        return False

    def fill_waiters(self) -> None:
        """Room freed (a connection closed): open one for the first pool with a waiter."""
        for pool in self.pools:
            if pool.waiters and pool.total < pool.pool_size and self.room():
                asyncio.get_running_loop().create_task(pool._connect_for_waiter())
                return


class Pool(PoolCore):
    """Server connections for one client user in one database, at most ``pool_size``.
    Lending and taking back (``try_acquire``, ``release``) are compiled in PoolCore."""

    def __init__(
        self,
        database: DatabaseConfig,
        user: str,
        budget: DatabaseBudget | None = None,
        application_name: str = "pgproxy",
    ) -> None:
        self.database = database
        self.user = user
        self.application_name = application_name  # what its servers log in as: the proxy's name
        self.budget = budget if budget is not None else DatabaseBudget(0)
        self.budget.pools.append(self)
        self.shares_budget = bool(self.budget.limit)
        limits = database.limits_for(user)
        self.pool_size = limits.pool_size
        self.min_pool_size = limits.min_pool_size
        self.server_lifetime = database.server_lifetime
        self.server_idle_timeout = database.server_idle_timeout
        self.idle = []  # a stack: the most recently used connection on top
        self.active = set()
        self.connecting = 0
        self.waiters: deque[asyncio.Future[ServerConnection]] = deque()
        self.stats = PoolStats()
        self.parameters: dict[str, str] = {}  # ParameterStatus of the first server: for clients
        self._maintenance: asyncio.Task | None = None

    @property
    def total(self) -> int:
        return len(self.idle) + len(self.active) + self.connecting

    async def acquire(self) -> ServerConnection:
        """A logged-in, idle server connection; waits up to query_wait_timeout for one."""
        server = self.try_acquire()
        if server is not None:
            return server
        if self.total < self.pool_size:
            if self.budget.room():
                return self._lend(await self._connect())
            server = self.budget.take_idle(self)
            if server is not None:
                return self._lend(server)
        waiter: asyncio.Future[ServerConnection] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        self.stats.waited += 1
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.database.query_wait_timeout):
                server = await waiter
        except TimeoutError:
            self.stats.timeouts += 1
            cap = self.budget.limit
            raise PoolTimeout(
                f"no server connection free within {self.database.query_wait_timeout:g} s "
                f"(user {self.user}'s pool_size {self.pool_size}"
                + (f", the database's max_db_connections {cap}" if cap else "")
                + ", all busy)"
            ) from None
        finally:
            self.stats.wait_seconds += time.monotonic() - started
            with contextlib.suppress(ValueError):
                self.waiters.remove(waiter)
        return server  # already lent by release()

    async def _connect(self) -> ServerConnection:
        self.connecting += 1
        try:
            timeout = self.database.idle_transaction_timeout
            server = await ServerConnection.connect(
                self.database.upstream,
                self.application_name,
                # Whole milliseconds, as PostgreSQL reads a bare number for this setting.
                settings={"idle_in_transaction_session_timeout": str(int(timeout * 1000))},
            )
        except ServerError:
            self.stats.connect_failures += 1
            raise
        finally:
            self.connecting -= 1
        self.stats.connects += 1
        if not self.parameters:
            self.parameters = dict(server.parameters)
        assert server.protocol is not None
        server.protocol.on_lost = self._lost
        return server

    def _adopt(self, server: ServerConnection) -> None:
        """Take over a connection from another pool of the same database (same login)."""
        assert server.protocol is not None
        server.protocol.on_lost = self._lost

    def _hand_to_waiter(self, server: ServerConnection) -> bool:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                self._adopt(server)  # it may come from another pool of the database
                waiter.set_result(self._lend(server))
                return True
        return False

    def _lend(self, server: ServerConnection) -> ServerConnection:
        self.active.add(server)
        self.stats.acquired += 1
        return server

    def _discard(self, server: ServerConnection) -> None:
        self.stats.discarded += 1
        with contextlib.suppress(ValueError):
            self.idle.remove(server)
        self.active.discard(server)
        server.close()

    def _fill_waiter_slot(self) -> None:
        """A discarded connection frees a slot: open a fresh one for a waiting client (of
        this pool first, else of another pool of the database waiting for room)."""
        if self.waiters and self.total < self.pool_size and self.budget.room():
            asyncio.get_running_loop().create_task(self._connect_for_waiter())
        else:
            self.budget.fill_waiters()

    async def _connect_for_waiter(self) -> None:
        try:
            server = await self._connect()
        except ServerError as exc:
            logger.warning("event=connect_failed database=%s error=%s", self.database.name, exc)
            return
        self.active.add(server)  # release() moves it on to the waiter or the idle list
        self.release(server)

    def _lost(self, server: ServerConnection) -> None:
        """The server hung up (killed, restarted): forget it; the pool heals by reconnecting."""
        if server in self.idle or server in self.active:
            logger.warning(
                "event=server_lost database=%s pid=%s", self.database.name, server.process_id
            )
            self._discard(server)
            self._fill_waiter_slot()

    async def warm(self) -> None:
        """Open connections up to min_pool_size, keep them there, and close stale idle ones."""
        while True:
            now = time.monotonic()
            for server in list(self.idle):
                if self._expired(server, now):
                    self._discard(server)
            while self.total < self.min_pool_size and self.budget.room():
                try:
                    server = await self._connect()
                except ServerError as exc:
                    logger.warning(
                        "event=warm_failed database=%s error=%s", self.database.name, exc
                    )
                    break
                self.active.add(server)
                self.release(server)
            await asyncio.sleep(1.0)

    def start(self) -> None:
        if self._maintenance is None:
            self._maintenance = asyncio.get_running_loop().create_task(self.warm())

    def close(self) -> None:
        if self._maintenance is not None:
            self._maintenance.cancel()
        for server in list(self.idle) + list(self.active):
            server.close()
        self.idle.clear()
        self.active.clear()
