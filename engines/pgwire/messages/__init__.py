"""Message classes of PostgreSQL protocol 3.0, each able to encode itself and be decoded.

Why one small class per message: a proxy matches on ``type(msg)`` and reads named attributes
instead of offsets, and ``msg.encode()`` gives back exactly the bytes a peer expects.
Classes are slotted dataclasses (cheap to create, comparable, readable ``repr``) with the
wire type byte in ``type_code`` and a ``decode(payload)`` classmethod taking the message
body without its 5-byte header.

The modules, by who sends what:

``startup``
    The untyped packets before the typed messages (StartupMessage, SSLRequest,
    GSSENCRequest, CancelRequest, and the server's one-byte EncryptionResponse) and
    ``decode_startup``.
``authentication``
    The server's requests (type 'R') and the client's responses (type 'p'), each family
    sharing one type byte and told apart by other means.
``frontend``
    The other typed messages from a client, and ``decode_frontend``.
``backend``
    The other typed messages from a server, ``decode_backend`` and ``error_response()``.
``base``
    Wire helpers, the base classes ``FrontendMessage`` and ``BackendMessage``, and the
    decorator ``@typed(b"X")`` that gives a class its type byte and files its decoder.

Each class is named where it is defined and once more in its module's ``__all__``; this
package and ``engines.pgwire`` re-export those lists with ``import *`` rather than naming
the classes again. ``FrontendMessage``, ``BackendMessage`` and ``StartupPacket`` are base
classes, not unions, for the same reason: ``isinstance`` and annotations work as with a
union, and no list of members is kept by hand.

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

from . import authentication, backend, base, frontend, startup
from .authentication import *  # noqa: F403  (names listed once, in its __all__)
from .backend import *  # noqa: F403
from .base import *  # noqa: F403
from .frontend import *  # noqa: F403
from .startup import *  # noqa: F403

# The forms below (``+=`` of a submodule's ``__all__``) are the ones type checkers follow.
__all__: list[str] = []
__all__ += base.__all__
__all__ += startup.__all__
__all__ += authentication.__all__
__all__ += frontend.__all__
__all__ += backend.__all__
