"""What a statement policy answers, as a client session's relay acts on it (_policy.pyx).

A proxy's policy returns a ``Verdict`` (or a subclass carrying what the policy itself needs:
the firewall's adds what its guard settles per session, engines/firewall/verdicts.py) for
every Query, Parse, Bind and FunctionCall; the session reads only the fields below.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass(frozen=True, eq=False)
class Verdict:
    """A policy's answer for one query string, Bind or FunctionCall.

    * ``allowed``; when refused, ``rule``, ``message`` and ``sqlstate``: what the client is
      told in place of the server's answer (42501 when no SQLSTATE is given).
    * ``holds``: the statement may change how the server reads the next messages (a SET of
      client_encoding): nothing after it goes on until it has completed.
    * ``sql``: text to send instead of the client's (a rewrite), when allowed; bytes in the
      client's encoding by the time the session reads it.
    * ``pending``: not decided yet (a statement parsed off the event loop): the session asks
      again once the future is done.
    """

    allowed: bool
    rule: str | None = None
    message: str = ""
    sqlstate: str = ""
    holds: bool = False
    sql: bytes | str | None = None
    pending: asyncio.Future | None = field(default=None, compare=False)

    @property
    def blocked(self) -> bool:
        return not self.allowed


ALLOWED = Verdict(True)
