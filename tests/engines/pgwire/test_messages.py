"""Every message class encodes to the documented bytes and decodes back to itself, and
malformed bodies are refused with ProtocolError instead of a struct or index error."""

from __future__ import annotations

import dataclasses
import pickle
import struct

import pytest

import engines.pgwire as pgwire
from engines.pgwire import (
    AuthenticationMD5Password,
    AuthenticationOk,
    Bind,
    CancelRequest,
    DataRow,
    Describe,
    ErrorResponse,
    NoticeResponse,
    PasswordMessage,
    ProtocolError,
    Query,
    ReadyForQuery,
    SASLInitialResponse,
    SSLRequest,
    StartupMessage,
    Sync,
    decode_backend,
    decode_frontend,
    decode_startup,
    error_response,
)
from engines.pgwire.messages.base import typed

from .samples import BACKEND, FRONTEND, PASSWORD, STARTUP


def _split(raw: bytes) -> tuple[bytes, bytes]:
    """Type byte and body of a typed message, checking the length word on the way."""
    (length,) = struct.unpack("!i", raw[1:5])
    assert length == len(raw) - 1
    return raw[:1], raw[5:]


@pytest.mark.parametrize("message", FRONTEND, ids=repr)
def test_frontend_round_trip(message):
    type_byte, body = _split(message.encode())
    assert type_byte == message.type_code
    assert decode_frontend(type_byte, body) == message


@pytest.mark.parametrize("message", PASSWORD, ids=repr)
def test_password_family_round_trip(message):
    type_byte, body = _split(message.encode())
    assert type_byte == b"p"
    assert decode_frontend(type_byte, body, password_type=type(message)) == message


@pytest.mark.parametrize("message", BACKEND, ids=repr)
def test_backend_round_trip(message):
    type_byte, body = _split(message.encode())
    assert type_byte == message.type_code
    assert decode_backend(type_byte, body) == message


@pytest.mark.parametrize("message", STARTUP, ids=repr)
def test_startup_round_trip(message):
    raw = message.encode()
    (length,) = struct.unpack("!i", raw[:4])
    assert length == len(raw)
    assert decode_startup(raw[4:]) == message


def test_every_message_class_has_a_sample():
    sampled = {type(m) for m in STARTUP + FRONTEND + PASSWORD + BACKEND}
    exported = {
        obj
        for name in pgwire.__all__
        if dataclasses.is_dataclass(obj := getattr(pgwire, name)) and hasattr(obj, "encode")
    }
    exported.discard(pgwire.EncryptionResponse)  # one unframed byte, tested with the parser
    assert exported - sampled == set()


BOTH_WAYS = {pgwire.CopyData, pgwire.CopyDone}


def test_direction_bases_hold_exactly_their_messages():
    """FrontendMessage, BackendMessage and StartupPacket answer isinstance as the unions of
    the same names did (CopyData and CopyDone are sent both ways)."""
    for samples, base in [
        (FRONTEND + PASSWORD, pgwire.FrontendMessage),
        (BACKEND, pgwire.BackendMessage),
        (STARTUP, pgwire.StartupPacket),
    ]:
        others = [m for m in STARTUP + FRONTEND + PASSWORD + BACKEND if m not in samples]
        assert all(isinstance(m, base) for m in samples)
        assert not any(isinstance(m, base) for m in others if type(m) not in BOTH_WAYS)
    assert isinstance(pgwire.EncryptionResponse(b"N"), pgwire.BackendMessage)


@pytest.mark.parametrize("message", STARTUP + FRONTEND + PASSWORD + BACKEND, ids=repr)
def test_messages_pickle_and_compare(message):
    copy = pickle.loads(pickle.dumps(message))  # noqa: S301  (bytes pickled just now)
    assert copy == message
    assert repr(copy) == repr(message)
    assert type(copy) is type(message)


