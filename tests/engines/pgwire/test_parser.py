"""The incremental parsers: any chunking of a stream yields the same messages, raw mode
gives back the exact bytes, and malformed framing fails loudly and permanently."""

from __future__ import annotations

import random
import struct

import pytest

from engines.pgwire import (
    BackendParser,
    Bind,
    BindComplete,
    CancelRequest,
    CommandComplete,
    DataRow,
    Describe,
    EncryptionResponse,
    ErrorResponse,
    Execute,
    FrontendParser,
    GSSENCRequest,
    NoData,
    ParameterDescription,
    Parse,
    ParseComplete,
    PasswordMessage,
    ProtocolError,
    Query,
    ReadyForQuery,
    RowDescription,
    SASLInitialResponse,
    SASLResponse,
    SSLRequest,
    StartupMessage,
    Sync,
    error_response,
)
from engines.pgwire.messages import FieldDescription

from .samples import BACKEND, FRONTEND

STARTUP = StartupMessage({"user": "alice", "database": "shop"})
FRONTEND_STREAM = [STARTUP, *FRONTEND]
FRONTEND_BYTES = b"".join(m.encode() for m in FRONTEND_STREAM)
BACKEND_BYTES = b"".join(m.encode() for m in BACKEND)


def chunked(data: bytes, rng: random.Random, largest: int) -> list[bytes]:
    pieces, i = [], 0
    while i < len(data):
        n = rng.randint(1, largest)
        pieces.append(data[i : i + n])
        i += n
    return pieces


def drain(parser, pieces) -> list:
    out = []
    for piece in pieces:
        parser.feed(piece)
        out.extend(parser)
    return out


def drain_raw(parser, pieces) -> list[tuple[bytes, bytes]]:
    out = []
    for piece in pieces:
        parser.feed(piece)
        out.extend(parser.raw_messages())
    return out


# --- chunking does not matter ---------------------------------------------------------------


def test_frontend_stream_all_at_once():
    assert drain(FrontendParser(), [FRONTEND_BYTES]) == FRONTEND_STREAM


def test_frontend_stream_byte_by_byte():
    pieces = [FRONTEND_BYTES[i : i + 1] for i in range(len(FRONTEND_BYTES))]
    assert drain(FrontendParser(), pieces) == FRONTEND_STREAM


def test_backend_stream_all_at_once_and_byte_by_byte():
    assert drain(BackendParser(), [BACKEND_BYTES]) == BACKEND
    pieces = [BACKEND_BYTES[i : i + 1] for i in range(len(BACKEND_BYTES))]
    assert drain(BackendParser(), pieces) == BACKEND


@pytest.mark.parametrize("seed", range(40))
def test_random_chunking(seed):
    rng = random.Random(seed)
    largest = rng.choice([3, 17, 64, 1000])
    assert drain(FrontendParser(), chunked(FRONTEND_BYTES, rng, largest)) == FRONTEND_STREAM
    assert drain(BackendParser(), chunked(BACKEND_BYTES, rng, largest)) == BACKEND


def test_partial_message_waits_for_the_rest():
    raw = Query("SELECT 42").encode()
    parser = FrontendParser(startup=False)
    parser.feed(raw[:-1])
    assert parser.next() is None
    assert parser.next_raw() is None
    assert parser.buffered == len(raw) - 1
    parser.feed(raw[-1:])
    assert parser.next() == Query("SELECT 42")
    assert parser.buffered == 0
    assert parser.next() is None


# --- pipelining -----------------------------------------------------------------------------


def test_pipelined_extended_protocol_both_directions():
    """A driver sends several Parse/Bind/Describe/Execute batches before reading; the
    server answers them all in one go."""
    requests = []
    replies = []
    for i in range(3):
        requests += [
            Parse(f"s{i}", "SELECT $1::int + 1", [23]),
            Bind(f"p{i}", f"s{i}", [0], [str(i).encode()], [0]),
            Describe("P", f"p{i}"),
            Execute(f"p{i}", 0),
        ]
        replies += [
            ParseComplete(),
            BindComplete(),
            RowDescription([FieldDescription("?column?", 0, 0, 23, 4, -1, 0)]),
            DataRow([str(i + 1).encode()]),
            CommandComplete("SELECT 1"),
        ]
    requests += [Sync(), Query("SELECT 1; SELECT 2")]
    replies += [ReadyForQuery("I"), NoData(), ParameterDescription([23])]

    client_bytes = STARTUP.encode() + b"".join(m.encode() for m in requests)
    server_bytes = b"".join(m.encode() for m in replies)
    assert drain(FrontendParser(), [client_bytes]) == [STARTUP, *requests]
    assert drain(BackendParser(), [server_bytes]) == replies


