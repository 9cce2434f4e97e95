"""The authentication exchange: the server's requests (all type 'R') and the client's
responses (all type 'p').

Why these are apart from ``frontend`` and ``backend``: a type byte alone does not say which
of them a message is. The requests are told apart by the Int32 code that starts their body,
so 'R' has one entry in the backend decoder table, ``_Auth.decode``, which looks the code
up in a second table filled by ``@auth_request(code)``. The responses are told apart only
by the request the server sent last, so 'p' is in no table: the caller (FrontendParser)
passes the class to ``decode_frontend`` as ``password_type``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Self, TypeVar

from ..errors import ProtocolError
from . import base
from .base import (
    _NULL,
    BackendMessage,
    FrontendMessage,
    _bcstr,
    _Bytes,
    _cstr,
    _done,
    _frame,
    _read_bcstr,
    _read_cstr,
    typed,
)

# Assigned, not imported, so that their method calls stay fast: see base's docstring.
_I32 = base._I32

__all__ = [
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
    "GSSResponse",
    "PasswordMessage",
    "SASLInitialResponse",
    "SASLResponse",
]

# --- requests from the server (all type 'R', told apart by an Int32 code) ---------------

_AUTH_REQUESTS: dict[int, type[_Auth]] = {}
_A = TypeVar("_A", bound="type[_Auth]")


def auth_request(auth_code: int) -> Callable[[_A], _A]:
    """Class decorator: set ``auth_code`` and file the class under it for ``_Auth.decode``."""

    def register(cls: _A) -> _A:
        if auth_code in _AUTH_REQUESTS:
            raise TypeError(f"auth code {auth_code} of {cls.__name__} is taken")
        cls.auth_code = auth_code
        _AUTH_REQUESTS[auth_code] = cls
        return cls

    return register


@typed(b"R")
class _Auth(BackendMessage):
    """Base of the authentication requests. ``decode`` reads the code and hands the whole
    body to the ``_from_body`` of the class filed under it; ``encode`` writes the code
    as a literal, the way the other classes write their type byte."""

    __slots__ = ()
    auth_code: ClassVar[int]

    @classmethod
    def decode(cls, data: bytes) -> _Auth:
        (code,) = _I32.unpack_from(data, 0)
        request = _AUTH_REQUESTS.get(code)
        if request is None:
            raise ProtocolError(f"unknown authentication request code {code}")
        return request._from_body(data)

    @classmethod
    def _from_body(cls, data: bytes) -> Self:
        """A request with nothing after its code."""
        _done(data, 4)
        return cls()


class _AuthData(_Auth):
    """A request carrying opaque bytes after its code (a GSS token, a SASL message)."""

    __slots__ = ()
    data: bytes

    @classmethod
    def _from_body(cls, data: bytes) -> Self:
        return cls(data[4:])  # type: ignore[call-arg]


@auth_request(0)
@dataclass(slots=True)
class AuthenticationOk(_Auth):
    """Authentication succeeded; ParameterStatus, BackendKeyData, ReadyForQuery follow."""

    def encode(self) -> bytes:
        return b"R\0\0\0\x08\0\0\0\0"


@auth_request(2)
@dataclass(slots=True)
class AuthenticationKerberosV5(_Auth):
    """Kerberos V5 (unsupported by servers since 9.4, kept for completeness)."""

    def encode(self) -> bytes:
        return b"R\0\0\0\x08\0\0\0\x02"


@auth_request(3)
@dataclass(slots=True)
class AuthenticationCleartextPassword(_Auth):
    """Server asks for the password in clear (answer: PasswordMessage)."""

    def encode(self) -> bytes:
        return b"R\0\0\0\x08\0\0\0\x03"


@auth_request(5)
@dataclass(slots=True)
class AuthenticationMD5Password(_Auth):
    """Server asks for ``md5_password(user, password, salt)`` (answer: PasswordMessage)."""

    salt: bytes

    def encode(self) -> bytes:
        if len(self.salt) != 4:
            raise ProtocolError(f"MD5 salt must be 4 bytes, not {len(self.salt)}")
        return b"R\0\0\0\x0c\0\0\0\x05" + self.salt

    @classmethod
    def _from_body(cls, data: bytes) -> Self:
        if len(data) != 8:
            raise ProtocolError(f"MD5 salt must be 4 bytes, not {len(data) - 4}")
        return cls(data[4:])


@auth_request(7)
@dataclass(slots=True)
class AuthenticationGSS(_Auth):
    """Server starts a GSSAPI exchange."""

    def encode(self) -> bytes:
        return b"R\0\0\0\x08\0\0\0\x07"


@auth_request(8)
@dataclass(slots=True)
class AuthenticationGSSContinue(_AuthData):
    """A GSSAPI or SSPI token from the server."""

    data: bytes

    def encode(self) -> bytes:
        return _frame(b"R", b"\0\0\0\x08" + bytes(self.data))


@auth_request(9)
@dataclass(slots=True)
class AuthenticationSSPI(_Auth):
    """Server starts an SSPI exchange (Windows)."""

    def encode(self) -> bytes:
        return b"R\0\0\0\x08\0\0\0\x09"


@auth_request(10)
@dataclass(slots=True)
class AuthenticationSASL(_Auth):
    """Server offers SASL mechanisms, e.g. ``["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]``."""

    mechanisms: list[str] = field(default_factory=list)

    def encode(self) -> bytes:
        body = b"\0\0\0\x0a" + b"".join(_cstr(m) for m in self.mechanisms) + b"\0"
        return _frame(b"R", body)

    @classmethod
    def _from_body(cls, data: bytes) -> Self:
        mechanisms = []
        pos = 4
        while True:
            name, pos = _read_cstr(data, pos)
            if not name:
                break
            mechanisms.append(name)
        _done(data, pos)
        return cls(mechanisms)


@auth_request(11)
@dataclass(slots=True)
class AuthenticationSASLContinue(_AuthData):
    """A SASL challenge (SCRAM: the server-first message)."""

    data: bytes

    def encode(self) -> bytes:
        return _frame(b"R", b"\0\0\0\x0b" + bytes(self.data))


@auth_request(12)
@dataclass(slots=True)
class AuthenticationSASLFinal(_AuthData):
    """SASL outcome data (SCRAM: the server-final message); AuthenticationOk follows."""

    data: bytes

    def encode(self) -> bytes:
        return _frame(b"R", b"\0\0\0\x0c" + bytes(self.data))


# --- responses from the client (all type 'p') ---------------------------------------------


class _AuthResponse(FrontendMessage):
    """Base of the 'p' messages (not in the decoder table: see the module's docstring)."""

    __slots__ = ()
    type_code: ClassVar[bytes] = b"p"


@dataclass(slots=True)
class PasswordMessage(_AuthResponse):
    """Cleartext password, or ``md5...`` digest from ``md5_password()``."""

    password: bytes

    def encode(self) -> bytes:
        return _frame(b"p", _bcstr(self.password))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        password, pos = _read_bcstr(data, 0)
        _done(data, pos)
        return cls(password)


@dataclass(slots=True)
class SASLInitialResponse(_AuthResponse):
    """Chosen SASL mechanism plus the client-first message (``None``: no initial data)."""

    mechanism: str
    data: bytes | None = None

    def encode(self) -> bytes:
        data = self.data
        tail = _NULL if data is None else _I32.pack(len(data)) + bytes(data)
        return _frame(b"p", _cstr(self.mechanism) + tail)

    @classmethod
    def decode(cls, data: bytes) -> Self:
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
class SASLResponse(_Bytes, _AuthResponse):
    """A later SASL message from the client (SCRAM: the client-final message)."""

    data: bytes


@dataclass(slots=True)
class GSSResponse(_Bytes, _AuthResponse):
    """A GSSAPI or SSPI token from the client."""

    data: bytes
