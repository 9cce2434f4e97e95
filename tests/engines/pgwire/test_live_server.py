"""The codec against a real PostgreSQL: SCRAM and MD5 logins, simple and extended queries,
COPY, cancellation and the SSLRequest answer, over a plain socket with nothing but
``engines.pgwire`` in between.

A throwaway cluster is initialised in a temporary directory. PostgreSQL refuses to run as
root, so when the suite runs as root the cluster belongs to ``nobody``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engines.pgwire import (
    AuthenticationMD5Password,
    AuthenticationOk,
    AuthenticationSASL,
    AuthenticationSASLContinue,
    AuthenticationSASLFinal,
    BackendKeyData,
    BackendParser,
    Bind,
    BindComplete,
    CancelRequest,
    CommandComplete,
    CopyData,
    CopyDone,
    CopyInResponse,
    CopyOutResponse,
    DataRow,
    Describe,
    EncryptionResponse,
    ErrorResponse,
    Execute,
    FrontendParser,
    ParameterStatus,
    Parse,
    ParseComplete,
    PasswordMessage,
    Query,
    ReadyForQuery,
    RowDescription,
    SASLInitialResponse,
    SASLResponse,
    ScramClient,
    ScramServer,
    ScramVerifier,
    SSLRequest,
    StartupMessage,
    Sync,
    Terminate,
    md5_password,
)
from engines.procs import free_port

PG_BINDIR = Path(os.environ.get("PG_BINDIR", "/usr/lib/postgresql/15/bin"))
PASSWORD = "s3cret pässword"
MD5_USER, MD5_PASSWORD = "md5user", "md5secret"

pytestmark = pytest.mark.skipif(
    not (PG_BINDIR / "initdb").exists() or not (PG_BINDIR / "postgres").exists(),
    reason=f"PostgreSQL binaries not found in {PG_BINDIR} (set PG_BINDIR)",
)


def _ready(pid_file: Path) -> bool:
    """postmaster.pid's 8th line reads "ready" once logins are accepted (pg_ctl's check)."""
    try:
        lines = pid_file.read_text().splitlines()
    except FileNotFoundError:
        return False
    return len(lines) >= 8 and lines[7].strip() == "ready"


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    """A fresh cluster with SCRAM for everyone and MD5 for one role; yields its port."""
    as_root = os.geteuid() == 0
    owner = pwd.getpwnam("nobody") if as_root else pwd.getpwuid(os.geteuid())
    # Not pytest's tmp_path: its parent is private to root, and the server runs as nobody.
    root = Path(tempfile.mkdtemp(prefix="pgwire-test-"))
    data, log = root / "data", root / "postgres.log"
    (root / "pwfile").write_text(PASSWORD + "\n")
    os.chown(root, owner.pw_uid, owner.pw_gid)
    os.chown(root / "pwfile", owner.pw_uid, owner.pw_gid)
    run_as = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []} if as_root else {}
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    process = None
    try:
        subprocess.run(
            [PG_BINDIR / "initdb", "-D", data, "-U", "postgres", f"--pwfile={root / 'pwfile'}",
             "-A", "scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"],
            check=True, capture_output=True, cwd=root, env=env, timeout=60, **run_as,
        )  # fmt: skip
        hba = data / "pg_hba.conf"
        hba.write_text(f"host all {MD5_USER} 127.0.0.1/32 md5\n" + hba.read_text())
        port = free_port()
        with open(log, "wb") as log_file:
            process = subprocess.Popen(
                [PG_BINDIR / "postgres", "-D", data, "-p", str(port), "-k", root,
                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "ssl=off"],
                stdout=log_file, stderr=subprocess.STDOUT, cwd=root, env=env, **run_as,
            )  # fmt: skip
        deadline = time.monotonic() + 20
        pid_file = data / "postmaster.pid"
        while not _ready(pid_file):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"PostgreSQL did not start:\n{log.read_text()}")
            time.sleep(0.05)
        yield port
    finally:
        if process is not None:
            process.terminate()  # smart shutdown
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(root, ignore_errors=True)


class Connection:
    """Just enough client to drive the server with the codec."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.parser = BackendParser()
        self.parameters: dict[str, str] = {}
        self.key: BackendKeyData | None = None
        # Everything we send also goes through the frontend parser, as a proxy would see it.
        self.echo = FrontendParser()
        self.sent: list = []

    def send(self, *messages) -> None:
        data = b"".join(m.encode() for m in messages)
        self.echo.feed(data)
        self.sent.extend(self.echo)
        self.sock.sendall(data)

    def receive(self):
        while (message := self.parser.next()) is None:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("server closed the connection")
            self.parser.feed(data)
        return message

    def until_ready(self) -> list:
        messages = []
        while not isinstance(message := self.receive(), ReadyForQuery):
            messages.append(message)
        return [*messages, message]

    def login(self, user: str, password: str) -> ErrorResponse | None:
        self.send(StartupMessage({"user": user, "database": "postgres"}))
        request = self.receive()
        if isinstance(request, AuthenticationSASL):
            assert "SCRAM-SHA-256" in request.mechanisms
            scram = ScramClient(user, password)
            self.echo.expect_auth_response(SASLInitialResponse)
            self.send(SASLInitialResponse("SCRAM-SHA-256", scram.first_message()))
            challenge = self.receive()
            assert isinstance(challenge, AuthenticationSASLContinue)
            self.send(SASLResponse(scram.handle_server_first(challenge.data)))
            final = self.receive()
            if isinstance(final, ErrorResponse):
                return final
            assert isinstance(final, AuthenticationSASLFinal)
            scram.verify_server_final(final.data)
        elif isinstance(request, AuthenticationMD5Password):
            self.send(PasswordMessage(md5_password(user, password, request.salt)))
        else:
            pytest.fail(f"unexpected authentication request {request!r}")
        outcome = self.receive()
        if isinstance(outcome, ErrorResponse):
            return outcome
        assert isinstance(outcome, AuthenticationOk)
        for message in self.until_ready():
            if isinstance(message, ParameterStatus):
                self.parameters[message.name] = message.value
            elif isinstance(message, BackendKeyData):
                self.key = message
        return None

    def close(self) -> None:
        try:
            self.send(Terminate())
        finally:
            self.sock.close()