# --- raw mode -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_raw_mode_returns_the_exact_bytes(seed):
    rng = random.Random(seed)
    frontend = drain_raw(FrontendParser(), chunked(FRONTEND_BYTES, rng, 50))
    assert b"".join(raw for _, raw in frontend) == FRONTEND_BYTES
    assert frontend[0][0] == b""  # startup packets have no type byte
    assert [t for t, _ in frontend[1:]] == [m.type_code for m in FRONTEND]

    backend = drain_raw(BackendParser(), chunked(BACKEND_BYTES, rng, 50))
    assert b"".join(raw for _, raw in backend) == BACKEND_BYTES
    assert [t for t, _ in backend] == [m.type_code for m in BACKEND]


def test_raw_messages_decode_on_demand():
    parser = FrontendParser()
    parser.feed(FRONTEND_BYTES)
    decoded = [parser.decode_raw(t, raw) for t, raw in parser.raw_messages()]
    assert decoded == FRONTEND_STREAM

    parser = BackendParser()
    parser.feed(BACKEND_BYTES)
    decoded = [parser.decode_raw(t, raw) for t, raw in parser.raw_messages()]
    assert decoded == BACKEND


def test_raw_and_decoded_calls_mix():
    parser = BackendParser()
    parser.feed(BACKEND_BYTES)
    out = []
    for i in range(len(BACKEND)):
        if i % 2:
            out.append(parser.next())
        else:
            type_byte, raw = parser.next_raw()
            out.append(parser.decode_raw(type_byte, raw))
    assert out == BACKEND
    assert parser.next() is None


def test_raw_mode_frames_unknown_types_that_decoding_refuses():
    """A proxy forwards what it does not understand; only decoding insists on known types."""
    odd = b"Y\x00\x00\x00\x06hi"
    parser = FrontendParser(startup=False)
    parser.feed(odd + Sync().encode())
    assert parser.next_raw() == (b"Y", odd)
    assert parser.next() == Sync()

    parser = FrontendParser(startup=False)
    parser.feed(odd)
    with pytest.raises(ProtocolError, match="unknown frontend message type 'Y'"):
        parser.next()


def test_large_stream_is_consumed_without_unbounded_buffering():
    rows = [DataRow([b"x" * 100, str(i).encode(), None]) for i in range(5000)]
    stream = b"".join(r.encode() for r in rows)
    parser = BackendParser()
    seen = 0
    for i in range(0, len(stream), 100_000):
        parser.feed(stream[i : i + 100_000])
        for message in parser:
            assert message == rows[seen]
            seen += 1
        # The consumed prefix is dropped as we go: never more than ~2 chunks are held.
        assert len(parser._buf) < 300_000
    assert seen == len(rows)
    assert parser.stats() == {"messages": 5000, "bytes": len(stream), "buffered": 0}


# --- startup phase --------------------------------------------------------------------------


def test_ssl_request_then_startup_then_typed():
    parser = FrontendParser()
    parser.feed(SSLRequest().encode())
    assert parser.next() == SSLRequest()
    assert parser.in_startup
    parser.start_encryption()  # nothing was sent early: fine
    parser.feed(GSSENCRequest().encode() + STARTUP.encode() + Query("SELECT 1").encode())
    assert list(parser) == [GSSENCRequest(), STARTUP, Query("SELECT 1")]
    assert not parser.in_startup


def test_bytes_sent_before_the_tls_handshake_are_refused():
    """CVE-2021-23214: plaintext sent after SSLRequest must not pass as encrypted."""
    parser = FrontendParser()
    parser.feed(SSLRequest().encode() + Query("SELECT 'injected'").encode())
    assert parser.next() == SSLRequest()
    with pytest.raises(ProtocolError, match="unencrypted bytes"):
        parser.start_encryption()


