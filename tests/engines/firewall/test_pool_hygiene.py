"""Pool hygiene: nothing one client leaves on a server connection reaches the next client.

A server connection is shared, one transaction at a time, so whatever state a client can
leave on it is a way into the next client's session: an implicit transaction opened by
extended-protocol messages no Sync has ended (its rows, its locks, its SET LOCAL), the
unnamed prepared statement, the names of the proxy's own renamed statements. The first
tests run the real proxy process with one server connection (``--pool-size 1``), so the
next client always gets the server the last one used; they speak the protocol over a raw
socket, message by message, as a hostile client would.

The rest drive one ClientSession in this test's event loop, on a fake client transport,
with a real server connection behind it and a stub policy: the verdicts a guard may give
(``holds``, ``sql``, ``pending``, and the checks of Bind and FunctionCall) are the
session's to carry out, whatever the guard decides.

Why past 500 lines: both halves share the raw-protocol client and the one-server proxy, and
each test is a protocol transcript, long by nature.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import psycopg
import pytest
from engines.pgproxy._policy import Policy

from engines.firewall.config import load_config
from engines.pgproxy.client import ClientSession
from engines.pgproxy.metrics import LatencyHistogram
from engines.pgproxy.pool import Pool
from engines.pgproxy.prepared import StatementRenamer
from engines.pgwire import (
    AuthenticationSASL,
    AuthenticationSASLContinue,
    AuthenticationSASLFinal,
    BackendParser,
    Bind,
    Close,
    CommandComplete,
    DataRow,
    Describe,
    ErrorResponse,
    Execute,
    Flush,
    FunctionCall,
    FunctionCallResponse,
    Parse,
    ParseComplete,
    Query,
    ReadyForQuery,
    SASLInitialResponse,
    SASLResponse,
    ScramClient,
    StartupMessage,
    Sync,
)

pytestmark = pytest.mark.timeout(120)

NO_UNNAMED = "unnamed prepared statement does not exist"


def rows(messages: list) -> list[list[bytes | None]]:
    return [message.values for message in messages if isinstance(message, DataRow)]


def errors(messages: list) -> list[str]:
    return [message.message for message in messages if isinstance(message, ErrorResponse)]


# -- through the real proxy, one server connection ----------------------------------------


class RawClient:
    """A client of the proxy over a plain socket, logged in with SCRAM, sending whatever
    messages it is given (engines.pgwire) and reading the answers one by one."""

    def __init__(self, firewall) -> None:
        up = urlsplit(firewall.upstream)
        self.sock = socket.create_connection(("127.0.0.1", firewall.port), timeout=10)
        self.parser = BackendParser()
        self.send(StartupMessage({"user": up.username, "database": "postgres"}))
        scram = ScramClient(up.username, up.password)
        while True:
            message = self.next()
            if isinstance(message, AuthenticationSASL):
                self.send(SASLInitialResponse("SCRAM-SHA-256", scram.first_message()))
            elif isinstance(message, AuthenticationSASLContinue):
                self.send(SASLResponse(scram.handle_server_first(message.data)))
            elif isinstance(message, AuthenticationSASLFinal):
                scram.verify_server_final(message.data)
            elif isinstance(message, ErrorResponse):
                raise AssertionError(message.message)
            elif isinstance(message, ReadyForQuery):
                return

    def send(self, *messages) -> None:
        self.sock.sendall(b"".join(message.encode() for message in messages))

    def next(self):
        while (message := self.parser.next()) is None:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the proxy closed the connection")
            self.parser.feed(data)
        return message

    def until(self, kind: type) -> list:
        """The messages up to and including the next one of ``kind``."""
        out = [self.next()]
        while not isinstance(out[-1], kind):
            out.append(self.next())
        return out

    def until_ready(self) -> list:
        return self.until(ReadyForQuery)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def lone(start_firewall):
    """The proxy with one server connection: each client gets the one the last one used."""
    return start_firewall("--pool-size", "1")


@pytest.fixture
def ghosts(postgres):
    """Rows a test's clients insert (ids 5001…), removed afterwards whatever happened."""
    yield
    with psycopg.connect(postgres[0].dsn(), autocommit=True) as direct:
        direct.execute("DELETE FROM users WHERE id BETWEEN 5001 AND 5099")