@pytest.fixture
def connect(server):
    connections = []

    def _connect() -> Connection:
        connection = Connection(server)
        connections.append(connection)
        return connection

    yield _connect
    for connection in connections:
        connection.sock.close()


@pytest.fixture
def session(connect) -> Connection:
    connection = connect()
    assert connection.login("postgres", PASSWORD) is None
    return connection


def test_scram_login_and_queries(session):
    assert session.parameters["server_version"].startswith("15")
    assert session.parameters["client_encoding"] == "UTF8"
    assert session.key is not None
    assert len(session.key.secret_key) == 4

    session.send(Query("SELECT 1"))
    description, row, complete, ready = session.until_ready()
    assert isinstance(description, RowDescription)
    assert description.fields[0].name == "?column?"
    assert description.fields[0].type_oid == 23  # int4
    assert row == DataRow([b"1"])
    assert complete == CommandComplete("SELECT 1")
    assert ready == ReadyForQuery("I")

    session.send(
        Parse("", "SELECT $1::int + 1 AS answer, NULL::text AS nothing", [23]),
        Bind("", "", [], [b"41"], []),
        Describe("P", ""),
        Execute("", 0),
        Sync(),
    )
    replies = session.until_ready()
    assert [type(m) for m in replies] == [
        ParseComplete, BindComplete, RowDescription, DataRow, CommandComplete, ReadyForQuery,
    ]  # fmt: skip
    assert [f.name for f in replies[2].fields] == ["answer", "nothing"]
    assert replies[3] == DataRow([b"42", None])
    assert replies[4] == CommandComplete("SELECT 1")
    # What the frontend parser saw of our side is what we meant to send.
    assert [type(m) for m in session.sent[-5:]] == [Parse, Bind, Describe, Execute, Sync]
    session.close()


