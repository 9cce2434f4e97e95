"""The typed messages a client sends: simple and extended query, COPY and the fast-path
function call (the authentication responses, type 'p', are in ``authentication``).

Why each class is decorated ``@typed(b"...")``: that files its ``decode`` in the frontend
decoder table (see ``base``), so ``decode_frontend`` needs no list of classes. CopyData and
CopyDone live here although both sides send them: their two bases file them in both tables.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Self

from ..errors import ProtocolError
from . import base
from .authentication import PasswordMessage, _AuthResponse
from .base import (
    BackendMessage,
    FrontendMessage,
    _Bytes,
    _count,
    _cstr,
    _describe_type,
    _done,
    _frame,
    _int16s,
    _NoBody,
    _read_cstr,
    _read_int16s,
    _read_values,
    _run,
    _type_int,
    _values,
    typed,
)

# Assigned, not imported, so that their method calls stay fast: see base's docstring.
_I16 = base._I16
_I32 = base._I32
_U16 = base._U16
_U32 = base._U32
FRONTEND_DECODERS = base.FRONTEND_DECODERS

__all__ = [
    "Bind",
    "Close",
    "CopyData",
    "CopyDone",
    "CopyFail",
    "Describe",
    "Execute",
    "Flush",
    "FunctionCall",
    "Parse",
    "Query",
    "Sync",
    "Terminate",
    "decode_frontend",
]


# --- simple and extended query -----------------------------------------------------------


@typed(b"Q")
@dataclass(slots=True)
class Query(FrontendMessage):
    """Simple query: one string that may hold several statements."""

    query: str

    def encode(self) -> bytes:
        return _frame(b"Q", _cstr(self.query))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        query, pos = _read_cstr(data, 0)
        _done(data, pos)
        return cls(query)


@typed(b"P")
@dataclass(slots=True)
class Parse(FrontendMessage):
    """Extended protocol: prepare ``query`` as statement ``statement`` ("" is unnamed);
    ``param_types`` are type OIDs, 0 meaning "let the server infer"."""

    statement: str
    query: str
    param_types: list[int] = field(default_factory=list)

    def encode(self) -> bytes:
        types = self.param_types
        body = (
            _cstr(self.statement)
            + _cstr(self.query)
            + _count(len(types), "parameter types")
            + struct.pack(f"!{len(types)}I", *types)
        )
        return _frame(b"P", body)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        statement, pos = _read_cstr(data, 0)
        query, pos = _read_cstr(data, pos)
        (n,) = _U16.unpack_from(data, pos)
        types = list(struct.unpack_from(f"!{n}I", data, pos + 2))
        _done(data, pos + 2 + 4 * n)
        return cls(statement, query, types)


@typed(b"B")
@dataclass(slots=True)
class Bind(FrontendMessage):
    """Extended protocol: bind parameter values to a statement, creating a portal.

    ``param_formats`` / ``result_formats``: empty means all text, one entry applies to all,
    otherwise one per parameter/column (0 text, 1 binary).
    """

    portal: str = ""
    statement: str = ""
    param_formats: list[int] = field(default_factory=list)
    params: list[bytes | None] = field(default_factory=list)
    result_formats: list[int] = field(default_factory=list)

    def encode(self) -> bytes:
        parts = [
            _cstr(self.portal),
            _cstr(self.statement),
            _int16s(self.param_formats, "parameter formats"),
        ]
        parts += _values(self.params, "parameters")
        parts.append(_int16s(self.result_formats, "result formats"))
        return _frame(b"B", b"".join(parts))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        portal, pos = _read_cstr(data, 0)
        statement, pos = _read_cstr(data, pos)
        param_formats, pos = _read_int16s(data, pos)
        params, pos = _read_values(data, pos)
        result_formats, pos = _read_int16s(data, pos)
        _done(data, pos)
        return cls(portal, statement, param_formats, params, result_formats)


def _check_kind(kind: str, what: str) -> None:
    if kind not in ("S", "P"):
        raise ProtocolError(f"{what} target must be 'S' (statement) or 'P' (portal), not {kind!r}")


@dataclass(slots=True)
class _Target(FrontendMessage):
    """A message naming a prepared statement ('S') or a portal ('P'): Describe, Close."""

    kind: str = "S"
    name: str = ""

    def encode(self) -> bytes:
        _check_kind(self.kind, type(self).__name__)
        return _frame(self.type_code, self.kind.encode() + _cstr(self.name))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        kind = chr(data[0])
        _check_kind(kind, cls.__name__)
        name, pos = _read_cstr(data, 1)
        _done(data, pos)
        return cls(kind, name)


@typed(b"D")
@dataclass(slots=True)
class Describe(_Target):
    """Ask for a statement's ('S') or portal's ('P') parameter and row descriptions."""


@typed(b"E")
@dataclass(slots=True)
class Execute(FrontendMessage):
    """Run a portal; ``max_rows`` 0 means no limit (else PortalSuspended after that many)."""

    portal: str = ""
    max_rows: int = 0

    def encode(self) -> bytes:
        return _frame(b"E", _cstr(self.portal) + _I32.pack(self.max_rows))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        portal, pos = _read_cstr(data, 0)
        (max_rows,) = _I32.unpack_from(data, pos)
        _done(data, pos + 4)
        return cls(portal, max_rows)


@typed(b"C")
@dataclass(slots=True)
class Close(_Target):
    """Close a prepared statement ('S') or portal ('P')."""


@typed(b"S")
@dataclass(slots=True)
class Sync(_NoBody, FrontendMessage):
    """End of an extended-protocol batch: commit or roll back, then ReadyForQuery."""


@typed(b"H")
@dataclass(slots=True)
class Flush(_NoBody, FrontendMessage):
    """Ask the server to send what it has buffered, without ending the batch."""


@typed(b"X")
@dataclass(slots=True)
class Terminate(_NoBody, FrontendMessage):
    """Client is closing the connection."""


# --- COPY and the fast path --------------------------------------------------------------


@typed(b"d")
@dataclass(slots=True)
class CopyData(_Bytes, FrontendMessage, BackendMessage):
    """A chunk of COPY data (both directions)."""

    data: bytes


@typed(b"c")
@dataclass(slots=True)
class CopyDone(_NoBody, FrontendMessage, BackendMessage):
    """End of COPY data (both directions)."""


@typed(b"f")
@dataclass(slots=True)
class CopyFail(FrontendMessage):
    """Client aborts a COPY FROM STDIN with an error message."""

    message: str

    def encode(self) -> bytes:
        return _frame(b"f", _cstr(self.message))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        message, pos = _read_cstr(data, 0)
        _done(data, pos)
        return cls(message)


@typed(b"F")
@dataclass(slots=True)
class FunctionCall(FrontendMessage):
    """Legacy fast-path function call by OID (a proxy usually passes it through raw)."""

    function_oid: int
    arg_formats: list[int] = field(default_factory=list)
    args: list[bytes | None] = field(default_factory=list)
    result_format: int = 0

    def encode(self) -> bytes:
        parts = [_U32.pack(self.function_oid), _int16s(self.arg_formats, "argument formats")]
        parts += _values(self.args, "arguments")
        parts.append(_I16.pack(self.result_format))
        return _frame(b"F", b"".join(parts))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        (oid,) = _U32.unpack_from(data, 0)
        formats, pos = _read_int16s(data, 4)
        args, pos = _read_values(data, pos)
        (result_format,) = _I16.unpack_from(data, pos)
        _done(data, pos + 2)
        return cls(oid, formats, args, result_format)


# --- dispatch ----------------------------------------------------------------------------


def decode_frontend(
    type_code: bytes | int,
    payload: bytes,
    *,
    password_type: type[_AuthResponse] = PasswordMessage,
) -> FrontendMessage:
    """Decode a typed message from a client, given its type byte and body (no header).

    ``password_type`` says how to read a 'p' message, which depends on the authentication
    request the server sent (cleartext/MD5, SASL initial, SASL continue, GSS).
    """
    code = _type_int(type_code)
    if code == 0x70:  # 'p'
        return _run(password_type.decode, code, bytes(payload))  # type: ignore[attr-defined,return-value]
    decoder = FRONTEND_DECODERS.get(code)
    if decoder is None:
        raise ProtocolError(f"unknown frontend message type {_describe_type(code)}")
    return _run(decoder, code, bytes(payload))  # type: ignore[return-value]
