"""Back-pressure, both ways: a client that reads slower than its server answers makes the
proxy stop reading that server (as PgBouncer does), and a server that takes an upload
slower than its client sends it makes the proxy stop reading that client; the proxy never
holds a whole result or upload. A server handed back while paused is read again by
whoever borrows it next."""

from __future__ import annotations

import threading
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


def test_a_server_that_falls_behind_an_upload_never_makes_the_proxy_hold_it(
    start_firewall, postgres
):
    """A 24 MB COPY FROM STDIN whose first row waits on a lock: the server stops reading,
    so the proxy stops reading the client instead of taking the upload in; once the lock
    is gone every row arrives."""
    firewall = start_firewall("--pool-size", "1")
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
        failures: list[BaseException] = []
        with psycopg.connect(firewall.dsn(), autocommit=True) as conn:
            conn.execute("SELECT 1")  # the pool's connection is open and warm
            before = _rss_bytes(firewall.process.pid)

            def upload() -> None:
                try:
                    cursor = conn.cursor()
                    with cursor.copy("COPY upload_target (body) FROM STDIN") as copy:
                        for _ in range(lines):
                            copy.write(b"x" * 1023 + b"\n")
                except BaseException as exc:  # reported by the main thread
                    failures.append(exc)

            uploader = threading.Thread(target=upload)
            uploader.start()
            time.sleep(1.5)  # plenty for a client to send it all to a proxy that kept reading
            grown = _rss_bytes(firewall.process.pid) - before
            direct.execute("SELECT pg_advisory_unlock(4242)")
            uploader.join(30)
            assert not uploader.is_alive()
            assert not failures, failures
            assert conn.execute("SELECT count(*) FROM upload_target").fetchone() == (lines,)
        direct.execute("DROP TABLE upload_target")
        direct.execute("DROP FUNCTION wait_for_go()")
    assert grown < 16 * 1024 * 1024, f"the proxy grew by {grown / 2**20:.1f} MiB"
