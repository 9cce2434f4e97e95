"""Back-pressure, both ways: a client that reads slower than its server answers makes the
proxy stop reading that server (as PgBouncer does), and a server that takes an upload
slower than its client sends it makes the proxy stop reading that client; the proxy never
holds a whole result or upload. A server handed back while paused is read again by
whoever borrows it next.

The end-to-end tests run the proxy in the test's own event loop, so they can look at what
it did: that it paused reading (a server connection ``throttled``, a transport no longer
``is_reading()``) and how much it holds (its transports' write buffers). Memory or time
would say nothing reliable: a slow machine's proxy may simply not have read much yet."""

from __future__ import annotations

import asyncio
import select
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable

import psycopg
import pytest
from engines.pgproxy._client import ClientCore
from engines.pgproxy._pool import PoolCore, PoolStats
from engines.pgproxy._server import ServerCore, ServerRelay

from engines.firewall.config import load_config
from engines.firewall.proxy import FirewallProxy
from engines.pgproxy.client import ClientSession

# Far beyond what the proxy may hold: the transport's high-water mark (64 KiB) plus one read.
HELD_AT_MOST = 1024 * 1024


class RecordingTransport:
    """Stands in for a transport where only the reading switches matter."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def write(self, data: bytes) -> None:
        pass

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")


def _server() -> ServerCore:
    server = ServerCore()
    server.transport = RecordingTransport()
    server.protocol = ServerRelay()
    server.status = "I"
    server.created = server.last_used = time.monotonic()
    return server


def _pool() -> PoolCore:
    pool = PoolCore()
    pool.idle, pool.active, pool.waiters, pool.stats = [], set(), deque(), PoolStats()
    pool.server_lifetime, pool.server_idle_timeout = 3600.0, 600.0
    return pool


def test_a_backed_up_client_pauses_each_server_it_borrows_until_it_drains():
    client, server = ClientCore(), _server()
    client.wanted = {}
    client.backed_up = True
    client.attach(server)
    assert server.transport.calls == ["pause"]
    assert server.throttled


def test_a_server_released_while_paused_is_read_again():
    pool, server = _pool(), _server()
    pool.active.add(server)
    server.throttle()
    pool.release(server)
    assert server.transport.calls == ["pause", "resume"]
    assert not server.throttled
    assert pool.idle == [server]


# -- end to end, with a real PostgreSQL -----------------------------------------------------


@pytest.fixture
async def proxy(postgres) -> AsyncIterator[FirewallProxy]:
    """The firewall in this test's event loop, one server connection in its pool."""
    config = load_config(
        overrides={"upstream": postgres[0].dsn(), "listen": "127.0.0.1:0", "pool_size": 1}
    )
    proxy = FirewallProxy(config)
    await proxy.start()
    yield proxy
    await proxy.close()


def _dsn(proxy: FirewallProxy) -> str:
    upstream = next(iter(proxy.config.databases.values())).upstream
    return (
        f"postgresql://{upstream.user}:{upstream.password}@127.0.0.1:{proxy.port}/"
        f"{upstream.database}"
    )


async def _connect(proxy: FirewallProxy) -> psycopg.Connection:
    """A blocking client, driven from threads so the proxy's loop keeps running."""
    conn = await asyncio.to_thread(psycopg.connect, _dsn(proxy), autocommit=True)
    await asyncio.to_thread(conn.execute, "SELECT 1")  # the pool's connection is open and warm
    return conn


