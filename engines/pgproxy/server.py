"""Server connections: logging in to PostgreSQL, then relaying its bytes to one client.

A ``ServerConnection`` is opened and authenticated once (cleartext, MD5 or SCRAM-SHA-256,
optionally over TLS) and then lives in a pool, warm, so a client never pays for a server
handshake. While a client holds it, ``ServerProtocol`` forwards whole messages to the client
as they arrive and watches for two things only: ReadyForQuery, whose status byte says
whether the connection may go back to the pool, and — when the session's policy swapped a
statement for a deliberate syntax error — the ErrorResponse to rewrite into the proxy's own.

The proxy reads SQL as the server does (encodings.py): a setting the server reports under
which it would read it otherwise ends the session (``reads_unlike_proxy``). Messages name
the proxy by the ``application_name`` its connections log in with ("firewall", "router").
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import time
from collections.abc import Callable

from engines.pgwire import (
    AuthenticationCleartextPassword,
    AuthenticationMD5Password,
    AuthenticationOk,
    AuthenticationSASL,
    AuthenticationSASLContinue,
    AuthenticationSASLFinal,
    BackendKeyData,
    BackendParser,
    CancelRequest,
    ErrorResponse,
    ParameterStatus,
    PasswordMessage,
    ReadyForQuery,
    SASLInitialResponse,
    SASLResponse,
    ScramClient,
    SSLRequest,
    StartupMessage,
    decode_backend,
    md5_password,
)

from ._endpoint import ClientEnd
from ._server import ServerCore, ServerRelay
from ._statements import ServerStatements
from ._transport import hand_over
from .config import Upstream
from .encodings import reads_unlike_proxy

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0


def _parameter_status(buffer: bytes, payload: int, end: int) -> tuple[str, str]:
    name, _, value = buffer[payload : end - 1].partition(b"\0")
    return name.decode(errors="replace"), value.decode(errors="replace")


class ServerError(Exception):
    """The upstream server refused us or went away; ``sqlstate`` is what clients are told."""

    def __init__(self, message: str, sqlstate: str = "08006") -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


@functools.cache
def _tls_context(upstream: Upstream) -> ssl.SSLContext:
    """One context per upstream, built once: loading the system's CA store costs ~50 ms of
    event-loop time, which a pool opening 20 connections would otherwise pay 20 times."""
    if upstream.sslmode in {"require", "prefer", "allow"} and upstream.sslrootcert is None:
        # libpq's "require" encrypts without checking who answers: nothing to load.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    context = ssl.create_default_context(cafile=upstream.sslrootcert)
    if upstream.sslmode != "verify-full":
        # verify-ca, or require with a root cert (which libpq treats as verify-ca).
        context.check_hostname = False
    return context


async def _open(upstream: Upstream) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(upstream.host, upstream.port)
    if upstream.sslmode == "disable":
        return reader, writer
    writer.write(SSLRequest().encode())
    answer = await reader.readexactly(1)
    if answer == b"S":
        await writer.start_tls(_tls_context(upstream), server_hostname=upstream.host)
    elif upstream.sslmode not in {"allow", "prefer"}:
        writer.close()
        raise ServerError(
            f"{upstream.host}:{upstream.port} does not support TLS (sslmode={upstream.sslmode})"
        )
    return reader, writer


class ServerConnection(ServerCore):
    """One logged-in connection to PostgreSQL, owned by a pool. Its per-message state
    (transport, status, parameters, statements), ``attach``, ``write`` and the detach on
    release are compiled in ServerCore."""

    def __init__(
        self, upstream: Upstream, transport: asyncio.Transport, application_name: str = "pgproxy"
    ) -> None:
        self.upstream = upstream
        self.application_name = application_name  # the proxy's name, in what clients are told
        self.transport = transport
        self.parameters = {}
        self.process_id = 0
        self.secret_key = b""
        self.status = "I"  # transaction status from the last ReadyForQuery
        self.created = time.monotonic()
        self.last_used = self.created
        self.closed = False
        self.protocol: ServerProtocol | None = None
        self.stream_writer: asyncio.StreamWriter | None = None
        self.statements = ServerStatements()

    @classmethod
    async def connect(
        cls,
        upstream: Upstream,
        application_name: str = "pgproxy",
        settings: dict[str, str] | None = None,
    ) -> ServerConnection:
        """Open, encrypt if asked, log in with ``settings`` as the session's own (startup
        parameters) and wait for the first ReadyForQuery."""
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                reader, writer = await _open(upstream)
                server = cls(upstream, writer.transport, application_name)  # type: ignore[arg-type]
                await server._login(reader, writer, application_name, settings or {})
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            raise ServerError(
                f"cannot reach {upstream.host}:{upstream.port}: {exc or type(exc).__name__}"
            ) from exc
        # From here on the connection is driven by callbacks, not by the stream: on the
        # proxy's own transport for a plain socket (_transport.pyx). The writer stays
        # referenced: for a TLS socket StreamWriter.__del__ would close the transport.
        server.stream_writer = writer
        server.protocol = ServerProtocol(server)
        server.transport = hand_over(writer.transport, server.protocol)
        leftover = bytes(reader._buffer)
        if leftover:
            server.protocol.data_received(leftover)
        logger.debug(
            "event=server_connected host=%s port=%s pid=%s",
            upstream.host,
            upstream.port,
            server.process_id,
        )
        return server

    async def _login(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        application_name: str,
        settings: dict[str, str],
    ) -> None:
        up = self.upstream
        startup = {"user": up.user, "database": up.database, "application_name": application_name}
        writer.write(StartupMessage({**settings, **startup}).encode())
        parser = BackendParser()
        scram: ScramClient | None = None
        while True:
            data = await reader.read(65536)
            if not data:
                raise ServerError("the server closed the connection during login")
            parser.feed(data)
            for message in parser:
                if isinstance(message, AuthenticationOk):
                    continue
                if isinstance(message, AuthenticationCleartextPassword):
                    writer.write(PasswordMessage(up.password).encode())
                elif isinstance(message, AuthenticationMD5Password):
                    writer.write(
                        PasswordMessage(
                            md5_password(up.user, up.password, message.salt).decode()
                        ).encode()
                    )
                elif isinstance(message, AuthenticationSASL):
                    if "SCRAM-SHA-256" not in message.mechanisms:
                        raise ServerError(
                            f"unsupported SASL mechanisms {message.mechanisms}", "28000"
                        )
                    scram = ScramClient(up.user, up.password)
                    writer.write(
                        SASLInitialResponse("SCRAM-SHA-256", scram.first_message()).encode()
                    )
                elif isinstance(message, AuthenticationSASLContinue) and scram:
                    writer.write(SASLResponse(scram.handle_server_first(message.data)).encode())
                elif isinstance(message, AuthenticationSASLFinal) and scram:
                    scram.verify_server_final(message.data)
                elif isinstance(message, ParameterStatus):
                    self.parameters[message.name] = message.value
                elif isinstance(message, BackendKeyData):
                    self.process_id, self.secret_key = message.process_id, message.secret_key
                elif isinstance(message, ErrorResponse):
                    fields = message.fields
                    raise ServerError(
                        f"upstream refused login: {fields.get('M', '')}", fields.get("C", "08006")
                    )
                elif isinstance(message, ReadyForQuery):
                    blind = [(k, v) for k, v in self.parameters.items() if reads_unlike_proxy(k, v)]
                    if blind:
                        name, value = blind[0]
                        raise ServerError(
                            f"the server's session starts with {name} {value}, under which the "
                            f"{application_name} would misread its SQL; change that role or "
                            "database setting",
                            "0A000",
                        )
                    self.status = message.status
                    return
                else:
                    raise ServerError(
                        f"unsupported authentication request {type(message).__name__}", "28000"
                    )

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()

    async def cancel(self) -> None:
        """Send PostgreSQL a CancelRequest for whatever this connection is running."""
        _, writer = await asyncio.open_connection(self.upstream.host, self.upstream.port)
        writer.write(CancelRequest(self.process_id, self.secret_key).encode())
        await writer.drain()
        writer.close()


class ServerProtocol(ServerRelay, asyncio.Protocol):
    """Relays the server's messages to the attached client, whole messages at a time.
    ``data_received`` is compiled (ServerRelay); what it meets rarely is handled here."""

    def __init__(self, server: ServerConnection) -> None:
        self.server = server
        self.client: ClientEnd | None = None
        self.swallow = 0  # answers to the proxy's own SETs still to drop, up to their Z
        self.buffer = b""
        self.on_lost: Callable[[ServerConnection], None] | None = None

    def pause_writing(self) -> None:
        """The server takes its client's bytes slower than the client sends them (a COPY
        FROM STDIN it cannot keep up with, say): stop reading that client until the server
        catches up, so the proxy holds at most the high-water mark of the upload. A server
        only goes back to the pool once it has answered everything, so it has drained by
        then and its client is reading again."""
        if self.client is not None:
            self.client.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.client is not None:
            self.client.transport.resume_reading()

    def _idle_error(self) -> None:
        """An idle server speaking up is being shut down (admin command, crash)."""
        logger.warning("event=idle_server_error pid=%s", self.server.process_id)
        self.server.close()

    def _note_setting(self, buffer: bytes, start: int, end: int) -> bool:
        """A ParameterStatus: note the server's new value, and the attached session's (the
        client SET it, or it is the server's spelling of a value the proxy replayed). False
        when the value blinds the policy: the session is then already closed."""
        name, value = _parameter_status(buffer, start + 5, end)
        client = self.client
        policy = getattr(client, "policy", None)
        if reads_unlike_proxy(name, value) or (
            name == "client_encoding" and policy is not None and not policy.set_encoding(value)
        ):
            self._policy_blinded(name, value)
            return False
        self.server.parameters[name] = value
        self.server.settings_checked = None
        if client is not None and name in client.wanted and client.wanted[name] != value:
            # A copy, never in place: sessions that logged in alike share one dict (proxy.py).
            client.wanted = {**client.wanted, name: value}
        return True

    def _replay_failed(self, frame: bytes) -> None:
        error = decode_backend(b"E", frame[5:])
        assert isinstance(error, ErrorResponse)
        reason = error.fields.get("M", "")
        logger.warning("event=replay_failed pid=%s error=%r", self.server.process_id, reason)
        self.buffer = b""
        client = self.client
        self.server.close()
        if client is not None:
            client.fatal(
                error.fields.get("C", "22023"),
                f"{self.server.application_name}: a session setting was refused: {reason}",
            )

    def _policy_blinded(self, name: str, value: str) -> None:
        """Something the policy let through (a function, say) gave a setting a value under
        which the server reads SQL differently from the proxy: neither this connection nor
        its client's session may go on."""
        logger.warning("event=guard_blinded pid=%s %s=%s", self.server.process_id, name, value)
        self.buffer = b""
        client = self.client
        self.server.close()
        if client is not None:
            client.fatal(
                "42501",
                f"{self.server.application_name}: {name} was set to {value}, under which the "
                f"{self.server.application_name} can no longer read this session's SQL as the "
                "server does; the session is closed",
            )

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.closed = True
        if self.client is not None:
            self.client.server_lost(self.server)
        if self.on_lost is not None:
            self.on_lost(self.server)
