"""Client sessions: the proxy's side of one client connection.

Login happens in straight-line asyncio code (startup packet, SCRAM-SHA-256 against the
proxy's user list, the server's parameters replayed); after it the session is driven by
callbacks (``asyncio.Protocol``), on the proxy's own transport for a plain socket
(``_transport.hand_over``), which is what makes the hot path fast: no task switch per
message, whole messages forwarded in one write. That per-message path is compiled
(``_client.ClientCore``, the base class here); this module keeps the rest.

A session is given what it uses, never the proxy: its pool, the statement policy it
enforces (the guard's, through _policy.Policy: the one way the guard enters a session), the
latency histogram it counts in, and a callback for when it ends; so a proxy without the
guard (the router) can run the same sessions with a policy of its own.

Every Query and Parse is checked by the policy. A blocked statement is not answered by the
proxy directly, since responses to earlier pipelined messages may still be on their way:
it is swapped for a deliberate syntax error carrying a unique token and sent on, so
PostgreSQL itself answers in order, aborts the transaction if one is open, and skips to
the next Sync exactly as it would for a real error; the proxy then rewrites that one
ErrorResponse into its own, SQLSTATE 42501, naming the rule.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import struct
from collections.abc import Callable

from engines.pgwire import (
    ErrorResponse,
    Parse,
    PgWireError,
    Query,
    decode_backend,
    decode_frontend,
    error_response,
)

from ._client import ClientCore
from ._endpoint import ClientEnd
from ._metrics import LatencyCounts
from ._policy import Policy
from .pool import Pool, PoolTimeout
from .prepared import StatementRenamer
from .server import ServerConnection, ServerError

logger = logging.getLogger("engines.firewall.audit")

_HEADER = struct.Struct("!cI")
# Settings a client's session keeps wherever transaction pooling puts it, as in PgBouncer:
# those PostgreSQL reports with ParameterStatus, so the proxy sees every change. A client's
# startup values (and later SETs) are replayed on each server it lands on whose values differ.
TRACKED_PARAMETERS = ("application_name", "client_encoding", "DateStyle", "IntervalStyle",
                      "TimeZone")  # fmt: skip
_tokens = itertools.count(1)
_session_ids = itertools.count(1)


class ClientSession(ClientCore, asyncio.Protocol):
    """One logged-in client: forwards its messages to a borrowed server connection.

    The per-message path is compiled (ClientCore): ``data_received`` forwards a whole simple
    Query the policy allows outright, ``server_ready`` hands the server back at the end of
    a transaction; everything else comes here (``pump``, ``_guard``, ``_replay``, endings).

    Its collaborators: ``pool`` (lends it servers), ``policy`` (one per session),
    ``latency`` (round trips), ``on_close(session)`` (called when it ends, maybe more than
    once), ``max_message_size`` (a longer message ends the session).
    """

    def __init__(
        self,
        pool: Pool,
        user: str,
        transport: asyncio.Transport,
        key: tuple[int, bytes],
        *,
        policy: Policy,
        latency: LatencyCounts,
        on_close: Callable[[ClientSession], None],
        max_message_size: int,
        wanted: dict[str, str] | None = None,
    ) -> None:
        self.pool = pool
        self.policy = policy
        self.latency = latency
        self.on_close = on_close
        self.max_message_size = max_message_size
        self.user = user
        self.transport = transport
        self.key = key  # (process id, secret) the client was given, for CancelRequest
        self.session_mode = pool.database.pool_mode == "session"
        self.server = None
        self.buffer = b""
        self.rewrites = {}
        self.acquiring: asyncio.Task | None = None
        self.closed = False
        self.stream_writer: asyncio.StreamWriter | None = None
        # Transaction pooling moves the client between servers: rename and re-prepare its
        # named statements (see prepared.py). A session keeps one server and needs none of it.
        self.renamer = None if self.session_mode else StatementRenamer(next(_session_ids))
        # The tracked settings this session should see (TRACKED_PARAMETERS), kept in step with
        # the server's ParameterStatus reports by ServerProtocol.
        self.wanted = wanted or {}

    # -- client to server (after ClientCore.data_received) ------------------------------

    def pump(self) -> None:
        """Forward every complete message in the buffer; borrow a server first if needed."""
        buffer = self.buffer
        size = len(buffer)
        end = start = 0
        parts: list[bytes | memoryview] = []
        view = memoryview(buffer)
        while size - end >= 5:
            kind, length = _HEADER.unpack_from(buffer, end)
            if length < 4 or length > self.max_message_size:
                self.fatal("08P01", f"invalid message length {length}")
                return
            frame_end = end + 1 + length
            if frame_end > size:
                break
            if kind == b"X":
                parts.append(view[start:end])
                self._send(parts)
                self.terminate()
                return
            if self.server is None:
                server = self.pool.try_acquire()
                if server is None:
                    break  # _borrow() below waits for one
                self.attach(server)
            if kind == b"Q" or kind == b"P":
                replacement = self._guard(kind, buffer[end:frame_end])
                if self.closed:
                    return
                if kind == b"P" and self.renamer is not None:
                    message = replacement if replacement is not None else buffer[end:frame_end]
                    renamed = self.renamer.rewrite(
                        kind, message, self.server.statements, remember=replacement is None
                    )
                    if renamed is not None:
                        replacement = b"".join(renamed)
                if replacement is not None:
                    parts.append(view[start:end])
                    parts.append(replacement)
                    start = frame_end
                if kind == b"Q":
                    self.sent_batch()
            elif kind == b"S" or kind == b"F":
                self.sent_batch()
            elif self.renamer is not None and (kind == b"B" or kind == b"D" or kind == b"C"):
                renamed = self.renamer.rewrite(kind, buffer[end:frame_end], self.server.statements)
                if renamed is not None:
                    parts.append(view[start:end])
                    parts.extend(renamed)
                    start = frame_end
            end = frame_end
        parts.append(view[start:end])
        self._send(parts)
        self.buffer = buffer[end:]
        if self.server is None and len(self.buffer) >= 5 and not self.closed:
            self._borrow()

    def _send(self, parts: list[bytes | memoryview]) -> None:
        if self.server is not None:
            data = b"".join(parts)
            if data:
                self.server.write(data)

    def _guard(self, kind: bytes, frame: bytes) -> bytes | None:
        """Check a Query or Parse; return the substitute message if the policy blocks it."""
        try:
            if kind == b"Q":  # the hot path: slice the text out rather than decode a message
                if frame[-1] != 0:
                    raise ValueError("query string is not NUL-terminated")
                sql = frame[5:-1]
            else:
                name_end = frame.index(b"\0", 5)
                sql = frame[name_end + 1 : frame.index(b"\0", name_end + 1)]
            verdict = self.policy.check(sql)
            if verdict.allowed:
                return None
            message = decode_frontend(kind, frame[5:])
        except (ValueError, PgWireError) as exc:  # PostgreSQL would reject it the same way
            self.fatal("08P01", f"malformed {kind.decode()} message: {exc}")
            return b""
        token = f"FIREWALL_BLOCKED_{next(_tokens)}"
        self.rewrites[token] = verdict
        logger.warning(
            "event=blocked rule=%s user=%s database=%s sql=%r",
            verdict.rule, self.user, self.pool.database.name, sql[:500].decode(errors="replace"),
        )  # fmt: skip
        if isinstance(message, Query):
            return Query(token).encode()
        assert isinstance(message, Parse)
        return Parse(message.statement, token, message.param_types).encode()

    def _borrow(self) -> None:
        self.transport.pause_reading()
        self.acquiring = asyncio.get_running_loop().create_task(self._acquire())

    async def _acquire(self) -> None:
        try:
            server = await self.pool.acquire()
        except PoolTimeout as exc:
            self.fatal("53300", str(exc))
            return
        except ServerError as exc:
            self.fatal(exc.sqlstate, str(exc))
            return
        finally:
            self.acquiring = None
        if self.closed:
            self.pool.release(server)
            return
        self.attach(server)
        self.transport.resume_reading()
        self.pump()

    def _replay(self, server: ServerConnection) -> None:
        """Bring a server's settings in line with this session's before its messages go on:
        one Query of SETs, pipelined ahead of them, whose answers ServerProtocol drops."""
        sql = "; ".join(
            f"SET {name} = '{value.replace(chr(39), chr(39) * 2)}'"
            for name, value in self.wanted.items()
            if server.parameters.get(name) != value
        )
        assert server.protocol is not None
        server.protocol.swallow += 1
        server.statements.batches_sent += 1  # a batch of its own, as ServerStatements counts
        server.write(Query(sql).encode())

    # -- back-pressure (called by the client's transport) ---------------------------------

    def pause_writing(self) -> None:
        """The client reads slower than its server answers (a large result, a stalled
        reader): stop reading from the server until the client catches up, so the proxy
        holds at most the transport's high-water mark of it, never the whole result."""
        self.backed_up = True
        if self.server is not None:
            self.server.throttle()

    def resume_writing(self) -> None:
        self.backed_up = False
        if self.server is not None:
            self.server.unthrottle()

    # -- server to client (called by ServerProtocol) --------------------------------------

    def rewrite_error(self, frame: bytes) -> bytes | None:
        message = decode_backend(b"E", frame[5:])
        assert isinstance(message, ErrorResponse)
        text = message.fields.get("M", "")
        for token in self.rewrites:
            if token in text:
                verdict = self.rewrites.pop(token)
                return error_response(
                    verdict.sqlstate or "42501", verdict.message,
                    hint="The statement never reached the database.",
                )  # fmt: skip
        return None

    def server_lost(self, server: ServerConnection) -> None:
        if server is self.server:
            self.server = None
            self.fatal("08006", "the database server closed the connection unexpectedly; reconnect")

    # -- endings ---------------------------------------------------------------------------

    def fatal(self, sqlstate: str, message: str) -> None:
        """Tell the client what went wrong, then close its connection."""
        if not self.closed:
            self.transport.write(error_response(sqlstate, message, severity="FATAL"))
        self.terminate()

    def terminate(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()
        self._give_back()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._give_back()

    def _give_back(self) -> None:
        """Return the server if it is clean, else close it: never reuse one mid-transaction."""
        self.on_close(self)
        if self.acquiring is not None:
            self.acquiring.cancel()
        server, self.server = self.server, None
        if server is None:
            return
        server.unthrottle()  # nobody is left to be backed up: a reset must be read
        if self.expected_ready == 0 and server.status == "I" and not self.session_mode:
            self.pool.release(server)
        elif self.expected_ready == 0 and server.status == "I":
            asyncio.get_running_loop().create_task(self._reset_and_release(server))
        else:  # mid-query or mid-transaction: its state is the gone client's, drop it
            server.close()
            self.pool.release(server)

    async def _reset_and_release(self, server: ServerConnection) -> None:
        """Session pooling: clear what the client left (SET, prepared statements, temp
        tables, LISTEN) before another client gets the connection."""
        done = asyncio.get_running_loop().create_future()
        reset = _ResetWaiter(done)
        server.attach(reset)  # type: ignore[arg-type]
        server.write(Query("DISCARD ALL").encode())
        try:
            async with asyncio.timeout(5):
                await done
        except TimeoutError:
            server.close()
        self.pool.release(server)


class _ResetWaiter(ClientEnd):
    """Stands in for a client while a released session connection runs DISCARD ALL."""

    def __init__(self, done: asyncio.Future) -> None:
        self.done = done
        self.transport = _NullTransport()
        self.rewrites = {}
        self.wanted = {}  # no settings to keep: the reset is putting them back to defaults

    def server_ready(self, status: str) -> None:
        if not self.done.done():
            self.done.set_result(status)

    def server_lost(self, server: ServerConnection | None) -> None:
        if not self.done.done():
            self.done.set_result("lost")

    def fatal(self, sqlstate: str, message: str) -> None:
        self.server_lost(None)  # the server is closed: released, it is discarded


class _NullTransport:
    """Where the answers to DISCARD ALL go."""

    def write(self, data: bytes) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass
