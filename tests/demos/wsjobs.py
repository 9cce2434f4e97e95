"""Reading a demo job's messages off a test websocket, shared by the demos' tests."""

from __future__ import annotations

from typing import Any


async def read_until_done(communicator: Any, wait: float = 60) -> tuple[list, dict]:
    """Read a job's messages until its "done"; return (every output item, the done message).
    Any "error" message on the way fails the test."""
    items: list = []
    while True:
        message = await communicator.receive_json_from(timeout=wait)
        assert message["type"] != "error", message
        if message["type"] == "output":
            items.extend(message["items"])
        elif message["type"] == "done":
            return items, message
