"""Named prepared statements under transaction pooling.

A client prepares ``P_0`` once per connection and binds it in every later transaction, but
under transaction pooling each transaction may land on a different server connection,
where ``P_0`` does not exist — or exists as another client's ``P_0`` (PgBouncer before 1.21
fails here; ``pgbench -M prepared`` shows it at once). So:

* every named statement is renamed per client (``fw<session>_<name>``) on its way to a
  server, so clients never collide;
* the proxy remembers each client's Parse, and each server connection remembers what it
  has prepared; before a Bind, Describe or Close of a statement the current server lacks,
  the proxy slips the remembered Parse in front of it;
* the server answers that injected Parse with a ParseComplete the client never asked for;
  the proxy drops exactly those, matched by position in the response stream (responses
  come in request order; an error makes the server skip to the next Sync, so the
  expectations of the rest of that batch are dropped with it).

Statements of clients that have left stay prepared on their servers until those are
recycled (``server_lifetime``); the per-client prefix keeps them from ever being reused.
"""

from __future__ import annotations

import struct

# ServerStatements is compiled: every ReadyForQuery of every transaction updates it.
from ._statements import ServerStatements

_LENGTH = struct.Struct("!I")


def frame(kind: bytes, payload: bytes) -> bytes:
    return kind + _LENGTH.pack(len(payload) + 4) + payload


class StatementRenamer:
    """One client's named statements, renamed and re-prepared as it moves between servers."""

    def __init__(self, session_id: int) -> None:
        self.prefix = f"fw{session_id}_"
        self.parses: dict[bytes, bytes] = {}  # client's name -> Parse frame under server name

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

    def rewrite(
        self, kind: bytes, message: bytes, server: ServerStatements, remember: bool = True
    ) -> list[bytes] | None:
        """The frames to send instead of ``message`` (a whole P, B, D or C message), or None
        to send it unchanged (unnamed statements, portals)."""
        payload = message[5:]
        if kind == b"P":
            name, _, rest = payload.partition(b"\0")
            if not name:
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
                return None
            return [
                *self._ensure(name, server),
                frame(b"B", portal + b"\0" + self._server_name(name) + b"\0" + rest),
            ]
        # Describe and Close: a kind byte ('S' statement, 'P' portal), then the name.
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