def committed(postgres, user_id: int) -> bool:
    with psycopg.connect(postgres[0].dsn(), autocommit=True) as direct:
        return direct.execute("SELECT count(*) FROM users WHERE id = %s", [user_id]).fetchone()[0]


def wait_for_a_write_in_progress(postgres) -> None:
    """Until some other backend has a transaction that wrote (an xid): the INSERT a client
    sent without its Sync has run, whatever became of its answer."""
    with psycopg.connect(postgres[0].dsn(), autocommit=True) as direct:
        for _ in range(500):
            writing = direct.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
            ).fetchone()[0]
            if writing:
                return
            time.sleep(0.01)
    raise AssertionError("the INSERT never ran")


def test_a_client_leaving_mid_batch_takes_its_transaction_with_it(lone, postgres, ghosts):
    """Parse/Bind/Execute of an INSERT and no Sync: PostgreSQL has run it in an implicit
    transaction that only a Sync ends. The client leaves; the next client on that server
    must not find itself inside that transaction, nor commit it with its own Query."""
    a = RawClient(lone)
    a.send(Query("SELECT 1"))
    a.until_ready()  # the server is warm, and idle in the pool
    a.send(Parse("", "INSERT INTO users VALUES (5001, 'unsynced')"), Bind(), Execute(), Flush())
    a.until(CommandComplete)  # the INSERT has run
    a.close()
    with psycopg.connect(lone.dsn(), autocommit=True) as b:
        assert b.execute("SELECT count(*) FROM users WHERE id = 5001").fetchone() == (0,)
    assert not committed(postgres, 5001)


def test_a_batch_pipelined_after_a_sync_keeps_the_server_until_its_own_sync(lone, postgres, ghosts):
    """The ReadyForQuery that answers a Sync says the server is idle, but the messages
    pipelined after that Sync are running there in a transaction of their own: the server
    stays with the client until that transaction's Sync has been answered too."""
    a = RawClient(lone)
    a.send(Query("SELECT 1"))
    a.until_ready()
    a.send(
        Parse("", "SELECT 1"), Bind(), Execute(), Sync(),
        Parse("", "INSERT INTO users VALUES (5002, 'pipelined')"), Bind(), Execute(),
    )  # fmt: skip
    assert rows(a.until_ready()) == [[b"1"]]
    wait_for_a_write_in_progress(postgres)  # the INSERT has run, not yet committed
    seen = {}

    def other_client() -> None:
        with psycopg.connect(lone.dsn(), autocommit=True) as b:
            seen["count"] = b.execute("SELECT count(*) FROM users WHERE id = 5002").fetchone()

    other = threading.Thread(target=other_client)
    other.start()
    try:
        time.sleep(0.5)
        assert "count" not in seen  # waiting for the one server, still the first client's
        a.send(Sync())
        assert isinstance(a.until_ready()[-1], ReadyForQuery)
    finally:
        other.join(20)
    assert seen["count"] == (1,)  # committed by the first client's own Sync, then lent
    a.close()


def test_a_client_leaving_a_batch_pipelined_after_a_sync_leaves_nothing(lone, postgres, ghosts):
    a = RawClient(lone)
    a.send(Query("SELECT 1"))
    a.until_ready()
    a.send(
        Parse("", "SELECT 1"), Bind(), Execute(), Sync(),
        Parse("", "INSERT INTO users VALUES (5003, 'pipelined')"), Bind(), Execute(),
    )  # fmt: skip
    a.until_ready()
    wait_for_a_write_in_progress(postgres)
    a.close()
    with psycopg.connect(lone.dsn(), autocommit=True) as b:
        assert b.execute("SELECT count(*) FROM users WHERE id = 5003").fetchone() == (0,)
    assert not committed(postgres, 5003)


