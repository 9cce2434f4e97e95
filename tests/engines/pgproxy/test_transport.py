"""The proxy's own plain-socket transport (``_transport.hand_over``) against real
sockets, on both event loops the proxy runs on: it must keep asyncio's promises (bytes
whole and in order under back-pressure, close flushes and abort drops, connection_lost
once and later, flow control, faults reported), and let go of everything it held."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
import struct

import pytest
import uvloop
from engines.pgproxy._server import ServerCore
from engines.pgproxy._transport import SocketTransport, hand_over

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture(params=sorted(LOOPS))
def run(request):
    def run(coro_fn):
        loop = LOOPS[request.param]()
        try:
            return loop.run_until_complete(asyncio.wait_for(coro_fn(), 20))
        finally:
            loop.close()

    return run


class Recorder(asyncio.Protocol):
    """Everything the transport tells its protocol, in order."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.events: list[str] = []
        self.lost = asyncio.get_running_loop().create_future()
        self.received = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        self.data += data
        self.received.set()

    def pause_writing(self) -> None:
        self.events.append("pause_writing")

    def resume_writing(self) -> None:
        self.events.append("resume_writing")

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append("connection_lost")
        self.lost.set_result(exc)


async def _loop_connection() -> tuple[asyncio.StreamWriter, socket.socket]:
    """A TCP connection over loopback made by the loop (its writer), and its peer."""
    listener = socket.create_server(("127.0.0.1", 0))
    peer_ready = asyncio.get_running_loop().run_in_executor(None, listener.accept)
    _, writer = await asyncio.open_connection(*listener.getsockname())
    peer, _ = await peer_ready
    listener.close()
    return writer, peer


async def _taken_over(protocol: asyncio.Protocol) -> tuple[SocketTransport, socket.socket]:
    """A loop-made connection handed over to the proxy's transport, and its peer."""
    writer, peer = await _loop_connection()
    transport = hand_over(writer.transport, protocol)
    assert isinstance(transport, SocketTransport)
    assert writer.transport.is_closing()  # the loop's transport let go of the socket
    return transport, peer


async def _exchange(
    transport: asyncio.BaseTransport, peer: socket.socket, protocol: Recorder
) -> tuple[bytes, bytes]:
    """A message each way: what the protocol received, what the peer read back; then both
    ends close."""
    peer.sendall(b"from the peer")
    await asyncio.wait_for(protocol.received.wait(), 5)
    transport.write(b"from the proxy")
    echoed = await _read_exactly(peer, len(b"from the proxy"))
    transport.close()
    peer.close()
    return bytes(protocol.data), echoed


async def _read_exactly(sock: socket.socket, size: int) -> bytes:
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    chunks, got = [], 0
    while got < size:
        chunk = await loop.sock_recv(sock, 1 << 16)
        assert chunk, f"peer saw EOF after {got} of {size} bytes"
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


async def _read_to_eof(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := await loop.sock_recv(sock, 1 << 16):
            chunks.append(chunk)
    return b"".join(chunks)


def _epoll_descriptors() -> set[int]:
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor is gone by now
            if os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[eventpoll]":
                found.add(int(fd))
    return found


def test_bytes_flow_both_ways_after_the_hand_over(run):
    async def scenario() -> tuple[bytes, bytes]:
        protocol = Recorder()
        transport, peer = await _taken_over(protocol)
        return await _exchange(transport, peer, protocol)

    assert run(scenario) == (b"from the peer", b"from the proxy")


def test_writes_stay_whole_and_in_order_under_back_pressure_with_flow_control(run):
    async def scenario() -> tuple[bytes, list[str]]:
        protocol = Recorder()
        transport, peer = await _taken_over(protocol)
        # Small fixed buffers: with autotuning, loopback can absorb most of 4 MiB at once.
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 16)
        core = ServerCore()
        core.transport = transport  # the relay's C write path, as ServerConnection uses it
        big = bytes(range(256)) * (16 * 1024)  # 4 MiB: far more than the socket buffers
        core.write(big)
        assert transport.get_write_buffer_size() > 0  # the rest is queued...
        assert protocol.events == ["pause_writing"]  # ...past the high-water mark
        # The peer makes room in the socket before the loop can flush the queue: later
        # writes must still queue behind it rather than go straight to the socket.
        first = peer.recv(1 << 16)
        core.write(memoryview(b"--middle--"))
        transport.write(b"--tail--")  # the Python path too
        data = first + await _read_exactly(peer, len(big) + 18 - len(first))
        await asyncio.sleep(0.05)  # the transport sees the room the peer made
        assert transport.get_write_buffer_size() == 0
        transport.close()
        peer.close()
        return data, protocol.events

    data, events = run(scenario)
    assert data == bytes(range(256)) * (16 * 1024) + b"--middle----tail--"
    assert events[:2] == ["pause_writing", "resume_writing"]


def test_close_sends_what_is_queued_first_and_abort_drops_it(run):
    async def scenario(abort: bool) -> tuple[int, list[str], Exception | None]:
        protocol = Recorder()
        transport, peer = await _taken_over(protocol)
        big = b"x" * (8 * 1024 * 1024)
        transport.write(big)
        assert transport.get_write_buffer_size() > 0
        transport.abort() if abort else transport.close()
        assert transport.is_closing()
        transport.write(b"after close")  # goes nowhere, as with asyncio's transports
        assert protocol.events == ["pause_writing"]  # connection_lost never comes synchronously
        received = await _read_to_eof(peer)
        exc = await asyncio.wait_for(protocol.lost, 5)
        peer.close()
        return len(received), protocol.events, exc

    size, events, exc = run(lambda: scenario(abort=False))
    assert size == 8 * 1024 * 1024
    assert events[-1] == "connection_lost"
    assert events.count("connection_lost") == 1
    assert exc is None
    size, events, exc = run(lambda: scenario(abort=True))
    assert size < 8 * 1024 * 1024
    assert events.count("connection_lost") == 1


def test_a_peer_that_closes_or_resets_is_reported(run):
    async def scenario(reset: bool) -> Exception | None:
        protocol = Recorder()
        transport, peer = await _taken_over(protocol)
        if reset:  # SO_LINGER 0: close() sends an RST instead of a FIN
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()
        exc = await asyncio.wait_for(protocol.lost, 5)
        assert transport.is_closing()
        return exc

    assert run(lambda: scenario(reset=False)) is None
    assert isinstance(run(lambda: scenario(reset=True)), ConnectionResetError)


def test_paused_reading_holds_input_back_and_a_reset_still_ends_it(run):
    async def scenario() -> tuple[bytes, bytes, Exception | None]:
        protocol = Recorder()
        transport, peer = await _taken_over(protocol)
        transport.pause_reading()
        assert not transport.is_reading()
        peer.sendall(b"held back")
        await asyncio.sleep(0.1)
        held = bytes(protocol.data)
        transport.resume_reading()
        await asyncio.wait_for(protocol.received.wait(), 5)
        released = bytes(protocol.data)
        # An RST while paused: epoll reports it unasked, on every poll, so the transport
        # must end the connection rather than spin.
        transport.pause_reading()
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()
        exc = await asyncio.wait_for(protocol.lost, 5)
        return held, released, exc

    held, released, exc = run(scenario)
    assert held == b""
    assert released == b"held back"
    assert isinstance(exc, OSError)


def test_a_failing_protocol_loses_its_connection_and_no_other(run):
    class Failing(Recorder):
        def data_received(self, data: bytes) -> None:
            raise RuntimeError("protocol bug")

    async def scenario() -> tuple[Exception | None, bytes]:
        failing, healthy = Failing(), Recorder()
        _, bad_peer = await _taken_over(failing)
        good, good_peer = await _taken_over(healthy)
        bad_peer.sendall(b"boom")
        exc = await asyncio.wait_for(failing.lost, 5)
        good_peer.sendall(b"still here")
        await asyncio.wait_for(healthy.received.wait(), 5)
        good.close()
        for sock in (bad_peer, good_peer):
            sock.close()
        return exc, bytes(healthy.data)

    exc, data = run(scenario)
    assert isinstance(exc, RuntimeError)
    assert data == b"still here"


def test_every_descriptor_is_let_go_and_a_reused_one_gets_nothing(run):
    async def scenario() -> tuple[set[int], set[int], bytes]:
        loops_own = _epoll_descriptors()
        protocol = Recorder()
        transport, peer = await _taken_over(protocol)
        reactors = _epoll_descriptors() - loops_own
        fd = transport.get_extra_info("socket").fileno()
        transport.close()
        await protocol.lost
        peer.close()
        left = _epoll_descriptors() & reactors  # the reactor's epoll closes with its last socket
        newcomer, other = socket.socketpair()  # takes the lowest free descriptors
        try:
            assert fd in (newcomer.fileno(), other.fileno()), "descriptor not reused"
            transport.write(b"stale bytes")
            core = ServerCore()
            core.transport = transport
            core.write(b"stale bytes")
            await asyncio.sleep(0.05)
            leaked = b""
            for sock in (newcomer, other):
                sock.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    leaked += sock.recv(1024)
            return reactors, left, leaked
        finally:
            newcomer.close()
            other.close()

    reactors, left, leaked = run(scenario)
    assert len(reactors) == 1
    assert left == set()
    assert leaked == b""


def test_out_of_descriptors_the_loops_transport_carries_on(run):
    async def scenario() -> tuple[bool, tuple[bytes, bytes]]:
        protocol = Recorder()
        writer, peer = await _loop_connection()
        lowest_free = os.dup(0)
        os.close(lowest_free)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))  # no new descriptor
        try:
            transport = hand_over(writer.transport, protocol)
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        kept = transport is writer.transport and transport.get_protocol() is protocol
        return kept, await _exchange(transport, peer, protocol)

    assert run(scenario) == (True, (b"from the peer", b"from the proxy"))


def test_a_transport_that_cannot_be_taken_over_is_switched_in_place(run):
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        ours, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, sock=ours)
        protocol = Recorder()
        assert hand_over(transport, protocol) is transport  # not a stream socket
        assert transport.get_protocol() is protocol
        transport.close()
        peer.close()

    run(scenario)