def test_cancel_request_ends_the_conversation():
    parser = FrontendParser()
    cancel = CancelRequest(99, b"\x00\x01\x02\x03")
    parser.feed(cancel.encode())
    assert parser.next() == cancel
    assert parser.next() is None
    parser.feed(b"\x00")
    with pytest.raises(ProtocolError, match="after a CancelRequest"):
        parser.next()


def test_auth_responses_follow_the_sasl_exchange():
    parser = FrontendParser(startup=False)
    first = SASLInitialResponse("SCRAM-SHA-256", b"n,,n=,r=nonce")
    final = SASLResponse(b"c=biws,r=nonce,p=proof")
    parser.feed(first.encode() + final.encode())
    parser.expect_auth_response(SASLInitialResponse)
    # After the initial response, the next 'p' is a SASLResponse without being told.
    assert list(parser) == [first, final]

    parser = FrontendParser(startup=False)
    parser.feed(PasswordMessage(b"md5abc").encode())
    assert parser.next() == PasswordMessage(b"md5abc")
    with pytest.raises(TypeError):
        parser.expect_auth_response(Query)


# --- server's answer to an encryption request -----------------------------------------------


def test_encryption_response_then_messages():
    parser = BackendParser()
    parser.expect_encryption_response(SSLRequest())
    assert parser.next() is None
    parser.feed(b"N" + ReadyForQuery("I").encode())
    assert list(parser) == [EncryptionResponse(b"N"), ReadyForQuery("I")]
    assert not EncryptionResponse(b"N").accepted

    parser = BackendParser()
    parser.expect_encryption_response(GSSENCRequest())
    parser.feed(b"G")
    assert parser.next_raw() == (b"G", b"G")


def test_encryption_answer_followed_by_plaintext_is_refused():
    """CVE-2021-23222: bytes after 'S' came before the handshake, unprotected."""
    parser = BackendParser()
    parser.expect_encryption_response(SSLRequest())
    parser.feed(b"S" + ErrorResponse({"M": "injected"}).encode())
    with pytest.raises(ProtocolError, match="unencrypted bytes"):
        parser.next()


def test_encryption_request_answered_with_an_error():
    """Servers that do not know the request answer with an ordinary ErrorResponse."""
    parser = BackendParser()
    parser.expect_encryption_response(SSLRequest())
    parser.feed(error_response("08P01", "unsupported"))
    error = parser.next()
    assert isinstance(error, ErrorResponse)
    assert error.sqlstate == "08P01"


def test_wrong_encryption_answer():
    parser = BackendParser()
    parser.expect_encryption_response(SSLRequest())
    parser.feed(b"G")
    with pytest.raises(ProtocolError, match="answered b'G'"):
        parser.next()


# --- malformed framing ----------------------------------------------------------------------


def _header(type_byte: bytes, length: int) -> bytes:
    return type_byte + struct.pack("!i", length)


MALFORMED_TYPED = [
    (_header(b"Q", -1), "length -1"),
    (_header(b"Q", 3), "length 3"),
    (_header(b"Q", 0x7FFFFFFF), "more than the 67108864-byte limit"),
    (_header(b"S", 20_000), "more than the 10000-byte limit"),  # Sync is a small message
    (_header(b"p", 70_000), "more than the 65535-byte limit"),
    (_header(b"Q", 14) + b"SELECT", None),  # truncated: no error, just waiting
    (_header(b"Q", 9) + b"SELECT", "NUL terminator"),  # length says 4 bytes of text, no NUL
    (_header(b"Q", 4) + b"SELECT 1\x00", "NUL terminator"),  # length too short for the text
    (_header(b"S", 5) + b"\x00", "should be empty"),
    (_header(b"B", 6) + b"\x00\x00", "truncated"),
    (_header(b"Y", 4), "unknown frontend message type 'Y'"),
]


@pytest.mark.parametrize(("data", "reason"), MALFORMED_TYPED, ids=repr)
def test_malformed_typed_messages(data, reason):
    parser = FrontendParser(startup=False)
    parser.feed(data)
    if reason is None:
        assert parser.next() is None
        return
    with pytest.raises(ProtocolError, match=reason):
        parser.next()


