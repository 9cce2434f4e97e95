"""A sans-IO codec for the PostgreSQL frontend/backend protocol 3.0.

Why it exists: the SQL firewall and the SQL router sit between clients and PostgreSQL and
must read just enough of the conversation to decide (a Query's text, a Parse's statement,
a ReadyForQuery's transaction status) while passing everything else on byte for byte.
This package turns bytes into message objects and message objects into bytes and never
touches a socket, in the manner of h11 and wsproto: the proxies own the asyncio sockets,
and every byte-level rule is tested here without any.

The pieces:

``messages``
    One slotted dataclass per message, for both directions, each with ``encode()`` and a
    ``decode(payload)`` classmethod; ``decode_frontend`` / ``decode_backend`` /
    ``decode_startup`` dispatch on the type byte; ``error_response()`` builds the
    ErrorResponse a proxy answers with.
``parser``
    ``FrontendParser`` (reads a client: untyped startup packets, then typed messages) and
    ``BackendParser`` (reads a server). Feed arbitrary chunks with ``feed()``; take whole
    messages with ``next()`` / iteration, or with ``next_raw()`` as ``(type_byte, raw)``
    where ``raw`` is exactly the received bytes, for forwarding without decoding, or
    whole runs of them with ``take_raw_until(b"ZE")`` (everything up to the next
    ReadyForQuery or ErrorResponse, as one ``bytes``).
``auth``
    ``md5_password`` and SCRAM-SHA-256 for both ends: ``ScramClient``, ``ScramServer`` and
    ``ScramVerifier`` (PostgreSQL's stored ``SCRAM-SHA-256$...`` string).
``errors``
    ``PgWireError`` and its subclasses ``ProtocolError`` (bytes that break the protocol;
    a parser that raised one stays failed) and ``AuthenticationError``.

A minimal client login, with the socket left to the caller::

    parser = BackendParser()
    sock.sendall(StartupMessage({"user": "app", "database": "app"}).encode())
    parser.feed(sock.recv(65536))
    for message in parser:
        ...
"""

from .auth import SCRAM_SHA_256, ScramClient, ScramServer, ScramVerifier, md5_password, saslprep
from .errors import AuthenticationError, PgWireError, ProtocolError
from .messages import (
    CANCEL_REQUEST_CODE,
    FIELD_CODES,
    GSSENC_REQUEST_CODE,
    PROTOCOL_3_0,
    SSL_REQUEST_CODE,
    AuthenticationCleartextPassword,
    AuthenticationGSS,
    AuthenticationGSSContinue,
    AuthenticationKerberosV5,
    AuthenticationMD5Password,
    AuthenticationOk,
    AuthenticationSASL,
    AuthenticationSASLContinue,
    AuthenticationSASLFinal,
    AuthenticationSSPI,
    BackendKeyData,
    BackendMessage,
    Bind,
    BindComplete,
    CancelRequest,
    Close,
    CloseComplete,
    CommandComplete,
    CopyBothResponse,
    CopyData,
    CopyDone,
    CopyFail,
    CopyInResponse,
    CopyOutResponse,
    DataRow,
    Describe,
    EmptyQueryResponse,
    EncryptionResponse,
    ErrorResponse,
    Execute,
    FieldDescription,
    Flush,
    FrontendMessage,
    FunctionCall,
    FunctionCallResponse,
    GSSENCRequest,
    GSSResponse,
    NegotiateProtocolVersion,
    NoData,
    NoticeResponse,
    NotificationResponse,
    ParameterDescription,
    ParameterStatus,
    Parse,
    ParseComplete,
    PasswordMessage,
    PortalSuspended,
    Query,
    ReadyForQuery,
    RowDescription,
    SASLInitialResponse,
    SASLResponse,
    SSLRequest,
    StartupMessage,
    StartupPacket,
    Sync,
    Terminate,
    decode_backend,
    decode_frontend,
    decode_startup,
    error_response,
)
from .parser import BackendParser, FrontendParser

__all__ = [
    "CANCEL_REQUEST_CODE",
    "FIELD_CODES",
    "GSSENC_REQUEST_CODE",
    "PROTOCOL_3_0",
    "SCRAM_SHA_256",
    "SSL_REQUEST_CODE",
    "AuthenticationCleartextPassword",
    "AuthenticationError",
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
    "BackendParser",
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
    "FrontendParser",
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
    "PgWireError",
    "PortalSuspended",
    "ProtocolError",
    "Query",
    "ReadyForQuery",
    "RowDescription",
    "SASLInitialResponse",
    "SASLResponse",
    "SSLRequest",
    "ScramClient",
    "ScramServer",
    "ScramVerifier",
    "StartupMessage",
    "StartupPacket",
    "Sync",
    "Terminate",
    "decode_backend",
    "decode_frontend",
    "decode_startup",
    "error_response",
    "md5_password",
    "saslprep",
]
