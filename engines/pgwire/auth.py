"""Password authentication for both ends of a connection, sans-IO: MD5 and SCRAM-SHA-256.

Why it lives in the codec: a pooling proxy authenticates clients itself (server side:
``ScramServer`` against PostgreSQL's stored verifier) and logs in to PostgreSQL on their
behalf (client side: ``ScramClient``, ``md5_password``). Each object turns the peer's
message bytes into the next message bytes; carrying them in SASLInitialResponse /
SASLResponse / AuthenticationSASLContinue / AuthenticationSASLFinal is the caller's job.

SCRAM-SHA-256 follows RFC 5802 and RFC 7677 as PostgreSQL implements it:

* no channel binding: the gs2 header is ``n,,`` (or ``y,,`` from a client that could bind
  but sees no SCRAM-SHA-256-PLUS offered); ``p=...`` is refused with a clear error;
* the user name inside the SCRAM message is ignored by PostgreSQL, which uses the one from
  the StartupMessage (libpq even sends it empty);
* the password goes through SASLprep (RFC 4013) when it is valid UTF-8 and SASLprep
  accepts it; otherwise its raw bytes are used, which is what the server does too, so a
  password that SASLprep rejects still works against PostgreSQL;
* the stored verifier is ``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` with
  base64 fields, as in ``pg_authid.rolpassword``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import stringprep
import unicodedata
from dataclasses import dataclass

from .errors import AuthenticationError, ProtocolError

__all__ = [
    "SCRAM_SHA_256",
    "ScramClient",
    "ScramServer",
    "ScramVerifier",
    "md5_password",
    "saslprep",
]

SCRAM_SHA_256 = "SCRAM-SHA-256"
DEFAULT_ITERATIONS = 4096  # PostgreSQL's default scram_iterations
DEFAULT_SALT_LENGTH = 16  # bytes, as PostgreSQL generates
NONCE_LENGTH = 18  # random bytes, base64-encoded to 24 characters
# A server chooses the iteration count and the client must compute PBKDF2 with it: a cap
# keeps a hostile server from pinning the client's CPU. PostgreSQL's default is 4096.
MAX_ITERATIONS = 1_000_000


def md5_password(user: str | bytes, password: str | bytes, salt: bytes) -> bytes:
    """The PasswordMessage body for AuthenticationMD5Password:
    ``"md5" + md5(md5(password + user).hexdigest() + salt).hexdigest()``."""
    if len(salt) != 4:
        raise ProtocolError(f"MD5 salt must be 4 bytes, not {len(salt)}")
    user_b = user.encode() if isinstance(user, str) else user
    password_b = password.encode() if isinstance(password, str) else password
    inner = hashlib.md5(password_b + user_b, usedforsecurity=False).hexdigest().encode()
    return b"md5" + hashlib.md5(inner + salt, usedforsecurity=False).hexdigest().encode()


# --- SASLprep ------------------------------------------------------------------------------


def saslprep(text: str) -> str:
    """RFC 4013 SASLprep of a stored string; raises ValueError for prohibited input."""
    mapped = []
    for char in text:
        if stringprep.in_table_c12(char):  # non-ASCII spaces become a space
            mapped.append(" ")
        elif not stringprep.in_table_b1(char):  # "commonly mapped to nothing"
            mapped.append(char)
    result = unicodedata.normalize("NFKC", "".join(mapped))
    for char in result:
        if (
            stringprep.in_table_c12(char)
            or stringprep.in_table_c21_c22(char)
            or stringprep.in_table_c3(char)
            or stringprep.in_table_c4(char)
            or stringprep.in_table_c5(char)
            or stringprep.in_table_c6(char)
            or stringprep.in_table_c7(char)
            or stringprep.in_table_c8(char)
            or stringprep.in_table_c9(char)
            or stringprep.in_table_a1(char)
        ):
            raise ValueError(f"SASLprep prohibits the character U+{ord(char):04X}")
    if any(stringprep.in_table_d1(char) for char in result):
        # RFC 3454 section 6: a right-to-left string may hold no left-to-right character
        # and must start and end with a right-to-left one.
        if any(stringprep.in_table_d2(char) for char in result):
            raise ValueError("SASLprep prohibits mixing right-to-left and left-to-right text")
        if not (stringprep.in_table_d1(result[0]) and stringprep.in_table_d1(result[-1])):
            raise ValueError("SASLprep requires right-to-left text to start and end with it")
    return result


def _normalize_password(password: str | bytes) -> bytes:
    """The bytes PostgreSQL feeds to PBKDF2 for this password."""
    if isinstance(password, bytes):
        try:
            text = password.decode("utf-8")
        except UnicodeDecodeError:
            return password
    else:
        text = password
    if text.isascii():
        # PostgreSQL's pg_saslprep passes pure ASCII through untouched (control
        # characters included, which strict SASLprep would refuse).
        return text.encode()
    try:
        return saslprep(text).encode("utf-8")
    except ValueError:
        return text.encode("utf-8", "surrogateescape")


# --- SCRAM primitives ----------------------------------------------------------------------


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.digest(key, message, "sha256")


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(f"SCRAM {what} is not valid base64: {text[:40]!r}") from None


def _nonce() -> str:
    return _b64(secrets.token_bytes(NONCE_LENGTH))


def _check_nonce(nonce: str) -> None:
    # RFC 5802: printable ASCII except ','.
    if not nonce or any(not 0x21 <= ord(c) <= 0x7E or c == "," for c in nonce):
        raise ProtocolError(f"SCRAM nonce {nonce[:40]!r} is not printable ASCII without ','")


def _decode_message(data: bytes, what: str) -> str:
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(f"SCRAM {what} is not valid UTF-8") from None


def _attributes(text: str, what: str) -> list[tuple[str, str]]:
    """Split ``a=1,b=2`` into pairs, refusing mandatory extensions (``m=``)."""
    pairs = []
    for part in text.split(","):
        if len(part) < 2 or part[1] != "=" or not part[0].isalpha():
            raise ProtocolError(f"SCRAM {what} has a malformed attribute {part[:40]!r}")
        if part[0] == "m":
            raise ProtocolError(f"SCRAM {what} requires an unsupported extension (m=)")
        pairs.append((part[0], part[2:]))
    return pairs


def _expect(pairs: list[tuple[str, str]], index: int, name: str, what: str) -> str:
    if index >= len(pairs) or pairs[index][0] != name:
        raise ProtocolError(f"SCRAM {what} lacks its '{name}=' attribute in position {index + 1}")
    return pairs[index][1]


def _escape_username(user: str) -> str:
    return user.replace("=", "=3D").replace(",", "=2C")


def _unescape_username(name: str) -> str:
    if "=" in name.replace("=3D", "").replace("=2C", ""):
        raise ProtocolError(f"SCRAM user name {name[:40]!r} has an invalid '=' escape")
    return name.replace("=2C", ",").replace("=3D", "=")


# --- verifier ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScramVerifier:
    """What a server stores instead of the password: enough to check a SCRAM proof (and
    prove itself), not enough to log in elsewhere with."""

    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    @classmethod
    def from_password(
        cls,
        password: str | bytes,
        *,
        salt: bytes | None = None,
        iterations: int = DEFAULT_ITERATIONS,
    ) -> ScramVerifier:
        """Derive a verifier the way ``CREATE ROLE ... PASSWORD`` does."""
        if iterations < 1:
            raise ValueError(f"iterations must be positive, not {iterations}")
        salt = secrets.token_bytes(DEFAULT_SALT_LENGTH) if salt is None else salt
        salted = hashlib.pbkdf2_hmac("sha256", _normalize_password(password), salt, iterations)
        return cls(
            iterations,
            salt,
            _h(_hmac(salted, b"Client Key")),
            _hmac(salted, b"Server Key"),
        )

    @classmethod
    def parse(cls, text: str) -> ScramVerifier:
        """Parse ``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>``."""
        try:
            mechanism, params, keys = text.split("$")
            iterations_text, salt_text = params.split(":")
            stored_text, server_text = keys.split(":")
            iterations = int(iterations_text)
        except ValueError:
            raise ProtocolError(
                "not a SCRAM verifier: expected "
                "'SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>'"
            ) from None
        if mechanism != SCRAM_SHA_256:
            raise ProtocolError(f"verifier is for {mechanism!r}, not {SCRAM_SHA_256}")
        if iterations < 1:
            raise ProtocolError(f"verifier has a non-positive iteration count {iterations}")
        stored_key = _unb64(stored_text, "StoredKey")
        server_key = _unb64(server_text, "ServerKey")
        if len(stored_key) != 32 or len(server_key) != 32:
            raise ProtocolError("verifier keys must be 32 bytes (SHA-256)")
        return cls(iterations, _unb64(salt_text, "salt"), stored_key, server_key)

    def to_string(self) -> str:
        return (
            f"{SCRAM_SHA_256}${self.iterations}:{_b64(self.salt)}"
            f"${_b64(self.stored_key)}:{_b64(self.server_key)}"
        )

    def __str__(self) -> str:
        return self.to_string()

    def verify_password(self, password: str | bytes) -> bool:
        """Check a cleartext password (for ``password`` authentication over a verifier)."""
        other = ScramVerifier.from_password(password, salt=self.salt, iterations=self.iterations)
        return hmac.compare_digest(other.stored_key, self.stored_key)


# --- client --------------------------------------------------------------------------------


class ScramClient:
    """Client half of SCRAM-SHA-256: logs in to a server that sent AuthenticationSASL.

    ``first_message()`` goes in SASLInitialResponse (mechanism ``SCRAM-SHA-256``),
    ``handle_server_first(AuthenticationSASLContinue.data)`` returns the SASLResponse data,
    ``verify_server_final(AuthenticationSASLFinal.data)`` proves the server knew the
    password too (raises AuthenticationError if not).
    """

    mechanism = SCRAM_SHA_256

    def __init__(
        self,
        user: str,
        password: str | bytes,
        *,
        nonce: str | None = None,
        max_iterations: int = MAX_ITERATIONS,
    ) -> None:
        self.user = user
        self._password = _normalize_password(password)
        self._nonce = _nonce() if nonce is None else nonce
        _check_nonce(self._nonce)
        self._max_iterations = max_iterations
        self._first_bare = ""
        self._server_signature = b""
        self._state = "start"
        self.verified = False

    def first_message(self) -> bytes:
        """The client-first message: gs2 header ``n,,`` plus user name and nonce."""
        if self._state != "start":
            raise ProtocolError("SCRAM client-first message requested twice")
        self._first_bare = f"n={_escape_username(self.user)},r={self._nonce}"
        self._state = "first-sent"
        return f"n,,{self._first_bare}".encode()

    def handle_server_first(self, data: bytes) -> bytes:
        """Take the server-first message, return the client-final message."""
        if self._state != "first-sent":
            raise ProtocolError("SCRAM server-first message out of order")
        text = _decode_message(data, "server-first message")
        pairs = _attributes(text, "server-first message")
        nonce = _expect(pairs, 0, "r", "server-first message")
        salt = _unb64(_expect(pairs, 1, "s", "server-first message"), "salt")
        iterations_text = _expect(pairs, 2, "i", "server-first message")
        if not nonce.startswith(self._nonce) or len(nonce) == len(self._nonce):
            raise AuthenticationError("SCRAM server nonce does not extend the client nonce")
        _check_nonce(nonce)
        if not (iterations_text.isascii() and iterations_text.isdigit()):
            raise ProtocolError(f"SCRAM iteration count {iterations_text[:20]!r} is invalid")
        iterations = int(iterations_text)
        if iterations < 1:
            raise ProtocolError("SCRAM iteration count must be positive")
        if iterations > self._max_iterations:
            raise AuthenticationError(
                f"server asks for {iterations} SCRAM iterations, above the "
                f"{self._max_iterations} this client accepts"
            )
        salted = hashlib.pbkdf2_hmac("sha256", self._password, salt, iterations)
        client_key = _hmac(salted, b"Client Key")
        without_proof = f"c=biws,r={nonce}"  # biws = base64("n,,")
        auth_message = f"{self._first_bare},{text},{without_proof}".encode()
        proof = _xor(client_key, _hmac(_h(client_key), auth_message))
        self._server_signature = _hmac(_hmac(salted, b"Server Key"), auth_message)
        self._state = "final-sent"
        return f"{without_proof},p={_b64(proof)}".encode()

    def verify_server_final(self, data: bytes) -> None:
        """Check the server-final message; raises AuthenticationError on ``e=`` or a
        signature that does not match."""
        if self._state != "final-sent":
            raise ProtocolError("SCRAM server-final message out of order")
        text = _decode_message(data, "server-final message")
        pairs = _attributes(text, "server-final message")
        if pairs and pairs[0][0] == "e":
            raise AuthenticationError(f"server rejected the SCRAM exchange: {pairs[0][1]}")
        signature = _unb64(_expect(pairs, 0, "v", "server-final message"), "server signature")
        if not hmac.compare_digest(signature, self._server_signature):
            raise AuthenticationError(
                "SCRAM server signature does not match: the server does not know the password"
            )
        self._state = "done"
        self.verified = True


# --- server --------------------------------------------------------------------------------


class ScramServer:
    """Server half of SCRAM-SHA-256, checking a client against a stored ``ScramVerifier``.

    ``handle_client_first(SASLInitialResponse.data)`` returns the server-first message
    (send as AuthenticationSASLContinue); ``handle_client_final(SASLResponse.data)``
    returns the server-final message (AuthenticationSASLFinal, then AuthenticationOk) or
    raises AuthenticationError for a wrong password.
    """

    mechanism = SCRAM_SHA_256

    def __init__(self, verifier: ScramVerifier, *, nonce: str | None = None) -> None:
        self.verifier = verifier
        self._own_nonce = _nonce() if nonce is None else nonce
        self._state = "start"
        self._gs2_header = ""
        self._first_bare = ""
        self._server_first = ""
        self._nonce = ""
        self.username = ""
        self.authenticated = False

    def handle_client_first(self, data: bytes) -> bytes:
        """Take the client-first message, return the server-first message."""
        if self._state != "start":
            raise ProtocolError("SCRAM client-first message out of order")
        text = _decode_message(data, "client-first message")
        parts = text.split(",", 2)
        if len(parts) != 3:
            raise ProtocolError("SCRAM client-first message lacks its gs2 header")
        flag, authzid, bare = parts
        if flag.startswith("p="):
            raise AuthenticationError(
                f"client requires SCRAM channel binding ({flag}), which this server does not "
                "offer; connect with channel_binding=disable or prefer"
            )
        if flag not in ("n", "y"):
            # 'y': the client could bind but saw no SCRAM-SHA-256-PLUS offered; as we
            # offer none, that is the truth and not a downgrade.
            raise ProtocolError(f"SCRAM gs2 channel-binding flag {flag[:20]!r} is invalid")
        if authzid:
            raise AuthenticationError("SCRAM authorization identity (a=) is not supported")
        pairs = _attributes(bare, "client-first message")
        self.username = _unescape_username(_expect(pairs, 0, "n", "client-first message"))
        client_nonce = _expect(pairs, 1, "r", "client-first message")
        _check_nonce(client_nonce)
        self._gs2_header = f"{flag},,"
        self._first_bare = bare
        self._nonce = client_nonce + self._own_nonce
        verifier = self.verifier
        self._server_first = f"r={self._nonce},s={_b64(verifier.salt)},i={verifier.iterations}"
        self._state = "first-sent"
        return self._server_first.encode()

    def handle_client_final(self, data: bytes) -> bytes:
        """Take the client-final message, return the server-final message."""
        if self._state != "first-sent":
            raise ProtocolError("SCRAM client-final message out of order")
        self._state = "done"  # one attempt only, whatever happens next
        text = _decode_message(data, "client-final message")
        cut = text.rfind(",p=")
        if cut < 0:
            raise ProtocolError("SCRAM client-final message lacks its proof (p=)")
        without_proof = text[:cut]
        pairs = _attributes(without_proof, "client-final message")
        binding = _unb64(_expect(pairs, 0, "c", "client-final message"), "channel binding")
        if binding != self._gs2_header.encode():
            raise AuthenticationError("SCRAM channel-binding data does not match the gs2 header")
        if _expect(pairs, 1, "r", "client-final message") != self._nonce:
            raise AuthenticationError("SCRAM client-final nonce does not match")
        proof = _unb64(text[cut + 3 :], "proof")
        if len(proof) != 32:
            raise ProtocolError(f"SCRAM proof is {len(proof)} bytes, not 32")
        auth_message = f"{self._first_bare},{self._server_first},{without_proof}".encode()
        verifier = self.verifier
        client_key = _xor(proof, _hmac(verifier.stored_key, auth_message))
        if not hmac.compare_digest(_h(client_key), verifier.stored_key):
            raise AuthenticationError(
                f'password authentication failed for user "{self.username}"'
                if self.username
                else "password authentication failed"
            )
        self.authenticated = True
        return f"v={_b64(_hmac(verifier.server_key, auth_message))}".encode()