def test_a_client_never_binds_another_clients_unnamed_statement(lone):
    """The unnamed statement belongs to the server connection, so the last client's is
    there for the next: one that never parsed one is told it has none, as PostgreSQL
    would tell it on a connection of its own."""
    a, b = RawClient(lone), RawClient(lone)
    try:
        a.send(Parse("", "SELECT 'A'"), Sync())
        a.until_ready()
        b.send(Bind(), Execute(), Sync())
        reply = b.until_ready()
        assert rows(reply) == []
        assert errors(reply) == [NO_UNNAMED]
        b.send(Describe("S", ""), Sync())
        assert errors(b.until_ready()) == [NO_UNNAMED]
        a.send(Bind(), Execute(), Sync())  # the first client's own is still its own
        assert rows(a.until_ready()) == [[b"A"]]
    finally:
        a.close()
        b.close()


def test_a_client_binds_its_own_unnamed_statement_wherever_it_lands(lone):
    """Each client's last unnamed Parse is parsed again where its unnamed statement is
    someone else's; the ParseComplete of that Parse is the proxy's, never seen."""
    a, b = RawClient(lone), RawClient(lone)
    try:
        b.send(Parse("", "SELECT 'B'"), Sync())
        b.until_ready()
        a.send(Parse("", "SELECT 'A'"), Sync())  # the same server: its unnamed is now A's
        a.until_ready()
        b.send(Bind(), Execute(), Sync())
        reply = b.until_ready()
        assert rows(reply) == [[b"B"]]
        assert not any(isinstance(message, ParseComplete) for message in reply)
        a.send(Describe("S", ""), Bind(), Execute(), Sync())
        assert rows(a.until_ready()) == [[b"A"]]
        # A simple Query drops the unnamed statement, as PostgreSQL does.
        b.send(Query("SELECT 1"))
        b.until_ready()
        b.send(Bind(), Execute(), Sync())
        assert errors(b.until_ready()) == [NO_UNNAMED]
    finally:
        a.close()
        b.close()


def test_an_unnamed_statement_skipped_by_an_error_is_not_taken_for_the_clients(lone):
    """The proxy's Close of the unnamed statement, slipped in before B's Bind, is skipped
    when an earlier message of the batch fails; B's next batch, pipelined before that
    failure is known, must not find A's statement there either."""
    a, b = RawClient(lone), RawClient(lone)
    try:
        a.send(Parse("", "SELECT 'A'"), Sync())
        a.until_ready()
        b.send(
            Parse("fails", "SELECT 1 / 0"), Bind(statement="fails"), Execute(),
            Bind(), Execute(), Sync(),  # skipped: the division failed
            Bind(), Execute(), Sync(),
        )  # fmt: skip
        first, second = b.until_ready(), b.until_ready()
        assert errors(first) == ["division by zero"]
        assert rows(second) == []
        assert errors(second) == [NO_UNNAMED]
    finally:
        a.close()
        b.close()


def test_statement_prefixes_are_random_and_unique():
    prefixes = [StatementRenamer(n).prefix for n in (1, 2, 1)]
    assert all(re.fullmatch(r"fw[0-9a-f]{8}[0-9a-f]+_", prefix) for prefix in prefixes)
    assert len(set(prefixes)) == 3  # a session numbered alike gets another all the same


# -- one session in this loop, a stub policy ------------------------------------------------


@dataclass
class StubVerdict:
    """A verdict as the session reads one (_policy.pyx)."""

    allowed: bool = True
    rule: str | None = None
    message: str = ""
    sqlstate: str = ""
    holds: bool = False
    sql: bytes | None = None
    pending: asyncio.Future | None = None


ALLOW = StubVerdict()


def refused(message: str) -> StubVerdict:
    return StubVerdict(False, "stub", message, "42501")


