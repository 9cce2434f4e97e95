"""Exceptions of the PostgreSQL wire codec.

One base class, ``PgWireError``, lets a proxy catch everything the codec raises in one
``except``; the subclasses say whose fault it was: ``ProtocolError`` for bytes that break
the protocol (the connection cannot continue and should be closed, after an
``ErrorResponse`` with SQLSTATE 08P01 where a client is waiting), ``AuthenticationError``
for a well-formed exchange that proves the wrong secret (SQLSTATE 28P01).
"""

from __future__ import annotations

__all__ = ["AuthenticationError", "PgWireError", "ProtocolError"]


class PgWireError(Exception):
    """Base of every exception raised by ``engines.pgwire``."""


class ProtocolError(PgWireError):
    """The peer sent bytes that are not valid protocol 3.0 (or a message out of order).

    A parser that raised one stays failed: framing is lost, so no later byte can be trusted.
    """

    sqlstate = "08P01"  # protocol_violation


class AuthenticationError(PgWireError):
    """A well-formed authentication exchange failed: wrong password, forged server proof,
    or an option (such as SCRAM channel binding) this side does not support."""

    sqlstate = "28P01"  # invalid_password
