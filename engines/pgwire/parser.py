"""Incremental parsers: feed them whatever bytes a socket produced, take whole messages out.

Why two classes: the same type byte means different things in each direction, and only
the client side starts with untyped startup packets. ``FrontendParser`` reads what a
client sends (a server or a proxy's client side); ``BackendParser`` reads what a server
sends (a client or a proxy's server side).

Two ways to take messages out, mixable at will:

* ``next()`` (or iteration) decodes into message objects;
* ``next_raw()`` only frames: it returns ``(type_byte, raw)`` with ``raw`` the exact bytes
  received, header included, so a proxy forwards them untouched and calls ``decode_raw``
  only for the types it cares about. Framing checks lengths but not types;
* ``take_raw_until(stop_types)`` frames a whole run of messages and hands it out as one
  ``bytes``, stopping before the first message whose type the caller wants to look at:
  the cheapest way to relay rows (one copy per run instead of one object per message).

Buffering: bytes are appended to one ``bytearray`` and consumed by advancing an offset, so
taking N messages out of one big chunk copies each message once, never the rest of the
buffer. The consumed prefix is dropped when ``feed`` finds it empty or at least half of the
buffer, keeping the total work linear in the bytes fed.

Errors: any malformed input raises ``ProtocolError`` and the parser stays failed, because
after a bad length nothing later can be framed with confidence.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from typing import NoReturn

from .errors import ProtocolError
from .messages import (
    BackendMessage,
    CancelRequest,
    EncryptionResponse,
    FrontendMessage,
    GSSENCRequest,
    PasswordMessage,
    SASLInitialResponse,
    SASLResponse,
    SSLRequest,
    StartupMessage,
    StartupPacket,
    decode_backend,
    decode_frontend,
    decode_startup,
)
from .messages.authentication import _AuthResponse
from .messages.base import BACKEND_DECODERS, _describe_type, _run

__all__ = ["BackendParser", "FrontendParser"]

logger = logging.getLogger(__name__)

_HEADER = struct.Struct("!Bi")
_I32 = struct.Struct("!i")
_BYTES = [bytes([i]) for i in range(256)]  # one shared 1-byte object per type code

# Drop the consumed prefix of the buffer once it is at least this big (and half the buffer).
_COMPACT_AT = 64 * 1024

# The server refuses startup packets longer than this (MAX_STARTUP_PACKET_LENGTH) or shorter
# than a length word plus a version word.
MAX_STARTUP_PACKET = 10_000
MIN_STARTUP_PACKET = 8

# The server caps some client message types far below the general limit so that a garbage
# length word cannot make it allocate a gigabyte (PQ_SMALL_MESSAGE_LIMIT in postgres.c):
# Close, Describe, Execute, Flush, Sync, Terminate, CopyDone, CopyFail.
SMALL_MESSAGE_LIMIT = 10_000
_SMALL_FRONTEND_TYPES = b"CDEHSXcf"
# Password, SASL and GSS responses are capped at PG_MAX_AUTH_TOKEN_LENGTH.
AUTH_MESSAGE_LIMIT = 65_535

DEFAULT_FRONTEND_MAX = 64 * 1024 * 1024
DEFAULT_BACKEND_MAX = 1024 * 1024 * 1024

# The 'p' message classes: PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse.
PasswordType = type[_AuthResponse]


class _Parser:
    """Buffer, framing and error state shared by both directions."""

    side = "?"

    def __init__(self, max_message_size: int) -> None:
        if max_message_size < 5:
            raise ValueError(f"max_message_size {max_message_size} is below the 5-byte header")
        self.max_message_size = max_message_size
        self._buf = bytearray()
        self._pos = 0
        self._view: memoryview | None = None
        self._error: ProtocolError | None = None
        self._limits: dict[int, int] = {}
        self._messages = 0
        self._fed = 0

    # -- input ---------------------------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes received from the peer (any chunking: a byte, a message, many)."""
        if self._error is not None:
            self._raise_failed()
        if not data:
            return
        if self._view is not None:
            # A bytearray with an exported view cannot grow; views are ours, release them.
            self._view.release()
            self._view = None
        buf = self._buf
        pos = self._pos
        if pos:
            if pos == len(buf):
                buf.clear()
                self._pos = 0
            elif pos >= _COMPACT_AT and pos * 2 >= len(buf):
                del buf[:pos]
                self._pos = 0
        buf += data
        self._fed += len(data)

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a message."""
        return len(self._buf) - self._pos

    @property
    def failed(self) -> bool:
        return self._error is not None

    def stats(self) -> dict[str, int]:
        """Messages and bytes taken out so far, and bytes still waiting."""
        buffered = self.buffered
        return {"messages": self._messages, "bytes": self._fed - buffered, "buffered": buffered}

    # -- output --------------------------------------------------------------------------

    def __iter__(self) -> Iterator[object]:
        return self

    def __next__(self) -> object:
        message = self.next()
        if message is None:
            raise StopIteration
        return message

    def raw_messages(self) -> Iterator[tuple[bytes, bytes]]:
        """Iterate over ``next_raw()`` until no whole message is left."""
        while (item := self.next_raw()) is not None:
            yield item

    def next(self) -> object | None:  # narrowed in subclasses
        raise NotImplementedError

    def take_raw_until(self, stop_types: bytes = b"") -> bytes:
        """All whole typed messages up to the first whose type byte is in ``stop_types``
        (or the first incomplete one), as one ``bytes`` object, for forwarding in bulk.

        Returns ``b""`` if the next message is a stop type, incomplete, or an untyped
        startup packet or encryption answer: take those with ``next()``/``next_raw()``.
        A proxy relaying results calls ``take_raw_until(b"ZE")``, forwards the bytes,
        then decodes the ReadyForQuery or ErrorResponse it stopped at.
        """
        if self._error is not None:
            self._raise_failed()
        if not self._typed():
            return b""
        buf = self._buf
        start = pos = self._pos
        size = len(buf)
        limits = self._limits
        default_limit = self.max_message_size
        unpack = _HEADER.unpack_from
        count = 0
        while size - pos >= 5:
            code, length = unpack(buf, pos)
            if code in stop_types:
                break
            if not 4 <= length <= limits.get(code, default_limit):
                if pos > start:
                    break  # hand out the good messages; the next call raises
                self._bad_length(code, length)
            end = pos + 1 + length
            if end > size:
                break
            pos = end
            count += 1
        if pos == start:
            return b""
        self._pos = pos
        self._messages += count
        return self._take(start, pos)

    def next_raw(self) -> tuple[bytes, bytes] | None:
        raise NotImplementedError

    # -- internals -----------------------------------------------------------------------

    def _take(self, start: int, end: int) -> bytes:
        view = self._view
        if view is None:
            view = self._view = memoryview(self._buf)
        return view[start:end].tobytes()

    def _typed(self) -> bool:
        """True when the next bytes are a typed message (not a startup packet or answer)."""
        raise NotImplementedError

    def _frame(self) -> tuple[int, int, int] | None:
        """Find the next whole typed message: (type, start, end) in the buffer, or None."""
        buf = self._buf
        pos = self._pos
        if len(buf) - pos < 5:
            return None
        code, length = _HEADER.unpack_from(buf, pos)
        if not 4 <= length <= self._limits.get(code, self.max_message_size):
            self._bad_length(code, length)
        end = pos + 1 + length
        if end > len(buf):
            return None
        self._pos = end
        self._messages += 1
        return code, pos, end

    def _bad_length(self, code: int, length: int) -> NoReturn:
        # Checked as soon as the header is in: a garbage length must not make us wait for,
        # or buffer, a gigabyte that will never make sense.
        if length < 4:
            self._fail(
                f"message {_describe_type(code)} has length {length}; "
                "the length counts itself, so it is at least 4"
            )
        limit = self._limits.get(code, self.max_message_size)
        self._fail(
            f"message {_describe_type(code)} claims {length} bytes, more than the "
            f"{limit}-byte limit for this message type"
        )

    def _fail(self, reason: str | ProtocolError) -> NoReturn:
        error = reason if isinstance(reason, ProtocolError) else ProtocolError(reason)
        self._error = error
        logger.debug("event=protocol_error side=%s reason=%r", self.side, str(error))
        raise error

    def _raise_failed(self) -> NoReturn:
        raise ProtocolError(f"{self.side} parser failed earlier and cannot continue: {self._error}")


class FrontendParser(_Parser):
    """Reads a client's byte stream: startup packets first, then typed messages.

    The startup phase may see SSLRequest or GSSENCRequest (after which another startup
    packet follows, possibly inside TLS: feed a fresh parser with the decrypted bytes),
    a CancelRequest (the connection carries nothing else), or the StartupMessage that
    switches to typed messages. ``startup=False`` starts directly with typed messages.
    """

    side = "frontend"

    def __init__(
        self, max_message_size: int = DEFAULT_FRONTEND_MAX, *, startup: bool = True
    ) -> None:
        super().__init__(max_message_size)
        self._phase = "startup" if startup else "typed"
        self._password_type: PasswordType = PasswordMessage
        small = min(SMALL_MESSAGE_LIMIT, max_message_size)
        self._limits = {code: small for code in _SMALL_FRONTEND_TYPES}
        self._limits[ord("p")] = min(AUTH_MESSAGE_LIMIT, max_message_size)

    def _typed(self) -> bool:
        return self._phase == "typed"

    @property
    def in_startup(self) -> bool:
        """True until the StartupMessage has been taken out."""
        return self._phase == "startup"

    def expect_auth_response(self, password_type: PasswordType) -> None:
        """Say how to decode the next 'p' message, from the request the server sent:
        PasswordMessage (cleartext, MD5), SASLInitialResponse (after AuthenticationSASL),
        SASLResponse (after AuthenticationSASLContinue; set automatically after a
        SASLInitialResponse is decoded) or GSSResponse."""
        if not (
            isinstance(password_type, type)
            and issubclass(password_type, _AuthResponse)
            and password_type is not _AuthResponse
        ):
            raise TypeError(f"{password_type!r} is not a 'p' message class")
        self._password_type = password_type

    def start_encryption(self) -> None:
        """Call after answering 'S' (or 'G') to an SSLRequest (GSSENCRequest), before the
        handshake. Bytes the client sent after its request were sent in plaintext and must
        not be taken as coming from inside the encrypted channel (CVE-2021-23214): their
        presence raises ProtocolError."""
        if self._error is not None:
            self._raise_failed()
        if self.buffered:
            self._fail(
                f"client sent {self.buffered} unencrypted bytes after its encryption request "
                "and before the handshake"
            )

    def next(self) -> FrontendMessage | StartupPacket | None:
        """The next whole message, decoded, or None if more bytes are needed."""
        if self._error is not None:
            self._raise_failed()
        if self._phase != "typed":
            item = self._startup()
            return None if item is None else item[0]
        frame = self._frame()
        if frame is None:
            return None
        code, start, end = frame
        return self._decode(code, self._take(start + 5, end))

    def next_raw(self) -> tuple[bytes, bytes] | None:
        """The next whole message as ``(type_byte, raw bytes incl. header)``, or None.

        Startup packets have no type byte: their ``type_byte`` is ``b""``.
        """
        if self._error is not None:
            self._raise_failed()
        if self._phase != "typed":
            item = self._startup()
            return None if item is None else (b"", item[1])
        frame = self._frame()
        if frame is None:
            return None
        code, start, end = frame
        return _BYTES[code], self._take(start, end)

    def decode_raw(self, type_byte: bytes, raw: bytes) -> FrontendMessage | StartupPacket:
        """Decode a message previously returned by ``next_raw()``."""
        if self._error is not None:
            self._raise_failed()
        if not type_byte:
            try:
                return decode_startup(raw[4:])
            except ProtocolError as exc:
                self._fail(exc)
        return self._decode(type_byte[0], raw[5:])

    def _decode(self, code: int, payload: bytes) -> FrontendMessage:
        try:
            if code == 0x70:  # 'p': meaning depends on the authentication in progress
                message = decode_frontend(code, payload, password_type=self._password_type)
                if self._password_type is SASLInitialResponse:
                    self._password_type = SASLResponse
                return message
            return decode_frontend(code, payload)
        except ProtocolError as exc:
            self._fail(exc)

    def _startup(self) -> tuple[StartupPacket, bytes] | None:
        buf = self._buf
        pos = self._pos
        available = len(buf) - pos
        if self._phase == "closed":
            if available:
                self._fail(f"client sent {available} bytes after a CancelRequest")
            return None
        if available < 4:
            return None
        if buf[pos] == 0x16 and buf[pos + 1] == 0x03:
            # A TLS record header where a length word belongs: PostgreSQL 17's
            # sslnegotiation=direct skips the SSLRequest and starts the handshake at once.
            self._fail(
                "client started a TLS handshake without an SSLRequest (direct TLS "
                "negotiation); terminate TLS before feeding the parser"
            )
        (length,) = _I32.unpack_from(buf, pos)
        if not MIN_STARTUP_PACKET <= length <= MAX_STARTUP_PACKET:
            self._fail(
                f"startup packet length {length} is outside {MIN_STARTUP_PACKET}.."
                f"{MAX_STARTUP_PACKET} bytes"
            )
        end = pos + length
        if end > len(buf):
            return None
        raw = self._take(pos, end)
        try:
            message = decode_startup(raw[4:])
        except ProtocolError as exc:
            self._fail(exc)
        self._pos = end
        self._messages += 1
        if isinstance(message, StartupMessage):
            self._phase = "typed"
        elif isinstance(message, CancelRequest):
            self._phase = "closed"
        return message, raw


class BackendParser(_Parser):
    """Reads a server's byte stream: typed messages only.

    The one untyped thing a server sends is its single-byte answer to SSLRequest or
    GSSENCRequest; call ``expect_encryption_response()`` after sending such a request.
    """

    side = "backend"

    def __init__(self, max_message_size: int = DEFAULT_BACKEND_MAX) -> None:
        super().__init__(max_message_size)
        self._encryption_answers: bytes | None = None

    def _typed(self) -> bool:
        return self._encryption_answers is None

    def expect_encryption_response(self, request: SSLRequest | GSSENCRequest) -> None:
        """The next byte is the server's answer to ``request`` (sent just now)."""
        self._encryption_answers = b"SN" if isinstance(request, SSLRequest) else b"GN"

    def next(self) -> BackendMessage | None:
        """The next whole message, decoded, or None if more bytes are needed."""
        if self._error is not None:
            self._raise_failed()
        if self._encryption_answers is not None:
            answer = self._encryption_answer()
            if answer is not None:
                return EncryptionResponse(answer)
            if self._encryption_answers is not None:
                return None
        frame = self._frame()
        if frame is None:
            return None
        code, start, end = frame
        return self._decode(code, self._take(start + 5, end))

    def next_raw(self) -> tuple[bytes, bytes] | None:
        """The next whole message as ``(type_byte, raw bytes incl. header)``, or None.

        An answer to an encryption request comes back as ``(b"S", b"S")`` and the like.
        """
        if self._error is not None:
            self._raise_failed()
        if self._encryption_answers is not None:
            answer = self._encryption_answer()
            if answer is not None:
                return answer, answer
            if self._encryption_answers is not None:
                return None
        frame = self._frame()
        if frame is None:
            return None
        code, start, end = frame
        return _BYTES[code], self._take(start, end)

    def decode_raw(self, type_byte: bytes, raw: bytes) -> BackendMessage:
        """Decode a message previously returned by ``next_raw()``."""
        if self._error is not None:
            self._raise_failed()
        if len(raw) == 1:
            return EncryptionResponse(raw)
        return self._decode(type_byte[0], raw[5:])

    def _decode(self, code: int, payload: bytes) -> BackendMessage:
        try:
            decoder = BACKEND_DECODERS.get(code)
            if decoder is None:
                return decode_backend(code, payload)  # raises the "unknown type" error
            return _run(decoder, code, payload)  # type: ignore[return-value]
        except ProtocolError as exc:
            self._fail(exc)

    def _encryption_answer(self) -> bytes | None:
        """Consume the one-byte answer; None if not there yet or if it is an ErrorResponse."""
        buf = self._buf
        pos = self._pos
        if pos >= len(buf):
            return None
        answer = _BYTES[buf[pos]]
        allowed = self._encryption_answers or b""
        if answer == b"E":
            # Servers that do not understand the request at all answer with an
            # ErrorResponse instead; frame it as an ordinary message.
            self._encryption_answers = None
            return None
        if answer not in (allowed[:1], allowed[1:]):
            self._fail(
                f"server answered {answer!r} to an encryption request (expected one of "
                f"{', '.join(repr(bytes([a])) for a in allowed)})"
            )
        self._encryption_answers = None
        self._pos = pos + 1
        self._messages += 1
        if answer != b"N" and self.buffered:
            # Bytes after 'S' arrived before the handshake, in plaintext: a man in the
            # middle could have injected them (CVE-2021-23222).
            self._fail(f"server sent {self.buffered} unencrypted bytes after accepting encryption")
        return answer
