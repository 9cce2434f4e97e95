"""The untyped packets of the startup phase: the client's four, and the server's one-byte
answer to an encryption request.

Why apart from the typed messages: these have no type byte (``int32 length + int32 code +
body``; the answer is a single unframed byte), so they are told apart by the code word
in ``decode_startup`` rather than by a decoder table, and a parser only meets them before
the StartupMessage (or, for the answer, right after an SSLRequest or GSSENCRequest).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Self

from ..errors import ProtocolError
from . import base
from .base import (
    CANCEL_REQUEST_CODE,
    GSSENC_REQUEST_CODE,
    MAX_CANCEL_KEY,
    MIN_CANCEL_KEY,
    PROTOCOL_3_0,
    SSL_REQUEST_CODE,
    BackendMessage,
    _cstr,
    _done,
    _read_cstr,
)

# Assigned, not imported, so that their method calls stay fast: see base's docstring.
_I32 = base._I32

__all__ = [
    "CancelRequest",
    "EncryptionResponse",
    "GSSENCRequest",
    "SSLRequest",
    "StartupMessage",
    "StartupPacket",
    "decode_startup",
]


class StartupPacket:
    """Any untyped packet a client sends before its typed messages (a base class rather
    than a union, like ``FrontendMessage``)."""

    __slots__ = ()

    def encode(self) -> bytes:
        raise NotImplementedError


@dataclass(slots=True)
class StartupMessage(StartupPacket):
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
    def decode(cls, data: bytes) -> Self:
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
class SSLRequest(StartupPacket):
    """Client asks for TLS before the startup message; the server answers one byte."""

    def encode(self) -> bytes:
        return _I32.pack(8) + _I32.pack(SSL_REQUEST_CODE)


@dataclass(slots=True)
class GSSENCRequest(StartupPacket):
    """Client asks for GSSAPI encryption before the startup message; answer is one byte."""

    def encode(self) -> bytes:
        return _I32.pack(8) + _I32.pack(GSSENC_REQUEST_CODE)


@dataclass(slots=True)
class CancelRequest(StartupPacket):
    """Sent on a fresh connection to cancel the query running in another session.

    ``secret_key`` is bytes: 4 bytes in protocol 3.0, up to 256 since protocol 3.2.
    """

    process_id: int
    secret_key: bytes

    def encode(self) -> bytes:
        body = _I32.pack(CANCEL_REQUEST_CODE) + _I32.pack(self.process_id) + self.secret_key
        return _I32.pack(len(body) + 4) + body

    @classmethod
    def decode(cls, data: bytes) -> Self:
        key = data[8:]
        if not MIN_CANCEL_KEY <= len(key) <= MAX_CANCEL_KEY:
            raise ProtocolError(f"CancelRequest secret key of {len(key)} bytes (4 to 256)")
        return cls(_I32.unpack_from(data, 4)[0], key)


@dataclass(slots=True)
class EncryptionResponse(BackendMessage):
    """The server's one-byte, unframed answer to SSLRequest or GSSENCRequest:
    ``S`` (go ahead with TLS), ``G`` (go ahead with GSSAPI) or ``N`` (no)."""

    code: bytes

    @property
    def accepted(self) -> bool:
        return self.code in (b"S", b"G")

    def encode(self) -> bytes:
        return self.code


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