def test_a_type_byte_is_registered_once_per_direction():
    @dataclasses.dataclass(slots=True)
    class Impostor(pgwire.BackendMessage):
        @classmethod
        def decode(cls, data):
            return cls()

    with pytest.raises(TypeError, match="taken by"):
        typed(b"D")(Impostor)
    assert decode_backend(b"D", b"\x00\x00") == DataRow([])


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (Sync(), b"S\x00\x00\x00\x04"),
        (Query("SELECT 1"), b"Q\x00\x00\x00\x0dSELECT 1\x00"),
        (AuthenticationOk(), b"R\x00\x00\x00\x08\x00\x00\x00\x00"),
        (ReadyForQuery("I"), b"Z\x00\x00\x00\x05I"),
        (SSLRequest(), b"\x00\x00\x00\x08\x04\xd2\x16\x2f"),
        (
            CancelRequest(1, b"\x00\x00\x00\x02"),
            b"\x00\x00\x00\x10\x04\xd2\x16\x2e" + b"\0\0\0\1\0\0\0\2",
        ),
        (
            StartupMessage({"user": "u"}),
            b"\x00\x00\x00\x10\x00\x03\x00\x00user\x00u\x00\x00",
        ),
        (DataRow([b"ab", None]), b"D\x00\x00\x00\x10\x00\x02\x00\x00\x00\x02ab\xff\xff\xff\xff"),
        (Describe("P", "x"), b"D\x00\x00\x00\x07Px\x00"),
    ],
    ids=repr,
)
def test_known_encodings(message, expected):
    """Byte-exact encodings checked by hand against the "Message Formats" chapter."""
    assert message.encode() == expected


def test_bind_accepts_65535_parameters():
    """Counts are unsigned on the wire: 65535 parameters is legal, 65536 is not."""
    bind = Bind(params=[None] * 65535)
    type_byte, body = _split(bind.encode())
    assert len(decode_frontend(type_byte, body).params) == 65535
    with pytest.raises(ProtocolError, match="65535"):
        Bind(params=[None] * 65536).encode()


def test_encoding_refuses_nul_in_strings():
    with pytest.raises(ProtocolError, match="NUL"):
        Query("SELECT 1\0; DROP TABLE t").encode()


def test_error_response_helper():
    raw = error_response("42501", "DROP TABLE is blocked", hint="ask an admin", position="8")
    type_byte, body = _split(raw)
    error = decode_backend(type_byte, body)
    assert isinstance(error, ErrorResponse)
    assert error.sqlstate == "42501"
    assert error.message == "DROP TABLE is blocked"
    assert error.severity == "ERROR"
    assert error.hint == "ask an admin"
    assert error.position == 8
    assert error.fields["S"] == error.fields["V"] == "ERROR"


def test_error_response_helper_takes_code_letters_and_severity():
    raw = error_response("08P01", "bye", severity="FATAL", D="details")
    error = decode_backend(*_split(raw))
    assert (error.severity, error.detail) == ("FATAL", "details")


def test_error_response_rejects_bad_input():
    with pytest.raises(ProtocolError, match="SQLSTATE"):
        error_response("425", "short code")
    with pytest.raises(ProtocolError, match="unknown error field"):
        error_response("42501", "x", colour="blue")


def test_notice_severity_prefers_the_untranslated_field():
    notice = NoticeResponse({"S": "AVISO", "V": "NOTICE", "M": "m"})
    assert notice.severity == "NOTICE"


def test_startup_message_properties():
    startup = StartupMessage({"user": "alice"}, (3 << 16) | 2)
    assert (startup.major, startup.minor) == (3, 2)
    assert startup.user == "alice"
    assert startup.database == "alice"  # the server's default


