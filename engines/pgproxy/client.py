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
ErrorResponse into its own, SQLSTATE 42501, naming the rule. Every Bind is checked too
(``check_bind``, with its values: a blocked one becomes a Parse that fails with the token),
and every FunctionCall (``check_function_call``: a blocked one becomes a Query of the token).
A verdict may also rewrite the statement (``sql``), hold what follows until the statement
has completed (``holds``: it may change how the server reads the next messages), or not be
ready yet (``pending``: the session stops reading and forwarding at that message until the
future is done, then asks again).

What one client leaves on a server connection never reaches the next client. A server goes
back to the pool only at a ReadyForQuery, idle, that answers the last message the client
sent: extended-protocol messages sent after the last Sync (``unsynced``) keep it, since
PostgreSQL runs them in an implicit transaction that only the next Sync ends. A client
that leaves with such messages outstanding, or a batch unanswered, or a transaction open,
has its server connection closed (PostgreSQL then rolls back whatever it left), rather
than synced and reused: the proxy never commits what the client did not ask to commit. The
unnamed prepared statement, one per server connection, is re-parsed or closed before a
client binds it where it may be another client's (prepared.py).

Why one file past 500 lines: the message loop (``pump``) and the verdicts it acts on
(Query, Parse, Bind, FunctionCall; holds, pending checks, rewrites) are one state machine
over the same buffer and server; split, each half would reach into the other's state.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import struct
from collections.abc import Callable

