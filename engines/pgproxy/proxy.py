"""A protocol proxy's base: listens for PostgreSQL clients, logs them in, hands them to pools.

A ``BaseProxy`` owns the listening socket (TLS when configured), the SCRAM-SHA-256 login
against its user list, a pool per database and user with each database's connection
budget, the shared settings profiles of its sessions, and the table of sessions that
CancelRequests are routed through: a client cancels with the key the proxy gave it, and the
proxy cancels on the server connection that client holds at that moment, never another
client's query.

What it leaves to a subclass (the firewall's ``FirewallProxy``, the router's) are hooks:

* ``name``: the proxy's name: its admin console's database, its servers'
  ``application_name``, its metrics' prefix, its messages' prefix;
* ``policy_for(database, user, encoding, pool)``: the statement policy (_policy.Policy)
  of one new session, asked after login (LoginFailed refuses the client);
* ``session_class``: the ClientSession subclass sessions are made of;
* ``policy_stats()`` and ``policy_metrics(stats)``: what the policy adds to the JSON
  snapshot and the Prometheus text; ``console_stats(stats)``, ``console_command(words,
  stats)`` and ``console_commands``: what it adds to the admin console;
* ``close()``, extended to stop what the policy runs.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
from typing import Any

from engines.pgwire import (
    AuthenticationError,
    AuthenticationOk,
    AuthenticationSASL,
    AuthenticationSASLContinue,
    AuthenticationSASLFinal,
    BackendKeyData,
    CancelRequest,
    FrontendParser,
    GSSENCRequest,
    ParameterStatus,
    PgWireError,
    ReadyForQuery,
    SASLInitialResponse,
    SASLResponse,
    ScramServer,
    ScramVerifier,
    SSLRequest,
    StartupMessage,
    error_response,
)

from . import encodings
from ._policy import Policy
from ._transport import hand_over
from .admin import AdminSession, console_parameters, stats_rows
from .client import TRACKED_PARAMETERS, ClientSession
from .config import ProxyConfig
from .metrics import LatencyHistogram, serve_metrics, stats_snapshot
from .pool import DatabaseBudget, Pool, PoolTimeout
from .server import ServerError

logger = logging.getLogger(__name__)

LOGIN_TIMEOUT = 15.0
MAX_SETTINGS_PROFILES = 1024  # distinct login settings whose dict sessions share


class LoginFailed(Exception):
    """A client could not log in; carries the SQLSTATE it is told."""

    def __init__(self, sqlstate: str, message: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class BaseProxy:
    """The proxy: listener, login, pools and the sessions it serves; a subclass brings the
    statement policy (the module says which hooks it fills)."""

    name = "pgproxy"
    session_class: type[ClientSession] = ClientSession
    console_commands: tuple[str, ...] = ("SHOW POOLS", "SHOW STATS")
    max_message_size = 64 * 1024 * 1024

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        # One pool per (database, client user), made at first login; the upstream's own user
        # and every user with limits of their own get theirs at start, so min_pool_size holds
        # before the first client.
        self.pools: dict[tuple[str, str], Pool] = {}
        self.budgets = {
            name: DatabaseBudget(database.max_db_connections)
            for name, database in config.databases.items()
        }
        self.started = False
        self.sessions: dict[tuple[int, bytes], ClientSession] = {}
        self.verifiers = self._verifiers(config)
        self.logins = 0
        self.login_failures = 0
        self.latency = LatencyHistogram()
        self.settings_profiles: dict[frozenset[tuple[str, str]], dict[str, str]] = {}
        self.server: asyncio.base_events.Server | None = None
        self.metrics_server: asyncio.base_events.Server | None = None
        self.tls: ssl.SSLContext | None = None
        if config.tls_cert:
            self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.tls.load_cert_chain(config.tls_cert, config.tls_key)

    @staticmethod
    def _verifiers(config: ProxyConfig) -> dict[str, ScramVerifier]:
        """SCRAM verifiers by user: from the user list, else each upstream's own login."""
        users = dict(config.users)
        if not users:
            for database in config.databases.values():
                users.setdefault(database.upstream.user, database.upstream.password)
        return {
            user: ScramVerifier.parse(secret)
            if secret.startswith("SCRAM-SHA-256$")
            else ScramVerifier.from_password(secret)
            for user, secret in users.items()
        }

    async def start(self) -> None:
        self.server = await asyncio.start_server(
            self._handle,
            self.config.listen_host,
            self.config.listen_port,
            limit=self.max_message_size,
        )
        self.started = True
        for database in self.config.databases.values():
            for user in {database.upstream.user, *database.user_limits}:
                self.pool_for(database.name, user)
        if self.config.metrics_port is not None:
            self.metrics_server = await serve_metrics(
                self, self.config.metrics_host or "127.0.0.1", self.config.metrics_port
            )
        logger.info(
            "event=listening host=%s port=%s databases=%s",
            self.config.listen_host, self.port, ",".join(self.config.databases),
        )  # fmt: skip

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.metrics_server is not None:
            self.metrics_server.close()
        if self.server is not None:
            self.server.close()
        for session in list(self.sessions.values()):
            session.terminate()
        for pool in self.pools.values():
            pool.close()
        if self.server is not None:
            await self.server.wait_closed()

    def pool_for(self, database: str, user: str) -> Pool:
        """The pool of ``user`` in ``database`` (a configured one), made on first use."""
        pool = self.pools.get((database, user))
        if pool is None:
            pool = self.pools[database, user] = Pool(
                self.config.databases[database], user, self.budgets[database], self.name
            )
            if self.started:
                pool.start()
        return pool

    # -- hooks ------------------------------------------------------------------------------

    async def policy_for(self, database: str, user: str, encoding: str, pool: Pool) -> Policy:
        """The statement policy of a new session of ``user`` in ``database`` (a configured
        one), whose client encoding is ``encoding`` (PostgreSQL's name), borrowing from
        ``pool``; raise LoginFailed to refuse the client. Every proxy brings its own:
        policies deny by default."""
        raise NotImplementedError

    def policy_stats(self) -> dict[str, Any]:
        """What the policy adds to the JSON snapshot (metrics.stats_snapshot), by key."""
        return {}

    def policy_metrics(self, stats: dict[str, Any]) -> list[str]:
        """What the policy adds to the Prometheus text, from the snapshot ``stats``."""
        return []

    def console_stats(self, stats: dict[str, Any]) -> list[list[Any]]:
        """SHOW STATS's rows, from the snapshot ``stats``."""
        return stats_rows(stats)

    def console_command(self, words: list[str], stats: dict[str, Any]) -> bytes | None:
        """The console's answer to a command of the proxy's own (upper-cased ``words``),
        None for one it does not know."""
        return None

    def stats(self) -> dict[str, Any]:
        """Everything the proxy counts, as one JSON-ready dict (what /stats.json serves)."""
        return stats_snapshot(self)

    def _shared_settings(self, wanted: dict[str, str]) -> dict[str, str]:
        """One dict per distinct set of session settings, shared by every session that
        logged in with it, so a server found to match one of them matches all by identity
        (ClientCore._attach). Sessions copy it before changing it. Capped: past that, a new
        combination (an application_name per client, say) keeps a dict of its own."""
        key = frozenset(wanted.items())
        shared = self.settings_profiles.get(key)
        if shared is not None:
            return shared
        if len(self.settings_profiles) < MAX_SETTINGS_PROFILES:
            self.settings_profiles[key] = wanted
        return wanted

    def forget(self, session: ClientSession) -> None:
        self.sessions.pop(session.key, None)

    # -- one client connection ------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(LOGIN_TIMEOUT):
                session = await self._login(reader, writer)
        except LoginFailed as exc:
            self.login_failures += 1
            writer.write(error_response(exc.sqlstate, str(exc), severity="FATAL"))
            writer.close()
            return
        except (PgWireError, TimeoutError, ConnectionError, asyncio.IncompleteReadError) as exc:
            self.login_failures += 1
            logger.info("event=login_aborted error=%s", type(exc).__name__)
            if not writer.is_closing():
                if isinstance(exc, PgWireError):
                    writer.write(
                        error_response("08P01", f"protocol violation: {exc}", severity="FATAL")
                    )
                writer.close()
            return
        if session is None:
            return
        # From here on, callbacks: a plain socket moves to the proxy's own transport, a TLS
        # one stays with the loop's. The session keeps the writer referenced: in the second
        # case StreamWriter.__del__ would close the transport.
        session.stream_writer = writer
        session.transport = hand_over(writer.transport, session)
        leftover = bytes(reader._buffer)
        if leftover:
            session.data_received(leftover)

    async def _read(self, reader: asyncio.StreamReader, parser: FrontendParser):
        while True:
            message = parser.next()
            if message is not None:
                return message
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("client went away during login")
            parser.feed(data)

    async def _login(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> ClientSession | AdminSession | None:
        parser = FrontendParser()
        while True:
            packet = await self._read(reader, parser)
            if isinstance(packet, SSLRequest):
                if self.tls is None:
                    writer.write(b"N")
                else:
                    writer.write(b"S")
                    await writer.drain()
                    await writer.start_tls(self.tls)
                parser.start_encryption()
            elif isinstance(packet, GSSENCRequest):
                writer.write(b"N")
                parser.start_encryption()
            elif isinstance(packet, CancelRequest):
                await self._cancel(packet)
                writer.close()
                return None
            elif isinstance(packet, StartupMessage):
                break
        if len(self.sessions) >= self.config.max_client_connections:
            # Refused after the startup packet, where clients expect errors (not during TLS
            # negotiation), as PostgreSQL refuses past max_connections.
            limit = self.config.max_client_connections
            raise LoginFailed(
                "53300", f"sorry, too many clients already (max_client_connections {limit})"
            )
        encoding = self._client_encoding(packet.parameters)
        user = packet.parameters.get("user", "")
        database = packet.parameters.get("database") or user
        if database == self.name and database not in self.config.databases:
            await self._authenticate(reader, writer, parser, user)
            out = [AuthenticationOk().encode()]
            out += [
                ParameterStatus(name, value).encode()
                for name, value in console_parameters(self.name).items()
            ]
            writer.write(
                b"".join([*out, BackendKeyData(0, b"\0" * 4).encode(), ReadyForQuery("I").encode()])
            )
            self.logins += 1
            return AdminSession(self, writer.transport)  # type: ignore[arg-type]
        if database not in self.config.databases:
            raise LoginFailed("3D000", f'database "{database}" is not served by this {self.name}')
        await self._authenticate(reader, writer, parser, user)
        pool = self.pool_for(database, user)
        if not pool.parameters:
            try:  # learn the server's parameters (and check it is reachable) once
                pool.release(await pool.acquire())
            except (ServerError, PoolTimeout) as exc:
                raise LoginFailed(
                    getattr(exc, "sqlstate", "08006"), f"database unavailable: {exc}"
                ) from exc
        policy = await self.policy_for(database, user, encoding, pool)
        key = (secrets.randbelow(2**31 - 1) + 1, secrets.token_bytes(4))
        startup = {**packet.parameters, "client_encoding": encoding}
        wanted = self._shared_settings(_wanted_parameters(pool.parameters, startup))
        session = self.session_class(
            pool, user, writer.transport, key,  # type: ignore[arg-type]
            policy=policy, latency=self.latency, on_close=self.forget,
            max_message_size=self.max_message_size, wanted=wanted,
        )  # fmt: skip
        if session.session_mode:
            try:
                session.attach(await pool.acquire())
            except (ServerError, PoolTimeout) as exc:
                raise LoginFailed(getattr(exc, "sqlstate", "53300"), str(exc)) from exc
        out = [AuthenticationOk().encode()]
        reported = pool.parameters | wanted
        out += [ParameterStatus(name, value).encode() for name, value in reported.items()]
        out += [BackendKeyData(*key).encode(), ReadyForQuery("I").encode()]
        writer.write(b"".join(out))
        self.sessions[key] = session
        self.logins += 1
        return session

    async def _authenticate(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        parser: FrontendParser,
        user: str,
    ) -> None:
        """SCRAM-SHA-256 against the proxy's user list. An unknown user goes through the
        same exchange against a throwaway verifier, so the answer does not reveal who exists."""
        verifier = self.verifiers.get(user) or ScramVerifier.from_password(secrets.token_hex(16))
        writer.write(AuthenticationSASL(["SCRAM-SHA-256"]).encode())
        parser.expect_auth_response(SASLInitialResponse)
        first = await self._read(reader, parser)
        if not isinstance(first, SASLInitialResponse) or first.mechanism != "SCRAM-SHA-256":
            raise LoginFailed("28000", "SCRAM-SHA-256 authentication expected")
        scram = ScramServer(verifier)
        try:
            writer.write(AuthenticationSASLContinue(scram.handle_client_first(first.data)).encode())
            final = await self._read(reader, parser)
            if not isinstance(final, SASLResponse):
                raise LoginFailed("28000", "SCRAM exchange broken off")
            writer.write(AuthenticationSASLFinal(scram.handle_client_final(final.data)).encode())
        except AuthenticationError:
            raise LoginFailed(
                "28P01", f'password authentication failed for user "{user}"'
            ) from None
        if user not in self.verifiers:
            raise LoginFailed("28P01", f'password authentication failed for user "{user}"')

    def _client_encoding(self, startup: dict[str, str]) -> str:
        """The client encoding a startup packet asks for, by PostgreSQL's canonical name (UTF8
        when it asks for none), or LoginFailed: names are matched as PostgreSQL matches them
        (the parameter's name in any case, the encoding's ignoring case and punctuation), and
        only encodings the proxy reads exactly as the server does are accepted."""
        asked = [value for name, value in startup.items() if name.lower() == "client_encoding"]
        if not asked:
            return "UTF8"
        name = encodings.canonical(asked[-1])
        if name is None:
            raise LoginFailed(
                "22023", f'invalid value for parameter "client_encoding": "{asked[-1]}"'
            )
        if encodings.codec(name) is None:
            raise LoginFailed(
                "22023",
                f"client_encoding {name} is not supported: in it a multibyte character can hide a "
                f"quote or backslash from the {self.name}; use UTF8 or a single-byte encoding",
            )
        return name

    async def _cancel(self, request: CancelRequest) -> None:
        session = self.sessions.get((request.process_id, request.secret_key))
        if session is None or session.server is None:
            return  # nothing running, or not a key we gave out: ignore, as PostgreSQL does
        try:
            await session.server.cancel()
        except OSError as exc:
            logger.warning("event=cancel_failed error=%s", exc)


def _wanted_parameters(defaults: dict[str, str], startup: dict[str, str]) -> dict[str, str]:
    """The tracked settings a new session should see: what the client asked for in its
    startup packet, else the server's defaults (so another client's SET never leaks in)."""
    wanted = {name: defaults[name] for name in TRACKED_PARAMETERS if name in defaults}
    by_lower = {name.lower(): name for name in TRACKED_PARAMETERS}
    for name, value in startup.items():
        if name.lower() in by_lower:
            wanted[by_lower[name.lower()]] = value
    return wanted
