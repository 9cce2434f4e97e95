"""The admin console: ``psql -d firewall -c 'SHOW POOLS'``, as PgBouncer's console works.

A client that asks for the database named after the proxy (``firewall``, ``router``: its
``admin_database``) logs in as usual but talks to the proxy itself, which answers a handful
of read-only SHOW commands with ordinary result sets, so any PostgreSQL client (and any
monitoring script that speaks SQL) can read the counters. SHOW POOLS and SHOW STATS are
every proxy's; a proxy adds its policy's rows to SHOW STATS and commands of its own through
its hooks (proxy.BaseProxy ``console_stats``, ``console_command``, ``console_commands``).
"""

from __future__ import annotations

import asyncio
import struct
from typing import TYPE_CHECKING, Any

from engines.pgwire import (
    CommandComplete,
    DataRow,
    FieldDescription,
    ReadyForQuery,
    RowDescription,
    error_response,
)

if TYPE_CHECKING:
    from .proxy import BaseProxy

_HEADER = struct.Struct("!cI")


def console_parameters(name: str) -> dict[str, str]:
    """What psql and drivers expect to hear at login; the console has no server of its own."""
    return {
        "server_version": f"15.0 ({name} console)",
        "server_encoding": "UTF8",
        "client_encoding": "UTF8",
        "DateStyle": "ISO, MDY",
        "integer_datetimes": "on",
        "standard_conforming_strings": "on",
    }


def result(columns: list[str], rows: list[list[Any]], tag: str) -> bytes:
    fields = [FieldDescription(name) for name in columns]  # all text
    out = [RowDescription(fields).encode()]
    out += [DataRow([None if v is None else str(v).encode() for v in row]).encode() for row in rows]
    out.append(CommandComplete(f"{tag} {len(rows)}").encode())
    return b"".join(out)


def answer(proxy: BaseProxy, command: str) -> bytes:
    """The response to one console command (without the trailing ReadyForQuery)."""
    words = command.strip().rstrip(";").upper().split()
    stats = proxy.stats()
    if words == ["SHOW", "POOLS"]:
        columns = ["database", "user", "mode", "size", "active", "idle", "connecting",
                   "waiting_clients", "acquired", "timeouts", "connects", "discarded"]  # fmt: skip
        return result(columns, [[pool[c] for c in columns] for pool in stats["pools"]], "SHOW")
    if words == ["SHOW", "STATS"]:
        return result(["name", "value"], proxy.console_stats(stats), "SHOW")
    own = proxy.console_command(words, stats)
    if own is not None:
        return own
    return error_response(
        "42601",
        f"unknown console command {command.strip()[:80]!r}",
        hint=f"try {', '.join(proxy.console_commands)}",
    )


def stats_rows(stats: dict[str, Any]) -> list[list[Any]]:
    """SHOW STATS's rows for what every proxy counts (BaseProxy.console_stats adds its
    policy's)."""
    latency = stats["latency"]
    return [
        ["clients", stats["clients"]],
        ["logins", stats["logins"]],
        ["login_failures", stats["login_failures"]],
        ["reads_in_place", stats["reads"]["in_place"]],
        ["reads_copied", stats["reads"]["copied"]],
        ["round_trips", latency["count"]],
        ["round_trip_p50_us", latency["p50_us"]],
        ["round_trip_p95_us", latency["p95_us"]],
        ["round_trip_p99_us", latency["p99_us"]],
    ]


class AdminSession(asyncio.Protocol):
    """A console client: simple queries only; Terminate or disconnect ends it."""

    def __init__(self, proxy: BaseProxy, transport: asyncio.Transport) -> None:
        self.proxy = proxy
        self.transport = transport
        self.buffer = b""
        self.stream_writer: asyncio.StreamWriter | None = None  # keeps the transport open

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 5:
            kind, length = _HEADER.unpack_from(self.buffer)
            if length < 4 or length > 1 << 20:
                self.transport.write(
                    error_response("08P01", "invalid message length", severity="FATAL")
                )
                self.transport.close()
                return
            if len(self.buffer) < 1 + length:
                return
            payload, self.buffer = self.buffer[5 : 1 + length], self.buffer[1 + length :]
            if kind == b"X":
                self.transport.close()
                return
            if kind == b"Q":
                reply = answer(self.proxy, payload.rstrip(b"\0").decode(errors="replace"))
            else:
                reply = error_response("0A000", "the console answers simple queries only")
            self.transport.write(reply + ReadyForQuery("I").encode())
