"""The firewall with real clients: psql, psycopg (sync, async, pipeline), asyncpg, pgbench;
and the faults a proxy must survive: bad passwords, junk bytes, a server killed mid-query,
a client vanishing mid-transaction, an exhausted pool, a cancel.

About 650 lines because every test here shares one expensive setting (a real PostgreSQL and
a firewall in front of it, started once per test session); the guard's rules, the
configuration, prepared statements and back-pressure have files of their own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.request

import asyncpg
import psycopg
import pytest
from psycopg import errors

from engines.procs import free_port

pytestmark = pytest.mark.timeout(120)


def psql(dsn: str, sql: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["psql", dsn, "-X", "-v", "ON_ERROR_STOP=0", "-c", sql],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql not installed")
def test_psql_reads_and_is_refused_a_drop(firewall):
    ok = psql(firewall.dsn(), "SELECT count(*) FROM users")
    assert ok.returncode == 0, ok.stderr
    assert "100" in ok.stdout
    refused = psql(firewall.dsn(), "DROP TABLE users")
    assert 'blocked by rule "drop"' in refused.stderr
    assert psql(firewall.dsn(), "SELECT count(*) FROM users").returncode == 0


def test_a_session_reusing_a_verdict_never_stretches_it_over_dollar_quotes(firewall):
    """The compiled path remembers the statement a session was last allowed, digits aside,
    and reuses the verdict for the same text with other numbers. Dollar-quote tags can
    differ in digits alone: with one pair of tags this is one string, with one tag three
    statements, one a DROP. Sent as simple Queries on one connection, so through that path."""
    one_string = b"SELECT $a1$ x $a2$; DROP TABLE users; SELECT $a2$ y $a1$"
    three_statements = b"SELECT $a1$ x $a1$; DROP TABLE users; SELECT $a1$ y $a1$"
    with psycopg.connect(firewall.dsn(), autocommit=True) as conn:
        for sql in (b"SELECT 1", b"SELECT 2", one_string, one_string):
            result = conn.pgconn.exec_(sql)
            assert result.status == psycopg.pq.ExecStatus.TUPLES_OK, result.error_message
        result = conn.pgconn.exec_(three_statements)
        assert result.status == psycopg.pq.ExecStatus.FATAL_ERROR
        assert b'rule "drop"' in result.error_message
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (100,)


def test_block_outside_a_transaction_leaves_the_connection_usable(firewall):
    with psycopg.connect(firewall.dsn(), autocommit=True) as conn:
        with pytest.raises(errors.InsufficientPrivilege, match='rule "truncate"'):
            conn.execute("TRUNCATE users")
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (100,)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_block_inside_a_transaction_aborts_it_like_a_real_error(firewall):
    with psycopg.connect(firewall.dsn()) as conn:
        conn.execute("UPDATE users SET email = 'changed' WHERE id = 1")
        with pytest.raises(errors.InsufficientPrivilege, match="delete_without_where"):
            conn.execute("DELETE FROM users")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        with pytest.raises(errors.InFailedSqlTransaction):
            conn.execute("SELECT 1")
        conn.rollback()
        assert conn.execute("SELECT email FROM users WHERE id = 1").fetchone() != ("changed",)


def test_extended_protocol_parse_is_guarded(firewall):
    with psycopg.connect(firewall.dsn(), autocommit=True) as conn:
        with pytest.raises(errors.InsufficientPrivilege, match="update_without_where"):
            conn.execute("UPDATE users SET email = %s", ["x"])
        assert conn.execute("SELECT email FROM users WHERE id = %s", [2]).fetchone() == (
            "user2@example.com",
        )


def test_pipeline_mode_keeps_responses_in_order(firewall):
    with psycopg.connect(firewall.dsn(), autocommit=True) as conn:
        with conn.pipeline() as pipeline:
            first = conn.execute("SELECT %s::int", [1])
            blocked = conn.cursor()
            blocked.execute("UPDATE users SET email = %s", ["everyone"])
            with pytest.raises(errors.InsufficientPrivilege):
                pipeline.sync()
            assert first.fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (100,)


async def test_psycopg_async_client(firewall):
    async with await psycopg.AsyncConnection.connect(firewall.dsn(), autocommit=True) as conn:
        cursor = await conn.execute("SELECT max(id) FROM users")
        assert await cursor.fetchone() == (100,)
        with pytest.raises(errors.InsufficientPrivilege):
            await conn.execute("ALTER TABLE users RENAME TO people")


async def test_asyncpg_prepared_statements_across_transactions(firewall):
    conn = await asyncpg.connect(firewall.dsn())
    try:
        for n in range(1, 30):  # asyncpg prepares named statements; each lands on any server
            assert (
                await conn.fetchval("SELECT email FROM users WHERE id = $1", n)
                == f"user{n}@example.com"
            )
        with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
            await conn.execute("DROP TABLE users")
        assert await conn.fetchval("SELECT 41 + $1::int", 1) == 42
    finally:
        await conn.close()


def test_wrong_password_and_unknown_database_are_refused(firewall):
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(firewall.dsn(password="wrong")).close()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(firewall.dsn(user="nobody_here", password="x")).close()
    with pytest.raises(psycopg.OperationalError, match="is not served by this firewall"):
        psycopg.connect(firewall.dsn(db="elsewhere")).close()


def _login_raw(firewall) -> socket.socket:
    """Log in over a plain socket with the project's own codec; return the socket."""
    from urllib.parse import urlsplit

    from engines.pgwire import (
        AuthenticationSASL,
        AuthenticationSASLContinue,
        AuthenticationSASLFinal,
        BackendParser,
        ReadyForQuery,
        SASLInitialResponse,
        SASLResponse,
        ScramClient,
        StartupMessage,
    )

    up = urlsplit(firewall.upstream)
    sock = socket.create_connection(("127.0.0.1", firewall.port), timeout=5)
    sock.sendall(StartupMessage({"user": up.username, "database": "postgres"}).encode())
    parser, scram = BackendParser(), ScramClient(up.username, up.password)
    while True:
        parser.feed(sock.recv(65536))
        for message in parser:
            if isinstance(message, AuthenticationSASL):
                sock.sendall(SASLInitialResponse("SCRAM-SHA-256", scram.first_message()).encode())
            elif isinstance(message, AuthenticationSASLContinue):
                sock.sendall(SASLResponse(scram.handle_server_first(message.data)).encode())
            elif isinstance(message, AuthenticationSASLFinal):
                scram.verify_server_final(message.data)
            elif isinstance(message, ReadyForQuery):
                return sock


