"""The relay's direct socket writes (``_relay.Outlet``, reached through
``ServerCore.write``) against real sockets on both event loops the proxy runs on: bytes
arrive whole and in order when the socket pushes back, and a closed transport's
descriptor, reused by a new socket, never receives a byte."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest
import uvloop
from engines.firewall._relay import ServerCore

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture(params=sorted(LOOPS))
def run(request):
    def run(coro_fn):
        loop = LOOPS[request.param]()
        try:
            return loop.run_until_complete(coro_fn())
        finally:
            loop.close()

    return run


async def _transport(sock: socket.socket) -> asyncio.Transport:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(asyncio.Protocol, sock=sock)
    return transport


async def _read_all(sock: socket.socket, size: int) -> bytes:
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    chunks, got = [], 0
    while got < size:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 1 << 16), 5)
        assert chunk, "peer closed early"
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def test_writes_stay_whole_and_in_order_when_the_socket_pushes_back(run):
    async def scenario() -> bytes:
        ours, peer = socket.socketpair()
        core = ServerCore()
        core.transport = await _transport(ours)
        # Far more than the socket buffers hold while nobody reads: the first write is
        # sent in part and the rest queued in the transport. The peer then makes room in
        # the socket before the loop can flush that queue: later writes must still queue
        # behind it rather than go straight to the socket.
        big = bytes(range(256)) * (16 * 1024)  # 4 MiB
        core.write(big)
        first = peer.recv(1 << 16)
        core.write(memoryview(b"--middle--"))
        core.write(b"--tail--")
        data = first + await _read_all(peer, len(big) + 18 - len(first))
        core.transport.close()
        peer.close()
        return data

    data = run(scenario)
    assert data.endswith(b"--middle----tail--")
    assert data[:-18] == bytes(range(256)) * (16 * 1024)


def test_a_closed_transport_never_writes_to_a_reused_descriptor(run):
    async def scenario() -> bytes | None:
        ours, peer = socket.socketpair()
        fd = ours.fileno()
        core = ServerCore()
        core.transport = await _transport(ours)
        core.transport.close()
        await asyncio.sleep(0.05)  # the loop closes the descriptor
        peer.close()
        newcomer, listener = socket.socketpair()  # takes the lowest free descriptor
        try:
            assert fd in (newcomer.fileno(), listener.fileno()), "descriptor not reused"
            with contextlib.suppress(RuntimeError):  # uvloop refuses a closed handle
                core.write(b"stale bytes")
            await asyncio.sleep(0.05)
            leaked = b""
            for reader in (newcomer, listener):
                reader.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    leaked += reader.recv(1024)
            return leaked
        finally:
            newcomer.close()
            listener.close()

    assert run(scenario) == b""
