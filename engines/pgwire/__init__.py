"""A sans-IO codec for the PostgreSQL frontend/backend protocol 3.0.

Why it exists: the SQL firewall (``engines.firewall``) sits between clients and PostgreSQL
and must read just enough of the conversation to decide (a Query's text, a Parse's
statement, a ReadyForQuery's transaction status) while passing everything else on byte for
byte; the planned SQL router will use it the same way.
This package turns bytes into message objects and message objects into bytes and never
touches a socket, in the manner of h11 and wsproto: the proxies own the asyncio sockets,
and every byte-level rule is tested here without any.

The pieces:

``messages``
    One slotted dataclass per message, each with ``encode()`` and a ``decode(payload)``
    classmethod, in a module per sender (``startup``, ``frontend``, ``backend``);
    ``decode_frontend`` / ``decode_backend`` / ``decode_startup`` dispatch on the type
    byte; ``error_response()`` builds the ErrorResponse a proxy answers with.
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

from . import auth, errors, messages, parser
from .auth import *  # noqa: F403  (each module's __all__ names its public names once)
from .errors import *  # noqa: F403
from .messages import *  # noqa: F403
from .parser import *  # noqa: F403

# The forms below (``+=`` of a submodule's ``__all__``) are the ones type checkers follow.
__all__: list[str] = []
__all__ += auth.__all__
__all__ += errors.__all__
__all__ += messages.__all__
__all__ += parser.__all__