from engines.pgwire import (
    ErrorResponse,
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
from .prepared import StatementRenamer, frame
from .server import ServerConnection, ServerError
from .verdict import ALLOWED

_HEADER = struct.Struct("!cI")
_UINT16 = struct.Struct("!H")
_INT32 = struct.Struct("!i")
_OID = struct.Struct("!I")
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
    once), ``max_message_size`` (a longer message ends the session). A proxy's subclass may
    name ``audit`` (the logger of blocked statements) and ``blocked_marker`` (of the deliberate
    syntax error a blocked statement becomes, seen in the server's log) after itself.
    """

    audit = logging.getLogger("engines.pgproxy.audit")
    blocked_marker = "PROXY_BLOCKED_"

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
        # A Parse or Bind whose verdict holds: the hold starts at the end of its batch (the
        # next Sync or Query), the first point at which a ReadyForQuery is owed.
        self.hold_at_sync = False
        # The tracked settings this session should see (TRACKED_PARAMETERS), kept in step with
        # the server's ParameterStatus reports by ServerProtocol.
        self.wanted = wanted or {}

    # -- client to server (after ClientCore.data_received) ------------------------------

    def pump(self) -> None:
        """Forward every complete message in the buffer; borrow a server first if needed.

        Nothing goes on while a held statement's ReadyForQuery (``holding``) or a verdict
        (``pending``) is awaited: _server_ready and _verdict_ready pump again."""
        if self.holding or self.pending is not None:
            return
        buffer = self.buffer
        size = len(buffer)
        end = start = 0
        parts: list[bytes | memoryview] = []
        view = memoryview(buffer)
        renamer = self.renamer
        unsynced = self.unsynced
        hold = False
        waiting = None
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
                self.unsynced = unsynced  # what the server got decides what becomes of it
                self.terminate()
                return
            if self.server is None:
                server = self.pool.try_acquire()
                if server is None:
                    break  # _borrow() below waits for one
                self.attach(server)
            out = None  # the frames to send in place of this message, if any
            if kind == b"d" or kind == b"c" or kind == b"f":
                pass  # COPY data, done, fail: part of the statement that asked for them
            elif kind == b"S":
                self.sent_batch()
                unsynced = False
                hold = self.hold_at_sync
            elif kind == b"E" or kind == b"H":
                unsynced = True
            elif kind == b"Q" or kind == b"P" or kind == b"B" or kind == b"F":
                message = buffer[end:frame_end]
                if kind == b"B":
                    verdict, replacement = self._check_bind(message)
                elif kind == b"F":
                    verdict, replacement = self._check_function_call(message)
                else:
                    verdict, replacement = self._check(kind, message)
                if self.closed:
                    return
                if verdict.pending is not None:
                    waiting = verdict.pending  # this message, and all after it, wait
                    break
                statements = self.server.statements
                if replacement is not None:
                    out = [replacement]
                if kind == b"Q" or kind == b"F":
                    # Each its own batch, answered by a ReadyForQuery; either ends the
                    # implicit transaction of extended-protocol messages before it.
                    self.sent_batch()
                    unsynced = False
                    hold = verdict.holds or self.hold_at_sync
                    if kind == b"Q" and renamer is not None:
                        renamer.unnamed = None  # a Query drops the client's unnamed statement
                    if kind == b"Q" or replacement is not None:  # a Query was sent
                        statements.unnamed_owner = 0  # ... and the server's
                else:
                    unsynced = True
                    if verdict.holds:
                        self.hold_at_sync = True
                    if renamer is not None and (kind == b"P" or replacement is None):
                        renamed = renamer.rewrite(
                            kind, message if replacement is None else replacement, statements,
                            remember=verdict.allowed,
                        )  # fmt: skip
                        if renamed is not None:
                            out = renamed
            elif kind == b"D" or kind == b"C":
                unsynced = True
                if kind == b"C" and buffer[end + 5 : end + 6] == b"S":
                    self.policy.forget(buffer[end + 6 : frame_end - 1])  # the client's name
                if renamer is not None:
                    out = renamer.rewrite(kind, buffer[end:frame_end], self.server.statements)
            if out is not None:
                parts.append(view[start:end])
                parts.extend(out)
                start = frame_end
            end = frame_end
            if hold:
                break  # what follows waits for the held statement's ReadyForQuery
        parts.append(view[start:end])
        self._send(parts)
        self.unsynced = unsynced
        if renamer is not None:
            self.has_unnamed = renamer.unnamed is not None
        self.buffer = buffer[end:]
        if hold:
            self.hold_at_sync = False
            self.holding = True
            self.transport.pause_reading()
        elif waiting is not None:
            self._wait_for(waiting)
        elif self.server is None and len(self.buffer) >= 5 and not self.closed:
            self._borrow()

    def _send(self, parts: list[bytes | memoryview]) -> None:
        if self.server is not None:
            data = b"".join(parts)
            if data:
                self.server.write(data)

    # -- the policy's verdicts ---------------------------------------------------------------

    def _guard(self, kind: bytes, frame: bytes) -> bytes | None:
        """The hot path's Query the policy did not allow outright (ClientCore's contract):
        the message to send instead, None to send it as it came, b"" if the session ended.
        A verdict not ready leaves it in the buffer (``pending``); one that holds stops
        what follows it."""
        verdict, replacement = self._check(kind, frame)
        if self.closed:
            return b""
        if verdict.pending is not None:
            self._wait_for(verdict.pending)
        elif verdict.holds and kind == b"Q":
            self.holding = True  # from once it has gone on (the caller sends it)
            self.transport.pause_reading()
        elif verdict.holds:
            self.hold_at_sync = True
        return replacement

    def _check(self, kind: bytes, message: bytes) -> tuple[object, bytes | None]:
        """The policy's verdict on a whole Query or Parse ``message`` and what to send in its
        place: None to send it as it came; the statement the policy rewrote it to (allowed,
        with ``sql``); a deliberate syntax error carrying a token (blocked). A malformed
        message ends the session: (None, b"")."""
        try:
            if kind == b"Q":  # slice the text out rather than decode a message
                if message[-1] != 0:
                    raise ValueError("query string is not NUL-terminated")
                sql = message[5:-1]
                verdict = self.policy.check(sql)
            else:
                name_end = message.index(b"\0", 5)
                sql_end = message.index(b"\0", name_end + 1)
                sql = message[name_end + 1 : sql_end]
                verdict = self.policy.check(sql, message[5:name_end])
            if verdict.pending is not None:
                return verdict, None
            if verdict.allowed:
                text = verdict.sql
                if text is None:
                    return verdict, None
                if kind == b"Q":
                    return verdict, frame(b"Q", text + b"\0")
                # The client's statement name and parameter types around the policy's text.
                return verdict, frame(b"P", message[5 : name_end + 1] + text + message[sql_end:])
            decode_frontend(kind, message[5:])  # PostgreSQL would reject it the same way
        except (ValueError, PgWireError) as exc:
            self.fatal("08P01", f"malformed {kind.decode()} message: {exc}")
            return None, b""
        token = self._blocked(verdict, "sql", sql[:500].decode(errors="replace"))
        if kind == b"Q":
            return verdict, frame(b"Q", token + b"\0")
        return verdict, frame(b"P", message[5 : name_end + 1] + token + message[sql_end:])

    def _check_bind(self, message: bytes) -> tuple[object, bytes | None]:
        """The policy's verdict on a whole Bind ``message`` (its statement as the client
        named it, its values, one format per value) and what to send in its place: None, or
        for a blocked one, a Parse that fails with a token. Malformed: (None, b"")."""
        portal_end = message.find(b"\0", 5)
        name_end = message.find(b"\0", portal_end + 1) if portal_end > 0 else -1
        if name_end > 0 and not self.policy.checks_bind(message[portal_end + 1 : name_end]):
            # Nothing waits for this statement's values (pgbench -M prepared, most Binds):
            # no decoding; a malformed Bind is the server's to refuse, as without a proxy.
            return ALLOWED, None
        try:
            statement, values, formats = _bind_values(message)
            verdict = self.policy.check_bind(statement, values, formats)
        except (ValueError, struct.error) as exc:
            self.fatal("08P01", f"malformed B message: {exc}")
            return None, b""
        if verdict.pending is not None or verdict.allowed:
            return verdict, None
        token = self._blocked(verdict, "bind", statement.decode(errors="replace"))
        # A Parse of a statement the token names, its text the token: a syntax error, raised
        # before any statement name is looked at, so nothing is created or dropped (the
        # unnamed statement stays whatever it was), and PostgreSQL answers it in place of
        # the BindComplete and skips the rest of the batch (the Execute) to the Sync.
        return verdict, frame(b"P", token + b"\0" + token + b"\0\0\0")

    def _check_function_call(self, message: bytes) -> tuple[object, bytes | None]:
        """The policy's verdict on a whole FunctionCall ``message`` (by the function's OID)
        and what to send in its place: None, or for a blocked one, a Query of the token,
        answered like the call with an error and a ReadyForQuery. Malformed: (None, b"")."""
        try:
            if len(message) < 9:
                raise ValueError("no function OID")
            (oid,) = _OID.unpack_from(message, 5)
            verdict = self.policy.check_function_call(oid)
        except (ValueError, struct.error) as exc:
            self.fatal("08P01", f"malformed F message: {exc}")
            return None, b""
        if verdict.pending is not None or verdict.allowed:
            return verdict, None
        token = self._blocked(verdict, "function", oid)
        return verdict, frame(b"Q", token + b"\0")

    def _blocked(self, verdict: object, what: str, detail: object) -> bytes:
        """A token for a blocked message, whose ErrorResponse rewrite_error will replace with
        the verdict's; logged for the audit."""
        token = f"{self.blocked_marker}{next(_tokens)}"
        self.rewrites[token] = verdict
        self.audit.warning(
            "event=blocked rule=%s user=%s database=%s %s=%r",
            verdict.rule, self.user, self.pool.database.name, what, detail,
        )  # fmt: skip
        return token.encode()

    def _wait_for(self, future: asyncio.Future) -> None:
        """A verdict not ready (a statement parsed off the event loop): the message it is
        for waits in the buffer with all after it, the client is not read meanwhile, and
        once ``future`` is done pump() asks the policy again, which then knows."""
        self.pending = future
        self.transport.pause_reading()
        future.add_done_callback(self._verdict_ready)

    def _verdict_ready(self, future: asyncio.Future) -> None:
        if not future.cancelled():
            future.exception()  # retrieved here; the policy, asked again, has the answer
        if self.pending is not future:
            return  # the session ended
        self.pending = None
        if self.closed:
            return
        self.resume()
        if self.acquiring is None:
            self.pump()

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
        server.statements.unnamed_owner = 0  # a Query drops the unnamed statement
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
        """Return the server if it is clean, else close it: never reuse one mid-transaction.

        Clean is idle, every batch answered, and no extended-protocol message sent since the
        last Sync: those run in an implicit transaction (an INSERT's row, a SET LOCAL, a
        lock) that only a Sync ends, by committing it. The proxy does not send that Sync for
        a client that left without it: it closes the connection, and PostgreSQL rolls back."""
        self.on_close(self)
        if self.acquiring is not None:
            self.acquiring.cancel()
        self.pending = None  # a verdict still coming is for no one now
        server, self.server = self.server, None
        if server is None:
            return
        server.unthrottle()  # nobody is left to be backed up: a reset must be read
        clean = self.expected_ready == 0 and server.status == "I" and not self.unsynced
        if clean and not self.session_mode:
            self.pool.release(server)
        elif clean:
            asyncio.get_running_loop().create_task(self._reset_and_release(server))
        else:  # mid-batch, mid-query or mid-transaction: its state is the gone client's
            server.close()
            self.pool.release(server)

    async def _reset_and_release(self, server: ServerConnection) -> None:
        """Session pooling: clear what the client left (SET, prepared statements, temp
        tables, LISTEN) before another client gets the connection."""
        done = asyncio.get_running_loop().create_future()
        reset = _ResetWaiter(done)
        server.attach(reset)  # type: ignore[arg-type]
        server.statements.batches_sent += 1  # its ReadyForQuery ends a batch, as counted
        server.statements.unnamed_owner = 0  # a Query drops the unnamed statement
        server.write(Query("DISCARD ALL").encode())
        try:
            async with asyncio.timeout(5):
                await done
        except TimeoutError:
            server.close()
        self.pool.release(server)


