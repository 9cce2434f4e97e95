"""Red team: attacks on the firewall, each judged by what PostgreSQL shows afterwards.

The proxy logs in to PostgreSQL as a superuser, so the guard is the only defence. Every attack
sets up a fresh victim table directly, goes THROUGH the proxy (psycopg, or raw sockets built
with ``engines.pgwire`` for protocol-level attacks), ignores whatever the proxy answers (a
refusal is the expected answer, and error texts are never the verdict), and then asks
PostgreSQL directly, as the superuser, whether the effect happened: the table still there
with every row, the catalog and the server's configuration unchanged, no file read or
written, other sessions alive.

One test per class of attack, each parametrized over a corpus:

- 1a: the server reads a statement differently from the guard: client-only encodings
  (aliases, at login, by SET, set_config, pg_settings, fast-path calls);
- 1b: ... standard_conforming_strings turned off by anything that reaches set_config;
- 2: verdict-cache poisoning: a harmless statement first, then a dangerous one differing from
  it only in digits (escapes, identifiers, constants);
- 3: messages other than Query and Parse that run code: FunctionCall ('F'), and verdicts
  that depend on a bound parameter;
- 4: destruction without the statements the rules name (tautologies, upserts, catalog writes,
  server-side files, extensions, rules, triggers, ALTER SYSTEM, locks);
- 5: denial of service: a statement slow to check must not delay anyone else's traffic;
- 6: one client's session state reaching the next client on the same server connection;
- 7: false positives: ordinary SQL that must pass and have its effect.

Isolation: the attacks of classes 1-5 run against proxies with one configured user per test
(each user has pools of its own), so a server connection one attack left in a bad state is
never lent to the next test. ``test_0`` shows, without the proxy, that the hidden statements
the first classes smuggle really do run when the server reads them the other way.

Why one long file: it is a corpus, read class by class, over one harness (Scene, the raw
protocol client, the damage check) that every class shares.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import psycopg
import pytest

from engines.pgwire import (
    AuthenticationSASL,
    AuthenticationSASLContinue,
    AuthenticationSASLFinal,
    Bind,
    CopyData,
    Execute,
    Flush,
    FunctionCall,
    Parse,
    Query,
    SASLInitialResponse,
    SASLResponse,
    ScramClient,
    ScramVerifier,
    StartupMessage,
    Sync,
    Terminate,
    decode_backend,
)

pytestmark = pytest.mark.timeout(120)

ROWS = 10  # the victim: id 1..10, v = 10 * id, c1 = id, c2 = -id
VICTIM_SUMS = (ROWS, 550, 55, -55)
VICTIM_COLUMNS = ["id", "v", "c1", "c2"]
USERS = 300  # proxy users for the isolated pools: one per attack test


# --- the proxies under attack ------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One proxy as one of its configured users: a pool of server connections of its own."""

    port: int
    user: str
    password: str

    def dsn(self) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/postgres"


class Arena:
    """Proxies started from one config file listing USERS users; each test takes a user no
    other test has used, and with it fresh pools (so fresh server connections)."""

    def __init__(self, start_firewall, session: bool = True, **database: Any) -> None:
        self.passwords = {f"rt{n:03d}": f"rt-{n}-{uuid.uuid4().hex[:12]}" for n in range(USERS)}
        users = "\n".join(
            f'{user} = "{ScramVerifier.from_password(password, iterations=256)}"'
            for user, password in self.passwords.items()
        )
        settings = "\n".join(
            f"{key} = {value!r}".replace("'", '"') for key, value in database.items()
        )
        config = f'[users]\n{users}\n[databases.postgres]\nupstream = "{{upstream}}"\n{settings}\n'
        self.transaction = start_firewall(config=config)
        self.session = (
            start_firewall(config=config + 'pool_mode = "session"\n') if session else None
        )
        self._free = iter(self.passwords.items())

    def targets(self) -> tuple[Target, Target]:
        """A fresh user, on the transaction-pooling proxy and on the session-pooling one."""
        user, password = next(self._free)
        session = self.session or self.transaction
        return (
            Target(self.transaction.port, user, password),
            Target(session.port, user, password),
        )


@pytest.fixture(scope="module")
def arena(start_firewall) -> Arena:
    """Attack targets: pools of 4, idle server connections closed after 2 s."""
    return Arena(start_firewall, pool_size=4, server_idle_timeout=2)


@pytest.fixture(scope="module")
def single_server_arena(start_firewall) -> Arena:
    """Class 6: pools of ONE server connection, so consecutive clients of a user share it
    (what ``--pool-size 1`` does for the upstream's user), and a client finding it taken
    gives up after 3 s rather than hanging the test."""
    return Arena(start_firewall, session=False, pool_size=1, query_wait_timeout=3)


# --- what PostgreSQL shows: the victim and the judge -------------------------------------


def _changed(what: str, was: Any, now: Any) -> str:
    if isinstance(was, list) and isinstance(now, list):
        gone, new = [r for r in was if r not in now], [r for r in now if r not in was]
        return f"{what} changed: {gone} replaced by {new}"
    return f"{what} changed: {was!r} -> {now!r}"


class _Names(dict):
    """Template names for ``str.format_map``, looked up on the scene when first used."""

    def __init__(self, scene: Scene) -> None:
        super().__init__()
        self.scene = scene

    def __missing__(self, key: str) -> str:
        return str(getattr(self.scene, key))


