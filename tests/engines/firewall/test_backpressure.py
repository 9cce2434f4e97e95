"""Back-pressure: a client that reads slower than its server answers makes the proxy stop
reading that server (as PgBouncer does), never buffer the whole result; and a server
handed back while paused so is read again by whoever borrows it next."""

from __future__ import annotations

import time
from collections import deque

import psycopg
from engines.firewall._relay import ClientCore, PoolCore, PoolStats, ServerCore, ServerRelay


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


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_client_that_stops_reading_never_makes_the_proxy_hold_its_result(start_firewall):
    """A 50 MB result for a client that reads none of it: the proxy stops reading the
    server once the client is backed up, holding kilobytes rather than the whole result,
    and the client still gets every row once it reads; the server then serves others."""
    firewall = start_firewall("--pool-size", "1")
    rows = 50_000
    with psycopg.connect(firewall.dsn(), autocommit=True) as conn:
        conn.execute("SELECT 1")  # the pool's connection is open and warm
        before = _rss_bytes(firewall.process.pid)
        conn.pgconn.send_query(f"SELECT repeat('x', 1000) FROM generate_series(1, {rows})".encode())
        time.sleep(1.0)  # plenty for the server to send it all to a proxy that kept reading
        grown = _rss_bytes(firewall.process.pid) - before
        result = conn.pgconn.get_result()
        assert result.status == psycopg.pq.ExecStatus.TUPLES_OK, result.error_message
        assert result.ntuples == rows
        while conn.pgconn.get_result() is not None:
            pass
    assert grown < 16 * 1024 * 1024, f"the proxy grew by {grown / 2**20:.1f} MiB"
    with psycopg.connect(firewall.dsn(), autocommit=True) as other:  # the one server, read again
        assert other.execute("SELECT count(*) FROM users").fetchone() == (100,)
