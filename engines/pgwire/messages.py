"""Message classes of PostgreSQL protocol 3.0, each able to encode itself and be decoded.

Why one small class per message: a proxy or router matches on ``type(msg)`` and reads named
attributes instead of offsets, and ``msg.encode()`` gives back exactly the bytes a peer
expects. Classes are slotted dataclasses (cheap to create, comparable, readable ``repr``)
with the wire type byte in ``type_code`` and a ``decode(payload)`` classmethod taking the
message body without its 5-byte header.

Wire facts that shape the code (see "Message Formats" in the PostgreSQL docs):

* A typed message is ``type byte + int32 length + body``; the length counts itself but not
  the type byte. The startup packets (StartupMessage, SSLRequest, GSSENCRequest,
  CancelRequest) have no type byte: ``int32 length + int32 code + body``.
* Strings are NUL-terminated and in the connection's ``client_encoding``; they are decoded
  as UTF-8 with ``surrogateescape`` so that any byte sequence survives a decode/encode round
  trip unchanged, whatever the encoding really is.
* Counts of parameters, formats and columns are written as Int16 but read by the server
  as unsigned: a Bind may carry up to 65535 parameters, so counts are packed as ``H``.
* Column values, Bind parameters and function arguments are ``int32 length + bytes`` where
  length -1 (and only -1) means SQL NULL.
* Type byte letters are reused across directions with different meanings ('D' is Describe
  from the client and DataRow from the server; 'E' Execute/ErrorResponse; 'S' Sync/
  ParameterStatus; ...), so decoding needs to know the direction.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple, Self

from .errors import ProtocolError

__all__ = [
    "CANCEL_REQUEST_CODE",
    "GSSENC_REQUEST_CODE",
    "PROTOCOL_3_0",
    "SSL_REQUEST_CODE",
    "AuthenticationCleartextPassword",
    "AuthenticationGSS",
    "AuthenticationGSSContinue",
    "AuthenticationKerberosV5",
    "AuthenticationMD5Password",
    "AuthenticationOk",
    "AuthenticationSASL",
    "AuthenticationSASLContinue",
    "AuthenticationSASLFinal",
    "AuthenticationSSPI",
    "BackendKeyData",
    "BackendMessage",
    "Bind",
    "BindComplete",
    "CancelRequest",
    "Close",
    "CloseComplete",
    "CommandComplete",
    "CopyBothResponse",
    "CopyData",
    "CopyDone",
    "CopyFail",
    "CopyInResponse",
    "CopyOutResponse",
    "DataRow",
    "Describe",
    "EmptyQueryResponse",
    "EncryptionResponse",
    "ErrorResponse",
    "Execute",
    "FieldDescription",
    "Flush",
    "FrontendMessage",
    "FunctionCall",
    "FunctionCallResponse",
    "GSSENCRequest",
    "GSSResponse",
    "NegotiateProtocolVersion",
    "NoData",
    "NoticeResponse",
    "NotificationResponse",
    "ParameterDescription",
    "ParameterStatus",
    "Parse",
    "ParseComplete",
    "PasswordMessage",
    "PortalSuspended",
    "Query",
    "ReadyForQuery",
    "RowDescription",
    "SASLInitialResponse",
    "SASLResponse",
    "SSLRequest",
    "StartupMessage",
    "StartupPacket",
    "Sync",
    "Terminate",
    "decode_backend",
    "decode_frontend",
    "decode_startup",
    "error_response",
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
_FIELD = struct.Struct("!IhIhih")  # RowDescription: everything after the field name
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


# --- startup phase (no type byte) --------------------------------------------------------


@dataclass(slots=True)
class StartupMessage:
    """First packet of a session: protocol version and parameters (``user`` is required,
    ``database``, ``options``, ``application_name``, ``replication``, ``_pq_.*``...)."""

    parameters: dict[str, str] = field(default_factory=dict)
    protocol_version: int = PROTOCOL_3_0

    @property
    def major(self) -> int:
        return self.protocol_version >> 16

    @property
    def minor(self) -> int:
        return self.protocol_version & 0xFFFF

    @property
    def user(self) -> str | None:
        return self.parameters.get("user")

    @property
    def database(self) -> str | None:
        # The server defaults the database to the user name.
        return self.parameters.get("database", self.parameters.get("user"))

    def encode(self) -> bytes:
        parts = [_I32.pack(self.protocol_version)]
        for name, value in self.parameters.items():
            parts.append(_cstr(name))
            parts.append(_cstr(value))
        parts.append(b"\0")
        body = b"".join(parts)
        return _I32.pack(len(body) + 4) + body

    @classmethod
    def decode(cls, data: bytes) -> StartupMessage:
        """Decode the packet after its length word (starting with the version)."""
        (version,) = _I32.unpack_from(data, 0)
        if version >> 16 != 3:
            raise ProtocolError(
                f"unsupported frontend protocol {version >> 16}.{version & 0xFFFF}: "
                "only protocol 3.x is supported"
            )
        # The list of name/value pairs ends with one extra NUL, which must be the last byte.
        if not data.endswith(b"\0"):
            raise ProtocolError("startup packet does not end with its terminating NUL")
        params: dict[str, str] = {}
        pos, last = 4, len(data) - 1
        while pos < last:
            name, pos = _read_cstr(data, pos)
            if not name:
                raise ProtocolError("empty parameter name before the end of the startup packet")
            if pos >= last:
                raise ProtocolError(f"startup parameter {name!r} has no value")
            value, pos = _read_cstr(data, pos)
            if pos > last:
                raise ProtocolError("startup packet does not end with its terminating NUL")
            params[name] = value
        return cls(params, version)


@dataclass(slots=True)
class SSLRequest:
    """Client asks for TLS before the startup message; the server answers one byte."""

    def encode(self) -> bytes:
        return _I32.pack(8) + _I32.pack(SSL_REQUEST_CODE)


@dataclass(slots=True)
class GSSENCRequest:
    """Client asks for GSSAPI encryption before the startup message; answer is one byte."""

    def encode(self) -> bytes:
        return _I32.pack(8) + _I32.pack(GSSENC_REQUEST_CODE)


@dataclass(slots=True)
class CancelRequest:
    """Sent on a fresh connection to cancel the query running in another session.

    ``secret_key`` is bytes: 4 bytes in protocol 3.0, up to 256 since protocol 3.2.
    """

    process_id: int
    secret_key: bytes

    def encode(self) -> bytes:
        body = _I32.pack(CANCEL_REQUEST_CODE) + _I32.pack(self.process_id) + self.secret_key
        return _I32.pack(len(body) + 4) + body

    @classmethod
    def decode(cls, data: bytes) -> CancelRequest:
        key = data[8:]
        if not MIN_CANCEL_KEY <= len(key) <= MAX_CANCEL_KEY:
            raise ProtocolError(f"CancelRequest secret key of {len(key)} bytes (4 to 256)")
        return cls(_I32.unpack_from(data, 4)[0], key)


@dataclass(slots=True)
class EncryptionResponse:
    """The server's one-byte, unframed answer to SSLRequest or GSSENCRequest:
    ``S`` (go ahead with TLS), ``G`` (go ahead with GSSAPI) or ``N`` (no)."""

    code: bytes

    @property
    def accepted(self) -> bool:
        return self.code in (b"S", b"G")

    def encode(self) -> bytes:
        return self.code


StartupPacket = StartupMessage | SSLRequest | GSSENCRequest | CancelRequest


def decode_startup(data: bytes) -> StartupPacket:
    """Decode an untyped startup packet given the bytes after its length word."""
    if len(data) < 4:
        raise ProtocolError(f"startup packet of {len(data) + 4} bytes is too short")
    (code,) = _I32.unpack_from(data, 0)
    try:
        if code == SSL_REQUEST_CODE:
            _done(data, 4)
            return SSLRequest()
        if code == GSSENC_REQUEST_CODE:
            _done(data, 4)
            return GSSENCRequest()
        if code == CANCEL_REQUEST_CODE:
            return CancelRequest.decode(data)
        if code >> 16 == 1234:
            raise ProtocolError(f"unknown special startup request code 1234.{code & 0xFFFF}")
        return StartupMessage.decode(data)
    except struct.error as exc:
        raise ProtocolError(f"truncated startup packet: {exc}") from None


# --- base classes for typed messages -----------------------------------------------------


class _Message:
    """Mixin for typed messages: a wire type byte, ``encode()`` and ``decode(payload)``."""

    __slots__ = ()
    type_code: ClassVar[bytes]

    def encode(self) -> bytes:
        raise NotImplementedError


class _NoBody(_Message):
    """A typed message whose body is empty (Sync, Flush, ParseComplete, ...)."""

    __slots__ = ()

    def encode(self) -> bytes:
        return self.type_code + b"\0\0\0\x04"

    @classmethod
    def decode(cls, data: bytes) -> _NoBody:
        _empty(data)
        return cls()


class _Bytes(_Message):
    """A typed message whose body is opaque bytes (CopyData, SASLResponse, ...)."""

    __slots__ = ()
    data: bytes

    def encode(self) -> bytes:
        return _frame(self.type_code, bytes(self.data))

    @classmethod
    def decode(cls, data: bytes) -> _Bytes:
        return cls(data)  # type: ignore[call-arg]


# --- frontend: simple and extended query ---------------------------------------------------


@dataclass(slots=True)
class Query(_Message):
    """Simple query: one string that may hold several statements."""

    type_code: ClassVar[bytes] = b"Q"
    query: str

    def encode(self) -> bytes:
        return _frame(b"Q", _cstr(self.query))

    @classmethod
    def decode(cls, data: bytes) -> Query:
        query, pos = _read_cstr(data, 0)
        _done(data, pos)
        return cls(query)


@dataclass(slots=True)
class Parse(_Message):
    """Extended protocol: prepare ``query`` as statement ``statement`` ("" is unnamed);
    ``param_types`` are type OIDs, 0 meaning "let the server infer"."""

    type_code: ClassVar[bytes] = b"P"
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
    def decode(cls, data: bytes) -> Parse:
        statement, pos = _read_cstr(data, 0)
        query, pos = _read_cstr(data, pos)
        (n,) = _U16.unpack_from(data, pos)
        types = list(struct.unpack_from(f"!{n}I", data, pos + 2))
        _done(data, pos + 2 + 4 * n)
        return cls(statement, query, types)


@dataclass(slots=True)
class Bind(_Message):
    """Extended protocol: bind parameter values to a statement, creating a portal.

    ``param_formats`` / ``result_formats``: empty means all text, one entry applies to all,
    otherwise one per parameter/column (0 text, 1 binary).
    """

    type_code: ClassVar[bytes] = b"B"
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
    def decode(cls, data: bytes) -> Bind:
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
class _Target(_Message):
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


@dataclass(slots=True)
class Describe(_Target):
    """Ask for a statement's ('S') or portal's ('P') parameter and row descriptions."""

    type_code: ClassVar[bytes] = b"D"


@dataclass(slots=True)
class Execute(_Message):
    """Run a portal; ``max_rows`` 0 means no limit (else PortalSuspended after that many)."""

    type_code: ClassVar[bytes] = b"E"
    portal: str = ""
    max_rows: int = 0

    def encode(self) -> bytes:
        return _frame(b"E", _cstr(self.portal) + _I32.pack(self.max_rows))

    @classmethod
    def decode(cls, data: bytes) -> Execute:
        portal, pos = _read_cstr(data, 0)
        (max_rows,) = _I32.unpack_from(data, pos)
        _done(data, pos + 4)
        return cls(portal, max_rows)


@dataclass(slots=True)
class Close(_Target):
    """Close a prepared statement ('S') or portal ('P')."""

    type_code: ClassVar[bytes] = b"C"


@dataclass(slots=True)
class Sync(_NoBody):
    """End of an extended-protocol batch: commit or roll back, then ReadyForQuery."""

    type_code: ClassVar[bytes] = b"S"


@dataclass(slots=True)
class Flush(_NoBody):
    """Ask the server to send what it has buffered, without ending the batch."""

    type_code: ClassVar[bytes] = b"H"


@dataclass(slots=True)
class Terminate(_NoBody):
    """Client is closing the connection."""

    type_code: ClassVar[bytes] = b"X"


@dataclass(slots=True)
class CopyData(_Bytes):
    """A chunk of COPY data (both directions)."""

    type_code: ClassVar[bytes] = b"d"
    data: bytes


@dataclass(slots=True)
class CopyDone(_NoBody):
    """End of COPY data (both directions)."""

    type_code: ClassVar[bytes] = b"c"


@dataclass(slots=True)
class CopyFail(_Message):
    """Client aborts a COPY FROM STDIN with an error message."""

    type_code: ClassVar[bytes] = b"f"
    message: str

    def encode(self) -> bytes:
        return _frame(b"f", _cstr(self.message))

    @classmethod
    def decode(cls, data: bytes) -> CopyFail:
        message, pos = _read_cstr(data, 0)
        _done(data, pos)
        return cls(message)


@dataclass(slots=True)
class FunctionCall(_Message):
    """Legacy fast-path function call by OID (a proxy usually passes it through raw)."""

    type_code: ClassVar[bytes] = b"F"
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
    def decode(cls, data: bytes) -> FunctionCall:
        (oid,) = _U32.unpack_from(data, 0)
        formats, pos = _read_int16s(data, 4)
        args, pos = _read_values(data, pos)
        (result_format,) = _I16.unpack_from(data, pos)
        _done(data, pos + 2)
        return cls(oid, formats, args, result_format)


# --- frontend: authentication responses (all type 'p') -------------------------------------
# The type byte 'p' alone does not say which of these it is: only the authentication
# request the server sent last does. FrontendParser tracks that (see expect_auth_response).


@dataclass(slots=True)
class PasswordMessage(_Message):
    """Cleartext password, or ``md5...`` digest from ``md5_password()``."""

    type_code: ClassVar[bytes] = b"p"
    password: bytes

    def encode(self) -> bytes:
        return _frame(b"p", _bcstr(self.password))

    @classmethod
    def decode(cls, data: bytes) -> PasswordMessage:
        password, pos = _read_bcstr(data, 0)
        _done(data, pos)
        return cls(password)


@dataclass(slots=True)
class SASLInitialResponse(_Message):
    """Chosen SASL mechanism plus the client-first message (``None``: no initial data)."""

    type_code: ClassVar[bytes] = b"p"
    mechanism: str
    data: bytes | None = None

    def encode(self) -> bytes:
        data = self.data
        tail = _NULL if data is None else _I32.pack(len(data)) + bytes(data)
        return _frame(b"p", _cstr(self.mechanism) + tail)

    @classmethod
    def decode(cls, data: bytes) -> SASLInitialResponse:
        mechanism, pos = _read_cstr(data, 0)
        (size,) = _I32.unpack_from(data, pos)
        pos += 4
        if size == -1:
            _done(data, pos)
            return cls(mechanism, None)
        if size < 0 or pos + size != len(data):
            raise ProtocolError(
                f"SASL initial response length {size} disagrees with the "
                f"{len(data) - pos} bytes that follow"
            )
        return cls(mechanism, data[pos:])


@dataclass(slots=True)
class SASLResponse(_Bytes):
    """A later SASL message from the client (SCRAM: the client-final message)."""

    type_code: ClassVar[bytes] = b"p"
    data: bytes


@dataclass(slots=True)
class GSSResponse(_Bytes):
    """A GSSAPI or SSPI token from the client."""

    type_code: ClassVar[bytes] = b"p"
    data: bytes


# --- backend: authentication requests (all type 'R', told apart by an Int32 code) ----------


class _Auth(_Message):
    """Base of the authentication requests: all type 'R', told apart by ``auth_code``."""

    __slots__ = ()
    type_code: ClassVar[bytes] = b"R"
    auth_code: ClassVar[int]


@dataclass(slots=True)
class AuthenticationOk(_Auth):
    """Authentication succeeded; ParameterStatus, BackendKeyData, ReadyForQuery follow."""

    auth_code: ClassVar[int] = 0

    def encode(self) -> bytes:
        return b"R\0\0\0\x08\0\0\0\0"


@dataclass(slots=True)
class AuthenticationKerberosV5(_Auth):
    """Kerberos V5 (unsupported by servers since 9.4, kept for completeness)."""

    auth_code: ClassVar[int] = 2

    def encode(self) -> bytes:
        return b"R\0\0\0\x08\0\0\0\x02"


@dataclass(slots=True)
class AuthenticationCleartextPassword(_Auth):
    """Server asks for the password in clear (answer: PasswordMessage)."""

    auth_code: ClassVar[int] = 3

    def encode(self) -> bytes:
        return b"R\0\0\0\x08\0\0\0\x03"


@dataclass(slots=True)
class AuthenticationMD5Password(_Auth):
    """Server asks for ``md5_password(user, password, salt)`` (answer: PasswordMessage)."""

    auth_code: ClassVar[int] = 5
    salt: bytes

    def encode(self) -> bytes:
        if len(self.salt) != 4:
            raise ProtocolError(f"MD5 salt must be 4 bytes, not {len(self.salt)}")
        return b"R\0\0\0\x0c\0\0\0\x05" + self.salt


@dataclass(slots=True)
class AuthenticationGSS(_Auth):
    """Server starts a GSSAPI exchange."""

    auth_code: ClassVar[int] = 7

    def encode(self) -> bytes:
        return b"R\0\0\0\x08\0\0\0\x07"


@dataclass(slots=True)
class AuthenticationGSSContinue(_Auth):
    """A GSSAPI or SSPI token from the server."""

    auth_code: ClassVar[int] = 8
    data: bytes

    def encode(self) -> bytes:
        return _frame(b"R", b"\0\0\0\x08" + bytes(self.data))


@dataclass(slots=True)
class AuthenticationSSPI(_Auth):
    """Server starts an SSPI exchange (Windows)."""

    auth_code: ClassVar[int] = 9

    def encode(self) -> bytes:
        return b"R\0\0\0\x08\0\0\0\x09"


@dataclass(slots=True)
class AuthenticationSASL(_Auth):
    """Server offers SASL mechanisms, e.g. ``["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]``."""

    auth_code: ClassVar[int] = 10
    mechanisms: list[str] = field(default_factory=list)

    def encode(self) -> bytes:
        body = b"\0\0\0\x0a" + b"".join(_cstr(m) for m in self.mechanisms) + b"\0"
        return _frame(b"R", body)


@dataclass(slots=True)
class AuthenticationSASLContinue(_Auth):
    """A SASL challenge (SCRAM: the server-first message)."""

    auth_code: ClassVar[int] = 11
    data: bytes

    def encode(self) -> bytes:
        return _frame(b"R", b"\0\0\0\x0b" + bytes(self.data))


@dataclass(slots=True)
class AuthenticationSASLFinal(_Auth):
    """SASL outcome data (SCRAM: the server-final message); AuthenticationOk follows."""

    auth_code: ClassVar[int] = 12
    data: bytes

    def encode(self) -> bytes:
        return _frame(b"R", b"\0\0\0\x0c" + bytes(self.data))


def _decode_auth(data: bytes) -> _Auth:
    (code,) = _I32.unpack_from(data, 0)
    if code in _AUTH_NO_BODY:
        _done(data, 4)
        return _AUTH_NO_BODY[code]()
    if code == 5:
        if len(data) != 8:
            raise ProtocolError(f"MD5 salt must be 4 bytes, not {len(data) - 4}")
        return AuthenticationMD5Password(data[4:])
    if code == 10:
        mechanisms = []
        pos = 4
        while True:
            name, pos = _read_cstr(data, pos)
            if not name:
                break
            mechanisms.append(name)
        _done(data, pos)
        return AuthenticationSASL(mechanisms)
    if code in _AUTH_DATA:
        return _AUTH_DATA[code](data[4:])
    raise ProtocolError(f"unknown authentication request code {code}")


_AUTH_NO_BODY: dict[int, type[_Auth]] = {
    0: AuthenticationOk,
    2: AuthenticationKerberosV5,
    3: AuthenticationCleartextPassword,
    7: AuthenticationGSS,
    9: AuthenticationSSPI,
}
_AUTH_DATA: dict[int, Callable[[bytes], _Auth]] = {
    8: AuthenticationGSSContinue,
    11: AuthenticationSASLContinue,
    12: AuthenticationSASLFinal,
}


# --- backend: session state --------------------------------------------------------------


@dataclass(slots=True)
class ParameterStatus(_Message):
    """A run-time parameter the client should know (server_version, client_encoding, ...)."""

    type_code: ClassVar[bytes] = b"S"
    name: str
    value: str

    def encode(self) -> bytes:
        return _frame(b"S", _cstr(self.name) + _cstr(self.value))

    @classmethod
    def decode(cls, data: bytes) -> ParameterStatus:
        name, pos = _read_cstr(data, 0)
        value, pos = _read_cstr(data, pos)
        _done(data, pos)
        return cls(name, value)


@dataclass(slots=True)
class BackendKeyData(_Message):
    """Process id and secret key the client needs to send a CancelRequest later.

    ``secret_key`` is bytes: 4 bytes in protocol 3.0, up to 256 since protocol 3.2.
    """

    type_code: ClassVar[bytes] = b"K"
    process_id: int
    secret_key: bytes

    def encode(self) -> bytes:
        return _frame(b"K", _I32.pack(self.process_id) + bytes(self.secret_key))

    @classmethod
    def decode(cls, data: bytes) -> BackendKeyData:
        (pid,) = _I32.unpack_from(data, 0)
        key = data[4:]
        if not MIN_CANCEL_KEY <= len(key) <= MAX_CANCEL_KEY:
            raise ProtocolError(f"BackendKeyData secret key of {len(key)} bytes (4 to 256)")
        return cls(pid, key)


@dataclass(slots=True)
class ReadyForQuery(_Message):
    """Server is idle; ``status`` is 'I' (idle), 'T' (in transaction) or 'E' (failed
    transaction). A pooler may reuse the server connection only when it is 'I'."""

    type_code: ClassVar[bytes] = b"Z"
    status: str = "I"

    def encode(self) -> bytes:
        return _frame(b"Z", self.status.encode("ascii"))

    @classmethod
    def decode(cls, data: bytes) -> ReadyForQuery:
        status = data.decode("latin-1")
        if status not in ("I", "T", "E"):
            raise ProtocolError(f"ReadyForQuery status {status!r} is not one of I, T, E")
        return cls(status)


# --- backend: results --------------------------------------------------------------------


class FieldDescription(NamedTuple):
    """One column of a RowDescription."""

    name: str
    table_oid: int = 0
    column_number: int = 0
    type_oid: int = 25  # text
    type_size: int = -1
    type_modifier: int = -1
    format: int = 0


@dataclass(slots=True)
class RowDescription(_Message):
    """The columns of the rows that follow."""

    type_code: ClassVar[bytes] = b"T"
    fields: list[FieldDescription] = field(default_factory=list)

    def encode(self) -> bytes:
        parts = [_count(len(self.fields), "columns")]
        for f in self.fields:
            parts.append(_cstr(f.name))
            parts.append(_FIELD.pack(*f[1:]))
        return _frame(b"T", b"".join(parts))

    @classmethod
    def decode(cls, data: bytes) -> RowDescription:
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


@dataclass(slots=True)
class DataRow(_Message):
    """One result row: a value per column, ``None`` for SQL NULL, bytes in the column's
    format (text or binary) left undecoded."""

    type_code: ClassVar[bytes] = b"D"
    values: list[bytes | None] = field(default_factory=list)

    def encode(self) -> bytes:
        return _frame(b"D", b"".join(_values(self.values, "columns")))

    @classmethod
    def decode(cls, data: bytes) -> DataRow:
        values, pos = _read_values(data, 0)
        _done(data, pos)
        return cls(values)


@dataclass(slots=True)
class CommandComplete(_Message):
    """A statement finished; ``tag`` is e.g. ``SELECT 1``, ``INSERT 0 5``, ``UPDATE 3``."""

    type_code: ClassVar[bytes] = b"C"
    tag: str

    def encode(self) -> bytes:
        return _frame(b"C", _cstr(self.tag))

    @classmethod
    def decode(cls, data: bytes) -> CommandComplete:
        tag, pos = _read_cstr(data, 0)
        _done(data, pos)
        return cls(tag)


@dataclass(slots=True)
class EmptyQueryResponse(_NoBody):
    """The query string was empty (it replaces CommandComplete)."""

    type_code: ClassVar[bytes] = b"I"


@dataclass(slots=True)
class PortalSuspended(_NoBody):
    """Execute stopped at ``max_rows``; the portal can be executed again for more."""

    type_code: ClassVar[bytes] = b"s"


@dataclass(slots=True)
class ParseComplete(_NoBody):
    """Parse succeeded."""

    type_code: ClassVar[bytes] = b"1"


@dataclass(slots=True)
class BindComplete(_NoBody):
    """Bind succeeded."""

    type_code: ClassVar[bytes] = b"2"


@dataclass(slots=True)
class CloseComplete(_NoBody):
    """Close succeeded (also sent when the object did not exist)."""

    type_code: ClassVar[bytes] = b"3"


@dataclass(slots=True)
class NoData(_NoBody):
    """Describe of a statement or portal that returns no rows."""

    type_code: ClassVar[bytes] = b"n"


@dataclass(slots=True)
class ParameterDescription(_Message):
    """The parameter type OIDs of a described statement."""

    type_code: ClassVar[bytes] = b"t"
    type_oids: list[int] = field(default_factory=list)

    def encode(self) -> bytes:
        oids = self.type_oids
        body = _count(len(oids), "parameters") + struct.pack(f"!{len(oids)}I", *oids)
        return _frame(b"t", body)

    @classmethod
    def decode(cls, data: bytes) -> ParameterDescription:
        (n,) = _U16.unpack_from(data, 0)
        oids = list(struct.unpack_from(f"!{n}I", data, 2))
        _done(data, 2 + 4 * n)
        return cls(oids)


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
class _Fields(_Message):
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
    def decode(cls, data: bytes) -> _Fields:
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


@dataclass(slots=True)
class ErrorResponse(_Fields):
    """An error; after it the server skips to Sync (extended protocol) or ReadyForQuery."""

    type_code: ClassVar[bytes] = b"E"


@dataclass(slots=True)
class NoticeResponse(_Fields):
    """A warning or notice; may arrive at any time, even between other messages."""

    type_code: ClassVar[bytes] = b"N"


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


@dataclass(slots=True)
class NotificationResponse(_Message):
    """A NOTIFY delivered to this session (may arrive at any time)."""

    type_code: ClassVar[bytes] = b"A"
    process_id: int
    channel: str
    payload: str = ""

    def encode(self) -> bytes:
        body = _I32.pack(self.process_id) + _cstr(self.channel) + _cstr(self.payload)
        return _frame(b"A", body)

    @classmethod
    def decode(cls, data: bytes) -> NotificationResponse:
        (pid,) = _I32.unpack_from(data, 0)
        channel, pos = _read_cstr(data, 4)
        payload, pos = _read_cstr(data, pos)
        _done(data, pos)
        return cls(pid, channel, payload)


@dataclass(slots=True)
class _CopyResponse(_Message):
    """Body shared by the three COPY responses: overall format and per-column formats."""

    overall_format: int = 0
    column_formats: list[int] = field(default_factory=list)

    def encode(self) -> bytes:
        body = struct.pack("!b", self.overall_format) + _int16s(self.column_formats, "columns")
        return _frame(self.type_code, body)

    @classmethod
    def decode(cls, data: bytes) -> _CopyResponse:
        overall = data[0]
        if overall not in (0, 1):
            raise ProtocolError(f"COPY overall format {overall} is neither 0 (text) nor 1")
        formats, pos = _read_int16s(data, 1)
        _done(data, pos)
        return cls(overall, formats)


@dataclass(slots=True)
class CopyInResponse(_CopyResponse):
    """Server is ready for COPY FROM STDIN data (CopyData..., then CopyDone or CopyFail)."""

    type_code: ClassVar[bytes] = b"G"


@dataclass(slots=True)
class CopyOutResponse(_CopyResponse):
    """Server starts COPY TO STDOUT data (CopyData..., then CopyDone)."""

    type_code: ClassVar[bytes] = b"H"


@dataclass(slots=True)
class CopyBothResponse(_CopyResponse):
    """Both directions stream CopyData (streaming replication)."""

    type_code: ClassVar[bytes] = b"W"


@dataclass(slots=True)
class NegotiateProtocolVersion(_Message):
    """Server supports only an older minor version, or ignored some ``_pq_.`` options."""

    type_code: ClassVar[bytes] = b"v"
    newest_minor: int
    unrecognized_options: list[str] = field(default_factory=list)

    def encode(self) -> bytes:
        options = self.unrecognized_options
        body = _I32.pack(self.newest_minor) + _I32.pack(len(options))
        return _frame(b"v", body + b"".join(_cstr(o) for o in options))

    @classmethod
    def decode(cls, data: bytes) -> NegotiateProtocolVersion:
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


@dataclass(slots=True)
class FunctionCallResponse(_Message):
    """Result of a FunctionCall (``None``: SQL NULL)."""

    type_code: ClassVar[bytes] = b"V"
    value: bytes | None = None

    def encode(self) -> bytes:
        if self.value is None:
            return _frame(b"V", _NULL)
        return _frame(b"V", _I32.pack(len(self.value)) + bytes(self.value))

    @classmethod
    def decode(cls, data: bytes) -> FunctionCallResponse:
        (size,) = _I32.unpack_from(data, 0)
        if size == -1:
            _done(data, 4)
            return cls(None)
        if size < 0 or size + 4 != len(data):
            raise ProtocolError(f"result length {size} disagrees with {len(data) - 4} bytes")
        return cls(data[4:])


# --- dispatch tables -----------------------------------------------------------------------

FrontendMessage = (
    Query
    | Parse
    | Bind
    | Describe
    | Execute
    | Close
    | Sync
    | Flush
    | Terminate
    | CopyData
    | CopyDone
    | CopyFail
    | FunctionCall
    | PasswordMessage
    | SASLInitialResponse
    | SASLResponse
    | GSSResponse
)
BackendMessage = (
    AuthenticationOk
    | AuthenticationKerberosV5
    | AuthenticationCleartextPassword
    | AuthenticationMD5Password
    | AuthenticationGSS
    | AuthenticationGSSContinue
    | AuthenticationSSPI
    | AuthenticationSASL
    | AuthenticationSASLContinue
    | AuthenticationSASLFinal
    | ParameterStatus
    | BackendKeyData
    | ReadyForQuery
    | RowDescription
    | DataRow
    | CommandComplete
    | EmptyQueryResponse
    | PortalSuspended
    | ParseComplete
    | BindComplete
    | CloseComplete
    | NoData
    | ParameterDescription
    | ErrorResponse
    | NoticeResponse
    | NotificationResponse
    | CopyInResponse
    | CopyOutResponse
    | CopyBothResponse
    | CopyData
    | CopyDone
    | NegotiateProtocolVersion
    | FunctionCallResponse
    | EncryptionResponse
)

_Decoder = Callable[[bytes], object]

FRONTEND_DECODERS: dict[int, _Decoder] = {
    cls.type_code[0]: cls.decode
    for cls in (
        Query,
        Parse,
        Bind,
        Describe,
        Execute,
        Close,
        Sync,
        Flush,
        Terminate,
        CopyData,
        CopyDone,
        CopyFail,
        FunctionCall,
    )
}
BACKEND_DECODERS: dict[int, _Decoder] = {
    cls.type_code[0]: cls.decode
    for cls in (
        ParameterStatus,
        BackendKeyData,
        ReadyForQuery,
        RowDescription,
        DataRow,
        CommandComplete,
        EmptyQueryResponse,
        PortalSuspended,
        ParseComplete,
        BindComplete,
        CloseComplete,
        NoData,
        ParameterDescription,
        ErrorResponse,
        NoticeResponse,
        NotificationResponse,
        CopyInResponse,
        CopyOutResponse,
        CopyBothResponse,
        CopyData,
        CopyDone,
        NegotiateProtocolVersion,
        FunctionCallResponse,
    )
}
BACKEND_DECODERS[ord("R")] = _decode_auth

PASSWORD_TYPES = (PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse)


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


def decode_frontend(
    type_code: bytes | int,
    payload: bytes,
    *,
    password_type: type[PasswordMessage | SASLInitialResponse | SASLResponse | GSSResponse] = (
        PasswordMessage
    ),
) -> FrontendMessage:
    """Decode a typed message from a client, given its type byte and body (no header).

    ``password_type`` says how to read a 'p' message, which depends on the authentication
    request the server sent (cleartext/MD5, SASL initial, SASL continue, GSS).
    """
    code = _type_int(type_code)
    if code == 0x70:  # 'p'
        return _run(password_type.decode, code, bytes(payload))  # type: ignore[return-value]
    decoder = FRONTEND_DECODERS.get(code)
    if decoder is None:
        raise ProtocolError(f"unknown frontend message type {_describe_type(code)}")
    return _run(decoder, code, bytes(payload))  # type: ignore[return-value]


def decode_backend(type_code: bytes | int, payload: bytes) -> BackendMessage:
    """Decode a typed message from a server, given its type byte and body (no header)."""
    code = _type_int(type_code)
    decoder = BACKEND_DECODERS.get(code)
    if decoder is None:
        raise ProtocolError(f"unknown backend message type {_describe_type(code)}")
    return _run(decoder, code, bytes(payload))  # type: ignore[return-value]