class Scene:
    """One test's victim, the direct superuser connection that judges the attack, and the
    proxies the attack goes through.

    Names the attack templates may use: ``{victim}`` (id int PK, v, c1, c2; ten rows),
    ``{twin}`` (the victim's name with its last digit changed: not a table), ``{uid}``,
    ``{superuser}``, ``{lo}`` (a large object holding 'secret'), ``{pid}`` (the backend of
    a bystanding direct connection), ``{key}`` (an advisory-lock key), ``{outfile}`` (a
    server-side path nothing may write), ``{infile}`` (a server-side file holding one row
    for the victim), ``{victim_u}``/``{twin_u}`` (the names with the last digit as a U&
    escape). Every one of these is checked afterwards if it was used.
    """

    def __init__(self, postgres, target: Target, session_target: Target) -> None:
        self.postgres = postgres
        self.target = target
        self.session_target = session_target
        self.admin = psycopg.connect(postgres[0].dsn(), autocommit=True)
        self.admin.execute("SET lock_timeout = '3s'")
        self.superuser = self.one("SELECT current_user")
        self.uid = uuid.uuid4().hex[:7] + str(random.randint(1, 8))
        self.victim = f"victim_{self.uid}"
        self.twin = f"victim_{self.uid[:-1]}{int(self.uid[-1]) + 1}"
        self.key = random.randint(1_000_000, 2_000_000_000)
        self.outfile = f"/tmp/redteam_{self.uid}.out"
        self.cleanups: list[str] = []
        self.files: list[Path] = [Path(self.outfile)]
        self.admin.execute(
            f"CREATE TABLE {self.victim} (id int PRIMARY KEY, v int NOT NULL, "
            "c1 int NOT NULL, c2 int NOT NULL)"
        )
        self.admin.execute(
            f"INSERT INTO {self.victim} SELECT n, n * 10, n, -n FROM generate_series(1, {ROWS}) n"
        )
        self.victim_oid = self.one("SELECT %s::regclass::oid", [self.victim])
        self.auto_conf = self.postgres[0].pgdata / "postgresql.auto.conf"
        self.auto_conf_text = self.auto_conf.read_text()
        self.baseline = self.server_state()

    # -- template names ---------------------------------------------------------------

    def fmt(self, text: str) -> str:
        return text.format_map(_Names(self))

    @property
    def superuser_password(self) -> str:
        return self.postgres[0].password("superuser")

    @property
    def victim_u(self) -> str:
        return f"{self.victim[:-1]}\\003{self.victim[-1]}"

    @property
    def twin_u(self) -> str:
        return f"{self.twin[:-1]}\\003{self.twin[-1]}"

    @cached_property
    def lo(self) -> int:
        return self.one("SELECT lo_from_bytea(0, 'secret')")

    @cached_property
    def bystander(self) -> psycopg.Connection:
        return psycopg.connect(self.postgres[0].dsn(), autocommit=True)

    @cached_property
    def pid(self) -> int:
        return self.bystander.info.backend_pid

    @cached_property
    def infile(self) -> str:
        path = Path(f"/tmp/redteam_{self.uid}.in")
        path.write_text("99\t990\t99\t-99\n")
        path.chmod(0o644)
        self.files.append(path)
        return str(path)

    def oid(self, signature: str) -> int:
        return self.one("SELECT %s::regprocedure::oid", [signature])

    def one(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        row = self.admin.execute(sql, params).fetchone()
        return row[0] if row else None

    def direct(self, *statements: str) -> None:
        for sql in statements:
            self.admin.execute(self.fmt(sql))

    # -- the verdict --------------------------------------------------------------------

    def server_state(self) -> dict[str, Any]:
        """What no attack may change anywhere on the server."""
        lo = self.__dict__.get("lo", 0)
        return {
            "postgresql.auto.conf": self.auto_conf.read_text(),
            "per-role/database settings": self.admin.execute(
                "SELECT setdatabase, setrole, setconfig FROM pg_db_role_setting ORDER BY 1, 2"
            ).fetchall(),
            "extensions": self.one("SELECT array_agg(extname ORDER BY extname) FROM pg_extension"),
            "other large objects": self.one(
                "SELECT count(*) FROM pg_largeobject_metadata WHERE oid::bigint <> %s", [lo]
            ),
            "functions named set_config": self.one(
                "SELECT count(*) FROM pg_proc WHERE proname = 'set_config'"
            ),
            "operators outside pg_catalog": self.one(
                "SELECT count(*) FROM pg_operator WHERE oprnamespace <> 'pg_catalog'::regnamespace"
            ),
            "standard_conforming_strings (the judge's session)": self.one(
                "SELECT setting FROM pg_settings WHERE name = 'standard_conforming_strings'"
            ),
            "functions named after this test": self.one(
                "SELECT array_agg(proname ORDER BY proname) FROM pg_proc WHERE proname LIKE %s",
                [f"%{self.uid}%"],
            ),
            "roles": self.admin.execute(
                "SELECT rolname::text, rolsuper, rolcanlogin, rolconnlimit, rolvaliduntil::text, "
                "md5(coalesce(rolpassword, '')) AS password FROM pg_authid ORDER BY 1"
            ).fetchall(),
            "database postgres": self.admin.execute(
                "SELECT datallowconn, datconnlimit FROM pg_database WHERE datname = 'postgres'"
            ).fetchone(),
        }

    def damage(self) -> list[str]:
        """Everything the attack did, as PostgreSQL shows it; empty when it did nothing."""
        problems: list[str] = []
        self.settle()
        try:
            self._victim_damage(problems)
            self._other_damage(problems)
            state = self.server_state()
            problems += [
                _changed(what, self.baseline[what], now)
                for what, now in state.items()
                if now != self.baseline[what]
            ]
        except psycopg.Error as exc:
            problems.append(f"the judge could not look: {type(exc).__name__}: {exc}")
        if Path(self.outfile).exists():
            problems.append(f"the server wrote {self.outfile}")
        return problems

    def settle(self, timeout: float = 3.0) -> None:
        """Wait for statements still running on the server: a proxy that closes an
        attacker's session may already have passed on the rest of the attacker's packet."""
        deadline = time.monotonic() + timeout
        busy = (
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        while self.one(busy) and time.monotonic() < deadline:
            time.sleep(0.02)

    def _victim_damage(self, problems: list[str]) -> None:
        row = self.admin.execute(
            "SELECT relname::text, relkind::text FROM pg_class WHERE oid::bigint = %s",
            [self.victim_oid],
        ).fetchone()
        if row is None:
            problems.append("the victim is gone (dropped, or its pg_class row deleted)")
            return
        if row != (self.victim, "r"):
            problems.append(f"the victim's pg_class row is now {row}")
        columns = self.one(
            "SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute "
            "WHERE attrelid::bigint = %s AND attnum > 0 AND NOT attisdropped",
            [self.victim_oid],
        )
        if columns != VICTIM_COLUMNS:
            problems.append(f"the victim's columns are now {columns}")
        for what, sql in [
            ("rules", "SELECT count(*) FROM pg_rewrite WHERE ev_class::bigint = %s"),
            (
                "triggers",
                "SELECT count(*) FROM pg_trigger WHERE tgrelid::bigint = %s AND NOT tgisinternal",
            ),
            ("policies", "SELECT count(*) FROM pg_policy WHERE polrelid::bigint = %s"),
        ]:
            if count := self.one(sql, [self.victim_oid]):
                problems.append(f"the victim has {count} {what}")
        try:
            sums = self.admin.execute(
                f'SELECT count(*), sum(v), sum(c1), sum(c2) FROM public."{row[0]}"'
            ).fetchone()
        except psycopg.Error as exc:
            problems.append(f"the victim cannot be read: {type(exc).__name__}: {exc}")
        else:
            if tuple(sums) != VICTIM_SUMS:
                problems.append(f"the victim's rows changed: {tuple(sums)} != {VICTIM_SUMS}")

    def _other_damage(self, problems: list[str]) -> None:
        if "lo" in self.__dict__:
            content = self.one(
                "SELECT lo_get(oid) FROM pg_largeobject_metadata WHERE oid::bigint = %s", [self.lo]
            )
            if content != b"secret":
                problems.append(f"large object {self.lo} now holds {content!r}")
        if "bystander" in self.__dict__:
            try:
                self.bystander.execute("SELECT 1")
            except psycopg.Error as exc:
                problems.append(f"the bystanding session {self.pid} died: {exc}")
        held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid::bigint = %s"
        if self.one(held, [self.key]):
            problems.append(f"advisory lock {self.key} is still held")

    def close(self) -> None:
        for sql in self.cleanups:
            with contextlib.suppress(psycopg.Error):
                self.admin.execute(self.fmt(sql))
        if self.auto_conf.read_text() != self.auto_conf_text:  # an ALTER SYSTEM got through
            self.auto_conf.write_text(self.auto_conf_text)
            self.admin.execute("SELECT pg_reload_conf()")
        if "bystander" in self.__dict__:
            self.bystander.close()
        for path in self.files:
            path.unlink(missing_ok=True)
        self.admin.close()


@pytest.fixture
def scene(postgres, arena) -> Iterator[Scene]:
    target, session_target = arena.targets()
    made = Scene(postgres, target, session_target)
    yield made
    made.close()


# --- a client over a raw socket ----------------------------------------------------------


def _error_fields(body: bytes) -> dict[str, str]:
    return {chr(part[0]): part[1:].decode("utf-8", "replace") for part in body.split(b"\0") if part}


def _sync_points(data: bytes) -> int:
    """How many ReadyForQuery a run of frontend messages asks for (Query, Sync, FunctionCall)."""
    count = pos = 0
    while pos + 5 <= len(data):
        kind = data[pos : pos + 1]
        (length,) = struct.unpack_from("!I", data, pos + 1)
        count += kind in (b"Q", b"S", b"F")
        pos += 1 + length
    return count


class Wire:
    """A client on a plain socket: logs in with SCRAM (any startup parameters), sends raw
    frames, and keeps what came back: errors, the last value of every named column, the
    results of FunctionCalls."""

    def __init__(self, target: Target, startup: dict[str, str] | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", target.port), timeout=5)
        self.buffer = bytearray()
        self.closed = False
        self.ready = False
        self.errors: list[dict[str, str]] = []
        self.shown: dict[str, bytes | None] = {}
        self.rows: list[list[bytes | None]] = []
        self.returned: list[bytes | None] = []
        params = {"user": target.user, "database": "postgres", **(startup or {})}
        self.send(StartupMessage(params).encode())
        scram = ScramClient(target.user, target.password)
        for kind, body in self._frames(time.monotonic() + 5):
            if kind == b"R":
                message = decode_backend(b"R", body)
                if isinstance(message, AuthenticationSASL):
                    self.send(SASLInitialResponse("SCRAM-SHA-256", scram.first_message()).encode())
                elif isinstance(message, AuthenticationSASLContinue):
                    self.send(SASLResponse(scram.handle_server_first(message.data)).encode())
                elif isinstance(message, AuthenticationSASLFinal):
                    scram.verify_server_final(message.data)
            elif kind == b"E":
                self.errors.append(_error_fields(body))
            elif kind == b"Z":
                self.ready = not self.closed
                return

    def send(self, data: bytes) -> bool:
        if self.closed:
            return False
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True
        return not self.closed

    def exchange(self, data: bytes, timeout: float = 4.0) -> None:
        """Send ``data`` in one write; read until each of its sync points is answered."""
        expected = _sync_points(data)
        if not self.send(data):
            return
        names: list[str] = []
        for kind, body in self._frames(time.monotonic() + timeout):
            with contextlib.suppress(Exception):  # a garbled reply is no reason to stop reading
                if kind == b"T":
                    names = [column.name for column in decode_backend(b"T", body).fields]
                elif kind == b"D":
                    values = decode_backend(b"D", body).values
                    self.rows.append(values)
                    self.shown.update(zip(names, values, strict=False))
                elif kind == b"V":
                    self.returned.append(decode_backend(b"V", body).value)
            if kind == b"E":
                self.errors.append(_error_fields(body))
            elif kind == b"Z":
                expected -= 1
                if expected <= 0:
                    return

    def _frames(self, deadline: float) -> Iterator[tuple[bytes, bytes]]:
        while True:
            if len(self.buffer) >= 5:
                (length,) = struct.unpack_from("!I", self.buffer, 1)
                if len(self.buffer) >= 1 + length:
                    kind, body = bytes(self.buffer[:1]), bytes(self.buffer[5 : 1 + length])
                    del self.buffer[: 1 + length]
                    yield kind, body
                    continue
            remaining = deadline - time.monotonic()
            if self.closed or remaining <= 0:
                return
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(1 << 16)
            except TimeoutError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                return
            self.buffer += chunk

    def close(self) -> None:
        self.send(Terminate().encode())
        self.sock.close()

    def vanish(self) -> None:
        """Close the socket without a Terminate, as a crashed client does."""
        self.sock.close()


# --- building attacks --------------------------------------------------------------------


def _frame_query(sql: str) -> bytes:
    return Query(sql).encode()


def _value(scene: Scene, value: str | bytes | Callable[[Scene], bytes] | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return scene.fmt(value).encode()
    return value(scene)


def fastpath(signature: str, *args: str | bytes | Callable[[Scene], bytes], binary: bool = False):
    """A FunctionCall ('F') of the function with this signature, looked up directly."""

    def build(scene: Scene) -> bytes:
        values = [_value(scene, arg) for arg in args]
        return FunctionCall(scene.oid(signature), [int(binary)], values, 0).encode()

    return build


def extended(
    sql: str,
    *params: str | bytes | Callable[[Scene], bytes],
    types: Sequence[int] = (),
    formats: Sequence[int] = (),
    statement: str = "",
    parse: bool = True,
    sync: bool = True,
):
    """Parse (unless ``parse`` is false: bind an existing statement), Bind, Execute, Sync."""

    def build(scene: Scene) -> bytes:
        name = scene.fmt(statement)
        parts = [Parse(name, scene.fmt(sql), list(types)).encode()] if parse else []
        values = [_value(scene, param) for param in params]
        parts += [Bind("", name, list(formats), values, []).encode(), Execute("", 0).encode()]
        return b"".join(parts + ([Sync().encode()] if sync else []))

    return build


PAYLOAD = object()  # where the hidden statements go in a packet (else at its end)
# Each hides a DROP of the victim that runs only if the server reads the string another way:
# with standard strings off, `'a\'` does not end at its quote; in SJIS the UTF-8 bytes of
# Õ, C3 95, are a one-byte character and the lead byte 95, which swallows the backslash
# (5C); in BIG5, GBK and GB18030 the UTF-8 bytes of 中, E4 B8 AD, are a character and the
# lead byte AD, which swallows it too. Either way the quote after it ends the string.
HIDDEN_DROPS = (
    "SELECT 'a\\' , ' ; DROP TABLE {victim}; --'",
    "SELECT E'Õ\\' ; DROP TABLE {victim}; --'",
    "SELECT E'中\\' ; DROP TABLE {victim}; --'",
)
SHOW_STRING_SETTINGS = ("SHOW standard_conforming_strings", "SHOW client_encoding")


def packet(scene: Scene, steps: Sequence[Any], hidden: bool = True) -> bytes:
    """The steps as frames in one write, with the hidden DROPs at PAYLOAD (or at the end),
    then SHOWs of the two string settings."""
    steps = list(steps)
    if hidden:
        if PAYLOAD not in steps:
            steps.append(PAYLOAD)
        steps += list(SHOW_STRING_SETTINGS)
    parts: list[bytes] = []
    for step in steps:
        if step is PAYLOAD:
            parts += [_frame_query(scene.fmt(sql)) for sql in HIDDEN_DROPS] if hidden else []
        elif isinstance(step, str):
            parts.append(_frame_query(scene.fmt(step)))
        else:
            parts.append(step(scene))
    return b"".join(parts)


@dataclass(frozen=True)
class Attack:
    steps: tuple[Any, ...] = ()
    startup: dict[str, str] | None = None
    setup: tuple[str, ...] = ()  # run directly first
    cleanup: tuple[str, ...] = ()  # run directly afterwards, whatever happened
    check: Callable[[Scene, Any], list[str]] | None = None  # more ways to find damage
    session: bool = False  # through the session-pooling proxy
    sane_strings: bool = True  # the session's string settings must read on/UTF8 afterwards
    extension: str | None = None  # skipped unless the server has it
    unless: str | None = None  # skipped if this query (run directly) returns true


def attack(name: str, *steps: Any, **options: Any):
    for key in ("setup", "cleanup"):
        if isinstance(options.get(key), str):
            options[key] = (options[key],)
    return pytest.param(Attack(steps=steps, **options), id=name)


def _prepare(scene: Scene, case: Attack) -> None:
    if case.extension is not None and not scene.one(
        "SELECT count(*) FROM pg_available_extensions WHERE name = %s", [case.extension]
    ):
        pytest.skip(f"the server has no {case.extension} extension")
    if case.unless is not None and scene.one(scene.fmt(case.unless)):
        pytest.skip(f"already so on this server: {case.unless}")
    scene.cleanups += case.cleanup
    scene.direct(*case.setup)
    scene.baseline = scene.server_state()  # what the setup itself changed is no damage


def run_on_wire(scene: Scene, case: Attack) -> Wire:
    """The attack's steps, and the hidden DROPs after them, in one packet through the proxy."""
    _prepare(scene, case)
    wire = Wire(scene.session_target if case.session else scene.target, case.startup)
    assert wire.ready or case.startup, f"a plain login failed, so nothing was tested: {wire.errors}"
    if wire.ready:
        wire.exchange(packet(scene, case.steps))
    wire.close()
    return wire


def string_settings(wire: Wire) -> list[str]:
    problems = []
    for name, safe in (("standard_conforming_strings", b"on"), ("client_encoding", b"UTF8")):
        if wire.shown.get(name, safe) != safe:
            problems.append(f"the attacker's session reads {name} = {wire.shown[name]!r}")
    return problems


def judge_wire(scene: Scene, case: Attack, wire: Wire) -> list[str]:
    problems = scene.damage()
    if case.sane_strings:
        problems += string_settings(wire)
    if case.check is not None:
        problems += case.check(scene, wire)
    return problems


# --- 0: the hidden statements are real -------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "hidden"),
    [
        pytest.param("SET standard_conforming_strings = off", HIDDEN_DROPS[0], id="strings-off"),
        pytest.param("SET client_encoding = 'SJIS'", HIDDEN_DROPS[1], id="SJIS"),
        pytest.param("SET client_encoding = 'BIG5'", HIDDEN_DROPS[2], id="BIG5"),
        pytest.param("SET client_encoding = 'GBK'", HIDDEN_DROPS[2], id="GBK"),
        pytest.param("SET client_encoding = 'GB18030'", HIDDEN_DROPS[2], id="GB18030"),
    ],
)
def test_0_the_hidden_drops_really_drop_without_the_firewall(postgres, setting, hidden):
    """Straight to PostgreSQL: with the setting, the statement the guard reads as one
    harmless SELECT drops the table. This is what classes 1-3 must never let happen."""
    victim = f"victim_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres[0].dsn(), autocommit=True) as admin:
        admin.execute(f"CREATE TABLE {victim} (id int)")
        with psycopg.connect(postgres[0].dsn(), autocommit=True) as conn:
            conn.execute(setting)
            conn.pgconn.exec_(hidden.format(victim=victim).encode())
        assert admin.execute("SELECT to_regclass(%s)", [victim]).fetchone() == (None,)


# --- 1a: client-only encodings -------------------------------------------------------------

SJIS_ALIASES = ("WIN932", "Shift_JIS", "sjis", "SJIS", "MSKANJI", "windows932", "S-JIS", "ShiftJIS")
OTHER_CLIENT_ONLY = (
    "win936",
    "GBK",
    "windows936",
    "BIG5",
    "win950",
    "UHC",
    "win949",
    "Johab",
    "GB18030",
    "SHIFT_JIS_2004",
)
RESET_ROLE_ENCODING = "ALTER ROLE {superuser} RESET client_encoding"
RESET_DB_ENCODING = "ALTER DATABASE postgres RESET client_encoding"

ENCODINGS = [
    *[
        attack(f"startup-{name}", startup={"client_encoding": name}, sane_strings=False)
        for name in SJIS_ALIASES + OTHER_CLIENT_ONLY
    ],
    attack("startup-key-Client_Encoding", startup={"Client_Encoding": "SJIS"}, sane_strings=False),
    attack("startup-key-CLIENT_ENCODING", startup={"CLIENT_ENCODING": "BIG5"}, sane_strings=False),
    attack(
        "startup-key-twice",
        startup={"client_encoding": "UTF8", "CLIENT_ENCODING": "SJIS"},
        sane_strings=False,
    ),
    attack("startup-options-c", startup={"options": "-c client_encoding=SJIS"}, sane_strings=False),
    attack(
        "startup-options-glued", startup={"options": "-cclient_encoding=BIG5"}, sane_strings=False
    ),
    attack(
        "startup-options-long", startup={"options": "--client_encoding=SJIS"}, sane_strings=False
    ),
    attack(
        "startup-options-twice",
        startup={"options": "-c client_encoding=UTF8 -c Client_Encoding=win932"},
        sane_strings=False,
    ),
    attack("set", "SET client_encoding = 'SJIS'"),
    attack("set-alias-win932", "SET client_encoding TO 'WIN932'"),
    attack("set-alias-Shift_JIS", "SET client_encoding = 'Shift_JIS'"),
    attack("set-unquoted-gbk", "SET client_encoding = gbk"),
    attack("set-session-gb18030", "SET SESSION client_encoding = 'GB18030'"),
    attack("set-quoted-name", "SET \"client_encoding\" = 'BIG5'"),
    attack("set-names-sjis", "SET NAMES 'sjis'"),
    attack("set-names-big5", "SET NAMES 'BIG5'"),
    attack("set-local", "BEGIN", "SET LOCAL client_encoding = 'SJIS'", PAYLOAD, "COMMIT"),
    attack("set_config", "SELECT set_config('client_encoding', 'SJIS', false)"),
    attack("set_config-upper-alias", "SELECT set_config('CLIENT_ENCODING', 'win932', false)"),
    attack(
        "set_config-from-values",
        "SELECT set_config(n, 'BIG5', false) FROM (VALUES ('client_encoding')) s(n)",
    ),
    attack(
        "update-pg_settings",
        "UPDATE pg_settings SET setting = 'SJIS' WHERE name = 'client_encoding'",
    ),
    attack(
        "query_to_xml",
        "SELECT query_to_xml('select set_config(''client_encoding'', ''SJIS'', false)', "
        "true, true, '')",
    ),
    attack(
        "fastpath-set_config",
        fastpath("set_config(text,text,boolean)", "client_encoding", "SJIS", "false"),
    ),
    attack(
        "bound-set_config", extended("SELECT set_config($1, $2, false)", "client_encoding", "SJIS")
    ),
    attack(
        "owners-function-that-sets-it",  # the guard cannot see into it; the server reports after
        "SELECT sneaky_{uid}()",
        setup=(
            "CREATE FUNCTION sneaky_{uid}() RETURNS text IMMUTABLE LANGUAGE sql AS "
            "$$ SELECT set_config('client_encoding', 'SJIS', false) $$"
        ),
    ),
    attack(
        "alter-role-then-reset",
        "ALTER ROLE {superuser} SET client_encoding = 'SJIS'",
        "RESET client_encoding",
        cleanup=RESET_ROLE_ENCODING,
    ),
    attack(
        "alter-database-then-reset-all",
        "ALTER DATABASE postgres SET client_encoding = 'BIG5'",
        "RESET ALL",
        cleanup=RESET_DB_ENCODING,
    ),
]


@pytest.mark.parametrize("case", ENCODINGS)
def test_1a_no_client_only_encoding_hides_a_statement(scene, case):
    """Refused at login, refused when set, or the session closed before the hidden DROP runs:
    whichever, the victim is still there. (After a login that the proxy accepted, the
    session's own encoding is not judged, only what the hidden statements did.)"""
    wire = run_on_wire(scene, case)
    problems = judge_wire(scene, case, wire)
    assert not problems, problems


# --- 1b: standard_conforming_strings ----------------------------------------------------

SCI_OFF = "SELECT set_config('standard_conforming_strings', 'off', false)"
RESET_SCI = (
    "ALTER ROLE {superuser} RESET standard_conforming_strings",
    "ALTER DATABASE postgres RESET standard_conforming_strings",
    "ALTER SYSTEM RESET standard_conforming_strings",
    "SELECT pg_reload_conf()",
)


def _nothing_named(*patterns: str) -> Callable[[Scene, Any], list[str]]:
    """A check: no object in pg_proc, pg_class or pg_operator has one of these names."""

    def check(scene: Scene, _outcome: Any) -> list[str]:
        names = [scene.fmt(pattern) for pattern in patterns]
        found = scene.admin.execute(
            "SELECT proname::text FROM pg_proc WHERE proname = ANY(%(n)s) "
            "UNION ALL SELECT relname::text FROM pg_class WHERE relname = ANY(%(n)s) "
            "UNION ALL SELECT oprname::text FROM pg_operator WHERE oprname = ANY(%(n)s)",
            {"n": names},
        ).fetchall()
        return [f"{name} was created" for (name,) in found]

    return check


STANDARD_STRINGS = [
    attack("set-off", "SET standard_conforming_strings = off"),
    attack("set-0", "SET standard_conforming_strings = 0"),
    attack("set-false", "SET standard_conforming_strings = false"),
    attack("set-prefix-of", "SET standard_conforming_strings = 'of'"),
    attack("set-session-quoted-no", "SET SESSION \"standard_conforming_strings\" TO 'no'"),
    attack("set-local", "BEGIN", "SET LOCAL standard_conforming_strings = off", PAYLOAD, "COMMIT"),
    attack("set_config", SCI_OFF),
    attack("set_config-qualified", SCI_OFF.replace("set_config", "pg_catalog.set_config")),
    attack(
        "set_config-named-arguments",
        "SELECT set_config(new_value => 'off', setting_name => 'standard_conforming_strings', "
        "is_local => false)",
    ),
    attack(
        "set_config-name-from-values",
        "SELECT set_config(n, 'off', false) FROM (VALUES ('standard_conforming_strings')) s(n)",
    ),
    attack(
        "set_config-name-by-expression",
        "SELECT set_config(lower('STANDARD_CONFORMING_STRINGS'), 'off', false)",
    ),
    attack(
        "query_to_xml",
        "SELECT query_to_xml('select set_config(''standard_conforming_strings'', ''off'', false)', "
        "true, true, '')",
    ),
    attack(
        "update-pg_settings",
        "UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'",
    ),
    attack(
        "update-pg_settings-qualified-aliased",
        "UPDATE pg_catalog.pg_settings s SET setting = 'off' "
        "WHERE s.name = 'standard_conforming_strings'",
    ),
    attack(
        "update-a-view-of-pg_settings",
        "CREATE VIEW sv_{uid} AS SELECT * FROM pg_settings",
        "UPDATE sv_{uid} SET setting = 'off' WHERE name = 'standard_conforming_strings'",
        cleanup="DROP VIEW IF EXISTS sv_{uid}",
    ),
    attack(
        "rule-that-calls-set_config",
        "CREATE TABLE rt_{uid} (x int)",
        "CREATE RULE rr_{uid} AS ON INSERT TO rt_{uid} DO ALSO " + SCI_OFF,
        "INSERT INTO rt_{uid} VALUES (1)",
        cleanup="DROP TABLE IF EXISTS rt_{uid}",
    ),
    attack(
        "check-constraint-that-calls-set_config",
        "CREATE TABLE ct_{uid} (x text CHECK (set_config(x, 'off', false) IS NOT NULL))",
        "INSERT INTO ct_{uid} VALUES ('standard_conforming_strings')",
        cleanup="DROP TABLE IF EXISTS ct_{uid}",
    ),
    attack(
        "aggregate-over-set_config",
        "CREATE AGGREGATE agg_{uid}(text, boolean) "
        "(SFUNC = set_config, STYPE = text, INITCOND = 'standard_conforming_strings')",
        "SELECT agg_{uid}('off', false)",
        cleanup="DROP AGGREGATE IF EXISTS agg_{uid}(text, boolean)",
        check=_nothing_named("agg_{uid}"),
    ),
    attack(
        "operator-over-set_config",
        "CREATE OPERATOR public.#~# (FUNCTION = set_config, LEFTARG = text, RIGHTARG = text)",
        "SELECT 'standard_conforming_strings' #~# 'off'",
        cleanup="DROP OPERATOR IF EXISTS public.#~# (text, text)",
    ),
    attack(
        "rename-set_config",
        "ALTER FUNCTION set_config(text, text, boolean) RENAME TO innocent_{uid}",
        "SELECT innocent_{uid}('standard_conforming_strings', 'off', false)",
        cleanup="ALTER FUNCTION pg_catalog.innocent_{uid}(text, text, boolean) RENAME TO set_config",
        check=_nothing_named("innocent_{uid}"),
    ),
    attack(
        "domain-check-that-calls-set_config",
        "CREATE DOMAIN dom_{uid} AS text CHECK (set_config(VALUE, 'off', false) IS NOT NULL)",
        "SELECT 'standard_conforming_strings'::dom_{uid}",
        cleanup="DROP DOMAIN IF EXISTS dom_{uid}",
    ),
    attack(
        "owners-immutable-function-that-sets-it",
        "SELECT sneaky_{uid}()",
        setup=(
            "CREATE FUNCTION sneaky_{uid}() RETURNS text IMMUTABLE LANGUAGE sql AS "
            "$$ SELECT set_config('standard_conforming_strings', 'off', false) $$"
        ),
    ),
    attack(
        "owners-volatile-function-that-sets-it",
        "SELECT sneaky_{uid}()",
        setup=(
            "CREATE FUNCTION sneaky_{uid}() RETURNS text LANGUAGE sql AS "
            "$$ SELECT set_config('standard_conforming_strings', 'off', false) $$"
        ),
    ),
    attack(
        "prepare-execute",
        "PREPARE sc_{uid}(text, text) AS SELECT set_config($1, $2, false)",
        "EXECUTE sc_{uid}('standard_conforming_strings', 'off')",
    ),
    attack("explain-analyze", "EXPLAIN ANALYZE " + SCI_OFF),
    attack(
        "cursor", "BEGIN", "DECLARE c CURSOR FOR " + SCI_OFF, "FETCH ALL FROM c", PAYLOAD, "COMMIT"
    ),
    attack("copy-to-stdout", f"COPY ({SCI_OFF}) TO STDOUT"),
    attack(
        "fastpath-set_config",
        fastpath("set_config(text,text,boolean)", "standard_conforming_strings", "off", "false"),
    ),
    attack(
        "alter-role-then-reset",
        "ALTER ROLE {superuser} SET standard_conforming_strings = off",
        "RESET standard_conforming_strings",
        cleanup=RESET_SCI,
    ),
    attack(
        "alter-database-then-reset-all",
        "ALTER DATABASE postgres SET standard_conforming_strings = off",
        "RESET ALL",
        cleanup=RESET_SCI,
    ),
    attack(
        "alter-system-and-reload",
        "ALTER SYSTEM SET standard_conforming_strings = off",
        "SELECT pg_reload_conf()",
        "SELECT pg_sleep(0.2)",
        cleanup=RESET_SCI,
    ),
    attack(
        "startup-parameter",
        startup={"standard_conforming_strings": "off"},
    ),
    attack("startup-options", startup={"options": "-c standard_conforming_strings=off"}),
    attack(
        # Not lexing but meaning: with transform_null_equals on, `NOT (v = NULL)` (which the
        # guard reads as matching no row) is `NOT (v IS NULL)`, every row.
        "transform_null_equals",
        "SET transform_null_equals = on",
        "DELETE FROM {victim} WHERE NOT (v = NULL)",
    ),
]


@pytest.mark.parametrize("case", STANDARD_STRINGS)
def test_1b_strings_never_turn_nonstandard(scene, case):
    """Whatever reaches set_config (or the setting by another road), followed in the SAME
    packet by statements the server would read differently with strings non-standard: the
    victim survives, nothing got created or renamed, and the session still reads 'on'."""
    wire = run_on_wire(scene, case)
    problems = judge_wire(scene, case, wire)
    assert not problems, problems


# --- 2: verdict-cache poisoning -----------------------------------------------------------

CACHE_POISONING = [
    attack(
        "U&-pg_terminate_backend",
        'SELECT U&"pg_\\0073erminate_backend"({pid})',  # pg_serminate_backend: no such thing
        'SELECT U&"pg_\\0074erminate_backend"({pid})',
    ),
    attack(
        "U&-lo_unlink",
        'SELECT U&"lo_\\0076nlink"({lo})',  # lo_vnlink
        'SELECT U&"lo_\\0075nlink"({lo})',
    ),
    attack(
        "U&-set_config",
        "SELECT U&\"\\0072et_config\"('standard_conforming_strings', 'off', false)",
        "SELECT U&\"\\0073et_config\"('standard_conforming_strings', 'off', false)",
    ),
    attack(
        "U&-setting-name",
        'SET U&"\\0072tandard_conforming_strings" = off',  # rtandard_...: no such setting
        'SET U&"\\0073tandard_conforming_strings" = off',
    ),
    attack(
        "E-octal-setting-name",
        "SELECT set_config(E'\\141tandard_conforming_strings', 'off', false)",
        "SELECT set_config(E'\\163tandard_conforming_strings', 'off', false)",
    ),
    attack(
        "E-octal-on-then-of",
        "SET standard_conforming_strings = E'\\157\\156'",  # 'on'
        "SET standard_conforming_strings = E'\\157\\146'",  # 'of', which PostgreSQL reads as off
    ),
    attack(
        "E-octal-utf8-then-sjis",
        "SET client_encoding = E'\\125\\124\\106\\070'",  # 'UTF8'
        "SET client_encoding = E'\\123\\112\\111\\123'",  # 'SJIS'
    ),
    attack(
        "U&-utf8-then-big5",
        "SET client_encoding = U&'\\0055\\0054\\0046\\0038'",  # 'UTF8'
        "SET client_encoding = U&'\\0042\\0049\\0047\\0035'",  # 'BIG5'
    ),
    attack(
        "constant-false-then-true",
        "DELETE FROM {victim} WHERE 1 = 0",  # nothing, and may be allowed
        "DELETE FROM {victim} WHERE 1 = 1",
    ),
    attack(
        "constant-false-then-true-update",
        "UPDATE {victim} SET v = 0 WHERE 2 < 1",
        "UPDATE {victim} SET v = 0 WHERE 1 < 2",
    ),
    attack(
        "columns-then-the-same-column-twice",
        "DELETE FROM {victim} WHERE c1 = c2",  # no row: c2 = -c1
        "DELETE FROM {victim} WHERE c1 = c1",
    ),
    attack(
        "columns-then-the-same-column-twice-update",
        "UPDATE {victim} SET v = 0 WHERE c1 = c2",
        "UPDATE {victim} SET v = 0 WHERE c2 = c2",
    ),
    attack(
        "dollar-tags",
        "SELECT $a1$ x $a2$; DROP TABLE {victim}; SELECT $a2$ y $a1$",
        "SELECT $a1$ x $a1$; DROP TABLE {victim}; SELECT $a1$ y $a1$",
    ),
    attack(
        "own-temp-twin-then-victim-in-a-transaction",
        "BEGIN",
        "CREATE TEMP TABLE {twin} (a int) ON COMMIT DROP",
        "DROP TABLE {twin}",
        "DROP TABLE {victim}",
        "COMMIT",
    ),
    attack(
        "own-temp-twin-then-victim-U&",
        "BEGIN",
        "CREATE TEMP TABLE {twin} (a int) ON COMMIT DROP",
        'DROP TABLE U&"{twin_u}"',
        'DROP TABLE U&"{victim_u}"',
        "COMMIT",
    ),
    attack(
        "own-temp-twin-then-victim-session",
        "CREATE TEMP TABLE {twin} (a int)",
        "DROP TABLE {twin}",
        "DROP TABLE {victim}",
        session=True,
    ),
    attack(
        "own-temp-twin-then-victim-truncate",
        "CREATE TEMP TABLE {twin} (a int)",
        "TRUNCATE {twin}",
        "TRUNCATE {victim}",
        session=True,
    ),
    attack(
        "own-temp-twin-then-victim-alter",
        "CREATE TEMP TABLE {twin} (id int, v int)",
        "ALTER TABLE {twin} DROP COLUMN v",
        "ALTER TABLE {victim} DROP COLUMN v",
        session=True,
    ),
    attack(
        "temp-shadow-dropped-twice",  # the same text: first the temp table, then the victim
        "CREATE TEMP TABLE {victim} (a int)",
        "DROP TABLE {victim}",
        "DROP TABLE {victim}",
        session=True,
    ),
    attack(
        "temp-shadow-dropped-twice-in-a-transaction",
        "BEGIN",
        "CREATE TEMP TABLE {victim} (a int) ON COMMIT DROP",
        "DROP TABLE {victim}",
        "DROP TABLE {victim}",
        "COMMIT",
    ),
    attack(
        "temp-shadow-truncated-twice",
        "CREATE TEMP TABLE {victim} (a int)",
        "TRUNCATE {victim}",
        "DROP TABLE pg_temp.{victim}",
        "TRUNCATE {victim}",
        session=True,
    ),
    attack(
        "temp-shadow-then-qualified",
        "CREATE TEMP TABLE {victim} (a int)",
        "DROP TABLE public.{victim}",
        session=True,
    ),
    attack(
        "pg_temp-after-public-then-drop",  # the temp table exists, but the name finds public
        "SET search_path = public, pg_temp",
        "CREATE TEMP TABLE {victim} (a int)",
        "DROP TABLE {victim}",
        session=True,
    ),
    attack(
        "pg_temp-after-public-then-truncate",
        "SET search_path = public, pg_temp",
        "CREATE TEMP TABLE {victim} (a int)",
        "TRUNCATE {victim}",
        session=True,
    ),
    attack(
        "pg_temp-after-public-then-alter",
        "SELECT set_config('search_path', 'public, pg_temp', false)",
        "CREATE TEMP TABLE {victim} (id int, v int)",
        "ALTER TABLE {victim} DROP COLUMN v",
        session=True,
    ),
    attack(
        "own-temp-and-victim-in-one-drop",
        "CREATE TEMP TABLE {twin} (a int)",
        "DROP TABLE {twin}, {victim}",
        session=True,
    ),
]


@pytest.mark.parametrize("case", CACHE_POISONING)
def test_2_a_cached_verdict_never_covers_a_different_statement(scene, case):
    """A harmless statement primes the verdict cache; the dangerous one after it differs
    only in digits (inside escapes, identifiers, constants) or names a table that is no
    longer the session's own. Sent in one packet: the victim survives."""
    wire = run_on_wire(scene, case)
    problems = judge_wire(scene, case, wire)
    assert not problems, problems


# --- 3: messages other than Query and Parse ------------------------------------------------


def _no_function_result(scene: Scene, wire: Wire) -> list[str]:
    got = [value for value in wire.returned if value is not None]
    return [f"the fast-path call returned {got[0][:40]!r}"] if got else []


def _pack(fmt: str, name: str) -> Callable[[Scene], bytes]:
    return lambda scene: struct.pack(fmt, getattr(scene, name))


BOOL_OID, INT4_OID, TEXT_OID = 16, 23, 25

OTHER_MESSAGES = [
    attack("fastpath-lo_unlink", fastpath("lo_unlink(oid)", "{lo}")),
    attack("fastpath-lo_unlink-binary", fastpath("lo_unlink(oid)", _pack("!I", "lo"), binary=True)),
    attack(
        "fastpath-pg_terminate_backend",
        fastpath("pg_terminate_backend(integer,bigint)", "{pid}", "0"),
    ),
    attack(
        "fastpath-pg_terminate_backend-binary",
        fastpath(
            "pg_terminate_backend(integer,bigint)",
            _pack("!i", "pid"),
            struct.pack("!q", 0),
            binary=True,
        ),
    ),
    attack(
        "fastpath-set_config",
        fastpath("set_config(text,text,boolean)", "standard_conforming_strings", "off", "false"),
    ),
    attack(
        "fastpath-set_config-binary",
        fastpath(
            "set_config(text,text,boolean)",
            b"standard_conforming_strings",
            b"off",
            b"\0",
            binary=True,
        ),
    ),
    attack("fastpath-lo_import", fastpath("lo_import(text)", "/etc/passwd")),
    attack("fastpath-lo_export", fastpath("lo_export(oid,text)", "{lo}", "{outfile}")),
    attack(
        "fastpath-pg_read_file",
        fastpath("pg_read_file(text)", "/etc/passwd"),
        check=_no_function_result,
    ),
    attack("bound-where-text-true", extended("DELETE FROM {victim} WHERE $1", "true")),
    attack(
        "bound-where-binary-true",
        extended("DELETE FROM {victim} WHERE $1", b"\x01", types=[BOOL_OID], formats=[1]),
    ),
    attack("bound-where-cast", extended("DELETE FROM {victim} WHERE $1::boolean", "yes")),
    attack("bound-where-text-padded", extended("DELETE FROM {victim} WHERE $1", "  tRuE ")),
    attack("bound-where-text-1", extended("DELETE FROM {victim} WHERE $1", "1")),
    attack(
        "bound-where-binary-ff",  # boolrecv reads any byte but 0 as true
        extended("DELETE FROM {victim} WHERE $1", b"\xff", types=[BOOL_OID], formats=[1]),
    ),
    attack(
        "bound-params-equal",
        extended("DELETE FROM {victim} WHERE $1 = $2", "1", "1", types=[INT4_OID, INT4_OID]),
    ),
    attack(
        "bound-null-in-an-optional-filter",  # id = coalesce(NULL, id): every row
        extended("DELETE FROM {victim} WHERE id = coalesce($1, id)", None, types=[INT4_OID]),
    ),
    attack(
        "bound-null-or",
        extended("DELETE FROM {victim} WHERE $1::int IS NULL OR id = $1", None, types=[INT4_OID]),
    ),
    attack("bound-where-or", extended("DELETE FROM {victim} WHERE id = $1 OR $2", "0", "t")),
    attack("bound-update-where", extended("UPDATE {victim} SET v = 0 WHERE $1", "true")),
    attack(
        "bound-later-to-a-named-statement",
        extended("DELETE FROM {victim} WHERE $1", "false", statement="wipe_{uid}"),
        extended("", "true", statement="wipe_{uid}", parse=False),
    ),
    attack(
        "sql-prepare-then-execute",
        "PREPARE wipe_{uid}(boolean) AS DELETE FROM {victim} WHERE $1",
        "EXECUTE wipe_{uid}(true)",
    ),
    attack(
        "sql-prepare-then-bind",
        "PREPARE wipe_{uid}(boolean) AS DELETE FROM {victim} WHERE $1",
        extended("", "true", statement="wipe_{uid}", parse=False),
    ),
    attack(
        "bound-set_config-standard-strings",
        extended("SELECT set_config($1, $2, false)", "standard_conforming_strings", "off"),
    ),
    attack(
        "bound-set_config-value",
        extended("SELECT set_config('standard_conforming_strings', $1, false)", "off"),
    ),
    attack(
        "bound-set_config-typed",
        extended(
            "SELECT set_config($1, $2, false)",
            "client_encoding",
            "SJIS",
            types=[TEXT_OID, TEXT_OID],
        ),
    ),
    attack(
        "sql-prepare-set_config-then-execute",
        "PREPARE sc_{uid}(text, text) AS SELECT set_config($1, $2, false)",
        "EXECUTE sc_{uid}('standard_conforming_strings', 'off')",
    ),
]


@pytest.mark.parametrize("case", OTHER_MESSAGES)
def test_3_no_message_runs_what_the_guard_did_not_see(scene, case):
    """FunctionCall runs a function by OID with no SQL text; a bound parameter decides a
    WHERE clause or a setting after Parse was judged. The victim, the large object and the
    bystanding session survive, and the attacker's session still reads strings as standard
    (or was closed)."""
    wire = run_on_wire(scene, case)
    problems = judge_wire(scene, case, wire)
    assert not problems, problems


# --- 4: destruction without the listed statements ---------------------------------------


def run_sql(scene: Scene, steps: Sequence[str]) -> tuple[psycopg.Connection | None, list[Any]]:
    """Each statement on one autocommit psycopg connection through the proxy; errors are
    kept as outcomes and the connection is left open (a held lock must still be held when
    the judge looks)."""
    try:
        conn = psycopg.connect(scene.target.dsn(), autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        return None, [exc]
    outcomes: list[Any] = []
    for step in steps:
        try:
            cursor = conn.execute(scene.fmt(step))
            outcomes.append(cursor.fetchall() if cursor.description else cursor.rowcount)
        except psycopg.Error as exc:
            outcomes.append(exc)
    return conn, outcomes


def _refused(scene: Scene, outcomes: list[Any]) -> list[str]:
    return [
        f"answered with {outcome!r:.80}"
        for outcome in outcomes
        if not isinstance(outcome, Exception)
    ]


def _loot_empty(scene: Scene, _outcomes: Any) -> list[str]:
    count = scene.one(f"SELECT count(*) FROM loot_{scene.uid}")
    return [f"the server read a file into loot_{scene.uid}: {count} rows"] if count else []


def _still_a_table(scene: Scene, _outcomes: Any) -> list[str]:
    kind = scene.one(
        "SELECT relkind::text FROM pg_class WHERE oid = to_regclass(%s)", [f"{scene.victim}_e"]
    )
    return [] if kind == "r" else [f"{scene.victim}_e is now relkind {kind!r}"]


def _extension_absent(name: str) -> Callable[[Scene, Any], list[str]]:
    def check(scene: Scene, _outcomes: Any) -> list[str]:
        found = scene.one("SELECT count(*) FROM pg_extension WHERE extname = %s", [name])
        return [f"extension {name} was created"] if found else []

    return check


def _unqualified_reads_the_victim(scene: Scene, _outcomes: Any) -> list[str]:
    """A new session's unqualified name must still find the victim."""
    with psycopg.connect(scene.postgres[0].dsn(), autocommit=True) as fresh:
        count = fresh.execute(scene.fmt("SELECT count(*) FROM {victim}")).fetchone()[0]
    return [] if count == ROWS else [f"an unqualified {scene.victim} now reads {count} rows"]


LOOT = "CREATE TABLE loot_{uid} (line text)"
EMPTY_TWIN = "CREATE TABLE {victim}_e (id int, v int)"

DESTRUCTION = [
    attack("delete-where-id-equals-id", "DELETE FROM {victim} WHERE id = id"),
    attack("delete-where-is-not-null", "DELETE FROM {victim} WHERE id IS NOT NULL"),
    attack("delete-where-or-true", "DELETE FROM {victim} WHERE v = v OR true"),
    attack("delete-where-key-or-tautology", "DELETE FROM {victim} WHERE id = 1 OR 1 = 1"),
    attack("delete-where-not-distinct", "DELETE FROM {victim} WHERE id IS NOT DISTINCT FROM id"),
    attack("delete-where-whole-row", "DELETE FROM {victim} WHERE {victim} IS NOT NULL"),
    attack("delete-where-coalesce", "DELETE FROM {victim} WHERE coalesce(v, 0) = coalesce(v, 0)"),
    attack("delete-using-a-constant", "DELETE FROM {victim} USING (SELECT 1 AS a) x WHERE x.a = 1"),
    attack(
        "delete-where-exists-with-its-own-columns",
        "DELETE FROM {victim} WHERE EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = c.oid)",
    ),
    attack("delete-where-in-itself", "DELETE FROM {victim} WHERE id IN (SELECT id FROM {victim})"),
    attack("delete-where-id-equals-id-plus-zero", "DELETE FROM {victim} WHERE id = id + 0"),
    attack("delete-where-not-different", "DELETE FROM {victim} WHERE NOT (id <> id)"),
    attack("delete-where-cast-equals", "DELETE FROM {victim} WHERE id::bigint = id"),
    attack("delete-where-row-equals-row", "DELETE FROM {victim} WHERE (id, v) = (id, v)"),
    attack("delete-where-in-itself-list", "DELETE FROM {victim} WHERE v IN (v)"),
    attack("delete-where-scalar-subquery", "DELETE FROM {victim} WHERE id = (SELECT id)"),
    attack(
        "delete-where-correlated-tautology",
        "DELETE FROM {victim} WHERE EXISTS (SELECT 1 WHERE {victim}.id = {victim}.id)",
    ),
    attack("delete-where-ctid", "DELETE FROM {victim} WHERE ctid = ctid"),
    attack("delete-using-itself", "DELETE FROM {victim} t USING {victim} s WHERE t.id = s.id"),
    attack("explain-analyze-delete", "EXPLAIN ANALYZE DELETE FROM {victim} WHERE id = id"),
    attack(
        "delete-in-a-cte",
        "WITH d AS (DELETE FROM {victim} WHERE id = id RETURNING *) SELECT count(*) FROM d",
    ),
    attack("update-where-id-equals-id", "UPDATE {victim} SET v = 0 WHERE id = id"),
    attack(
        "update-from-a-constant",
        "UPDATE {victim} SET v = 0 FROM (SELECT 1 AS a) x WHERE x.a = 1",
    ),
    attack(
        "update-in-a-cte",
        "WITH u AS (UPDATE {victim} SET v = 0 WHERE v IS NOT NULL RETURNING 1) "
        "SELECT count(*) FROM u",
    ),
    attack(
        "merge-on-a-tautology",
        "MERGE INTO {victim} t USING (SELECT 1 AS a) s ON t.id = t.id WHEN MATCHED THEN DELETE",
    ),
    attack(
        "merge-on-the-source-alone",
        "MERGE INTO {victim} t USING (SELECT 1 AS a) s ON s.a = 1 "
        "WHEN MATCHED THEN UPDATE SET v = 0",
    ),
    attack(
        "merge-with-itself",
        "MERGE INTO {victim} t USING {victim} s ON t.id = s.id WHEN MATCHED THEN DELETE",
    ),
    attack(
        "upsert-every-row",
        "INSERT INTO {victim} (id, v, c1, c2) SELECT id, 0, c1, c2 FROM {victim} "
        "ON CONFLICT (id) DO UPDATE SET v = 0",
    ),
    attack(
        "upsert-every-row-excluded",
        "INSERT INTO {victim} SELECT * FROM {victim} ON CONFLICT (id) DO UPDATE SET v = excluded.v * 0",
    ),
    attack(
        "upsert-in-a-cte",
        "WITH m AS (INSERT INTO {victim} SELECT * FROM {victim} ON CONFLICT (id) "
        "DO UPDATE SET v = 0 RETURNING 1) SELECT count(*) FROM m",
    ),
    attack("alter-type-rename-attribute", "ALTER TYPE {victim} RENAME ATTRIBUTE v TO w"),
    # Found by a second pass after the fix: each had its effect before it was closed.
    attack("every-row-by-an-expression", "UPDATE {victim} SET v = 0 WHERE id * 0 = 0"),
    attack("every-row-by-nullif", "DELETE FROM {victim} WHERE nullif(id, id) IS NULL"),
    attack(
        "subquery-selecting-the-outer-row",
        "DELETE FROM {victim} o WHERE id IN (SELECT o.id FROM {victim} WHERE id = 1)",
    ),
    attack("typed-constants-compared", "DELETE FROM {victim} WHERE '1'::int = '01'::int"),
    attack(
        "alter-index-after-renaming-the-index-away",
        "BEGIN; CREATE TEMP TABLE tt_{uid} (a int) ON COMMIT DROP; "
        "CREATE INDEX {victim} ON tt_{uid} (a); ALTER INDEX {victim} RENAME TO moved_{uid}; "
        "ALTER INDEX {victim} RENAME TO gone_{uid}; COMMIT",
    ),
    attack("alter-index-renames-a-table", "ALTER INDEX {victim} RENAME TO gone_{uid}"),
    attack(
        "alter-index-renames-a-table-qualified",
        'ALTER INDEX IF EXISTS public."{victim}" RENAME TO gone_{uid}',
    ),
    attack("alter-view-renames-a-table", "ALTER VIEW {victim} RENAME TO gone_{uid}"),
    attack(
        "catalog-rename-table",
        "UPDATE pg_class SET relname = 'gone_{uid}' WHERE relname = '{victim}'",
    ),
    attack(
        "catalog-rename-column",
        "UPDATE pg_catalog.pg_attribute SET attname = 'w' "
        "WHERE attrelid = '{victim}'::regclass AND attname = 'v'",
    ),
    attack("catalog-delete-table", "DELETE FROM pg_class WHERE oid = '{victim}'::regclass"),
    attack("catalog-delete-large-object", "DELETE FROM pg_largeobject WHERE loid = {lo}"),
    attack("lo_put", "SELECT lo_put({lo}, 0, '\\x00000000')"),
    attack("lo_truncate", "SELECT lo_truncate(lo_open({lo}, 131072), 0)"),
    attack("copy-table-to-a-file", "COPY {victim} TO '{outfile}'"),
    attack("copy-query-to-a-file", "COPY (SELECT * FROM {victim}) TO '{outfile}'"),
    attack("copy-a-file-into-the-victim", "COPY {victim} FROM '{infile}'"),
    attack(
        "copy-etc-passwd-in", "COPY loot_{uid} FROM '/etc/passwd'", setup=LOOT, check=_loot_empty
    ),
    attack("lo_import", "SELECT lo_import('/etc/passwd')"),
    attack("lo_import-with-oid", "SELECT lo_import('/etc/passwd', {key})"),
    attack("lo_export", "SELECT lo_export({lo}, '{outfile}')"),
    attack("pg_read_file", "SELECT pg_read_file('/etc/passwd')", check=_refused),
    attack("pg_read_binary_file", "SELECT pg_read_binary_file('/etc/passwd')", check=_refused),
    attack("pg_read_file-data-dir", "SELECT pg_read_file('postgresql.auto.conf')", check=_refused),
    attack(
        "read-through-lo_import",
        "SELECT lo_import('/etc/passwd', {key})",
        "SELECT convert_from(lo_get({key}), 'UTF8')",
        check=_refused,
    ),
    *[
        attack(
            f"create-extension-{name}",
            f"CREATE EXTENSION {name}",
            extension=name,
            check=_extension_absent(name),
            cleanup=f"DROP EXTENSION IF EXISTS {name}",
        )
        for name in ("file_fdw", "dblink", "adminpack")
    ],
    attack(
        "rule-turns-a-table-into-a-view",
        'CREATE RULE "_RETURN" AS ON SELECT TO {victim}_e DO INSTEAD SELECT 1 AS id, 2 AS v',
        setup=EMPTY_TWIN,
        check=_still_a_table,
    ),
    attack(
        "rule-instead-nothing", "CREATE RULE r_{uid} AS ON INSERT TO {victim} DO INSTEAD NOTHING"
    ),
    attack("rule-on-update", "CREATE RULE r_{uid} AS ON UPDATE TO {victim} DO INSTEAD NOTHING"),
    attack(
        "trigger-with-a-builtin-function",
        "CREATE TRIGGER t_{uid} BEFORE UPDATE ON {victim} FOR EACH ROW "
        "EXECUTE FUNCTION suppress_redundant_updates_trigger()",
    ),
    attack(
        "trigger-that-refuses-deletes",
        "CREATE TRIGGER t_{uid} BEFORE DELETE ON {victim} FOR EACH ROW "
        "EXECUTE FUNCTION suppress_redundant_updates_trigger()",
    ),
    attack(
        "alter-system", "ALTER SYSTEM SET work_mem = '64kB'", cleanup="ALTER SYSTEM RESET work_mem"
    ),
    attack(
        "alter-system-reset-all",
        "ALTER SYSTEM RESET ALL",
        setup="ALTER SYSTEM SET log_min_messages = 'warning'",
        cleanup="ALTER SYSTEM RESET log_min_messages",
    ),
    attack(
        "query_to_xml-delete",
        "SELECT query_to_xml('delete from {victim} where id = id returning 1', true, true, '')",
    ),
    attack(
        "operator-over-pg_terminate_backend",
        "CREATE OPERATOR public.### (FUNCTION = pg_terminate_backend, LEFTARG = integer, "
        "RIGHTARG = bigint)",
        "SELECT {pid} ### 0::bigint",
        cleanup="DROP OPERATOR IF EXISTS public.### (integer, bigint)",
    ),
    attack(
        "operator-over-lo_unlink",
        "CREATE OPERATOR public.%%% (FUNCTION = lo_unlink, RIGHTARG = oid)",
        "SELECT %%% {lo}::oid",
        cleanup="DROP OPERATOR IF EXISTS public.%%% (none, oid)",
    ),
    attack(
        "create-function",
        "CREATE FUNCTION f_{uid}() RETURNS void LANGUAGE sql AS 'DELETE FROM {victim}'",
        "SELECT f_{uid}()",
        cleanup="DROP FUNCTION IF EXISTS f_{uid}()",
    ),
    attack(
        "create-procedure",
        "CREATE PROCEDURE p_{uid}() LANGUAGE sql AS $$DELETE FROM {victim}$$",
        "CALL p_{uid}()",
        cleanup="DROP PROCEDURE IF EXISTS p_{uid}()",
    ),
    attack("do-block", "DO $$ BEGIN DELETE FROM {victim}; END $$"),
    attack(
        "drop-owned",
        "DROP OWNED BY rvo_{uid}",
        setup=("CREATE ROLE rvo_{uid}", "ALTER TABLE {victim} OWNER TO rvo_{uid}"),
        cleanup=("DROP OWNED BY rvo_{uid}", "DROP ROLE IF EXISTS rvo_{uid}"),
    ),
    attack(
        "inherit-into-the-victim",  # the victim's own rows untouched, its reads changed
        "CREATE TABLE kid_{uid} () INHERITS ({victim})",
        "INSERT INTO kid_{uid} VALUES (11, 110, 11, -11)",
        cleanup="DROP TABLE IF EXISTS kid_{uid}",
    ),
    attack(
        "search_path-hijack-through-the-user-schema",  # "$user" comes before public
        'CREATE SCHEMA "{superuser}"',
        'CREATE TABLE "{superuser}".{victim} (id int, v int, c1 int, c2 int)',
        unless="SELECT to_regnamespace('{superuser}') IS NOT NULL",
        check=_unqualified_reads_the_victim,
        cleanup='DROP SCHEMA IF EXISTS "{superuser}" CASCADE',
    ),
    attack(
        "alter-role-password",
        "ALTER ROLE {superuser} PASSWORD 'owned'",
        cleanup="ALTER ROLE {superuser} PASSWORD '{superuser_password}'",
    ),
    attack(
        "alter-role-valid-until",
        "ALTER ROLE {superuser} VALID UNTIL '2000-01-01'",
        cleanup="ALTER ROLE {superuser} VALID UNTIL 'infinity'",
    ),
    attack(
        "alter-role-connection-limit",
        "ALTER ROLE {superuser} CONNECTION LIMIT 0",
        cleanup="ALTER ROLE {superuser} CONNECTION LIMIT -1",
    ),
    attack(
        "create-superuser-role",
        "CREATE ROLE evil_{uid} SUPERUSER LOGIN PASSWORD 'x'",
        cleanup="DROP ROLE IF EXISTS evil_{uid}",
    ),
    attack(
        "alter-database-connection-limit",  # locks out every role but superusers
        "ALTER DATABASE postgres CONNECTION LIMIT 0",
        cleanup="ALTER DATABASE postgres CONNECTION LIMIT -1",
    ),
    attack("lock-in-a-transaction", "BEGIN", "LOCK TABLE {victim} IN ACCESS EXCLUSIVE MODE"),
    attack("lock-default-mode", "BEGIN", "LOCK {victim}"),
]


@pytest.mark.parametrize("case", DESTRUCTION)
def test_4_nothing_destroys_without_the_listed_statements(scene, case):
    """Every-row writes whose WHERE mentions a column but holds for every row, upserts,
    catalog writes, server-side files, extensions, rules, triggers, ALTER SYSTEM, code by
    other names, locks: judged directly while the attacker is still connected (a lock must
    not be held), then the attacker leaves."""
    _prepare(scene, case)
    conn, outcomes = run_sql(scene, case.steps)
    assert conn is not None, f"the login failed, so nothing was tested: {outcomes}"
    try:
        problems = scene.damage()
        if case.check is not None:
            problems += case.check(scene, outcomes)
    finally:
        if conn is not None:
            conn.close()
    assert not problems, (problems, outcomes)


# --- 5: denial of service -------------------------------------------------------------

TERMS = 100_000
HEAVY = [
    pytest.param("SELECT 1 WHERE " + " AND ".join(["1=1"] * TERMS), id="select-and-chain"),
    pytest.param(
        "DELETE FROM {victim} WHERE id = 0 AND " + " AND ".join(["1=1"] * TERMS),
        id="delete-and-chain",
    ),
    pytest.param(
        "UPDATE {victim} SET v = v WHERE id = 0 AND (" + " OR ".join(["1=1"] * TERMS) + ")",
        id="update-or-chain",
    ),
]


@pytest.mark.parametrize("heavy", HEAVY)
def test_5_a_slow_statement_never_delays_other_clients(scene, heavy):
    """One client sends an ~800 KB statement of 100,000 terms while another keeps up simple
    round trips: none of the latter may wait behind the former's check (a generous 1.5 s on
    this noisy 2-core machine; before the fix they waited over 1 s), and
    the big one is answered (allowed, or refused with 54000) within 60 s."""
    sql = scene.fmt(heavy)
    other = psycopg.connect(scene.target.dsn(), autocommit=True)
    heavy_client = psycopg.connect(scene.target.dsn(), autocommit=True)
    other.execute("SELECT 1")
    heavy_client.execute("SELECT 1")
    outcome: dict[str, Any] = {}

    def send_heavy() -> None:
        started = time.monotonic()
        try:
            heavy_client.execute(sql)
            outcome["answer"] = "allowed"
        except psycopg.Error as exc:
            outcome["answer"] = exc
        outcome["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=send_heavy, daemon=True)
    try:
        thread.start()
        time.sleep(0.05)
        slowest, trips, deadline = 0.0, 0, time.monotonic() + 60
        while (trips < 200 or thread.is_alive()) and time.monotonic() < deadline:
            started = time.monotonic()
            other.execute("SELECT 1")
            slowest = max(slowest, time.monotonic() - started)
            trips += 1
        thread.join(max(0.0, deadline - time.monotonic()))
    finally:
        other.close()
    assert not thread.is_alive(), "the big statement got no answer within 60 s"
    heavy_client.close()
    answer = outcome["answer"]
    assert answer == "allowed" or answer.sqlstate == "54000", answer
    assert slowest < 1.5, f"a SELECT 1 waited {slowest:.2f} s behind the big statement's check"
    assert not scene.damage()


# --- 6: one client's state reaching the next ----------------------------------------------

SHOWN_SETTINGS = (
    "search_path", "session_replication_role", "default_transaction_read_only",
    "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout",
    "default_transaction_isolation", "role", "session_authorization",
    "standard_conforming_strings", "client_encoding", "transform_null_equals", "row_security",
    "application_name", "DateStyle", "TimeZone",
)  # fmt: skip
LOOKS = [
    ("users", "SELECT current_user || ' / ' || session_user"),
    ("lastval", "SELECT lastval()"),  # an error in a session that never called nextval
    ("auto_explain", "SHOW auto_explain.log_min_duration"),  # an error until it is LOADed
    *[(name, f"SHOW {name}") for name in SHOWN_SETTINGS],
    ("victim rows", "SELECT count(*) FROM {victim}"),
    ("advisory locks", "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"),
    ("listening", "SELECT count(*) FROM pg_listening_channels()"),
    ("SQL prepared statements", "SELECT count(*) FROM pg_prepared_statements WHERE from_sql"),
    ("cursors", "SELECT count(*) FROM pg_cursors"),
    ("temp relations", "SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()"),
    ("in a transaction", "SELECT now() <> statement_timestamp() OR txid_current_if_assigned() IS NOT NULL"),
]  # fmt: skip


def what_a_new_client_sees(scene: Scene, target: Target) -> dict[str, Any]:
    looks: dict[str, Any] = {}
    try:
        with psycopg.connect(target.dsn(), autocommit=True, connect_timeout=5) as conn:
            for what, sql in LOOKS:
                try:
                    looks[what] = conn.execute(scene.fmt(sql)).fetchone()[0]
                except psycopg.Error as exc:
                    looks[what] = f"error {exc.sqlstate}: {exc}"
                    if conn.closed:
                        break
            looks["transaction status"] = conn.info.transaction_status.name
    except psycopg.Error as exc:
        looks["connection"] = f"error: {exc}"
    return looks


@dataclass(frozen=True)
class Leak:
    steps: tuple[Any, ...] = ()  # client A's statements (or callables given its connection)
    wire: tuple[Any, ...] = ()  # or: A's raw messages, after which A vanishes
    options: str | None = None  # A's startup options
    setup: tuple[str, ...] = ()
    cleanup: tuple[str, ...] = ()
    prepared: bool = False  # a client with a prepared statement must keep it working


def leak(name: str, *steps: Any, **options: Any):
    for key in ("setup", "cleanup"):
        if isinstance(options.get(key), str):
            options[key] = (options[key],)
    return pytest.param(Leak(steps=steps, **options), id=name)


def _deallocate_each(conn: psycopg.Connection) -> None:
    for (name,) in conn.execute("SELECT name FROM pg_prepared_statements").fetchall():
        with contextlib.suppress(psycopg.Error):
            conn.execute(f'DEALLOCATE "{name}"')


ROLE = {"setup": "CREATE ROLE rvrole_{uid} NOLOGIN", "cleanup": "DROP ROLE IF EXISTS rvrole_{uid}"}
SHADOW = {
    "setup": ("CREATE SCHEMA rvs_{uid}", "CREATE TABLE rvs_{uid}.{victim} (id int)"),
    "cleanup": "DROP SCHEMA IF EXISTS rvs_{uid} CASCADE",
}
INSERT_999 = "INSERT INTO {victim} VALUES (999, 0, 0, 0)"

LEAKS = [
    leak("set-role", "SET ROLE rvrole_{uid}", **ROLE),
    leak("set-role-by-set_config", "SELECT set_config('role', 'rvrole_{uid}', false)", **ROLE),
    leak("set-session-authorization", "SET SESSION AUTHORIZATION rvrole_{uid}", **ROLE),
    leak("search_path", "SET search_path = rvs_{uid}, public", **SHADOW),
    leak(
        "search_path-by-set_config",
        "SELECT set_config('search_path', 'rvs_{uid}, public', false)",
        **SHADOW,
    ),
    leak(
        "search_path-by-startup-options",
        "SELECT 1",
        options="-c search_path=rvs_{uid},public",
        **SHADOW,
    ),
    leak("session_replication_role", "SET session_replication_role = replica"),
    leak("default_transaction_read_only", "SET default_transaction_read_only = on"),
    leak("statement_timeout", "SET statement_timeout = 1"),
    leak(
        "default-isolation",
        "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE",
    ),
    leak("application_name", "SET application_name = 'evil'"),
    leak("temp-table-shadowing-a-real-one", "CREATE TEMP TABLE {victim} (id int)"),
    leak(
        "temp-view-shadowing-a-real-table",
        "CREATE TEMP VIEW {victim} AS SELECT 1 AS id WHERE false",
    ),
    leak("advisory-lock", "SELECT pg_advisory_lock({key})"),
    leak("listen", "LISTEN rvchan_{uid}"),
    leak(
        "sequence-position",
        "SELECT nextval('rvseq_{uid}')",
        setup="CREATE SEQUENCE rvseq_{uid}",
        cleanup="DROP SEQUENCE IF EXISTS rvseq_{uid}",
    ),
    leak("load-a-library", "LOAD 'auto_explain'"),
    leak("sql-prepare", "PREPARE rvps_{uid} AS SELECT 1"),
    leak("cursor-with-hold", "DECLARE rvcur_{uid} CURSOR WITH HOLD FOR SELECT 1"),
    leak("deallocate-all", "DEALLOCATE ALL", prepared=True),
    leak("deallocate-each-by-name", _deallocate_each, prepared=True),
    leak("discard-all", "DISCARD ALL", prepared=True),
    leak(
        "extended-without-sync-then-vanish",
        wire=(
            extended(INSERT_999, sync=False),
            extended("SELECT pg_advisory_xact_lock({key})", sync=False),
            lambda scene: Flush().encode(),
        ),
    ),
    leak(
        "copy-in-then-vanish",
        wire=("COPY {victim} FROM STDIN", lambda scene: CopyData(b"999\t0\t0\t0\n").encode()),
    ),
    leak("begin-then-vanish", wire=("BEGIN", INSERT_999, "SELECT pg_advisory_xact_lock({key})")),
]


@pytest.mark.parametrize("case", LEAKS)
def test_6_no_session_state_reaches_the_next_client(postgres, single_server_arena, case):
    """Client A changes its session (the proxy may refuse: fine), then stays idle, then
    leaves (or vanishes mid-batch); a new client B of the same user, on the one server
    connection the pool has, sees exactly what a new client saw before A came: settings,
    users, its tables, no locks, no channels, no statements, no cursors, no transaction."""
    target, _ = single_server_arena.targets()
    scene = Scene(postgres, target, target)
    keeper = None
    try:
        scene.cleanups += case.cleanup
        scene.direct(*case.setup)
        scene.baseline = scene.server_state()
        before = what_a_new_client_sees(scene, target)
        assert before.get("victim rows") == ROWS, f"a new client cannot even look: {before}"
        if case.prepared:
            keeper = psycopg.connect(target.dsn(), autocommit=True)
            for n in range(3):
                keeper.execute("SELECT %s::int + 1", [n], prepare=True)
        views = {}
        if case.wire:
            wire = Wire(target)
            wire.send(packet(scene, case.wire, hidden=False))
            time.sleep(0.2)
            wire.vanish()
        else:
            options = {"options": scene.fmt(case.options)} if case.options else {}
            a = psycopg.connect(target.dsn(), autocommit=True, **options)
            for step in case.steps:
                with contextlib.suppress(psycopg.Error):
                    if callable(step):
                        step(a)
                    else:
                        a.execute(scene.fmt(step))
            views["while A is idle"] = what_a_new_client_sees(scene, target)
            a.close()
        time.sleep(0.1)
        views["after A left"] = what_a_new_client_sees(scene, target)
        problems = [
            f"{when}: {what} is {seen.get(what)!r}, was {was!r}"
            for when, seen in views.items()
            for what, was in before.items()
            if seen.get(what) != was
        ]
        if keeper is not None:
            try:
                assert keeper.execute("SELECT %s::int + 1", [41], prepare=True).fetchone() == (42,)
            except psycopg.Error as exc:
                problems.append(f"the other client's prepared statement broke: {exc}")
        problems += scene.damage()
        assert not problems, problems
    finally:
        if keeper is not None:
            keeper.close()
        scene.close()


# --- 7: false positives ------------------------------------------------------------------


def _connect(target: Target | Any, **kwargs: Any) -> psycopg.Connection:
    return psycopg.connect(target.dsn(), autocommit=kwargs.pop("autocommit", True), **kwargs)


def benign_own_temp_table_in_session_mode(scene: Scene, firewall) -> None:
    with _connect(scene.session_target) as conn:
        conn.execute("CREATE TEMP TABLE tmp1 (a int)")
        conn.execute("INSERT INTO tmp1 VALUES (1), (2)")
        conn.execute("TRUNCATE tmp1")
        assert conn.execute("SELECT count(*) FROM tmp1").fetchone() == (0,)
        conn.execute("ALTER TABLE tmp1 ADD COLUMN b int")
        conn.execute("INSERT INTO tmp1 VALUES (1, 2)")
        conn.execute("DROP TABLE tmp1")
        assert conn.execute("SELECT to_regclass('pg_temp.tmp1')").fetchone() == (None,)


def benign_own_temp_table_in_a_transaction(scene: Scene, firewall) -> None:
    with _connect(firewall, autocommit=False) as conn:
        conn.execute("CREATE TEMP TABLE tmp2 (a int) ON COMMIT DROP")
        conn.execute("INSERT INTO tmp2 VALUES (1)")
        conn.execute("DROP TABLE tmp2")
        assert conn.execute("SELECT to_regclass('pg_temp.tmp2')").fetchone() == (None,)
        conn.commit()


def benign_alter_index_rename(scene: Scene, firewall) -> None:
    scene.direct("CREATE INDEX ix_{uid} ON {victim} (v)")
    with _connect(firewall) as conn:
        conn.execute(scene.fmt("ALTER INDEX ix_{uid} RENAME TO ix_{uid}_renamed"))
    assert scene.one("SELECT to_regclass(%s) IS NOT NULL", [f"ix_{scene.uid}_renamed"])


def benign_latin1_by_set(scene: Scene, firewall) -> None:
    with _connect(firewall) as conn:
        conn.execute("SET client_encoding = 'LATIN1'")
        assert conn.execute("SELECT 'é', length('é')").fetchone() == ("é", 1)
        assert conn.execute("SHOW client_encoding").fetchone() == ("LATIN1",)


def benign_latin1_at_login(scene: Scene, firewall) -> None:
    with _connect(firewall, client_encoding="LATIN1") as conn:
        assert conn.execute("SELECT 'café', length('café')").fetchone() == ("café", 4)
        assert not conn.closed
        assert conn.execute("SELECT 1").fetchone() == (1,)


def benign_standard_strings_on(scene: Scene, firewall) -> None:
    with _connect(firewall) as conn:
        for value in ("1", "on", "true"):
            conn.execute(f"SET standard_conforming_strings = {value}")
            assert conn.execute("SHOW standard_conforming_strings").fetchone() == ("on",)


def benign_delete_where_false(scene: Scene, firewall) -> None:
    with _connect(firewall) as conn:
        assert conn.execute(scene.fmt("DELETE FROM {victim} WHERE false")).rowcount == 0
    assert not scene.damage()


def benign_bound_set_config(scene: Scene, firewall) -> None:
    with _connect(firewall) as conn:
        sql = "SELECT set_config(%s, %s, false)"
        conn.execute(sql, ["application_name", "redteam"], prepare=False)
        assert conn.execute("SHOW application_name").fetchone() == ("redteam",)
        conn.execute(sql, ["TimeZone", "Asia/Tokyo"], prepare=False)
        assert conn.execute("SHOW TimeZone").fetchone() == ("Asia/Tokyo",)
        conn.execute("SELECT set_config('application_name', 'literal', false)")
        assert conn.execute("SHOW application_name").fetchone() == ("literal",)


def benign_two_megabyte_insert(scene: Scene, firewall) -> None:
    scene.direct("CREATE TABLE bulk_{uid} (id int, body text)")
    body = "x" * 400
    values = ", ".join(f"({n}, '{body}')" for n in range(5000))
    sql = f"INSERT INTO bulk_{scene.uid} VALUES {values}"
    assert len(sql) > 2_000_000
    with _connect(firewall) as conn:
        assert conn.execute(sql).rowcount == 5000
    assert scene.one(f"SELECT count(*) FROM bulk_{scene.uid}") == 5000


def benign_everyday_dml(scene: Scene, firewall) -> None:
    v = scene.victim
    with _connect(firewall) as conn:
        assert conn.execute(f"SELECT v FROM {v} WHERE id = %s", [3]).fetchone() == (30,)
        conn.execute(f"INSERT INTO {v} VALUES (11, 110, 11, -11)")
        conn.execute(f"UPDATE {v} SET v = v + 1 WHERE id = %s", [2])
        conn.execute(f"DELETE FROM {v} WHERE id = %s", [1])
        conn.execute(
            f"INSERT INTO {v} VALUES (3, 0, 3, -3) ON CONFLICT (id) DO UPDATE SET v = excluded.v"
        )
        conn.execute(
            f"MERGE INTO {v} t USING (VALUES (4, 7)) s(id, v) ON t.id = s.id "
            "WHEN MATCHED THEN UPDATE SET v = s.v"
        )
        conn.execute(f"DELETE FROM {v} WHERE id > 9")  # a range: 10 and 11
    rows = dict(scene.admin.execute(f"SELECT id, v FROM {v}").fetchall())
    assert rows == {2: 21, 3: 0, 4: 7, 5: 50, 6: 60, 7: 70, 8: 80, 9: 90}


def benign_ddl(scene: Scene, firewall) -> None:
    u = scene.uid
    with _connect(firewall) as conn:
        conn.execute(f"CREATE TABLE new_{u} (id serial PRIMARY KEY, body text)")
        conn.execute(f"CREATE INDEX new_{u}_body ON new_{u} (body)")
        conn.execute(f"CREATE VIEW new_{u}_v AS SELECT id FROM new_{u}")
        conn.execute(f"CREATE SEQUENCE new_{u}_seq")
    for name in (f"new_{u}", f"new_{u}_body", f"new_{u}_v", f"new_{u}_seq"):
        assert scene.one("SELECT to_regclass(%s) IS NOT NULL", [name]), name


def benign_set_local_in_a_transaction(scene: Scene, firewall) -> None:
    with _connect(firewall) as conn:
        default = conn.execute("SHOW statement_timeout").fetchone()
        with conn.transaction():
            conn.execute("SET LOCAL statement_timeout = '2s'")
            assert conn.execute("SHOW statement_timeout").fetchone() == ("2s",)
        assert conn.execute("SHOW statement_timeout").fetchone() == default


def benign_show_explain_copy(scene: Scene, firewall) -> None:
    with _connect(firewall) as conn:
        assert conn.execute("SHOW search_path").fetchone()
        plan = conn.execute(scene.fmt("EXPLAIN SELECT * FROM {victim} WHERE id = 1")).fetchall()
        assert "Scan" in plan[0][0]
        with conn.cursor().copy(
            scene.fmt("COPY (SELECT id FROM {victim} ORDER BY id) TO STDOUT")
        ) as copy:
            assert [int(row[0]) for row in copy.rows()] == list(range(1, ROWS + 1))


def benign_transactions_and_savepoints(scene: Scene, firewall) -> None:
    v = scene.victim
    with _connect(firewall) as conn:
        conn.execute("BEGIN")
        conn.execute(f"INSERT INTO {v} VALUES (20, 200, 20, -20)")
        conn.execute("SAVEPOINT s")
        conn.execute(f"UPDATE {v} SET v = 0 WHERE id = 20")
        conn.execute("ROLLBACK TO SAVEPOINT s")
        conn.execute("RELEASE SAVEPOINT s")
        conn.execute("COMMIT")
    assert scene.one(f"SELECT v FROM {v} WHERE id = 20") == 200


def benign_reads_and_functions(scene: Scene, firewall) -> None:
    scene.direct("CREATE SEQUENCE seq_{uid}")
    v = scene.victim
    with _connect(firewall) as conn:
        assert conn.execute(
            f"WITH big AS (SELECT * FROM {v} WHERE v > 50) SELECT count(*), sum(v) FROM big"
        ).fetchone() == (5, 400)
        assert conn.execute("SELECT now() IS NOT NULL, random() < 1").fetchone() == (True, True)
        assert conn.execute(scene.fmt("SELECT nextval('seq_{uid}')")).fetchone() == (1,)
        assert conn.execute("SELECT lower('AbC'), upper('AbC')").fetchone() == ("abc", "ABC")
        assert conn.execute(
            """SELECT '{"a": {"b": 1}}'::jsonb -> 'a' ->> 'b', '{"a": 1}'::jsonb ? 'a'"""
        ).fetchone() == ("1", True)
        assert conn.execute("SELECT 'a\\b', E'a\\\\b', $$x$$, U&'\\0041'").fetchone() == (
            "a\\b", "a\\b", "x", "A",
        )  # fmt: skip
        assert conn.execute("SELECT 1; SELECT 2").fetchone() in ((1,), (2,))
        for n in range(6):  # psycopg prepares it after a few runs
            conn.execute(f"SELECT v FROM {v} WHERE id = %s", [n + 1], prepare=True)


def benign_everyday_volatile_functions(scene: Scene, firewall) -> None:
    scene.direct("CREATE SEQUENCE seq_{uid}")
    with _connect(firewall) as conn:
        assert conn.execute(
            "SELECT gen_random_uuid() IS NOT NULL, clock_timestamp() IS NOT NULL, "
            "txid_current() > 0, pg_backend_pid() > 0, random() >= 0"
        ).fetchone() == (True, True, True, True, True)
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [scene.key])
            assert conn.execute(scene.fmt("SELECT nextval('seq_{uid}')")).fetchone() == (1,)
            conn.execute("SET LOCAL lock_timeout = '1s'")


def refused_currval_under_transaction_pooling(scene: Scene, firewall) -> None:
    """currval reads the server session's last value: on a pooled server, maybe another
    client's. RETURNING gives a client its own."""
    scene.direct("CREATE SEQUENCE seq_{uid}")
    with _connect(firewall) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match='rule "function"'):
            conn.execute(scene.fmt("SELECT currval('seq_{uid}')"))
        assert conn.execute(scene.fmt("SELECT nextval('seq_{uid}')")).fetchone() == (1,)


def _jobs(scene: Scene) -> str:
    """A second table for joins: jobs 1..6, owner = id % 3 + 1 (a victim id), none done."""
    jobs = f"jobs_{scene.uid}"
    scene.direct(f"CREATE TABLE {jobs} (id int PRIMARY KEY, owner int, done bool DEFAULT false)")
    scene.direct(f"INSERT INTO {jobs} SELECT n, n % 3 + 1, false FROM generate_series(1, 6) n")
    return jobs


def _done(scene: Scene, jobs: str) -> list[tuple[int, bool]]:
    return scene.admin.execute(f"SELECT id, done FROM {jobs} ORDER BY id").fetchall()


def benign_joins_windows_aggregates(scene: Scene, firewall) -> None:
    jobs, v = _jobs(scene), scene.victim
    with _connect(firewall) as conn:
        assert conn.execute(
            f"SELECT j.owner, count(*), sum(t.v), rank() OVER (ORDER BY sum(t.v) DESC) "
            f"FROM {jobs} j JOIN {v} t ON t.id = j.owner GROUP BY j.owner ORDER BY j.owner"
        ).fetchall() == [(1, 2, 20, 3), (2, 2, 40, 2), (3, 2, 60, 1)]
        assert conn.execute(
            f"SELECT DISTINCT ON (owner) owner, id FROM {jobs} ORDER BY owner, id DESC"
        ).fetchall() == [(1, 6), (2, 4), (3, 5)]
        assert conn.execute(
            "SELECT string_agg(x::text, ',' ORDER BY x), jsonb_build_object('n', count(*)) "
            "FROM generate_series(1, 3) x"
        ).fetchone() == ("1,2,3", {"n": 3})


def benign_job_queue_skip_locked(scene: Scene, firewall) -> None:
    jobs = _jobs(scene)
    with _connect(firewall) as conn, conn.transaction():
        job = conn.execute(
            f"SELECT id FROM {jobs} WHERE NOT done ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
        ).fetchone()
        conn.execute(f"UPDATE {jobs} SET done = true WHERE id = %s", job)
    assert _done(scene, jobs)[0] == (1, True)


def refused_update_from_a_join(scene: Scene, firewall) -> None:
    """A join narrows nothing the guard can prove: the client may create a table holding
    every key (CREATE TABLE is allowed), so only the target's own columns narrow."""
    jobs, v = _jobs(scene), scene.victim
    with _connect(firewall) as conn:
        sql = f"UPDATE {jobs} j SET done = true FROM {v} t WHERE t.id = j.owner AND t.v = 20"
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="update_without_where"):
            conn.execute(sql)
        sql = f"UPDATE {jobs} j SET done = true FROM {v} t WHERE t.id = j.owner AND j.id = 1"
        assert conn.execute(sql).rowcount == 1  # narrowed by the target's own column
    assert [id_ for id_, done in _done(scene, jobs) if done] == [1]


def refused_delete_using_a_join(scene: Scene, firewall) -> None:
    jobs, v = _jobs(scene), scene.victim
    with _connect(firewall) as conn:
        sql = f"DELETE FROM {jobs} j USING {v} t WHERE t.id = j.owner AND t.v = 30"
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="delete_without_where"):
            conn.execute(sql)
    assert [id_ for id_, _ in _done(scene, jobs)] == [1, 2, 3, 4, 5, 6]


def benign_insert_returning_and_delete_any(scene: Scene, firewall) -> None:
    jobs = _jobs(scene)
    with _connect(firewall) as conn:
        row = conn.execute(f"INSERT INTO {jobs} VALUES (7, 1) RETURNING id, done").fetchone()
        assert row == (7, False)
        assert conn.execute(f"DELETE FROM {jobs} WHERE id = ANY(%s)", [[6, 7]]).rowcount == 2
    assert [id_ for id_, _ in _done(scene, jobs)] == [1, 2, 3, 4, 5]


def benign_utf8_spelled_otherwise(scene: Scene, firewall) -> None:
    with _connect(firewall) as conn:
        for sql in (
            "SET NAMES 'UTF8'",
            "SET client_encoding = 'utf-8'",
            "SET client_encoding TO DEFAULT",
        ):
            conn.execute(sql)
            assert conn.execute("SELECT 'é'").fetchone() == ("é",)


BENIGN = [
    pytest.param(function, id=function.__name__.removeprefix("benign_").replace("_", "-"))
    for function in (
        benign_own_temp_table_in_session_mode,
        benign_own_temp_table_in_a_transaction,
        benign_alter_index_rename,
        benign_latin1_by_set,
        benign_latin1_at_login,
        benign_standard_strings_on,
        benign_delete_where_false,
        benign_bound_set_config,
        benign_two_megabyte_insert,
        benign_everyday_dml,
        benign_ddl,
        benign_set_local_in_a_transaction,
        benign_show_explain_copy,
        benign_transactions_and_savepoints,
        benign_reads_and_functions,
        benign_utf8_spelled_otherwise,
        benign_everyday_volatile_functions,
        benign_joins_windows_aggregates,
        benign_job_queue_skip_locked,
        benign_insert_returning_and_delete_any,
    )
]


REFUSED_BY_DESIGN = [
    pytest.param(function, id=function.__name__.removeprefix("refused_").replace("_", "-"))
    for function in (
        refused_currval_under_transaction_pooling,
        refused_update_from_a_join,
        refused_delete_using_a_join,
    )
]


@pytest.mark.parametrize("case", REFUSED_BY_DESIGN)
def test_7_ordinary_looking_sql_the_policy_refuses_says_why(scene, firewall, case):
    """What the policy refuses on purpose though it looks ordinary: the rule is named, the
    connection stays usable, nothing changed."""
    case(scene, firewall)


@pytest.mark.parametrize("case", BENIGN)
def test_7_ordinary_sql_passes_and_has_its_effect(scene, firewall, case):
    """Through the default proxy (transaction pooling, every rule on; session pooling where
    temp tables need it): no refusal, and the effect is there."""
    case(scene, firewall)
