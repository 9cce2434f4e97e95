"""What the message modules share: wire helpers, base classes and the decoder tables.

Why the tables are filled by a decorator: a message class is the one place that knows its
type byte and how to read its body, so ``@typed(b"Q")`` on the class files ``Query.decode``
in the table of each direction the class is sent in, and nothing else lists message classes.
The direction comes from the class's bases (``FrontendMessage``, ``BackendMessage``), which
also stand in annotations and ``isinstance`` for "any message from that side". ``decode_*``
looks a type byte up in these plain dicts and calls the decoder found: the same single dict
lookup and call per message as a hand-written table, with no registry object in between.

The helpers are module-level functions and ``struct.Struct`` objects that each message
module binds as its own globals, so an ``encode()`` or ``decode()`` reaches them as it did in
one module. The objects whose methods are called (the ``Struct``s, the decoder tables) are
bound by assignment (``_I32 = base._I32``), not ``from .base import``: Python 3.11 compiles
``name.method(...)`` on an imported name as a module attribute load rather than LOAD_METHOD,
which measured about 40 ns slower per call (``Execute.encode`` 375 -> 455 ns).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import ClassVar, Self, TypeVar

from ..errors import ProtocolError

__all__ = [
    "CANCEL_REQUEST_CODE",
    "GSSENC_REQUEST_CODE",
    "PROTOCOL_3_0",
    "SSL_REQUEST_CODE",
    "BackendMessage",
    "FrontendMessage",
]

# Protocol version 3.0 as sent in a StartupMessage: major in the high 16 bits.
PROTOCOL_3_0 = 3 << 16
# The "versions" 1234.5678/5679/5680 are magic codes, chosen to be no real protocol version.
CANCEL_REQUEST_CODE = (1234 << 16) | 5678
SSL_REQUEST_CODE = (1234 << 16) | 5679
GSSENC_REQUEST_CODE = (1234 << 16) | 5680

_I32 = struct.Struct("!i")
_U32 = struct.Struct("!I")
_U16 = struct.Struct("!H")
_I16 = struct.Struct("!h")
_NULL = b"\xff\xff\xff\xff"  # length -1: SQL NULL

# Protocol 3.2 (PostgreSQL 18) made the cancel key variable: 4 to 256 bytes; 3.0 uses 4.
MIN_CANCEL_KEY = 4
MAX_CANCEL_KEY = 256


# --- encoding helpers ------------------------------------------------------------------


def _frame(type_code: bytes, body: bytes) -> bytes:
    return type_code + _I32.pack(len(body) + 4) + body


def _cstr(value: str) -> bytes:
    data = value.encode("utf-8", "surrogateescape")
    if b"\0" in data:
        # A NUL would end the string early and desynchronise the peer's parser.
        raise ProtocolError(f"string {value[:40]!r} contains a NUL byte and cannot be sent")
    return data + b"\0"


def _bcstr(value: bytes | str) -> bytes:
    if isinstance(value, str):
        return _cstr(value)
    if b"\0" in value:
        raise ProtocolError("byte string contains a NUL byte and cannot be sent")
    return bytes(value) + b"\0"


def _count(n: int, what: str) -> bytes:
    if n > 0xFFFF:
        raise ProtocolError(f"too many {what}: {n} (the protocol allows 65535)")
    return _U16.pack(n)


def _int16s(values: list[int], what: str) -> bytes:
    return _count(len(values), what) + struct.pack(f"!{len(values)}h", *values)


def _values(values: list[bytes | None], what: str) -> list[bytes]:
    parts = [_count(len(values), what)]
    append = parts.append
    for value in values:
        if value is None:
            append(_NULL)
        else:
            append(_I32.pack(len(value)))
            append(bytes(value))
    return parts


# --- decoding helpers ------------------------------------------------------------------


def _read_cstr(data: bytes, pos: int) -> tuple[str, int]:
    end = data.find(0, pos)
    if end < 0:
        raise ProtocolError("string field is missing its NUL terminator")
    return data[pos:end].decode("utf-8", "surrogateescape"), end + 1


def _read_bcstr(data: bytes, pos: int) -> tuple[bytes, int]:
    end = data.find(0, pos)
    if end < 0:
        raise ProtocolError("string field is missing its NUL terminator")
    return data[pos:end], end + 1


def _read_int16s(data: bytes, pos: int) -> tuple[list[int], int]:
    (n,) = _U16.unpack_from(data, pos)
    pos += 2
    values = list(struct.unpack_from(f"!{n}h", data, pos))
    return values, pos + 2 * n


def _read_values(data: bytes, pos: int) -> tuple[list[bytes | None], int]:
    (n,) = _U16.unpack_from(data, pos)
    pos += 2
    values: list[bytes | None] = []
    append = values.append
    unpack = _I32.unpack_from
    size_total = len(data)
    for _ in range(n):
        (size,) = unpack(data, pos)
        pos += 4
        if size < 0:
            if size != -1:
                raise ProtocolError(f"invalid value length {size} (only -1, NULL, is negative)")
            append(None)
        else:
            end = pos + size
            if end > size_total:
                raise ProtocolError(f"value of {size} bytes runs past the end of the message")
            append(data[pos:end])
            pos = end
    return values, pos


def _done(data: bytes, pos: int) -> None:
    if pos != len(data):
        raise ProtocolError(f"{len(data) - pos} unexpected bytes after the last field")


def _empty(data: bytes) -> None:
    if data:
        raise ProtocolError(f"message should be empty but carries {len(data)} bytes")


# --- base classes --------------------------------------------------------------------------


class _Message:
    """A typed message: a wire type byte, ``encode()`` and a ``decode(payload)`` classmethod."""

    __slots__ = ()
    type_code: ClassVar[bytes]

    def encode(self) -> bytes:
        raise NotImplementedError


class FrontendMessage(_Message):
    """Any typed message a client sends (CopyData and CopyDone are also backend messages).

    A base class rather than a union of the classes, so that no list of them is kept by
    hand: ``isinstance(m, FrontendMessage)`` and annotations work as they did with a union.
    """

    __slots__ = ()


class BackendMessage(_Message):
    """Any message a server sends: a typed one, or the one-byte ``EncryptionResponse``."""

    __slots__ = ()


class _NoBody(_Message):
    """A typed message whose body is empty (Sync, Flush, ParseComplete, ...)."""

    __slots__ = ()

    def encode(self) -> bytes:
        return self.type_code + b"\0\0\0\x04"

    @classmethod
    def decode(cls, data: bytes) -> Self:
        _empty(data)
        return cls()


class _Bytes(_Message):
    """A typed message whose body is opaque bytes (CopyData, SASLResponse, ...)."""

    __slots__ = ()
    data: bytes

    def encode(self) -> bytes:
        return _frame(self.type_code, bytes(self.data))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        return cls(data)  # type: ignore[call-arg]


# --- decoder tables ----------------------------------------------------------------------

_Decoder = Callable[[bytes], object]

# Type byte (as an int) -> decoder, filled by @typed as the message modules are imported.
FRONTEND_DECODERS: dict[int, _Decoder] = {}
BACKEND_DECODERS: dict[int, _Decoder] = {}
_DIRECTIONS = ((FrontendMessage, FRONTEND_DECODERS), (BackendMessage, BACKEND_DECODERS))

_M = TypeVar("_M", bound=type[_Message])


def typed(type_code: bytes) -> Callable[[_M], _M]:
    """Class decorator (outermost, so it sees the slotted class ``@dataclass`` returns): set
    ``type_code`` and file ``cls.decode`` under it in the table of each direction whose base
    the class has. A type byte taken twice in one direction is an error at import time."""

    def register(cls: _M) -> _M:
        tables = [table for side, table in _DIRECTIONS if issubclass(cls, side)]
        if not tables:
            raise TypeError(f"{cls.__name__} is neither a FrontendMessage nor a BackendMessage")
        for table in tables:
            if (taken := table.get(type_code[0])) is not None:
                owner = getattr(taken, "__self__", taken)  # the class whose decode it is
                raise TypeError(f"type {type_code!r} of {cls.__name__} is taken by {owner}")
        cls.type_code = type_code
        for table in tables:
            table[type_code[0]] = cls.decode  # type: ignore[attr-defined]
        return cls

    return register


# --- dispatch helpers ----------------------------------------------------------------------


def _type_int(type_code: bytes | int) -> int:
    if isinstance(type_code, int):
        return type_code
    if len(type_code) != 1:
        raise ProtocolError(f"a message type is one byte, not {type_code!r}")
    return type_code[0]


def _describe_type(code: int) -> str:
    char = chr(code)
    return repr(char) if char.isprintable() else f"0x{code:02x}"


def _run(decoder: _Decoder, code: int, data: bytes) -> object:
    try:
        return decoder(data)
    except ProtocolError as exc:
        raise ProtocolError(f"malformed message {_describe_type(code)}: {exc}") from None
    except (struct.error, IndexError):
        raise ProtocolError(
            f"truncated message {_describe_type(code)}: its {len(data)}-byte body ends "
            "before its last field"
        ) from None