class StubPolicy(Policy):
    """Allows everything (never outright: every Query is asked about) unless ``verdicts``
    says otherwise for a question: ("check", sql, statement), ("bind", statement, values,
    formats), ("function", oid); a list gives one verdict per ask, the last one for good.
    ``asked`` records every question, ``forgotten`` every statement closed."""

    def __init__(self) -> None:
        self.verdicts: dict[tuple, StubVerdict | list[StubVerdict]] = {}
        self.asked: list[tuple] = []
        self.forgotten: list[bytes] = []

    def _answer(self, question: tuple) -> StubVerdict:
        self.asked.append(question)
        verdict = self.verdicts.get(question, ALLOW)
        if isinstance(verdict, list):
            return verdict.pop(0) if len(verdict) > 1 else verdict[0]
        return verdict

    def check(self, sql: bytes, statement: bytes | None = None) -> StubVerdict:
        return self._answer(("check", sql, statement))

    def check_bind(self, statement: bytes, values: list, formats: list[int]) -> StubVerdict:
        return self._answer(("bind", statement, tuple(values), tuple(formats)))

    def forget(self, statement: bytes) -> None:
        self.forgotten.append(statement)

    def check_function_call(self, oid: int) -> StubVerdict:
        return self._answer(("function", oid))

    def set_encoding(self, name: str) -> bool:
        return True


