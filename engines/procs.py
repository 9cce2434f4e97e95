"""Helpers for the processes we start and the ports they serve, written once.

The site's supervisor (``portfolio.stack``), ``engines.pgcluster`` and the benchmarks all
start servers on loopback, wait for them to listen, and must not leave them running when
they die themselves, even by SIGKILL. Those details (the parent-death race, a dead process
noticed while waiting) are easy to get subtly wrong, so they live here, once, tested in
``tests/engines/test_procs.py``. Standard library only: engines may import it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# A readiness probe in a wait loop gives up sooner than a one-off check, so the loop also
# looks at the process often; on loopback a connection is taken or refused at once anyway.
PROBE_TIMEOUT = 0.2
POLL_INTERVAL = 0.05

LOOPBACK = "127.0.0.1"


class NotReadyError(RuntimeError):
    """A wait ended without what it waited for: the process exited first (``returncode``
    is its exit code) or time ran out (``returncode`` is None). The message says which."""

    def __init__(self, message: str, returncode: int | None = None) -> None:
        super().__init__(message)
        self.returncode = returncode


def die_with_parent(signum: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to send ``signum`` to the child when we die, even by
    SIGKILL, so no server outlives the process that started it; None off Linux.

    Call it in the parent, just before starting the child: libc is looked up here, because
    the child must not dlopen (another thread may hold the loader's lock at fork time),
    and our pid is noted for the re-check below. The signal is the caller's choice: SIGTERM
    for most servers, SIGINT for PostgreSQL's fast shutdown.

    Two things the kernel does that shape this:

    * The signal is sent when the *thread* that forked the child exits, not the process:
      start children from a thread that lives as long as they should.
    * A change of user clears the setting. ``subprocess`` runs ``preexec_fn`` after it has
      switched to ``user=``/``group=``, so the setting made here survives.
    """
    if sys.platform != "linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()
    sig = ctypes.c_ulong(signum)  # prctl's second argument is an unsigned long

    def hook() -> None:
        prctl(PR_SET_PDEATHSIG, sig)
        # The race: if we died between fork() and the prctl() above, no signal will ever
        # come (the setting only watches for a death after it is made) and the child has
        # already been handed to init or a subreaper. Its parent is then no longer the
        # pid noted before fork(): exit before exec rather than run unsupervised.
        if os.getppid() != parent:
            os._exit(1)

    return hook


def follow_parent(parent: int, signum: int) -> None:
    """die_with_parent's promise made from inside a child that no ``preexec_fn`` ran in
    (multiprocessing's spawn): ``signum`` when ``parent`` dies, or exit now if it already
    has."""
    if sys.platform != "linux":
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signum))
    if os.getppid() != parent:
        os._exit(1)


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process; a zombie (exited, not yet reaped) is not."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return fields[0] not in ("Z", "X")


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host``:``port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct TCP ports free on ``host`` right now (all held while choosing, so
    none is picked twice). Another process may still take one before it is used."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind((host, 0))
            ports.append(sock.getsockname()[1])
        return ports


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port free on ``host`` right now."""
    return free_ports(1, host)[0]


def wait_until(
    ready: Callable[[], bool],
    timeout: float,
    process: subprocess.Popen | None = None,
    *,
    what: str = "ready",
    timed_out: str | None = None,
) -> None:
    """Poll ``ready`` until it holds. NotReadyError if ``process`` exits first ("exited with
    code N before <what>") or after ``timeout`` seconds (``timed_out``, else "not <what>
    after T s")."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process is not None and process.poll() is not None:
            raise NotReadyError(
                f"exited with code {process.returncode} before {what}", process.returncode
            )
        if time.monotonic() >= deadline:
            raise NotReadyError(timed_out or f"not {what} after {timeout:g} s")
        time.sleep(POLL_INTERVAL)


def wait_for_port(
    host: str, port: int, timeout: float, process: subprocess.Popen | None = None
) -> None:
    """Block until ``host``:``port`` accepts connections; NotReadyError on timeout or if
    ``process`` exits first."""
    wait_until(
        lambda: port_open(host, port, PROBE_TIMEOUT),
        timeout,
        process,
        what=f"listening on {host}:{port}",
        timed_out=f"nothing listening on {host}:{port} after {timeout:g} s",
    )
