"""The typed messages a server sends after authentication: session state, query results,
errors and notices, the COPY responses (the requests, type 'R', are in ``authentication``).

Why each class is decorated ``@typed(b"...")``: that files its ``decode`` in the backend
decoder table (see ``base``), so ``decode_backend`` needs no list of classes.

About 500 lines because the server speaks about thirty message types after login; they are
one direction of one protocol, already apart from the startup and authentication exchanges.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import NamedTuple, Self

from ..errors import ProtocolError
from . import base
from .base import (
    _NULL,
    MAX_CANCEL_KEY,
    MIN_CANCEL_KEY,
    BackendMessage,
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
_I32 = base._I32
_U16 = base._U16
BACKEND_DECODERS = base.BACKEND_DECODERS

__all__ = [
    "FIELD_CODES",
    "BackendKeyData",
    "BindComplete",
    "CloseComplete",
    "CommandComplete",
    "CopyBothResponse",
    "CopyInResponse",
    "CopyOutResponse",
    "DataRow",
    "EmptyQueryResponse",
    "ErrorResponse",
    "FieldDescription",
    "FunctionCallResponse",
    "NegotiateProtocolVersion",
    "NoData",
    "NoticeResponse",
    "NotificationResponse",
    "ParameterDescription",
    "ParameterStatus",
    "ParseComplete",
    "PortalSuspended",
    "ReadyForQuery",
    "RowDescription",
    "decode_backend",
    "error_response",
]

_FIELD = struct.Struct("!IhIhih")  # RowDescription: everything after the field name


# --- session state -----------------------------------------------------------------------


@typed(b"S")
@dataclass(slots=True)
class ParameterStatus(BackendMessage):
    """A run-time parameter the client should know (server_version, client_encoding, ...)."""

    name: str
    value: str

    def encode(self) -> bytes:
        return _frame(b"S", _cstr(self.name) + _cstr(self.value))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        name, pos = _read_cstr(data, 0)
        value, pos = _read_cstr(data, pos)
        _done(data, pos)
        return cls(name, value)


@typed(b"K")
@dataclass(slots=True)
class BackendKeyData(BackendMessage):
    """Process id and secret key the client needs to send a CancelRequest later.

    ``secret_key`` is bytes: 4 bytes in protocol 3.0, up to 256 since protocol 3.2.
    """

    process_id: int
    secret_key: bytes

    def encode(self) -> bytes:
        return _frame(b"K", _I32.pack(self.process_id) + bytes(self.secret_key))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        (pid,) = _I32.unpack_from(data, 0)
        key = data[4:]
        if not MIN_CANCEL_KEY <= len(key) <= MAX_CANCEL_KEY:
            raise ProtocolError(f"BackendKeyData secret key of {len(key)} bytes (4 to 256)")
        return cls(pid, key)


@typed(b"Z")
@dataclass(slots=True)
class ReadyForQuery(BackendMessage):
    """Server is idle; ``status`` is 'I' (idle), 'T' (in transaction) or 'E' (failed
    transaction). A pooler may reuse the server connection only when it is 'I'."""

    status: str = "I"

    def encode(self) -> bytes:
        return _frame(b"Z", self.status.encode("ascii"))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        status = data.decode("latin-1")
        if status not in ("I", "T", "E"):
            raise ProtocolError(f"ReadyForQuery status {status!r} is not one of I, T, E")
        return cls(status)


# --- results -----------------------------------------------------------------------------


class FieldDescription(NamedTuple):
    """One column of a RowDescription."""

    name: str
    table_oid: int = 0
    column_number: int = 0
    type_oid: int = 25  # text
    type_size: int = -1
    type_modifier: int = -1
    format: int = 0


@typed(b"T")
@dataclass(slots=True)
class RowDescription(BackendMessage):
    """The columns of the rows that follow."""

    fields: list[FieldDescription] = field(default_factory=list)

    def encode(self) -> bytes:
        parts = [_count(len(self.fields), "columns")]
        for f in self.fields:
            parts.append(_cstr(f.name))
            parts.append(_FIELD.pack(*f[1:]))
        return _frame(b"T", b"".join(parts))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        (n,) = _U16.unpack_from(data, 0)
        pos = 2
        fields = []
        unpack = _FIELD.unpack_from
        for _ in range(n):
            name, pos = _read_cstr(data, pos)
            fields.append(FieldDescription(name, *unpack(data, pos)))
            pos += 18
        _done(data, pos)
        return cls(fields)


@typed(b"D")
@dataclass(slots=True)
class DataRow(BackendMessage):
    """One result row: a value per column, ``None`` for SQL NULL, bytes in the column's
    format (text or binary) left undecoded."""

    values: list[bytes | None] = field(default_factory=list)

    def encode(self) -> bytes:
        return _frame(b"D", b"".join(_values(self.values, "columns")))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        values, pos = _read_values(data, 0)
        _done(data, pos)
        return cls(values)


@typed(b"C")
@dataclass(slots=True)
class CommandComplete(BackendMessage):
    """A statement finished; ``tag`` is e.g. ``SELECT 1``, ``INSERT 0 5``, ``UPDATE 3``."""

    tag: str

    def encode(self) -> bytes:
        return _frame(b"C", _cstr(self.tag))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        tag, pos = _read_cstr(data, 0)
        _done(data, pos)
        return cls(tag)


@typed(b"I")
@dataclass(slots=True)
class EmptyQueryResponse(_NoBody, BackendMessage):
    """The query string was empty (it replaces CommandComplete)."""


@typed(b"s")
@dataclass(slots=True)
class PortalSuspended(_NoBody, BackendMessage):
    """Execute stopped at ``max_rows``; the portal can be executed again for more."""


@typed(b"1")
@dataclass(slots=True)
class ParseComplete(_NoBody, BackendMessage):
    """Parse succeeded."""


@typed(b"2")
@dataclass(slots=True)
class BindComplete(_NoBody, BackendMessage):
    """Bind succeeded."""


@typed(b"3")
@dataclass(slots=True)
class CloseComplete(_NoBody, BackendMessage):
    """Close succeeded (also sent when the object did not exist)."""


@typed(b"n")
@dataclass(slots=True)
class NoData(_NoBody, BackendMessage):
    """Describe of a statement or portal that returns no rows."""


@typed(b"t")
@dataclass(slots=True)
class ParameterDescription(BackendMessage):
    """The parameter type OIDs of a described statement."""

    type_oids: list[int] = field(default_factory=list)

    def encode(self) -> bytes:
        oids = self.type_oids
        body = _count(len(oids), "parameters") + struct.pack(f"!{len(oids)}I", *oids)
        return _frame(b"t", body)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        (n,) = _U16.unpack_from(data, 0)
        oids = list(struct.unpack_from(f"!{n}I", data, 2))
        _done(data, 2 + 4 * n)
        return cls(oids)


# --- errors and notices ------------------------------------------------------------------

# Error and notice field codes, by the names error_response() accepts as keywords.
FIELD_CODES = {
    "severity": "S",
    "severity_nonlocalized": "V",
    "sqlstate": "C",
    "message": "M",
    "detail": "D",
    "hint": "H",
    "position": "P",
    "internal_position": "p",
    "internal_query": "q",
    "where": "W",
    "schema": "s",
    "table": "t",
    "column": "c",
    "datatype": "d",
    "constraint": "n",
    "file": "F",
    "line": "L",
    "routine": "R",
}


@dataclass(slots=True)
class _Fields(BackendMessage):
    """Body shared by ErrorResponse and NoticeResponse: fields keyed by code letter."""

    fields: dict[str, str] = field(default_factory=dict)

    @property
    def severity(self) -> str:
        # 'V' (9.6+) is never translated, unlike 'S' which follows lc_messages.
        return self.fields.get("V") or self.fields.get("S", "")

    @property
    def sqlstate(self) -> str:
        return self.fields.get("C", "")

    @property
    def message(self) -> str:
        return self.fields.get("M", "")

    @property
    def detail(self) -> str | None:
        return self.fields.get("D")

    @property
    def hint(self) -> str | None:
        return self.fields.get("H")

    @property
    def position(self) -> int | None:
        position = self.fields.get("P")
        return int(position) if position and position.isdigit() else None

    def encode(self) -> bytes:
        parts = []
        for code, value in self.fields.items():
            if len(code) != 1 or code == "\0":
                raise ProtocolError(f"error field code must be one non-NUL letter, not {code!r}")
            parts.append(code.encode("latin-1"))
            parts.append(_cstr(value))
        parts.append(b"\0")
        return _frame(self.type_code, b"".join(parts))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        fields: dict[str, str] = {}
        pos = 0
        while True:
            code = data[pos]
            pos += 1
            if code == 0:
                break
            fields[chr(code)], pos = _read_cstr(data, pos)
        _done(data, pos)
        return cls(fields)


@typed(b"E")
@dataclass(slots=True)
class ErrorResponse(_Fields):
    """An error; after it the server skips to Sync (extended protocol) or ReadyForQuery."""


@typed(b"N")
@dataclass(slots=True)
class NoticeResponse(_Fields):
    """A warning or notice; may arrive at any time, even between other messages."""


def error_response(sqlstate: str, message: str, severity: str = "ERROR", **fields: str) -> bytes:
    """Encode an ErrorResponse, e.g. ``error_response("42501", "blocked", hint="...")``.

    Extra fields are named as in ``FIELD_CODES`` (``detail``, ``hint``, ``position``...) or
    by their code letter (``D="..."``).
    """
    if len(sqlstate) != 5:
        raise ProtocolError(f"SQLSTATE must be 5 characters, not {sqlstate!r}")
    body = {"S": severity, "V": severity, "C": sqlstate, "M": message}
    for name, value in fields.items():
        code = FIELD_CODES.get(name, name)
        if len(code) != 1:
            raise ProtocolError(f"unknown error field {name!r}")
        body[code] = str(value)
    return ErrorResponse(body).encode()


@typed(b"A")
@dataclass(slots=True)
class NotificationResponse(BackendMessage):
    """A NOTIFY delivered to this session (may arrive at any time)."""

    process_id: int
    channel: str
    payload: str = ""

    def encode(self) -> bytes:
        body = _I32.pack(self.process_id) + _cstr(self.channel) + _cstr(self.payload)
        return _frame(b"A", body)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        (pid,) = _I32.unpack_from(data, 0)
        channel, pos = _read_cstr(data, 4)
        payload, pos = _read_cstr(data, pos)
        _done(data, pos)
        return cls(pid, channel, payload)


# --- COPY, protocol negotiation, fast-path results ---------------------------------------


@dataclass(slots=True)
class _CopyResponse(BackendMessage):
    """Body shared by the three COPY responses: overall format and per-column formats."""

    overall_format: int = 0
    column_formats: list[int] = field(default_factory=list)

    def encode(self) -> bytes:
        body = struct.pack("!b", self.overall_format) + _int16s(self.column_formats, "columns")
        return _frame(self.type_code, body)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        overall = data[0]
        if overall not in (0, 1):
            raise ProtocolError(f"COPY overall format {overall} is neither 0 (text) nor 1")
        formats, pos = _read_int16s(data, 1)
        _done(data, pos)
        return cls(overall, formats)


@typed(b"G")
@dataclass(slots=True)
class CopyInResponse(_CopyResponse):
    """Server is ready for COPY FROM STDIN data (CopyData..., then CopyDone or CopyFail)."""


@typed(b"H")
@dataclass(slots=True)
class CopyOutResponse(_CopyResponse):
    """Server starts COPY TO STDOUT data (CopyData..., then CopyDone)."""


@typed(b"W")
@dataclass(slots=True)
class CopyBothResponse(_CopyResponse):
    """Both directions stream CopyData (streaming replication)."""


@typed(b"v")
@dataclass(slots=True)
class NegotiateProtocolVersion(BackendMessage):
    """Server supports only an older minor version, or ignored some ``_pq_.`` options."""

    newest_minor: int
    unrecognized_options: list[str] = field(default_factory=list)

    def encode(self) -> bytes:
        options = self.unrecognized_options
        body = _I32.pack(self.newest_minor) + _I32.pack(len(options))
        return _frame(b"v", body + b"".join(_cstr(o) for o in options))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        minor, n = struct.unpack_from("!ii", data, 0)
        if n < 0:
            raise ProtocolError(f"negative option count {n}")
        pos = 8
        options = []
        for _ in range(n):
            option, pos = _read_cstr(data, pos)
            options.append(option)
        _done(data, pos)
        return cls(minor, options)


@typed(b"V")
@dataclass(slots=True)
class FunctionCallResponse(BackendMessage):
    """Result of a FunctionCall (``None``: SQL NULL)."""

    value: bytes | None = None

    def encode(self) -> bytes:
        if self.value is None:
            return _frame(b"V", _NULL)
        return _frame(b"V", _I32.pack(len(self.value)) + bytes(self.value))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        (size,) = _I32.unpack_from(data, 0)
        if size == -1:
            _done(data, 4)
            return cls(None)
        if size < 0 or size + 4 != len(data):
            raise ProtocolError(f"result length {size} disagrees with {len(data) - 4} bytes")
        return cls(data[4:])


# --- dispatch ----------------------------------------------------------------------------


def decode_backend(type_code: bytes | int, payload: bytes) -> BackendMessage:
    """Decode a typed message from a server, given its type byte and body (no header)."""
    code = _type_int(type_code)
    decoder = BACKEND_DECODERS.get(code)
    if decoder is None:
        raise ProtocolError(f"unknown backend message type {_describe_type(code)}")
    return _run(decoder, code, bytes(payload))  # type: ignore[return-value]