def test_errors_transactions_and_binary_results(session):
    session.send(Query("SELECT 1/0"))
    error, ready = session.until_ready()
    assert isinstance(error, ErrorResponse)
    assert (error.sqlstate, error.severity) == ("22012", "ERROR")
    assert error.message == "division by zero"
    assert ready.status == "I"

    session.send(Query("BEGIN"))
    assert session.until_ready()[-1] == ReadyForQuery("T")
    session.send(Query("SELECT nope"))
    assert session.until_ready()[-1] == ReadyForQuery("E")
    session.send(Query("ROLLBACK"))
    assert session.until_ready()[-1] == ReadyForQuery("I")

    # Binary int8 result through the extended protocol, and a pipelined second batch.
    session.send(
        Parse("s", "SELECT $1::bigint * 2"),
        Bind("", "s", [0], [b"21"], [1]),
        Execute(),
        Sync(),
        Bind("", "s", [0], [b"-5"], [1]),
        Execute(),
        Sync(),
    )
    first, second = session.until_ready(), session.until_ready()
    assert DataRow([(42).to_bytes(8, "big", signed=True)]) in first
    assert DataRow([(-10).to_bytes(8, "big", signed=True)]) in second


def test_copy_out_and_in(session):
    session.send(Query("COPY (SELECT g, 'row ' || g FROM generate_series(1, 3) g) TO STDOUT"))
    replies = session.until_ready()
    assert isinstance(replies[0], CopyOutResponse)
    assert replies[0].column_formats == [0, 0]
    assert replies[1:4] == [
        CopyData(b"1\trow 1\n"),
        CopyData(b"2\trow 2\n"),
        CopyData(b"3\trow 3\n"),
    ]
    assert replies[4:] == [CopyDone(), CommandComplete("COPY 3"), ReadyForQuery("I")]

    session.send(Query("CREATE TEMP TABLE t (a int, b text); COPY t FROM STDIN"))
    assert session.receive() == CommandComplete("CREATE TABLE")
    assert isinstance(session.receive(), CopyInResponse)
    session.send(CopyData(b"1\tone\n2\t"), CopyData(b"two\n"), CopyDone())
    assert session.until_ready() == [CommandComplete("COPY 2"), ReadyForQuery("I")]


def test_wrong_password_is_rejected_by_the_server(connect):
    error = connect().login("postgres", "not the password")
    assert isinstance(error, ErrorResponse)
    assert error.sqlstate == "28P01"
    assert error.severity == "FATAL"


def test_stored_verifier_is_understood(session):
    """PostgreSQL's own verifier parses, and our server side accepts our client with it."""
    session.send(Query("SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'"))
    row = session.until_ready()[1]
    verifier = ScramVerifier.parse(row.values[0].decode())
    assert verifier.verify_password(PASSWORD)
    assert str(verifier) == row.values[0].decode()
    client, server = ScramClient("postgres", PASSWORD), ScramServer(verifier)
    server_first = server.handle_client_first(client.first_message())
    client.verify_server_final(server.handle_client_final(client.handle_server_first(server_first)))


def test_md5_login(session, connect):
    session.send(
        Query(
            f"SET password_encryption = 'md5'; "
            f"CREATE ROLE {MD5_USER} LOGIN PASSWORD '{MD5_PASSWORD}'"
        )
    )
    assert session.until_ready()[-1] == ReadyForQuery("I")
    md5 = connect()
    assert md5.login(MD5_USER, MD5_PASSWORD) is None
    md5.send(Query("SELECT current_user"))
    assert DataRow([MD5_USER.encode()]) in md5.until_ready()


def test_ssl_request_is_answered_and_startup_continues(connect):
    connection = connect()
    connection.send(SSLRequest())
    connection.parser.expect_encryption_response(SSLRequest())
    assert connection.receive() == EncryptionResponse(b"N")  # the cluster runs with ssl=off
    connection.echo = FrontendParser()  # a fresh startup phase after the answer
    assert connection.login("postgres", PASSWORD) is None


def test_cancel_request(session, connect):
    session.send(Query("SELECT pg_sleep(30)"))
    time.sleep(0.2)  # let the query start
    canceller = connect()
    canceller.send(CancelRequest(session.key.process_id, session.key.secret_key))
    assert canceller.sock.recv(1) == b""  # the server just closes a cancel connection
    replies = session.until_ready()
    # RowDescription goes out when the portal starts, before pg_sleep runs.
    assert isinstance(replies[0], RowDescription)
    assert isinstance(replies[1], ErrorResponse)
    assert replies[1].sqlstate == "57014"  # query_canceled
