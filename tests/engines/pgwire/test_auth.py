"""MD5 and SCRAM-SHA-256 for both ends, against the RFC 7677 test vector and each other."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from engines.pgwire import (
    AuthenticationError,
    ProtocolError,
    ScramClient,
    ScramServer,
    ScramVerifier,
    md5_password,
    saslprep,
)

# RFC 7677, section 3: user "user", password "pencil".
RFC_CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
RFC_CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
RFC_CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
RFC_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


# --- MD5 ------------------------------------------------------------------------------------


def test_md5_password_follows_its_definition():
    salt = b"\x93\x1a\x05\xff"
    inner = hashlib.md5(b"secret" + b"alice", usedforsecurity=False).hexdigest()
    expected = "md5" + hashlib.md5(inner.encode("ascii") + salt, usedforsecurity=False).hexdigest()
    assert md5_password("alice", "secret", salt) == expected.encode("ascii")
    assert md5_password(b"alice", b"secret", salt) == expected.encode("ascii")


def test_md5_inner_hash_is_what_postgres_stores():
    # pg_authid.rolpassword of user "postgres" with password "postgres" under md5, a value
    # documented all over the web; the salted answer is built on top of it.
    stored = "md53175bce1d3201d16594cebf9d7eb3f9d"
    salt = b"\x01\x02\x03\x04"
    expected = (
        b"md5" + hashlib.md5(stored[3:].encode() + salt, usedforsecurity=False).hexdigest().encode()
    )
    assert md5_password("postgres", "postgres", salt) == expected


def test_md5_salt_length():
    with pytest.raises(ProtocolError, match="4 bytes"):
        md5_password("u", "p", b"\x00")


# --- SCRAM against the RFC ------------------------------------------------------------------


def test_scram_client_matches_rfc_7677():
    client = ScramClient("user", "pencil", nonce=RFC_CLIENT_NONCE)
    assert client.first_message() == RFC_CLIENT_FIRST
    assert client.handle_server_first(RFC_SERVER_FIRST) == RFC_CLIENT_FINAL
    client.verify_server_final(RFC_SERVER_FINAL)
    assert client.verified


def test_scram_server_matches_rfc_7677():
    verifier = ScramVerifier.from_password("pencil", salt=RFC_SALT, iterations=4096)
    server = ScramServer(verifier, nonce=RFC_SERVER_NONCE)
    assert server.handle_client_first(RFC_CLIENT_FIRST) == RFC_SERVER_FIRST
    assert server.handle_client_final(RFC_CLIENT_FINAL) == RFC_SERVER_FINAL
    assert server.authenticated
    assert server.username == "user"


def test_client_detects_a_forged_server_signature():
    client = ScramClient("user", "pencil", nonce=RFC_CLIENT_NONCE)
    client.first_message()
    client.handle_server_first(RFC_SERVER_FIRST)
    forged = b"v=" + base64.b64encode(b"\x00" * 32)
    with pytest.raises(AuthenticationError, match="server does not know the password"):
        client.verify_server_final(forged)
    assert not client.verified


def test_client_reports_a_server_error():
    client = ScramClient("user", "pencil", nonce=RFC_CLIENT_NONCE)
    client.first_message()
    client.handle_server_first(RFC_SERVER_FIRST)
    with pytest.raises(AuthenticationError, match="invalid-proof"):
        client.verify_server_final(b"e=invalid-proof")


# --- SCRAM client against server ------------------------------------------------------------


def _exchange(client: ScramClient, server: ScramServer) -> None:
    server_first = server.handle_client_first(client.first_message())
    server_final = server.handle_client_final(client.handle_server_first(server_first))
    client.verify_server_final(server_final)


@pytest.mark.parametrize(
    "password",
    ["correct horse", "", "pässwörd", "I\u00adX", b"\xff\xfe raw bytes", "\u0627\u0031"],
    ids=repr,
)
def test_scram_round_trip(password):
    verifier = ScramVerifier.from_password(password, iterations=64)
    client = ScramClient("alice", password)
    server = ScramServer(verifier)
    _exchange(client, server)
    assert client.verified
    assert server.authenticated


def test_scram_wrong_password_is_rejected():
    verifier = ScramVerifier.from_password("right", iterations=64)
    server = ScramServer(verifier)
    client = ScramClient("alice", "wrong")
    server_first = server.handle_client_first(client.first_message())
    with pytest.raises(
        AuthenticationError, match='password authentication failed for user "alice"'
    ):
        server.handle_client_final(client.handle_server_first(server_first))
    assert not server.authenticated


def test_saslprep_equivalent_passwords_log_in():
    # U+00AD (soft hyphen) maps to nothing, U+2168 (ROMAN NUMERAL NINE) to "IX" under NFKC.
    verifier = ScramVerifier.from_password("I\u00adX", iterations=64)
    _exchange(ScramClient("u", "\u2168"), ScramServer(verifier))
    assert verifier.verify_password("IX")
    assert not verifier.verify_password("ix")


def test_server_refuses_channel_binding():
    server = ScramServer(ScramVerifier.from_password("pw", iterations=64))
    with pytest.raises(AuthenticationError, match="channel binding"):
        server.handle_client_first(b"p=tls-server-end-point,,n=,r=abcdef")


def test_server_accepts_y_flag_and_checks_it_is_echoed():
    """'y' (client could bind, server offers no -PLUS) is accepted; the client-final must
    then carry base64("y,,") = "eSws", not the "biws" of an 'n' client."""
    server = ScramServer(ScramVerifier.from_password("pw", iterations=64))
    server_first = server.handle_client_first(b"y,,n=u,r=clientnonce")
    nonce = server_first.split(b",")[0][2:]
    with pytest.raises(AuthenticationError, match="channel-binding data does not match"):
        server.handle_client_final(b"c=biws,r=" + nonce + b",p=" + base64.b64encode(b"0" * 32))


@pytest.mark.parametrize(
    ("client_first", "error", "reason"),
    [
        (b"n,a=admin,n=u,r=abc", AuthenticationError, "authorization identity"),
        (b"x,,n=u,r=abc", ProtocolError, "channel-binding flag"),
        (b"n,,r=abc", ProtocolError, "'n='"),
        (b"n,,n=u", ProtocolError, "'r='"),
        (b"n,,m=ext,n=u,r=abc", ProtocolError, "extension"),
        (b"n,,n=u,r=a,b", ProtocolError, "malformed attribute"),
        (b"n,,n=u,r=ab\x7fc", ProtocolError, "nonce"),
        (b"\xff", ProtocolError, "UTF-8"),
        (b"n=u,r=abc", ProtocolError, "gs2 header"),
        (b"n,,n=a=b,r=abc", ProtocolError, "escape"),
    ],
    ids=repr,
)
def test_server_rejects_bad_client_first(client_first, error, reason):
    server = ScramServer(ScramVerifier.from_password("pw", iterations=64))
    with pytest.raises(error, match=reason):
        server.handle_client_first(client_first)


@pytest.mark.parametrize(
    ("mutate", "error", "reason"),
    [
        (lambda m: m.replace(b"c=biws", b"c=eSws"), AuthenticationError, "channel-binding"),
        (lambda m: m.replace(b",r=", b",r=X"), AuthenticationError, "nonce"),
        (lambda m: m[: m.rindex(b",p=")], ProtocolError, "proof"),
        (lambda m: m[: m.rindex(b",p=")] + b",p=AAAA", ProtocolError, "not 32"),
        (lambda m: m[: m.rindex(b",p=")] + b",p=!!", ProtocolError, "base64"),
    ],
)
def test_server_rejects_bad_client_final(mutate, error, reason):
    server = ScramServer(ScramVerifier.from_password("pw", iterations=64))
    client = ScramClient("u", "pw")
    final = client.handle_server_first(server.handle_client_first(client.first_message()))
    with pytest.raises(error, match=reason):
        server.handle_client_final(mutate(final))
    assert not server.authenticated


@pytest.mark.parametrize(
    ("server_first", "error", "reason"),
    [
        (b"r=someoneelse,s=c2FsdA==,i=4096", AuthenticationError, "nonce"),
        (b"r=NONCE,s=c2FsdA==,i=4096", AuthenticationError, "nonce"),  # not extended
        (b"r=NONCEmore,s=c2FsdA==,i=0", ProtocolError, "positive"),
        (b"r=NONCEmore,s=c2FsdA==,i=-5", ProtocolError, "iteration count"),
        (b"r=NONCEmore,s=c2FsdA==,i=99999999", AuthenticationError, "iterations"),
        (b"r=NONCEmore,s=???,i=4096", ProtocolError, "base64"),
        (b"m=x,r=NONCEmore,s=c2FsdA==,i=4096", ProtocolError, "extension"),
        (b"r=NONCEmore,i=4096", ProtocolError, "'s='"),
    ],
    ids=repr,
)
def test_client_rejects_bad_server_first(server_first, error, reason):
    client = ScramClient("u", "pw", nonce="NONCE")
    client.first_message()
    with pytest.raises(error, match=reason):
        client.handle_server_first(server_first)


def test_exchanges_must_go_in_order():
    client = ScramClient("u", "pw")
    with pytest.raises(ProtocolError, match="out of order"):
        client.handle_server_first(b"r=x,s=c2FsdA==,i=1")
    server = ScramServer(ScramVerifier.from_password("pw", iterations=64))
    with pytest.raises(ProtocolError, match="out of order"):
        server.handle_client_final(b"c=biws,r=x,p=AAAA")


# --- verifier strings -----------------------------------------------------------------------


def test_verifier_string_round_trip():
    verifier = ScramVerifier.from_password("pencil", salt=RFC_SALT, iterations=4096)
    text = str(verifier)
    assert text.startswith("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$")
    assert ScramVerifier.parse(text) == verifier
    assert verifier.verify_password("pencil")
    assert not verifier.verify_password("pencils")


def test_verifier_keys_follow_rfc_5802():
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", RFC_SALT, 4096)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    verifier = ScramVerifier.from_password("pencil", salt=RFC_SALT, iterations=4096)
    assert verifier.stored_key == hashlib.sha256(client_key).digest()
    assert verifier.server_key == hmac.digest(salted, b"Server Key", "sha256")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("md53175bce1d3201d16594cebf9d7eb3f9d", "not a SCRAM verifier"),
        ("SCRAM-SHA-1$4096:c2FsdA==$" + "A" * 44 + ":" + "A" * 44, "SCRAM-SHA-1"),
        ("SCRAM-SHA-256$x:c2FsdA==$a:b", "not a SCRAM verifier"),
        ("SCRAM-SHA-256$0:c2FsdA==$" + "A" * 44 + ":" + "A" * 44, "non-positive"),
        ("SCRAM-SHA-256$4096:c2FsdA==$AAAA:AAAA", "32 bytes"),
        ("SCRAM-SHA-256$4096:c2FsdA==$" + "!" * 44 + ":" + "A" * 44, "base64"),
    ],
    ids=repr,
)
def test_verifier_parse_errors(text, reason):
    with pytest.raises(ProtocolError, match=reason):
        ScramVerifier.parse(text)


# --- SASLprep (RFC 4013 section 3 examples) -------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [("I\u00adX", "IX"), ("user", "user"), ("USER", "USER"), ("\u00aa", "a"), ("\u2168", "IX")],
)
def test_saslprep_examples(given, expected):
    assert saslprep(given) == expected


@pytest.mark.parametrize("given", ["\u0007", "\u0627\u0031"])
def test_saslprep_prohibited_examples(given):
    with pytest.raises(ValueError, match="SASLprep"):
        saslprep(given)