class FakeTransport:
    """The client's side of the session: what it is sent, and whether it is being read."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.reading = True
        self.closed = False

    def write(self, data) -> None:
        self.data += data

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 0


class Client:
    """A ClientSession on a FakeTransport: send it messages, read what it answers."""

    def __init__(self, pool: Pool) -> None:
        self.transport = FakeTransport()
        self.policy = StubPolicy()
        self.session = ClientSession(
            pool, pool.user, self.transport, (1, b"key!"),  # type: ignore[arg-type]
            policy=self.policy, latency=LatencyHistogram(), on_close=lambda session: None,
            max_message_size=1 << 20, wanted={},
        )  # fmt: skip
        self.parser = BackendParser()
        self.inbox: list = []

    def send(self, *messages) -> None:
        self.session.data_received(b"".join(message.encode() for message in messages))

    def read(self) -> list:
        """What has come so far and was not read yet."""
        if self.transport.data:
            self.parser.feed(bytes(self.transport.data))
            self.transport.data.clear()
        while (message := self.parser.next()) is not None:
            self.inbox.append(message)
        out, self.inbox = self.inbox, []
        return out

    async def until_ready(self, count: int = 1) -> list:
        """The messages up to and including the ``count``-th ReadyForQuery from here."""
        out: list = []
        for _ in range(2000):
            for message in self.read():
                if count == 0:
                    self.inbox.append(message)
                    continue
                out.append(message)
                count -= isinstance(message, ReadyForQuery)
            if count == 0:
                return out
            await asyncio.sleep(0.01)
        raise AssertionError(f"still waiting for {count} ReadyForQuery after {out}")

    def leave(self) -> None:
        self.session.connection_lost(None)


@pytest.fixture
async def pool(postgres) -> AsyncIterator[Pool]:
    """A pool of one server connection, logged in and idle: sessions take it at once."""
    config = load_config(
        overrides={"upstream": postgres[0].dsn(), "listen": "127.0.0.1:0", "pool_size": 1}
    )
    database = next(iter(config.databases.values()))
    pool = Pool(database, database.upstream.user)
    pool.release(await pool.acquire())
    yield pool
    pool.close()


async def test_statement_names_on_the_server_are_random_per_client(pool):
    """Two clients' statements on one server connection, as pg_prepared_statements shows
    them to whoever shares it: neither name can be worked out from the other."""
    first, second = Client(pool), Client(pool)
    for client in (first, second):
        client.send(Parse("stmt", "SELECT 1"), Sync())
        await client.until_ready()
    first.send(Query("SELECT name FROM pg_prepared_statements"))
    names = [row[0].decode() for row in rows(await first.until_ready())]
    assert len(names) == 2
    randoms = set()
    for name in names:
        match = re.fullmatch(r"fw([0-9a-f]{8})[0-9a-f]+_stmt", name)
        assert match, name
        randoms.add(match.group(1))
    assert len(randoms) == 2
    first.leave()
    second.leave()


async def test_a_held_query_stops_what_follows_until_it_completes(pool):
    client = Client(pool)
    held = "SELECT pg_sleep(0.2), 'held'"
    client.policy.verdicts[("check", held.encode(), None)] = StubVerdict(holds=True)
    client.send(Query(held), Query("SELECT 'next'"))
    assert client.session.holding
    assert not client.transport.reading
    assert client.session.buffer == Query("SELECT 'next'").encode()  # not sent
    reply = await client.until_ready(2)
    assert [row[-1] for row in rows(reply)] == [b"held", b"next"]
    assert not client.session.holding
    assert client.transport.reading
    # Alone in its read, a Query takes the compiled path, whose fallback holds alike.
    client.send(Query(held))
    assert client.session.holding
    client.send(Query("SELECT 'after'"))
    assert client.session.buffer == Query("SELECT 'after'").encode()
    reply = await client.until_ready(2)
    assert [row[-1] for row in rows(reply)] == [b"held", b"after"]
    client.leave()


async def test_a_held_parse_stops_what_follows_its_sync(pool):
    """A Parse is answered by no ReadyForQuery of its own: the hold starts at its batch's
    Sync, the first point at which the server says the statement has completed."""
    client = Client(pool)
    held = "SET application_name = 'held'"
    client.policy.verdicts[("check", held.encode(), b"")] = StubVerdict(holds=True)
    client.send(Parse("", held), Bind(), Execute(), Sync(), Query("SHOW application_name"))
    assert client.session.holding
    assert client.session.buffer == Query("SHOW application_name").encode()
    reply = await client.until_ready(2)
    assert rows(reply) == [[b"held"]]
    client.leave()


async def test_a_verdict_not_ready_stops_the_session_at_that_message(pool):
    client = Client(pool)
    decided = asyncio.get_running_loop().create_future()
    slow = "SELECT 'slow'"
    client.policy.verdicts[("check", slow.encode(), None)] = [
        StubVerdict(False, pending=decided),
        StubVerdict(sql=b"SELECT 'rewritten'"),
    ]
    client.send(Query("SELECT 'before'"), Query(slow), Query("SELECT 'after'"))
    assert client.session.pending is decided
    assert not client.transport.reading
    assert client.session.buffer == Query(slow).encode() + Query("SELECT 'after'").encode()
    assert rows(await client.until_ready()) == [[b"before"]]
    await asyncio.sleep(0.1)
    assert client.read() == []  # nothing after it went on
    decided.set_result(None)
    assert rows(await client.until_ready(2)) == [[b"rewritten"], [b"after"]]
    assert client.policy.asked.count(("check", slow.encode(), None)) == 2  # asked again
    assert client.transport.reading
    assert client.session.pending is None
    # Alone in its read, through the compiled path's fallback.
    again = asyncio.get_running_loop().create_future()
    client.policy.verdicts[("check", slow.encode(), None)] = [
        StubVerdict(False, pending=again),
        ALLOW,
    ]
    client.send(Query(slow))
    assert client.session.pending is again
    assert client.session.buffer == Query(slow).encode()
    again.set_result(None)
    assert rows(await client.until_ready()) == [[b"slow"]]
    client.leave()


async def test_a_parse_rewritten_by_the_policy_keeps_its_name_and_types(pool):
    client = Client(pool)
    client.policy.verdicts[("check", b"SELECT $1", b"typed")] = StubVerdict(
        sql=b"SELECT pg_typeof($1)::text"
    )
    client.send(
        Parse("typed", "SELECT $1", [23]), Bind(statement="typed", params=[b"7"]), Execute(),
        Sync(),
    )  # fmt: skip
    assert rows(await client.until_ready()) == [[b"integer"]]
    client.leave()


async def test_every_bind_is_checked_with_its_values_and_formats(pool):
    client = Client(pool)
    asked = client.policy.asked
    client.send(Parse("", "SELECT $1::text || $2::text"), Sync())
    await client.until_ready()
    client.send(Bind(params=[b"a", b"b"]), Execute(), Sync())
    assert rows(await client.until_ready()) == [[b"ab"]]
    assert asked[-1] == ("bind", b"", (b"a", b"b"), (0, 0))  # no format codes: all text
    client.send(Bind(param_formats=[1], params=[b"c", b"d"]), Execute(), Sync())
    assert rows(await client.until_ready()) == [[b"cd"]]
    assert asked[-1] == ("bind", b"", (b"c", b"d"), (1, 1))  # one code: for every value
    client.send(Bind(param_formats=[0, 1], params=[b"e", None]), Execute(), Sync())
    assert rows(await client.until_ready()) == [[None]]
    assert asked[-1] == ("bind", b"", (b"e", None), (0, 1))  # one code each

    client.policy.verdicts[("bind", b"", (b"x", b"y"), (0, 0))] = refused("firewall: no x")
    client.send(Bind(params=[b"x", b"y"]), Execute(), Sync())
    reply = await client.until_ready()
    assert rows(reply) == []
    [error] = [message for message in reply if isinstance(message, ErrorResponse)]
    assert (error.sqlstate, error.message) == ("42501", "firewall: no x")
    # The refused Bind took nothing with it: the unnamed statement is still the client's.
    client.send(Bind(params=[b"o", b"k"]), Execute(), Sync())
    assert rows(await client.until_ready()) == [[b"ok"]]

    client.send(Parse("named", "SELECT $1::int"), Bind(statement="named", params=[b"7"]))
    client.send(Execute(), Close("S", "named"), Sync())
    assert rows(await client.until_ready()) == [[b"7"]]
    assert asked[-1] == ("bind", b"named", (b"7",), (0,))  # the client's name
    assert client.policy.forgotten == [b"named"]
    client.leave()


async def test_a_statement_blocked_after_a_sync_is_reported_as_blocked(pool):
    """A Parse blocked in a batch pipelined after a Sync: the first batch's ReadyForQuery
    comes first, and neither the server nor the token to rewrite may go with it."""
    client = Client(pool)
    client.policy.verdicts[("check", b"SELECT 'no'", b"")] = refused("firewall: not that")
    client.send(
        Parse("", "SELECT 1"), Bind(), Execute(), Sync(),
        Parse("", "SELECT 'no'"), Bind(), Execute(),
    )  # fmt: skip
    assert rows(await client.until_ready()) == [[b"1"]]
    assert client.session.server is not None
    assert client.session.unsynced
    client.send(Sync())
    assert errors(await client.until_ready()) == ["firewall: not that"]
    assert client.session.server is None  # back in the pool now
    client.leave()


async def test_a_function_call_is_checked_by_its_oid(pool):
    client = Client(pool)
    client.send(Query("SELECT 'pg_backend_pid'::regproc::oid"))
    oid = int(rows(await client.until_ready())[0][0])
    client.send(FunctionCall(oid))
    reply = await client.until_ready()
    assert any(isinstance(message, FunctionCallResponse) for message in reply)
    assert client.policy.asked[-1] == ("function", oid)
    client.policy.verdicts[("function", oid)] = refused("firewall: no calls")
    client.send(FunctionCall(oid))
    reply = await client.until_ready()
    assert errors(reply) == ["firewall: no calls"]
    assert not any(isinstance(message, FunctionCallResponse) for message in reply)
    client.send(Query("SELECT 'still here'"))
    assert rows(await client.until_ready()) == [[b"still here"]]
    client.leave()
