"""engines.procs, which the supervisor, pgcluster and the benchmarks share: free ports,
port checks, waiting for a port, and children that die with the process that started them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engines.procs import (
    NotReadyError,
    die_with_parent,
    free_port,
    free_ports,
    pid_alive,
    port_open,
    wait_for_port,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
linux_only = pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")


def _eventually(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _python(code: str, **kwargs) -> subprocess.Popen:
    """A Python process running ``code``, able to import engines wherever pytest runs."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, **kwargs)


def test_free_ports_are_distinct_and_bindable():
    ports = free_ports(3)
    assert len(set(ports)) == 3
    for port in [*ports, free_port()]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_port_open_tells_a_listener_from_a_closed_port():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert port_open("127.0.0.1", port)
    assert not port_open("127.0.0.1", port)


def test_waiting_for_a_port_returns_once_it_listens():
    port = free_port()
    server = _python(f"""
        import socket, time
        time.sleep(0.3)
        s = socket.create_server(("127.0.0.1", {port}))
        time.sleep(30)
    """)
    try:
        wait_for_port("127.0.0.1", port, 10, server)
        assert port_open("127.0.0.1", port)
    finally:
        server.kill()
        server.wait()


def test_waiting_for_a_port_gives_up_with_a_clear_error():
    port = free_port()
    started = time.monotonic()
    with pytest.raises(
        NotReadyError, match=rf"^nothing listening on 127.0.0.1:{port} after 0.3 s$"
    ):
        wait_for_port("127.0.0.1", port, 0.3)
    assert time.monotonic() - started < 2


def test_waiting_notices_the_process_exit_instead_of_timing_out():
    port = free_port()
    crashed = _python("import sys; sys.exit(3)")
    started = time.monotonic()
    with pytest.raises(NotReadyError) as caught:
        wait_for_port("127.0.0.1", port, 30, crashed)
    assert str(caught.value) == f"exited with code 3 before listening on 127.0.0.1:{port}"
    assert caught.value.returncode == 3
    assert time.monotonic() - started < 10


def test_wait_until_polls_any_condition():
    calls = []
    wait_until(lambda: calls.append(1) or len(calls) >= 3, 5)
    assert len(calls) == 3
    with pytest.raises(NotReadyError, match=r"^not ready after 0.1 s$") as caught:
        wait_until(lambda: False, 0.1)
    assert caught.value.returncode is None


def test_pid_alive_sees_a_zombie_as_dead():
    child = _python("pass")
    assert _eventually(lambda: not pid_alive(child.pid))  # exited, not reaped yet
    child.wait()
    assert pid_alive(os.getpid())


@linux_only
def test_a_child_dies_when_its_parent_is_killed():
    # The parent starts the child with the hook, prints the child's pid, then waits to be
    # SIGKILLed: no handler of its own runs, only the kernel can tell the child.
    parent = _python(
        """
        import signal, subprocess, sys, time
        from engines.procs import die_with_parent
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                                 preexec_fn=die_with_parent(signal.SIGTERM))
        print(child.pid, flush=True)
        time.sleep(60)
        """,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        child = int(parent.stdout.readline())
        assert pid_alive(child)
        parent.kill()
        parent.wait()
        assert _eventually(lambda: not pid_alive(child)), "the child outlived its parent"
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()


@linux_only
def test_a_child_whose_parent_died_before_the_hook_ran_exits_instead_of_running(tmp_path):
    # The race the re-check closes: the hook was made by one process (the parent, which
    # then "dies"), but runs in a child whose parent is someone else, as when the parent
    # died between fork() and prctl() and the child was handed to init. That child must
    # exit before it runs its command.
    ran = tmp_path / "ran"
    script = f"""
        import os, signal, subprocess, sys
        from engines.procs import die_with_parent
        hook = die_with_parent(signal.SIGTERM)  # made here: this pid is the parent it knows
        if os.fork() == 0:  # another process starts the command with that hook
            child = subprocess.Popen([sys.executable, "-c", "open({str(ran)!r}, 'w')"],
                                     preexec_fn=hook)
            os._exit(child.wait())
        _, status = os.wait()
        sys.exit(os.waitstatus_to_exitcode(status))
    """
    intermediate = _python(script)
    assert intermediate.wait(timeout=30) == 1
    assert not ran.exists()


def test_die_with_parent_keeps_a_normal_child_running():
    hook = die_with_parent(signal.SIGTERM)
    child = subprocess.run([sys.executable, "-c", "print('ran')"], preexec_fn=hook,
                           capture_output=True, text=True, check=True, timeout=30)  # fmt: skip
    assert child.stdout == "ran\n"