@pytest.mark.parametrize(
    "junk",
    [
        b"Q\x00\x00\x00\x02",  # length shorter than itself
        b"Q\xff\xff\xff\xf0SELECT 1\x00",  # 4 GB message
        b"Q\x00\x00\x00\x0cSELECT 1",  # query without its NUL
        b"P\x00\x00\x00\x06ab",  # Parse with no terminators
    ],
)
def test_malformed_messages_get_an_error_and_the_proxy_lives_on(firewall, junk):
    sock = _login_raw(firewall)
    sock.settimeout(5)
    sock.sendall(junk)
    reply = b""
    while chunk := sock.recv(4096):
        reply += chunk
    sock.close()
    assert reply.startswith(b"E")
    assert b"08P01" in reply
    with psycopg.connect(firewall.dsn(), autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_strings_stay_standard_so_the_guard_reads_sql_as_the_server_does(firewall):
    """Were standard_conforming_strings off, this statement would be one string and a DROP
    to the server: the firewall refuses to let it be turned off."""
    sneaky = "SELECT 'a\\' , ' ; DROP TABLE users; --'"
    with psycopg.connect(firewall.dsn(), autocommit=True) as conn:
        with pytest.raises(errors.InsufficientPrivilege, match='rule "string_syntax"'):
            conn.execute("SET standard_conforming_strings = off")
        with pytest.raises(errors.InsufficientPrivilege, match='rule "string_syntax"'):
            conn.execute("SELECT set_config('standard_conforming_strings', 'off', false)")
        assert conn.execute(sneaky).fetchone() == ("a\\", " ; DROP TABLE users; --")
        assert conn.execute("SHOW standard_conforming_strings").fetchone() == ("on",)
        assert conn.execute("SELECT to_regclass('users') IS NOT NULL").fetchone() == (True,)


def test_client_encoding_stays_utf8_so_no_character_swallows_a_backslash(firewall):
    """The UTF-8 bytes of 中 (E4 B8 AD) then a backslash read in BIG5 as two characters, no
    backslash: the quote after it would end the string and run the DROP. The firewall
    refuses the encoding, so the statement stays one harmless string."""
    with psycopg.connect(firewall.dsn(), autocommit=True) as conn:
        with pytest.raises(errors.InsufficientPrivilege, match='rule "string_syntax"'):
            conn.execute("SET client_encoding = 'BIG5'")
        row = conn.execute("SELECT E'中\\' ; DROP TABLE users; --'").fetchone()
        assert row == ("中' ; DROP TABLE users; --",)
        assert conn.execute("SELECT to_regclass('users') IS NOT NULL").fetchone() == (True,)


def test_a_session_whose_strings_turn_nonstandard_is_closed(start_firewall, postgres):
    """A function the guard cannot see into, which the operator allowed all the same, turns
    the setting off: the server reports the change and the proxy ends that session and
    that server connection."""
    with psycopg.connect(postgres[0].dsn(), autocommit=True) as admin:
        admin.execute(
            "CREATE OR REPLACE FUNCTION nonstandard_strings() RETURNS text LANGUAGE sql AS "
            "$$ SELECT set_config('standard_conforming_strings', 'off', false) $$"
        )
    firewall = start_firewall(
        config='[databases.postgres]\nupstream = "{upstream}"\n'
        '[guard]\nfunctions = ["public.nonstandard_strings()"]\n'
    )
    with (  # not configured: refused
        psycopg.connect(firewall.dsn(), autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="string_syntax"),
    ):
        conn.execute("SELECT set_config('standard_conforming_strings', 'off', false)")
    conn = psycopg.connect(firewall.dsn(), autocommit=True)
    with pytest.raises(psycopg.Error, match="standard_conforming_strings was set to off"):
        conn.execute("SELECT nonstandard_strings()")
    assert conn.closed
    for _ in range(5):  # no server connection with the setting off is ever lent again
        with psycopg.connect(firewall.dsn(), autocommit=True) as fresh:
            assert fresh.execute("SHOW standard_conforming_strings").fetchone() == ("on",)


def test_server_killed_mid_query_errors_the_client_and_the_pool_heals(firewall, postgres):
    victim = psycopg.connect(firewall.dsn(), autocommit=True)
    result: dict[str, Exception] = {}

    def run() -> None:
        try:
            victim.execute("SELECT pg_sleep(30)")
        except Exception as exc:
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    with psycopg.connect(postgres[0].dsn(), autocommit=True) as admin:
        for _ in range(100):
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'"
            ).fetchall()
            if killed:
                break
            time.sleep(0.05)
    thread.join(10)
    assert isinstance(result.get("error"), psycopg.OperationalError)
    victim.close()
    for _ in range(5):  # the dead connection is gone from the pool: every new client works
        with psycopg.connect(firewall.dsn(), autocommit=True) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


