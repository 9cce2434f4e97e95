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
from dataclasses import dataclass

from .config import DatabaseConfig
from .server import ServerConnection, ServerError

logger = logging.getLogger(__name__)


class PoolTimeout(Exception):
    """No server connection became free in time."""


@dataclass
class PoolStats:
    """Counters for SHOW POOLS / metrics."""

    acquired: int = 0
    waited: int = 0
    timeouts: int = 0
    connects: int = 0
    connect_failures: int = 0
    discarded: int = 0
    wait_seconds: float = 0.0


class Pool:
    """Server connections for one client user in one database, at most ``pool_size``."""

    def __init__(self, database: DatabaseConfig, user: str) -> None:
        self.database = database
        self.user = user
        limits = database.limits_for(user)
        self.pool_size = limits.pool_size
        self.min_pool_size = limits.min_pool_size
        self.idle: deque[ServerConnection] = deque()
        self.active: set[ServerConnection] = set()
        self.connecting = 0
        self.waiters: deque[asyncio.Future[ServerConnection]] = deque()
        self.stats = PoolStats()
        self.parameters: dict[str, str] = {}  # ParameterStatus of the first server: for clients
        self._maintenance: asyncio.Task | None = None

    @property
    def total(self) -> int:
        return len(self.idle) + len(self.active) + self.connecting

    def _expired(self, server: ServerConnection, now: float) -> bool:
        return (
            server.closed
            or now - server.created > self.database.server_lifetime
            or now - server.last_used > self.database.server_idle_timeout
        )

    def try_acquire(self) -> ServerConnection | None:
        """An idle server connection right now, or None: the hot path, with no task switch."""
        idle = self.idle
        if not idle:
            return None
        now = time.monotonic()
        while idle:
            server = idle.pop()  # most recently used first
            if self._expired(server, now):
                self._discard(server)
                continue
            self.active.add(server)
            self.stats.acquired += 1
            return server
        return None

    async def acquire(self) -> ServerConnection:
        """A logged-in, idle server connection; waits up to query_wait_timeout for one."""
        server = self.try_acquire()
        if server is not None:
            return server
        if self.total < self.pool_size:
            return self._lend(await self._connect())
        waiter: asyncio.Future[ServerConnection] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        self.stats.waited += 1
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.database.query_wait_timeout):
                server = await waiter
        except TimeoutError:
            self.stats.timeouts += 1
            raise PoolTimeout(
                f"no server connection free within {self.database.query_wait_timeout:g} s "
                f"(user {self.user}'s pool_size {self.pool_size}, all busy)"
            ) from None
        finally:
            self.stats.wait_seconds += time.monotonic() - started
            with contextlib.suppress(ValueError):
                self.waiters.remove(waiter)
        return server  # already lent by release()

    async def _connect(self) -> ServerConnection:
        self.connecting += 1
        try:
            server = await ServerConnection.connect(self.database.upstream)
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

    def _lend(self, server: ServerConnection) -> ServerConnection:
        self.active.add(server)
        self.stats.acquired += 1
        return server

    def release(self, server: ServerConnection) -> None:
        """Take a server back; only a live connection idle outside a transaction is kept."""
        self.active.discard(server)
        now = time.monotonic()
        server.detach(now)
        if server.closed or server.status != "I" or self._expired(server, now):
            self._discard(server)
            self._fill_waiter_slot()
            return
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(self._lend(server))
                return
        self.idle.append(server)

    def _discard(self, server: ServerConnection) -> None:
        self.stats.discarded += 1
        with contextlib.suppress(ValueError):
            self.idle.remove(server)
        self.active.discard(server)
        server.close()

    def _fill_waiter_slot(self) -> None:
        """A discarded connection frees a slot: open a fresh one for the first waiter."""
        if self.waiters and self.total < self.pool_size:
            asyncio.get_running_loop().create_task(self._connect_for_waiter())

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
            while self.total < self.min_pool_size:
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
