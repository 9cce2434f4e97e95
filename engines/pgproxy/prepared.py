"""Prepared statements under transaction pooling.

A client prepares ``P_0`` once per connection and binds it in every later transaction, but
under transaction pooling each transaction may land on a different server connection,
where ``P_0`` does not exist — or exists as another client's ``P_0`` (PgBouncer before 1.21
fails here; ``pgbench -M prepared`` shows it at once). So:

* every named statement is renamed per client (``fw<random><session>_<name>``) on its way to
  a server, so clients never collide. The prefix is random as well as unique: the names are
  visible (``pg_prepared_statements``) to whoever shares the server connection, and a name
  another client could work out is a name it could EXECUTE or DEALLOCATE in SQL;
* the proxy remembers each client's Parse, and each server connection remembers what it
  has prepared; before a Bind, Describe or Close of a statement the current server lacks,
  the proxy slips the remembered Parse in front of it;
* the server answers that injected Parse with a ParseComplete the client never asked for;
  the proxy drops exactly those, matched by position in the response stream (responses
  come in request order; an error makes the server skip to the next Sync, so the
  expectations of the rest of that batch are dropped with it).

The unnamed statement cannot be renamed (a client's Bind of "" is the unnamed one), and each
server connection has one, left behind by whichever client parsed it last. So the proxy
remembers each client's last unnamed Parse too, and each connection records whose unnamed
statement it holds (_statements.ServerStatements ``unnamed_owner``): before a client's Bind
or Describe of the unnamed statement on a connection where it is not known to be that
client's, the proxy slips in the client's own last unnamed Parse (its ParseComplete dropped),
or, for a client that has none, a Close of the unnamed statement (its CloseComplete
dropped), so that PostgreSQL answers "unnamed prepared statement does not exist" as it would
have on the client's own connection, never with another client's statement. A Query drops
the unnamed statement, as in PostgreSQL (the session forgets the client's; the connection's
owner becomes nobody).

Statements of clients that have left stay prepared on their servers until those are
recycled (``server_lifetime``); the per-client prefix keeps them from ever being reused.
"""

from __future__ import annotations

import secrets
import struct

# ServerStatements is compiled: every ReadyForQuery of every transaction updates it.
from ._statements import ServerStatements

_LENGTH = struct.Struct("!I")


def frame(kind: bytes, payload: bytes) -> bytes:
    return kind + _LENGTH.pack(len(payload) + 4) + payload


CLOSE_UNNAMED = frame(b"C", b"S\0")  # Close of the unnamed statement


class StatementRenamer:
    """One client's prepared statements, renamed and re-prepared as it moves between
    servers; ``owner`` (the session's number, never 0) is what a server connection records
    as the owner of its unnamed statement."""

    def __init__(self, session_id: int) -> None:
        self.owner = session_id
        # 32 random bits make the names unguessable, the session's number (hex, ended by
        # the "_" no hex digit is) makes them unique among the proxy's sessions.
        self.prefix = f"fw{secrets.token_hex(4)}{session_id:x}_"
        self.parses: dict[bytes, bytes] = {}  # client's name -> Parse frame under server name
        self.unnamed: bytes | None = None  # the client's last Parse of the unnamed statement

    def _server_name(self, name: bytes) -> bytes:
        return self.prefix.encode() + name

    def _ensure(self, name: bytes, server: ServerStatements) -> list[bytes]:
        """The Parse to slip in first if this server lacks the statement."""
        server_name = self._server_name(name)
        decoded = server_name.decode(errors="surrogateescape")
        if decoded in server.prepared or name not in self.parses:
            return []
        server.prepared.add(decoded)
        server.expect(b"1", injected=True, statement=decoded)
        return [self.parses[name]]

    def _ensure_unnamed(self, server: ServerStatements) -> list[bytes]:
        """What to slip in before a Bind or Describe of the unnamed statement so that the
        server's is this client's: nothing if it is known to be, else the client's own
        last Parse of it, else (it never parsed one, or a Query dropped it) a Close."""
        if server.owns_unnamed(self.owner):
            return []
        server.claim_unnamed(self.owner)
        if self.unnamed is not None:
            server.expect(b"1", injected=True, unnamed=True)
            return [self.unnamed]
        server.expect(b"3", injected=True, unnamed=True)
        return [CLOSE_UNNAMED]

    def rewrite(
        self, kind: bytes, message: bytes, server: ServerStatements, remember: bool = True
    ) -> list[bytes] | None:
        """The frames to send instead of ``message`` (a whole P, B, D or C message), or None
        to send it unchanged (portals, and the unnamed statement once it is the client's).
        ``remember`` False for a Parse the policy refused (sent with its text replaced)."""
        payload = message[5:]
        if kind == b"P":
            name, _, rest = payload.partition(b"\0")
            if not name:
                # PostgreSQL drops the unnamed statement before it parses the new text, so
                # after this Parse the client has this statement or, if it fails, none.
                self.unnamed = bytes(message) if remember else None
                server.claim_unnamed(self.owner)
                server.expect(b"1", injected=False, unnamed=True)
                return None
            server_name = self._server_name(name)
            decoded = server_name.decode(errors="surrogateescape")
            renamed = frame(b"P", server_name + b"\0" + rest)
            out = []
            if decoded in server.prepared:  # left over on this server from an earlier Parse
                out.append(frame(b"C", b"S" + server_name + b"\0"))
                server.expect(b"3", injected=True)
            if remember:
                self.parses[name] = renamed
            server.prepared.add(decoded)
            server.expect(b"1", injected=False, statement=decoded)
            out.append(renamed)
            return out
        if kind == b"B":
            portal, _, after = payload.partition(b"\0")
            name, _, rest = after.partition(b"\0")
            if not name:
                injected = self._ensure_unnamed(server)
                return [*injected, message] if injected else None
            return [
                *self._ensure(name, server),
                frame(b"B", portal + b"\0" + self._server_name(name) + b"\0" + rest),
            ]
        # Describe and Close: a kind byte ('S' statement, 'P' portal), then the name.
        if payload == b"S\0":  # the unnamed statement
            if kind == b"D":
                injected = self._ensure_unnamed(server)
                return [*injected, message] if injected else None
            # Closed: none is left, on the server as for the client.
            self.unnamed = None
            server.claim_unnamed(self.owner)
            server.expect(b"3", injected=False, unnamed=True)
            return None
        if payload[:1] != b"S" or len(payload) < 3:
            if kind == b"C":
                server.expect(b"3", injected=False)
            return None
        name = payload[1:-1]
        renamed = frame(kind, b"S" + self._server_name(name) + b"\0")
        if kind == b"D":
            return [*self._ensure(name, server), renamed]
        out = self._ensure(name, server)
        self.parses.pop(name, None)
        server.prepared.discard(self._server_name(name).decode(errors="surrogateescape"))
        server.expect(b"3", injected=False)
        return [*out, renamed]