async def _until(condition: Callable[[], bool], what: str) -> None:
    """Wait for the proxy to reach a state, polling; the 30 s only bound a failing test."""
    for _ in range(3000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the proxy never got there: {what}")


def _session(proxy: FirewallProxy) -> ClientSession:
    [session] = proxy.sessions.values()
    return session


async def test_a_client_that_stops_reading_makes_the_proxy_stop_reading_its_server(proxy):
    """A 50 MB result for a client that reads none of it: once the client is backed up the
    proxy pauses reading the server, holding kilobytes rather than the whole result; the
    client still gets every row once it reads, and the server is read again for others."""
    rows = 50_000
    conn = await _connect(proxy)
    try:
        session = _session(proxy)
        query = f"SELECT repeat('x', 1000) FROM generate_series(1, {rows})".encode()
        await asyncio.to_thread(conn.pgconn.send_query, query)

        await _until(
            lambda: session.server is not None and session.server.throttled,
            "the backed-up client's server throttled",
        )
        server = session.server
        assert session.backed_up
        assert not server.transport.is_reading()
        assert session.transport.get_write_buffer_size() < HELD_AT_MOST

        def read_everything() -> int:
            # Waits in select(), never in libpq: a blocking PQgetResult keeps the GIL, and
            # the proxy it waits for runs in this process.
            pgconn, results = conn.pgconn, []
            while True:
                while pgconn.is_busy():
                    select.select([pgconn.socket], [], [])
                    pgconn.consume_input()
                result = pgconn.get_result()
                if result is None:
                    break
                results.append(result)
            [result] = results
            assert result.status == psycopg.pq.ExecStatus.TUPLES_OK, result.error_message
            return result.ntuples

        assert await asyncio.to_thread(read_everything) == rows
        assert not server.throttled
        assert server.transport.is_reading()
    finally:
        await asyncio.to_thread(conn.close)
    other = await _connect(proxy)  # the one server, read again
    try:
        count = await asyncio.to_thread(other.execute, "SELECT count(*) FROM users")
        assert count.fetchone() == (100,)
    finally:
        await asyncio.to_thread(other.close)


async def test_a_server_that_falls_behind_an_upload_makes_the_proxy_stop_reading_its_client(
    proxy, postgres
):
    """A 24 MB COPY FROM STDIN whose first row waits on a lock: the server stops reading,
    so the proxy pauses reading the client instead of taking the upload in; once the lock
    is gone every row arrives."""
    lines = 24 * 1024
    with psycopg.connect(postgres[0].dsn(), autocommit=True) as direct:
        direct.execute("DROP TABLE IF EXISTS upload_target")
        direct.execute("CREATE TABLE upload_target (body text)")
        direct.execute(
            "CREATE OR REPLACE FUNCTION wait_for_go() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_advisory_lock_shared(4242); "
            "PERFORM pg_advisory_unlock_shared(4242); RETURN NEW; END $$"
        )
        direct.execute(
            "CREATE TRIGGER wait_for_go BEFORE INSERT ON upload_target "
            "FOR EACH ROW EXECUTE FUNCTION wait_for_go()"
        )
        direct.execute("SELECT pg_advisory_lock(4242)")  # held: the first row waits
        conn = await _connect(proxy)
        session = _session(proxy)
        failures: list[BaseException] = []

        def upload() -> None:
            try:
                with conn.cursor().copy("COPY upload_target (body) FROM STDIN") as copy:
                    for _ in range(lines):
                        copy.write(b"x" * 1023 + b"\n")
            except BaseException as exc:  # reported by the test
                failures.append(exc)

        uploader = threading.Thread(target=upload)
        uploader.start()
        try:
            # Attached to its server (not waiting for one, when reading pauses too), yet
            # not read: the server's back-pressure at work.
            await _until(
                lambda: (
                    session.server is not None
                    and session.acquiring is None
                    and not session.transport.is_reading()
                ),
                "the uploading client's reading paused",
            )
            assert session.server.transport.get_write_buffer_size() < HELD_AT_MOST
        finally:
            direct.execute("SELECT pg_advisory_unlock(4242)")
            await asyncio.to_thread(uploader.join, 60)
        try:
            assert not uploader.is_alive()
            assert not failures, failures
            count = await asyncio.to_thread(conn.execute, "SELECT count(*) FROM upload_target")
            assert count.fetchone() == (lines,)
        finally:
            await asyncio.to_thread(conn.close)
        direct.execute("DROP TABLE upload_target")
        direct.execute("DROP FUNCTION wait_for_go()")