MALFORMED_BACKEND = [
    ("Z", b"X", "not one of I, T, E"),
    ("Z", b"", "not one of I, T, E"),
    ("C", b"SELECT 1", "NUL terminator"),
    ("C", b"SELECT 1\0junk", "unexpected bytes"),
    ("D", b"\x00\x01\x00\x00\x00\x05ab", "runs past the end"),
    ("D", b"\x00\x01\xff\xff\xff\xfe", "only -1"),
    ("D", b"\x00\x02\x00\x00\x00\x01a", "truncated"),
    ("T", b"\x00\x01name\x00\x00\x00", "truncated"),
    ("R", b"\x00\x00\x00\x05\x01\x02", "4 bytes"),
    ("R", b"\x00\x00\x00\x63", "unknown authentication request code 99"),
    ("R", b"\x00\x00", "truncated"),
    ("R", b"\x00\x00\x00\x0aSCRAM-SHA-256\x00", "NUL terminator"),
    ("K", b"\x00\x00\x00\x01\x02", "secret key of 1 bytes"),
    ("E", b"SERROR\x00", "truncated"),
    ("1", b"\x00", "should be empty"),
    ("G", b"\x02\x00\x00", "overall format"),
    ("V", b"\x00\x00\x00\x09abc", "disagrees"),
    ("v", b"\x00\x00\x00\x00\xff\xff\xff\xff", "negative option count"),
    ("t", b"\x00\x02\x00\x00\x00\x17", "truncated"),
    ("x", b"", "unknown backend message type 'x'"),
    (b"\x00", b"", "unknown backend message type 0x00"),
]


@pytest.mark.parametrize(("type_byte", "body", "reason"), MALFORMED_BACKEND, ids=repr)
def test_malformed_backend_bodies(type_byte, body, reason):
    type_byte = type_byte.encode() if isinstance(type_byte, str) else type_byte
    with pytest.raises(ProtocolError, match=reason):
        decode_backend(type_byte, body)


MALFORMED_FRONTEND = [
    ("Q", b"SELECT 1", "NUL terminator"),
    ("Q", b"SELECT 1\0\0", "unexpected bytes"),
    ("P", b"s\0SELECT 1\0\x00\x02\x00\x00\x00\x17", "truncated"),
    ("B", b"\0\0\x00\x00\x00\x01\x00\x00\x01\x00", "runs past the end"),
    ("D", b"Xname\0", "'S' \\(statement\\) or 'P'"),
    ("C", b"", "truncated"),
    ("E", b"portal\0\x00\x00", "truncated"),
    ("S", b"\x00", "should be empty"),
    ("F", b"\x00\x00", "truncated"),
    ("Y", b"", "unknown frontend message type 'Y'"),
]


@pytest.mark.parametrize(("type_byte", "body", "reason"), MALFORMED_FRONTEND, ids=repr)
def test_malformed_frontend_bodies(type_byte, body, reason):
    with pytest.raises(ProtocolError, match=reason):
        decode_frontend(type_byte.encode(), body)


def test_malformed_password_family():
    with pytest.raises(ProtocolError, match="NUL terminator"):
        decode_frontend(b"p", b"secret", password_type=PasswordMessage)
    with pytest.raises(ProtocolError, match="disagrees"):
        decode_frontend(
            b"p", b"SCRAM-SHA-256\0\x00\x00\x00\x09short", password_type=SASLInitialResponse
        )


MALFORMED_STARTUP = [
    (b"\x00\x02\x00\x00user\0u\0\0", "unsupported frontend protocol 2.0"),
    (b"\x00\x04\x00\x00user\0u\0\0", "unsupported frontend protocol 4.0"),
    (b"\x04\xd2\x16\x31", "unknown special startup request code 1234.5681"),
    (b"\x00\x03\x00\x00user\0u\0", "terminating NUL"),
    (b"\x00\x03\x00\x00user\0u", "terminating NUL"),
    (b"\x00\x03\x00\x00user\0\0", "has no value"),
    (b"\x00\x03\x00\x00\0user\0u\0\0", "empty parameter name"),
    (b"\x04\xd2\x16\x2f\0", "unexpected bytes"),  # SSLRequest with a body
    (b"\x04\xd2\x16\x2e\0\0\0\1\0\0", "secret key of 2 bytes"),
    (b"\x04\xd2\x16\x2e\0\0\0\1" + b"k" * 257, "secret key of 257 bytes"),
    (b"\0\0", "too short"),
]


@pytest.mark.parametrize(("body", "reason"), MALFORMED_STARTUP, ids=repr)
def test_malformed_startup_packets(body, reason):
    with pytest.raises(ProtocolError, match=reason):
        decode_startup(body)


def test_md5_salt_must_be_four_bytes():
    with pytest.raises(ProtocolError, match="4 bytes"):
        AuthenticationMD5Password(b"\x01\x02").encode()