def _bind_values(message: bytes) -> tuple[bytes, list[bytes | None], list[int]]:
    """A whole Bind's statement (the client's name, b"" for the unnamed one), its parameter
    values (None for NULL) and the format of each (0 text, 1 binary). Format codes follow
    the protocol's rule: none means every value is text, one applies to every value, else
    there is one per value."""
    portal_end = message.index(b"\0", 5)
    name_end = message.index(b"\0", portal_end + 1)
    statement = message[portal_end + 1 : name_end]
    pos = name_end + 1
    (count,) = _UINT16.unpack_from(message, pos)
    codes = struct.unpack_from(f"!{count}h", message, pos + 2)
    pos += 2 + 2 * count
    (nvalues,) = _UINT16.unpack_from(message, pos)
    pos += 2
    size = len(message)
    values: list[bytes | None] = []
    for _ in range(nvalues):
        (length,) = _INT32.unpack_from(message, pos)
        pos += 4
        if length == -1:
            values.append(None)
            continue
        if length < 0 or pos + length > size:
            raise ValueError(f"a parameter value of {length} bytes")
        values.append(message[pos : pos + length])
        pos += length
    (results,) = _UINT16.unpack_from(message, pos)
    if pos + 2 + 2 * results != size:
        raise ValueError("its length does not match its contents")
    if count == 0:
        formats = [0] * nvalues
    elif count == 1:
        formats = [codes[0]] * nvalues
    elif count == nvalues:
        formats = list(codes)
    else:
        raise ValueError(f"{count} parameter formats for {nvalues} parameters")
    if any(code != 0 and code != 1 for code in formats):
        raise ValueError(f"unsupported parameter format code in {formats}")
    return statement, values, formats


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