def test_oversized_length_is_refused_before_the_body_arrives():
    parser = BackendParser(max_message_size=1000)
    parser.feed(_header(b"D", 1001))
    with pytest.raises(ProtocolError, match="1001 bytes"):
        parser.next_raw()


def test_backend_default_limit_is_one_gibibyte():
    parser = BackendParser()
    parser.feed(_header(b"D", 1 << 30))  # exactly the limit: waits for the body
    assert parser.next() is None
    parser = BackendParser()
    parser.feed(_header(b"D", (1 << 30) + 1))
    with pytest.raises(ProtocolError, match="1073741824-byte limit"):
        parser.next()


MALFORMED_STARTUP = [
    (struct.pack("!i", 4), "length 4 is outside 8..10000"),
    (struct.pack("!i", -8), "length -8"),
    (struct.pack("!i", 10_001), "length 10001"),
    (struct.pack("!ii", 8, 2 << 16), "unsupported frontend protocol 2.0"),
    (struct.pack("!ii", 12, 3 << 16) + b"user", "terminating NUL"),
    (b"\x16\x03\x01\x02\x00\x01\x00", "TLS handshake without an SSLRequest"),
]


@pytest.mark.parametrize(("data", "reason"), MALFORMED_STARTUP, ids=repr)
def test_malformed_startup_framing(data, reason):
    parser = FrontendParser()
    parser.feed(data)
    with pytest.raises(ProtocolError, match=reason):
        parser.next_raw()


def test_a_failed_parser_stays_failed():
    parser = BackendParser()
    parser.feed(_header(b"Z", 2))
    with pytest.raises(ProtocolError):
        parser.next()
    assert parser.failed
    for call in (parser.next, parser.next_raw, lambda: parser.feed(b"Z")):
        with pytest.raises(ProtocolError, match="failed earlier"):
            call()


def test_a_failed_decode_also_fails_the_parser():
    parser = FrontendParser(startup=False)
    parser.feed(_header(b"Q", 5) + b"x" + Sync().encode())
    with pytest.raises(ProtocolError, match="NUL terminator"):
        parser.next()
    with pytest.raises(ProtocolError, match="failed earlier"):
        parser.next()


def test_max_message_size_must_fit_a_header():
    with pytest.raises(ValueError, match="max_message_size"):
        BackendParser(max_message_size=4)


# --- bulk forwarding ------------------------------------------------------------------------

RESULT = [
    RowDescription([FieldDescription("n", 0, 0, 23, 4, -1, 0)]),
    *[DataRow([str(i).encode()]) for i in range(50)],
    CommandComplete("SELECT 50"),
    ReadyForQuery("I"),
    ErrorResponse({"S": "ERROR", "C": "57014", "M": "canceled"}),
    ReadyForQuery("I"),
]
RESULT_BYTES = b"".join(m.encode() for m in RESULT)


@pytest.mark.parametrize("seed", range(10))
def test_take_raw_until_relays_runs_and_stops_at_interesting_types(seed):
    rng = random.Random(seed)
    parser = BackendParser()
    relayed, stopped_at = [], []
    for piece in chunked(RESULT_BYTES, rng, 200):
        parser.feed(piece)
        while True:
            run = parser.take_raw_until(b"ZE")
            relayed.append(run)
            message = parser.next()
            if message is None:
                break
            assert isinstance(message, ReadyForQuery | ErrorResponse)
            stopped_at.append(message)
            relayed.append(message.encode())
    assert b"".join(relayed) == RESULT_BYTES
    assert stopped_at == RESULT[-3:]
    assert parser.stats()["messages"] == len(RESULT)


def test_take_raw_until_hands_out_good_messages_before_failing():
    parser = BackendParser()
    good = CommandComplete("SELECT 1").encode()
    parser.feed(good + _header(b"D", 2))
    assert parser.take_raw_until() == good
    with pytest.raises(ProtocolError, match="length 2"):
        parser.take_raw_until()


def test_take_raw_until_leaves_startup_packets_alone():
    parser = FrontendParser()
    parser.feed(STARTUP.encode() + Query("SELECT 1").encode())
    assert parser.take_raw_until() == b""
    assert parser.next() == STARTUP
    assert parser.take_raw_until() == Query("SELECT 1").encode()