def test_client_vanishing_mid_transaction_never_leaks_its_transaction(firewall):
    sock_owner = psycopg.connect(firewall.dsn())
    sock_owner.execute("INSERT INTO users VALUES (1000, 'ghost')")  # open transaction
    os.close(sock_owner.fileno())  # vanish without Terminate or ROLLBACK
    time.sleep(0.3)
    for _ in range(5):
        with psycopg.connect(firewall.dsn(), autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM users WHERE id = 1000").fetchone() == (0,)
            assert conn.execute("SELECT txid_current_if_assigned()").fetchone() == (None,)


def test_exhausted_pool_queues_then_fails_clearly(start_firewall):
    firewall = start_firewall(
        config='[databases.postgres]\nupstream = "{upstream}"\npool_size = 1\nquery_wait_timeout = 1\n'
    )
    holder = psycopg.connect(firewall.dsn())
    holder.execute("SELECT 1")  # BEGIN ... holds the only server connection
    started = time.monotonic()
    waiting = psycopg.connect(firewall.dsn(), autocommit=True)
    with pytest.raises(psycopg.OperationalError, match="no server connection free within 1 s"):
        waiting.execute("SELECT 1")
    waiting.close()
    assert time.monotonic() - started >= 1
    holder.rollback()
    with psycopg.connect(firewall.dsn(), autocommit=True) as conn:  # freed: works again
        assert conn.execute("SELECT 1").fetchone() == (1,)
    holder.close()


def test_each_user_has_a_pool_of_their_own(start_firewall):
    """alice's pool is full (size 1, held by an open transaction): her next client queues
    and gives up, while bob, in the same database, is served from his own pool."""
    proxy = start_firewall(
        "--metrics-listen", f"127.0.0.1:{(metrics := free_port())}",
        config="""
[users]
alice = "alice-secret"
bob = "bob-secret"
[databases.postgres]
upstream = "{upstream}"
pool_size = 3
query_wait_timeout = 1
[databases.postgres.users.alice]
pool_size = 1
""",
    )  # fmt: skip
    holder = psycopg.connect(proxy.dsn("alice", "alice-secret"))
    holder.execute("SELECT 1")  # a transaction stays open: alice's one connection is taken
    with (
        pytest.raises(psycopg.OperationalError, match="alice's pool_size 1"),
        psycopg.connect(proxy.dsn("alice", "alice-secret"), autocommit=True) as waiting,
    ):
        waiting.execute("SELECT 1")
    with psycopg.connect(proxy.dsn("bob", "bob-secret"), autocommit=True) as bob:
        assert bob.execute("SELECT 1").fetchone() == (1,)
    holder.rollback()
    holder.close()
    url = f"http://127.0.0.1:{metrics}/stats.json"
    with urllib.request.urlopen(url, timeout=5) as response:
        pools = {pool["user"]: pool for pool in json.load(response)["pools"]}
    assert (pools["alice"]["size"], pools["alice"]["timeouts"]) == (1, 1)
    assert (pools["bob"]["size"], pools["bob"]["timeouts"]) == (3, 0)


def test_a_database_cap_is_shared_by_its_user_pools(start_firewall):
    """max_db_connections 2 over two users' pools of 2: a pool at the cap borrows another
    pool's idle connection, waits (and gives up clearly) when none is idle, and is handed
    one as soon as another user releases it. Two connections serve it all."""
    proxy = start_firewall(
        "--metrics-listen", f"127.0.0.1:{(metrics := free_port())}",
        config="""
[users]
alice = "alice-secret"
bob = "bob-secret"
[databases.postgres]
upstream = "{upstream}"
pool_size = 2
max_db_connections = 2
query_wait_timeout = 1
""",
    )  # fmt: skip
    alice_dsn, bob_dsn = proxy.dsn("alice", "alice-secret"), proxy.dsn("bob", "bob-secret")
    with psycopg.connect(alice_dsn, autocommit=True) as alice:
        alice.execute("SELECT 1")  # alice's pool now holds one idle connection
        bob1, bob2 = psycopg.connect(bob_dsn), psycopg.connect(bob_dsn)
        try:
            bob1.execute("SELECT 1")  # a new connection: the database's second
            bob2.execute("SELECT 1")  # no room left: alice's idle one is borrowed
            with pytest.raises(psycopg.OperationalError, match="max_db_connections 2"):
                alice.execute("SELECT 1")  # both are in bob's open transactions
        finally:
            bob2.rollback()  # its transaction ends: the connection goes back (to bob's pool)
            bob2.close()
        answered = {}

        def alice_waits() -> None:
            with psycopg.connect(alice_dsn, autocommit=True) as again:
                answered["row"] = again.execute("SELECT 2").fetchone()

        waiting = threading.Thread(target=alice_waits)
        try:
            bob1.execute("SELECT 1")  # still in its transaction
            with psycopg.connect(bob_dsn) as bob3:
                bob3.execute("SELECT 1")  # bob's idle one: now both are bob's, in use
                waiting.start()
                time.sleep(0.3)  # alice queues
            # bob3's transaction ended (committed on leaving the block): handed to alice
            waiting.join(10)
        finally:
            bob1.rollback()
            bob1.close()
        assert answered["row"] == (2,)
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/stats.json", timeout=5) as reply:
        pools = json.load(reply)["pools"]
    assert sum(pool["connects"] for pool in pools) == 2


def test_each_session_keeps_its_settings_on_whichever_server_it_lands(firewall):
    """Two clients take turns on the same warm server connections: each sees its own
    startup application_name and its own SET TimeZone, never the other's."""
    alpha = psycopg.connect(firewall.dsn(), autocommit=True, application_name="alpha")
    beta = psycopg.connect(firewall.dsn(), autocommit=True, application_name="beta")
    try:
        default_zone = beta.execute("SHOW TimeZone").fetchone()[0]
        alpha.execute("SET TimeZone = 'Asia/Tokyo'")
        for _ in range(5):
            assert alpha.execute("SHOW application_name").fetchone() == ("alpha",)
            assert beta.execute("SHOW application_name").fetchone() == ("beta",)
            assert alpha.execute("SHOW TimeZone").fetchone() == ("Asia/Tokyo",)
            assert beta.execute("SHOW TimeZone").fetchone() == (default_zone,)
    finally:
        alpha.close()
        beta.close()


def test_a_set_stays_with_its_session_when_others_logged_in_alike(firewall):
    """Sessions with the same startup settings share what the proxy keeps of them: one
    session's SET must not reach the others, nor be taken as already in place on a
    server connection it changed."""
    first, *others = [
        psycopg.connect(firewall.dsn(), autocommit=True, application_name="alike") for _ in range(3)
    ]
    try:
        default_zone = others[0].execute("SHOW TimeZone").fetchone()[0]
        first.execute("SET TimeZone = 'Asia/Tokyo'")
        for _ in range(5):
            assert first.execute("SHOW TimeZone").fetchone() == ("Asia/Tokyo",)
            for conn in others:
                assert conn.execute("SHOW TimeZone").fetchone() == (default_zone,)
    finally:
        for conn in (first, *others):
            conn.close()


async def test_startup_settings_apply_and_a_refused_one_ends_the_session(firewall):
    """Startup parameters reach the server (asyncpg sends any), and one the server refuses
    ends the session with the server's reason, as PostgreSQL would refuse the login."""
    good = await asyncpg.connect(firewall.dsn(), server_settings={"TimeZone": "Asia/Kolkata"})
    try:
        assert await good.fetchval("SHOW TimeZone") == "Asia/Kolkata"
    finally:
        await good.close()
    bad = await asyncpg.connect(firewall.dsn(), server_settings={"TimeZone": "Mars/Olympus"})
    try:
        with pytest.raises(asyncpg.PostgresError, match="session setting was refused"):
            await bad.fetchval("SELECT 1")
    finally:
        bad.terminate()
    with psycopg.connect(firewall.dsn(), autocommit=True) as conn:  # the proxy is fine
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_client_only_encoding_is_refused_at_login(firewall):
    with pytest.raises(psycopg.OperationalError, match="client_encoding BIG5 is not supported"):
        psycopg.connect(firewall.dsn(), client_encoding="BIG5").close()


def test_cancel_reaches_the_right_query(firewall):
    conn = psycopg.connect(firewall.dsn(), autocommit=True)
    bystander = psycopg.connect(firewall.dsn(), autocommit=True)
    timer = threading.Timer(0.5, conn.cancel)
    timer.start()
    started = time.monotonic()
    with pytest.raises(errors.QueryCanceled):
        conn.execute("SELECT pg_sleep(20)")
    assert time.monotonic() - started < 10
    assert bystander.execute("SELECT 1").fetchone() == (1,)
    conn.close()
    bystander.close()


PGBENCH = shutil.which("pgbench") or "/usr/lib/postgresql/15/bin/pgbench"


@pytest.mark.skipif(not os.path.exists(PGBENCH), reason="pgbench not installed")
@pytest.mark.parametrize("mode", ["simple", "extended", "prepared"])
def test_pgbench_select_only_through_the_proxy(firewall, postgres, mode):
    env = {**os.environ, "PGPASSWORD": postgres[0].password("superuser")}
    subprocess.run(
        [PGBENCH, "-i", "-s", "1", "-q", "-h", "127.0.0.1", "-p", str(postgres[0].port), "-U", postgres[0].settings.superuser, "postgres"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    result = subprocess.run(
        [PGBENCH, "-S", "-n", "-T", "2", "-c", "4", "-j", "2", "-M", mode, "-h", "127.0.0.1", "-p", str(firewall.port), "-U", postgres[0].settings.superuser, "postgres"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "number of failed transactions: 0" in result.stdout


def test_clients_sharing_one_server_keep_their_own_prepared_statements(start_firewall):
    """Both clients name their statement _pg3_0 and take turns on the single server
    connection: renamed per client and re-prepared where missing, neither sees the other's."""
    firewall = start_firewall(
        config='[databases.postgres]\nupstream = "{upstream}"\npool_size = 1\n'
    )
    first = psycopg.connect(firewall.dsn(), autocommit=True)
    second = psycopg.connect(firewall.dsn(), autocommit=True)
    try:
        for n in range(1, 6):
            assert first.execute(
                "SELECT email FROM users WHERE id = %s", [n], prepare=True
            ).fetchone() == (f"user{n}@example.com",)
            assert second.execute(
                "SELECT id FROM users WHERE email = %s", [f"user{n}@example.com"], prepare=True
            ).fetchone() == (n,)
    finally:
        first.close()
        second.close()


def test_metrics_count_what_happened(start_firewall):
    metrics_port = free_port()
    firewall = start_firewall("--metrics-listen", f"127.0.0.1:{metrics_port}")
    with psycopg.connect(firewall.dsn(), autocommit=True) as conn:
        for _ in range(3):
            conn.execute("SELECT 1")
        for sql in ("DROP TABLE users", "TRUNCATE users"):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(sql)
    with urllib.request.urlopen(
        f"http://127.0.0.1:{metrics_port}/stats.json", timeout=5
    ) as response:
        stats = json.load(response)
    assert stats["guard"]["blocked"] == {"drop": 1, "truncate": 1}
    assert stats["guard"]["checked"] >= 5
    assert stats["latency"]["count"] >= 5
    assert stats["latency"]["p50_us"] is not None
    [pool] = stats["pools"]
    assert pool["database"] == "postgres"
    assert pool["mode"] == "transaction"
    assert pool["acquired"] >= 5
    assert pool["wait_seconds"] == 0  # one client never waited for a server
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert 'firewall_statements_blocked_total{rule="drop"} 1' in text
    assert "firewall_round_trip_seconds_count" in text
    assert re.search(r'^firewall_reads_total\{path="copied"\} [1-9]', text, re.M)


def test_repeated_simple_queries_take_the_relay_fast_paths(start_firewall):
    """Two speed paths whose fallbacks do the same work, so only the counters tell them
    apart: a simple Query the verdict cache allows, and the server's answer to it, are relayed
    straight from the read buffer; and a session repeating the statement shape it was last
    allowed, digits aside, is answered from its memo without a cache lookup. Plain sockets
    both ways: a TLS one stays with the loop's transport, which has no such path."""
    metrics_port = free_port()
    firewall = start_firewall(
        "--metrics-listen",
        f"127.0.0.1:{metrics_port}",
        config='[databases.postgres]\nupstream = "{upstream}?sslmode=disable"\n',
    )

    def stats() -> dict:
        url = f"http://127.0.0.1:{metrics_port}/stats.json"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)

    before = stats()
    with psycopg.connect(firewall.dsn(), autocommit=True) as conn:
        for n in range(10, 30):  # the first is parsed; the next 19 hit the cache, 18 repeat
            result = conn.pgconn.exec_(f"SELECT {n}".encode())  # a simple Query
            assert result.status == psycopg.pq.ExecStatus.TUPLES_OK, result.error_message
            assert result.get_value(0, 0) == str(n).encode()
    after = stats()
    assert after["guard"]["repeats"] - before["guard"]["repeats"] >= 18
    # 19 Queries in and 19 answers out, at the least; the first Query, parsed, is copied.
    assert after["reads"]["in_place"] - before["reads"]["in_place"] >= 38
    assert after["reads"]["copied"] > before["reads"]["copied"]

    # With a ``$`` the cache is keyed by the exact text, digits and all: the compiled path
    # must build that same key, or its lookup misses and every such query is copied.
    exact = "SELECT $q1$ é 7 $q1$".encode()
    with psycopg.connect(firewall.dsn(), autocommit=True) as conn:
        assert conn.pgconn.exec_(exact).get_value(0, 0) == " é 7 ".encode()
        middle = stats()
        assert conn.pgconn.exec_(exact).get_value(0, 0) == " é 7 ".encode()
    end = stats()
    assert end["reads"]["in_place"] - middle["reads"]["in_place"] >= 2
    assert end["guard"]["repeats"] == middle["guard"]["repeats"]  # an exact key is not kept


def test_tls_on_both_sides_with_verified_certificates(start_firewall, postgres):
    """verify-full towards the server (the cluster's CA) and towards clients (the proxy
    serving a certificate for 127.0.0.1 signed by the same CA)."""
    if postgres.ca_file is None:
        pytest.skip("these PostgreSQL binaries have no TLS")
    instance = postgres[0]
    firewall = start_firewall(
        "--tls-cert", str(instance.cert_path), "--tls-key", str(instance.key_path),
        config=f'[databases.postgres]\nupstream = "{instance.dsn(tls=True)}"\n',
    )  # fmt: skip
    dsn = firewall.dsn(user=instance.settings.superuser, password=instance.password("superuser"))
    with psycopg.connect(f"{dsn}?sslmode=verify-full&sslrootcert={postgres.ca_file}") as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        ).fetchone() == (True,)
    with pytest.raises(
        psycopg.OperationalError
    ):  # a client that cannot verify the proxy is refused
        psycopg.connect(f"{dsn}?sslmode=verify-full&sslrootcert=/dev/null").close()


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql not installed")
def test_admin_console_shows_pools_stats_and_rules(firewall):
    with (
        psycopg.connect(firewall.dsn(), autocommit=True) as conn,
        pytest.raises(errors.InsufficientPrivilege),
    ):
        conn.execute("DROP TABLE users")
    console = firewall.dsn(db="firewall")
    pools = subprocess.run(
        ["psql", console, "-X", "-A", "-c", "SHOW POOLS"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert pools.returncode == 0, pools.stderr
    assert "database|user|mode|size|active|idle" in pools.stdout
    user = firewall.dsn().split("//")[1].split(":")[0]
    assert f"postgres|{user}|transaction|20|" in pools.stdout
    rules = subprocess.run(
        ["psql", console, "-X", "-A", "-t", "-c", "SHOW RULES"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    drop = next(line for line in rules.stdout.splitlines() if line.startswith("drop|"))
    assert int(drop.split("|")[1]) >= 1
    unknown = subprocess.run(
        ["psql", console, "-X", "-c", "SHOW SECRETS"], capture_output=True, text=True, timeout=30
    )
    assert "unknown console command" in unknown.stderr
    stats = subprocess.run(
        ["psql", console, "-X", "-A", "-t", "-c", "SHOW STATS"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "statements_blocked|" in stats.stdout


def test_copy_in_and_out_pass_through(firewall):
    with psycopg.connect(firewall.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS copy_target (id int, body text)")
        conn.execute("DELETE FROM copy_target WHERE id > 0")
        with conn.cursor() as cursor:
            with cursor.copy("COPY copy_target (id, body) FROM STDIN") as copy:
                for n in range(1, 501):
                    copy.write_row((n, f"row {n}"))
            assert conn.execute("SELECT count(*), max(id) FROM copy_target").fetchone() == (
                500,
                500,
            )
            with cursor.copy("COPY (SELECT id FROM copy_target ORDER BY id) TO STDOUT") as copy:
                rows = [int(row[0]) for row in copy.rows()]
        assert rows == list(range(1, 501))
        with pytest.raises(errors.InsufficientPrivilege, match="delete_without_where"):
            conn.execute("COPY (DELETE FROM copy_target RETURNING id) TO STDOUT")


def test_client_connections_are_capped(start_firewall):
    firewall = start_firewall(
        config='max_client_connections = 1\n[databases.postgres]\nupstream = "{upstream}"\n'
    )
    with psycopg.connect(firewall.dsn(), autocommit=True) as first:
        with pytest.raises(psycopg.OperationalError, match="too many clients"):
            psycopg.connect(firewall.dsn()).close()
        assert first.execute("SELECT 1").fetchone() == (1,)
    with psycopg.connect(firewall.dsn(), autocommit=True) as again:  # the slot came back
        assert again.execute("SELECT 1").fetchone() == (1,)
